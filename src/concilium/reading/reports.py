"""The report of an exam: draft, preliminary, final, then addenda only.

The radiologist holding the exam (``reading_assignments.claimed_by_id``) writes the
report in its template's sections (:mod:`concilium.reading.report_templates`) and saves it
at any time (``draft``). Signing, with the second factor confirmed by the caller, makes a
version: a preliminary one (result status P) from a draft, a final one (F) from a draft
or a preliminary report. The final version ends the writing: the report never changes
again, the routed readers' grant ends (:func:`concilium.reading.reading_list.exam_target`)
and a correction is an addendum (C), a new version signed the same way by a radiologist
the policy lets read the exam. Each version is kept with its PDF and a SHA-256 digest of
its content chained to the previous version's, so a changed row shows.

:func:`report_for_results` gives a signed version as the :class:`~concilium.reading.oru.
ImagingReport` the ORU^R01 builder takes; the signing request queues it for the ordering
site's hospital system in the signature's own transaction
(``concilium.reading.results.queue_report``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydicom.uid import generate_uid
from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.platform import audit
from concilium.platform.errors import Conflict, InvalidInput, NotFound
from concilium.platform.i18n import _
from concilium.platform.tables import Patient, User
from concilium.reading import oru
from concilium.reading.adt import Patient as HL7Patient
from concilium.reading.adt import Sex
from concilium.reading.hl7v2_datatypes import (
    CodedElement,
    EntityIdentifier,
    HierarchicDesignator,
    PersonIdentifier,
    PersonName,
    Practitioner,
)
from concilium.reading.report_templates import template_for
from concilium.reading.tables import (
    ImagingOrderRecord,
    ReadingAssignment,
    ReadingReport,
    ReadingReportVersion,
)

__all__ = [
    "DRAFT",
    "FINAL",
    "MAX_TEXT",
    "PRELIMINARY",
    "REPORT_KIND",
    "NotHolder",
    "add_addendum",
    "check_signable",
    "intact",
    "open_report",
    "prior_reports",
    "report_for_results",
    "report_of",
    "require_holder",
    "save_draft",
    "sign",
    "versions_of",
]

DRAFT, PRELIMINARY, FINAL = "draft", "preliminary", "final"
"""States of a report."""
MAX_TEXT = 20_000
"""Characters at most in a section or an addendum."""
REPORT_KIND = "reading_report"
"""Audit object kind of a report."""

PdfMaker = Callable[[Session, ImagingOrderRecord, ReadingReportVersion], bytes]
"""Writes a signed version's PDF (:func:`concilium.reading.report_pdf.render`)."""

_HEADINGS = {
    c.code: c
    for c in (
        oru.INDICATIONS,
        oru.PROCEDURE,
        oru.HISTORY,
        oru.FINDINGS,
        oru.IMPRESSIONS,
        oru.RECOMMENDATIONS,
        oru.CONCLUSIONS,
        oru.ADDENDUM,
    )
}


class NotHolder(Conflict):
    """The caller does not hold the exam (another reader does, or nobody)."""


def report_of(session: Session, order_id: int) -> ReadingReport | None:
    return session.execute(
        select(ReadingReport).where(ReadingReport.order_id == order_id)
    ).scalar_one_or_none()


def versions_of(session: Session, report: ReadingReport) -> list[ReadingReportVersion]:
    """The signed versions, oldest first."""
    return list(
        session.scalars(
            select(ReadingReportVersion)
            .where(ReadingReportVersion.report_id == report.id)
            .order_by(ReadingReportVersion.version)
        )
    )


def open_report(session: Session, order: ImagingOrderRecord, now: datetime) -> ReadingReport:
    """The order's report, made empty from its template the first time."""
    report = report_of(session, order.id)
    if report is not None:
        return report
    template = template_for(session, order)
    report = ReadingReport(
        order_id=order.id,
        status=DRAFT,
        template=template.name,
        sections=[{**s.as_row(), "text": ""} for s in template.sections],
        created_at=now,
        updated_at=now,
    )
    session.add(report)
    session.flush()
    return report


def require_holder(assignment: ReadingAssignment | None, user_id: int | None) -> None:
    """Only the radiologist holding the exam writes and signs its report."""
    if assignment is None or user_id is None or assignment.claimed_by_id != user_id:
        raise NotHolder(
            _("Claim the exam first: only the radiologist reading it writes its report.")
        )


def _audit(
    session: Session,
    actor: audit.Actor,
    order: ImagingOrderRecord,
    report: ReadingReport,
    action: str,
    detail: dict[str, Any] | None = None,
) -> None:
    audit.record(
        session,
        actor,
        action,
        "success",
        object_kind=REPORT_KIND,
        object_id=report.id,
        patient_id=order.patient_id,
        site_id=order.site_id,
        detail=detail,
    )


