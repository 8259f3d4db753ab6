"""Tables of the archive's index and of the DICOM nodes it talks to.

The index mirrors the Query/Retrieve Information Model (PS3.4 C.6.1.1): a study holds series,
a series holds instances; patient-level attributes are kept on the study as received, since
each hospital names its patients under its own Patient ID. Every column is one attribute a
C-FIND (PS3.4 C.4.1) or QIDO-RS (PS3.18 10.6) query matches on or returns, or that WADO-RS
and the viewer need to fetch the stored file.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Integer, String, Time, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from concilium.platform.db import Base, UTCDateTime, utcnow

__all__ = [
    "ImagingInstance",
    "ImagingPendingWrite",
    "ImagingSeries",
    "ImagingStudy",
    "ImagingWriter",
    "RemoteApplicationEntity",
]


class ImagingStudy(Base):
    """A study (PS3.4 C.6.1.1.3), owned by the site that sent it."""

    __tablename__ = "imaging_studies"
    id: Mapped[int] = mapped_column(primary_key=True)
    study_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    """Study Instance UID (0020,000D)."""
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    """Site whose node or user sent the study; its owner for the policy."""
    patient_id: Mapped[int | None] = mapped_column(
        ForeignKey("patients.id"), nullable=True, index=True
    )
    """Platform patient whose identifier at ``site_id`` equals the Patient ID, if any."""
    dicom_patient_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    """Patient ID (0010,0020) as received."""
    issuer_of_patient_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """Issuer of Patient ID (0010,0021)."""
    patient_name: Mapped[str] = mapped_column(String(256), default="")
    """Patient's Name (0010,0010) in PN form."""
    patient_name_folded: Mapped[str] = mapped_column(String(256), default="", index=True)
    """The name case-folded, for case-insensitive PN matching on every backend (PS3.4
    C.2.2.2.1); SQLite's LOWER folds ASCII letters only."""
    patient_birth_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    """Patient's Birth Date (0010,0030)."""
    patient_sex: Mapped[str | None] = mapped_column(String(16), nullable=True)
    """Patient's Sex (0010,0040)."""
    study_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True, index=True)
    """Study Date (0008,0020)."""
    study_time: Mapped[dt.time | None] = mapped_column(Time, nullable=True)
    """Study Time (0008,0030)."""
    accession_number: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    """Accession Number (0008,0050)."""
    study_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """Study ID (0020,0010)."""
    study_description: Mapped[str | None] = mapped_column(String(256), nullable=True)
    """Study Description (0008,1030)."""
    referring_physician_name: Mapped[str | None] = mapped_column(String(256), nullable=True)
    """Referring Physician's Name (0008,0090)."""
    referring_physician_name_folded: Mapped[str | None] = mapped_column(String(256), nullable=True)
    """The referring physician's name case-folded, as ``patient_name_folded``."""
    institution_name: Mapped[str | None] = mapped_column(String(256), nullable=True)
    """Institution Name (0008,0080)."""
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    """When the first instance arrived."""
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    """When the last instance arrived or was removed."""
    series: Mapped[list[ImagingSeries]] = relationship(
        back_populates="study", cascade="all, delete-orphan", passive_deletes=True
    )


