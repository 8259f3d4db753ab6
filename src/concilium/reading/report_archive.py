"""Each signed version of a report stored back into the archive as a DICOM Encapsulated
PDF (PS3.3 A.45.1, SOP Class 1.2.840.10008.5.1.4.1.1.104.1) in the exam's own study: the
order's Study Instance UID, the patient as the archive's study names them (else as the
ordering site identifies them), the accession number; one series per report (modality
DOC), one instance per version. So QIDO-RS, WADO and every viewer see it beside the images.

The archive is reached through its public face (``concilium.imaging.ingest_instance``),
which commits on its own: the version is stored first (the signature is durable), then
archived, and ``archived_at`` records the archive's acknowledgment. A version the archive
could not take keeps ``archived_at`` empty and is tried again by :func:`archive_pending`.
"""

from __future__ import annotations

import io
import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from concilium import imaging
from concilium.platform import audit, patients
from concilium.platform.db import transaction
from concilium.platform.policy import Principal
from concilium.platform.tables import Site, User
from concilium.reading.groups import site_zone
from concilium.reading.tables import (
    ImagingOrderRecord,
    ReadingReport,
    ReadingReportVersion,
)

__all__ = ["ENCAPSULATED_PDF", "archive_pending", "archive_version", "encapsulated_pdf"]

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
"""Encapsulated PDF Storage SOP Class UID."""
SERIES_NUMBER = 999
log = logging.getLogger(__name__)


def series_uid(order: ImagingOrderRecord, report: ReadingReport) -> str:
    """The report's series in the study: the same for every version."""
    return generate_uid(entropy_srcs=[order.study_instance_uid, "report", str(report.id)])


def encapsulated_pdf(
    session: Session,
    order: ImagingOrderRecord,
    report: ReadingReport,
    version: ReadingReportVersion,
) -> bytes:
    """The version's PDF as a DICOM Part 10 file in the order's study."""
    ds = Dataset()
    study = imaging.study_by_uid(session, order.study_instance_uid)
    if study is not None:
        ds.PatientID = study.dicom_patient_id
        ds.IssuerOfPatientID = study.issuer_of_patient_id or ""
        ds.PatientName = study.patient_name
        ds.PatientBirthDate = (
            study.patient_birth_date.strftime("%Y%m%d") if study.patient_birth_date else ""
        )
        ds.PatientSex = study.patient_sex or ""
        ds.StudyDate = study.study_date.strftime("%Y%m%d") if study.study_date else ""
        ds.StudyTime = study.study_time.strftime("%H%M%S") if study.study_time else ""
        ds.StudyID = study.study_id or ""
    else:
        patient = patients.get_patient(session, order.patient_id)
        ids = [i.value for i in patient.identifiers if i.site_id == order.site_id]
        ds.PatientID = ids[0] if ids else ""
        ds.IssuerOfPatientID = order.issuer_of_patient_id
        ds.PatientName = f"{patient.family_name}^{patient.given_name}"
        ds.PatientBirthDate = patient.birth_date.strftime("%Y%m%d") if patient.birth_date else ""
        ds.PatientSex = patient.sex if patient.sex in ("M", "F", "O") else ""
        ds.StudyDate = ds.StudyTime = ds.StudyID = ""
    site = session.get(Site, order.site_id)
    signed = version.signed_at.astimezone(site_zone(site) if site else ZoneInfo("Europe/Paris"))
    ds.SOPClassUID = ENCAPSULATED_PDF
    ds.SOPInstanceUID = version.sop_instance_uid
    ds.StudyInstanceUID = order.study_instance_uid
    ds.SeriesInstanceUID = series_uid(order, report)
    ds.Modality = "DOC"
    ds.SeriesNumber = SERIES_NUMBER
    ds.InstanceNumber = version.version
    ds.AccessionNumber = order.accession_number
    ds.ReferringPhysicianName = order.referring_physician_name
    ds.SeriesDescription = "Compte rendu"
    ds.ContentDate = signed.strftime("%Y%m%d")
    ds.ContentTime = signed.strftime("%H%M%S")
    ds.AcquisitionDateTime = signed.strftime("%Y%m%d%H%M%S")
    ds.Manufacturer = "Concilium"
    ds.ConversionType = "WSD"
    ds.BurnedInAnnotation = "YES"
    ds.DocumentTitle = f"Compte rendu {order.accession_number} v{version.version}"
    concept = Dataset()
    concept.CodeValue = "18748-4"
    concept.CodingSchemeDesignator = "LN"
    concept.CodeMeaning = "Diagnostic imaging study"
    ds.ConceptNameCodeSequence = [concept]
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    content = version.pdf
    ds.EncapsulatedDocumentLength = len(content)
    ds.EncapsulatedDocument = content + (b"\0" if len(content) % 2 else b"")
    ds.SpecificCharacterSet = "ISO_IR 192"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(ENCAPSULATED_PDF)
    meta.MediaStorageSOPInstanceUID = UID(version.sop_instance_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    out = io.BytesIO()
    dcmwrite(out, ds, enforce_file_format=True)
    return out.getvalue()


def archive_version(
    archive: imaging.Archive, sessions: sessionmaker[Session], version_id: int, now: datetime
) -> bool:
    """Store a signed version into the archive as an Encapsulated PDF, on behalf of its
    signer acting for the ordering site; whether the archive took it."""
    with transaction(sessions) as db:
        version = db.get(ReadingReportVersion, version_id)
        report = db.get(ReadingReport, version.report_id) if version else None
        order = db.get(ImagingOrderRecord, report.order_id) if report else None
        if version is None or report is None or order is None or not order.study_instance_uid:
            return False
        if version.archived_at is not None:
            return True
        part10 = encapsulated_pdf(db, order, report, version)
        signer = db.get(User, version.signed_by_id)
        username = signer.username if signer is not None else "system"
        site_id = order.site_id
    # The report is the ordering site's own result, written for it by the reader the
    # routing admitted: it is stored as a radiologist of that site would store it.
    sender = imaging.Sender(
        principal=Principal(version.signed_by_id, username, {site_id: frozenset({"radiologist"})}),
        actor=audit.Actor(version.signed_by_id, username, site_id=site_id),
        site_id=site_id,
    )
    try:
        imaging.ingest_instance(archive, sender, [part10])
    except Exception as error:  # kept for archive_pending; no patient data logged
        log.error("report not archived (version %s): %s", version_id, type(error).__name__)
        return False
    with transaction(sessions) as db:
        stored = db.get(ReadingReportVersion, version_id)
        if stored is not None:
            stored.archived_at = now
    return True


def archive_pending(
    archive: imaging.Archive, sessions: sessionmaker[Session], now: datetime
) -> int:
    """Try again the signed versions the archive has not taken yet; how many it took."""
    with sessions() as db:
        waiting = db.scalars(
            select(ReadingReportVersion.id).where(ReadingReportVersion.archived_at.is_(None))
        ).all()
    return sum(archive_version(archive, sessions, vid, now) for vid in waiting)