def save_draft(
    session: Session,
    actor: audit.Actor,
    order: ImagingOrderRecord,
    report: ReadingReport,
    texts: dict[str, str],
    now: datetime,
) -> None:
    """Keep the sections as typed (the report's own keys only); refused once final."""
    if report.status == FINAL:
        raise Conflict(_("The report is final: add an addendum instead."))
    if any(len(text) > MAX_TEXT for text in texts.values()):
        raise InvalidInput(_("Each section is at most %(n)d characters.") % {"n": MAX_TEXT})
    report.sections = [
        {**section, "text": texts.get(str(section["key"]), str(section.get("text", "")))}
        for section in report.sections
    ]
    report.author_id = actor.user_id
    report.updated_at = now
    session.flush()
    _audit(session, actor, order, report, "reading.report.save", {"status": report.status})


def _digest(row: ReadingReportVersion, order_id: int, previous: str) -> str:
    content = {
        "report": row.report_id,
        "order": order_id,
        "version": row.version,
        "status": row.status,
        "sections": [
            {"key": s["key"], "code": s.get("code", ""), "text": s.get("text", "")}
            for s in row.sections
        ],
        "addendum": row.addendum,
        "signed_by": row.signed_by_id,
        "signed_at": row.signed_at.astimezone(UTC).isoformat(),
        "sop_instance_uid": row.sop_instance_uid,
        "previous": previous,
    }
    if row.finding_level:  # only when flagged: the versions signed before keep their digest
        content["finding"] = {"level": row.finding_level, "text": row.finding_text}
    text = json.dumps(content, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _new_version(
    session: Session,
    order: ImagingOrderRecord,
    report: ReadingReport,
    status: str,
    sections: list[Any],
    addendum: str,
    signer: int,
    now: datetime,
    make_pdf: PdfMaker,
    finding: tuple[str, str] = ("", ""),
) -> ReadingReportVersion:
    earlier = versions_of(session, report)
    row = ReadingReportVersion(
        report_id=report.id,
        version=(earlier[-1].version + 1) if earlier else 1,
        status=status,
        sections=[dict(s) for s in sections],
        addendum=addendum,
        signed_by_id=signer,
        signed_at=now,
        sop_instance_uid=generate_uid(),
        finding_level=finding[0],
        finding_text=finding[1],
    )
    row.digest = _digest(row, order.id, earlier[-1].digest if earlier else "")
    row.pdf = make_pdf(session, order, row)
    session.add(row)
    session.flush()
    return row


def check_signable(report: ReadingReport, level: str) -> None:
    """Refuse a signature the report's state or text does not allow, saying why."""
    if level not in ("P", "F"):
        raise InvalidInput(_("Sign the report as preliminary or final."))
    if report.status == FINAL:
        raise Conflict(_("The report is final: add an addendum instead."))
    if level == "P" and report.status != DRAFT:
        raise Conflict(_("A preliminary report was already signed: sign the final one."))
    written = [s for s in report.sections if str(s.get("text", "")).strip()]
    impression = [s for s in report.sections if s.get("key") == "impression"]
    if not written or (impression and not str(impression[0].get("text", "")).strip()):
        raise InvalidInput(_("Write the impression before signing."))


def sign(
    session: Session,
    actor: audit.Actor,
    order: ImagingOrderRecord,
    report: ReadingReport,
    level: str,
    now: datetime,
    make_pdf: PdfMaker,
) -> ReadingReportVersion:
    """Sign the report as it stands: ``P`` (preliminary, from a draft) or ``F`` (final).
    The signer's second factor and claim are confirmed by the caller first."""
    check_signable(report, level)
    row = _new_version(
        session,
        order,
        report,
        level,
        report.sections,
        "",
        actor.user_id or 0,
        now,
        make_pdf,
        (report.finding_level, report.finding_text),
    )
    report.status = FINAL if level == "F" else PRELIMINARY
    report.updated_at = now
    session.flush()
    _audit(
        session,
        actor,
        order,
        report,
        "reading.report.sign",
        {"status": level, "version": row.version},
    )
    return row


def add_addendum(
    session: Session,
    actor: audit.Actor,
    order: ImagingOrderRecord,
    report: ReadingReport,
    text: str,
    now: datetime,
    make_pdf: PdfMaker,
) -> ReadingReportVersion:
    """Add a signed addendum (C) to a final report; the versions before it stay."""
    if report.status != FINAL:
        raise Conflict(_("Only a final report takes addenda."))
    if not text.strip():
        raise InvalidInput(_("Write the addendum."))
    if len(text) > MAX_TEXT:
        raise InvalidInput(_("Each section is at most %(n)d characters.") % {"n": MAX_TEXT})
    final = [v for v in versions_of(session, report) if v.status == "F"][-1]
    row = _new_version(
        session,
        order,
        report,
        "C",
        final.sections,
        text.strip(),
        actor.user_id or 0,
        now,
        make_pdf,
        (final.finding_level, final.finding_text),
    )
    _audit(session, actor, order, report, "reading.report.addendum", {"version": row.version})
    return row


def intact(session: Session, report: ReadingReport) -> bool:
    """Whether every version's digest matches its content and the chain before it."""
    previous = ""
    for row in versions_of(session, report):
        if _digest(row, report.order_id, previous) != row.digest:
            return False
        previous = row.digest
    return True


def prior_reports(
    session: Session, order: ImagingOrderRecord
) -> list[tuple[ImagingOrderRecord, ReadingReport, ReadingReportVersion]]:
    """The patient's other exams with a final report, the latest signed first (each with
    its latest version); the caller keeps those the policy lets the reader see."""
    rows = session.execute(
        select(ImagingOrderRecord, ReadingReport, ReadingReportVersion)
        .join(ReadingReport, ReadingReport.order_id == ImagingOrderRecord.id)
        .join(ReadingReportVersion, ReadingReportVersion.report_id == ReadingReport.id)
        .where(
            ImagingOrderRecord.patient_id == order.patient_id,
            ImagingOrderRecord.id != order.id,
            ReadingReport.status == FINAL,
        )
        .order_by(ReadingReportVersion.signed_at.desc(), ReadingReportVersion.id.desc())
    ).all()
    seen: set[int] = set()
    found = []
    for prior, report, version in rows:
        if report.id not in seen:
            seen.add(report.id)
            found.append((prior, report, version))
    return found


def _heading(section: dict[str, Any]) -> CodedElement:
    code = str(section.get("code", ""))
    if code in _HEADINGS:
        return _HEADINGS[code]
    return CodedElement(str(section.get("key", "")), str(section.get("title", "")), "L")


def report_for_results(session: Session, report_id: int, version: int) -> oru.ImagingReport:
    """A signed version as the ORU^R01 builder takes it: the order's identifiers, the
    patient as the ordering site knows them, the sections (with the addenda up to it),
    its result status and its PDF."""
    report = session.get(ReadingReport, report_id)
    order = session.get(ImagingOrderRecord, report.order_id) if report else None
    if report is None or order is None:
        raise NotFound(_("no such report"))
    versions = versions_of(session, report)
    chosen = next((v for v in versions if v.version == version), None)
    if chosen is None:
        raise NotFound(_("no such version of the report"))
    patient = session.get(Patient, order.patient_id)
    if patient is None:  # pragma: no cover - an order always has its patient
        raise NotFound(_("no such patient"))
    issuer = HierarchicDesignator(namespace_id=order.issuer_of_patient_id)
    identifiers = tuple(
        PersonIdentifier(i.value, issuer if order.issuer_of_patient_id else None, "PI")
        for i in patient.identifiers
        if i.site_id == order.site_id
    )
    sex = patient.sex if patient.sex in {s.value for s in Sex} else "U"
    sections = [
        oru.ReportSection(_heading(s), str(s.get("text", "")))
        for s in chosen.sections
        if str(s.get("text", "")).strip()
    ]
    sections += [
        oru.ReportSection(oru.ADDENDUM, v.addendum)
        for v in versions
        if v.status == "C" and v.version <= chosen.version
    ]
    signer = session.get(User, chosen.signed_by_id)
    interpreter = (
        Practitioner(id=signer.rpps or signer.username, family=signer.full_name)
        if signer is not None
        else None
    )
    modality = next((step.modality for step in order.steps if step.modality), "")

    def number(value: str, issuer: str) -> EntityIdentifier | None:
        return EntityIdentifier(value, issuer) if value else None

    return oru.ImagingReport(
        patient=HL7Patient(
            identifiers=identifiers,
            names=(PersonName(patient.family_name, patient.given_name),),
            birth_date=patient.birth_date,
            sex=Sex(sex),
        ),
        accession_number=order.accession_number,
        procedure=CodedElement(
            order.procedure_code, order.procedure_description, order.procedure_coding_system
        ),
        status=oru.ResultStatus(chosen.status),
        observed_at=order.scheduled_at or order.created_at,
        reported_at=chosen.signed_at,
        sections=tuple(sections),
        placer_order_number=number(order.placer_order_number, order.placer_issuer),
        filler_order_number=number(order.filler_order_number, order.filler_issuer),
        requested_procedure_id=order.requested_procedure_id,
        modality=modality,
        study_instance_uid=order.study_instance_uid or None,
        interpreter=interpreter,
        pdf=chosen.pdf,
    )