class ImagingSeries(Base):
    """A series (PS3.4 C.6.1.1.4)."""

    __tablename__ = "imaging_series"
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(
        ForeignKey("imaging_studies.id", ondelete="CASCADE"), index=True
    )
    series_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    """Series Instance UID (0020,000E)."""
    modality: Mapped[str | None] = mapped_column(String(16), nullable=True)
    """Modality (0008,0060)."""
    series_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Series Number (0020,0011)."""
    series_description: Mapped[str | None] = mapped_column(String(256), nullable=True)
    """Series Description (0008,103E)."""
    body_part_examined: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """Body Part Examined (0018,0015)."""
    series_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    """Series Date (0008,0021)."""
    series_time: Mapped[dt.time | None] = mapped_column(Time, nullable=True)
    """Series Time (0008,0031)."""
    performed_procedure_step_start_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    """Performed Procedure Step Start Date (0040,0244)."""
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    study: Mapped[ImagingStudy] = relationship(back_populates="series")
    instances: Mapped[list[ImagingInstance]] = relationship(
        back_populates="series", cascade="all, delete-orphan", passive_deletes=True
    )


class ImagingInstance(Base):
    """A composite object instance (PS3.4 C.6.1.1.5) and where its bytes are stored."""

    __tablename__ = "imaging_instances"
    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(
        ForeignKey("imaging_series.id", ondelete="CASCADE"), index=True
    )
    sop_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    """SOP Instance UID (0008,0018)."""
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    """SOP Class UID (0008,0016)."""
    transfer_syntax_uid: Mapped[str] = mapped_column(String(64))
    """Transfer Syntax UID (0002,0010) the object was received and is stored in."""
    instance_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Instance Number (0020,0013)."""
    rows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Rows (0028,0010)."""
    columns: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Columns (0028,0011)."""
    number_of_frames: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Number of Frames (0028,0008)."""
    bits_allocated: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Bits Allocated (0028,0100)."""
    photometric_interpretation: Mapped[str | None] = mapped_column(String(16), nullable=True)
    """Photometric Interpretation (0028,0004)."""
    content_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    """Content Date (0008,0023)."""
    content_time: Mapped[dt.time | None] = mapped_column(Time, nullable=True)
    """Content Time (0008,0033)."""
    specific_character_set: Mapped[str | None] = mapped_column(String(128), nullable=True)
    """Specific Character Set (0008,0005)."""
    address: Mapped[str] = mapped_column(String(64), index=True)
    """SHA-256 of the stored Part 10 file, its address in the instance store."""
    size: Mapped[int] = mapped_column(BigInteger)
    """Size of the stored file in bytes."""
    source_ae_title: Mapped[str] = mapped_column(String(16), default="")
    """Calling AE title it came from ("" when imported or uploaded)."""
    rejected_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """When the instance was rejected; rejected instances are neither found nor retrieved
    (IHE RAD TF-2 Imaging Object Change Management)."""
    rejection_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    """Code of the rejection reason, from PS3.16 CID 7011 (e.g. 113001, quality)."""
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    series: Mapped[ImagingSeries] = relationship(back_populates="instances")


class RemoteApplicationEntity(Base):
    """A DICOM node of a site (modality, PACS, workstation) known to the archive (PS3.8 7)."""

    __tablename__ = "imaging_remote_aes"
    id: Mapped[int] = mapped_column(primary_key=True)
    ae_title: Mapped[str] = mapped_column(String(16), unique=True)
    """Its AE title; associations are identified by the calling AE title."""
    host: Mapped[str] = mapped_column(String(255))
    """Address the archive connects to for C-MOVE and C-STORE."""
    port: Mapped[int] = mapped_column(Integer)
    """TCP port of its storage SCP."""
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    """Site the node belongs to; it acts for that site."""
    description: Mapped[str] = mapped_column(String(200), default="")
    allow_store: Mapped[bool] = mapped_column(Boolean, default=True)
    """May send instances (C-STORE SCU)."""
    allow_query: Mapped[bool] = mapped_column(Boolean, default=False)
    """May query and retrieve (C-FIND, C-MOVE and C-GET SCU)."""
    allow_move_destination: Mapped[bool] = mapped_column(Boolean, default=False)
    """May be named as the destination of a C-MOVE."""
    tls: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The archive calls it over TLS (PS3.15 Annex B) and verifies its certificate: the
    associations the archive opens itself, such as C-MOVE sub-operations. Its own calls to
    the archive follow the listener's settings, the same for every node."""
    networks: Mapped[str] = mapped_column(String(1000), default="", server_default="")
    """Addresses and networks (CIDR, separated by spaces) it may call the archive from; ""
    for the addresses its ``host`` resolves to. A calling AE title is only a name: an
    association from elsewhere is rejected."""
    certificate: Mapped[str] = mapped_column(String(400), default="", server_default="")
    """Over TLS, the client certificate it must present: its SHA-256 fingerprint (hex) or
    its subject (RFC 4514, ``CN=...``); "" for any certificate of the trusted authority
    that is not registered to another node."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ImagingWriter(Base):
    """A process writing to the store, on any host: it holds a lease it renews while alive.

    Its pending writes (`ImagingPendingWrite`) and its temporary files are its own; only once
    its lease has expired may another process resolve them (`concilium.imaging.writers`).
    """

    __tablename__ = "imaging_writers"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    """Random identity of the writer, also the name of its temporary directory."""
    host: Mapped[str] = mapped_column(String(255))
    """Host name of the process, for administrators."""
    pid: Mapped[int] = mapped_column(Integer)
    """Process id on that host, for administrators."""
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    """When the writer registered."""
    lease_expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    """The writer is alive until then; renewed well before."""


class ImagingPendingWrite(Base):
    """A file a writer is about to put in the store, or to remove from it: recorded before
    the store changes, removed in the transaction that indexes it (or once it is removed)."""

    __tablename__ = "imaging_pending_writes"
    writer_id: Mapped[str] = mapped_column(ForeignKey("imaging_writers.id"), primary_key=True)
    """The writer it belongs to."""
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    """Number of the entry within its writer."""
    address: Mapped[str] = mapped_column(String(64), index=True)
    """Address of the file in the store."""
