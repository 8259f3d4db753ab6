"""The modality worklist served from the database: the scheduled steps of the orders
(`worklist_store.scheduled_steps`) as `WorklistItem`s (PS3.4 K.6), and every answer to a
node recorded in the audit trail.

Steps start at an instant (held in UTC); a modality reads Scheduled Procedure Step Start
Date and Time (0040,0002/0003) as the local time of its site, so each item shows the start
in the zone of its site (``Site.timezone``), across summer time changes. A query's date
range is a range of those local dates: the database is searched on a range of instants
wide enough for any zone (a day either side), and `find_worklist` matches exactly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from concilium.imaging import CallingNode
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.i18n import zone
from concilium.platform.tables import PatientIdentifier, Site
from concilium.reading.orders import OrderStatus
from concilium.reading.worklist import (
    Code,
    StepStatus,
    WorklistFilter,
    WorklistItem,
    WorklistStep,
)
from concilium.reading.worklist_store import ScheduledExam, scheduled_steps

__all__ = ["WORKLIST_QUERY", "DatabaseWorklist", "local_start", "worklist_item"]

WORKLIST_QUERY = "worklist.query"
"""Audit action: a node was shown scheduled steps of patients (one entry per patient, or
one without patient when nothing matched)."""

_STEP_STATUSES = {
    OrderStatus.SCHEDULED: StepStatus.SCHEDULED,
    OrderStatus.IN_PROGRESS: StepStatus.STARTED,
    OrderStatus.COMPLETED: StepStatus.COMPLETED,
    OrderStatus.DISCONTINUED: StepStatus.DISCONTINUED,
}
"""A step's status as Scheduled Procedure Step Status (0040,0020); a step on hold or
cancelled is never shown."""

_SEXES = frozenset({"M", "F", "O"})


def local_start(
    start: dt.datetime | None, where: ZoneInfo
) -> tuple[dt.date | None, dt.time | None]:
    """The start date and time of a step as the site's clocks show them."""
    if start is None:
        return None, None
    local = start.astimezone(where)
    return local.date(), local.time().replace(tzinfo=None)


def _code(value: str, scheme: str, meaning: str) -> tuple[Code, ...]:
    if not value:
        return ()
    # Code Meaning is Type 1: the code itself when the order gave no text.
    return (Code(value[:16], scheme[:16] or "L", (meaning or value)[:64]),)


def worklist_item(exam: ScheduledExam, where: ZoneInfo) -> WorklistItem:
    """The worklist item of a scheduled step, its start in the site's zone ``where``."""
    start_date, start_time = local_start(exam.start, where)
    return WorklistItem(
        patient_name=exam.patient_name,
        patient_id=exam.patient_identifier,
        issuer_of_patient_id=exam.issuer_of_patient_id,
        patient_birth_date=exam.patient_birth_date,
        patient_sex=exam.patient_sex if exam.patient_sex in _SEXES else "",
        accession_number=exam.accession_number,
        requested_procedure_id=exam.requested_procedure_id,
        requested_procedure_description=exam.requested_procedure_description,
        requested_procedure_codes=_code(
            exam.requested_procedure_code,
            exam.requested_procedure_coding_system,
            exam.requested_procedure_description,
        ),
        study_instance_uid=exam.study_instance_uid,
        referring_physician=exam.referring_physician_name,
        requesting_physician=exam.requesting_physician_name,
        priority=exam.priority,
        step=WorklistStep(
            step_id=exam.step_id,
            modality=exam.modality,
            start_date=start_date,
            start_time=start_time,
            station_ae_title=exam.station_ae_title,
            station_name=exam.station_name,
            description=exam.description,
            performing_physician=exam.performing_physician_name,
            location=exam.location,
            status=_STEP_STATUSES.get(exam.status, StepStatus.SCHEDULED),
            protocol_codes=_code(exam.protocol_code, exam.protocol_coding_system, exam.description),
        ),
    )


def _instants(coarse: WorklistFilter) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Bounds of the start instants that can be on the filter's local dates, in any zone
    (offsets stay within a day)."""
    start = end = None
    if coarse.start_from is not None:
        start = dt.datetime.combine(coarse.start_from - dt.timedelta(days=1), dt.time(), dt.UTC)
    if coarse.start_until is not None:
        end = dt.datetime.combine(coarse.start_until + dt.timedelta(days=2), dt.time(), dt.UTC)
    return start, end


def _one(values: tuple[str, ...] | None) -> str | None:
    return values[0] if values is not None and len(values) == 1 else None


def _zones(session: Session, site_ids: Sequence[int]) -> dict[int, ZoneInfo]:
    found: dict[int, ZoneInfo] = {}
    for site_id, name in session.execute(
        select(Site.id, Site.timezone).where(Site.id.in_(list(site_ids)))
    ):
        try:
            found[site_id] = zone(name)
        except (ZoneInfoNotFoundError, ValueError):
            found[site_id] = zone(None)
    return found


class DatabaseWorklist:
    """A `WorklistSource` over the scheduled steps of the database."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def candidates(self, site_ids: Sequence[int], coarse: WorklistFilter) -> Iterable[WorklistItem]:
        """The scheduled and started steps of the sites that ``coarse`` admits."""
        start_from, start_to = _instants(coarse)
        with transaction(self._sessions) as session:
            zones = _zones(session, site_ids)
            exams = scheduled_steps(
                session,
                list(site_ids),
                station_ae=_one(coarse.station_ae_titles),
                modality=_one(coarse.modalities),
                start_from=start_from,
                start_to=start_to,
                accession_numbers=coarse.accession_numbers,
            )
        found: list[WorklistItem] = []
        for exam in exams:
            item = worklist_item(exam, zones.get(exam.site_id) or zone(None))
            if coarse.admits(item.step):
                found.append(item)
        return found

    def disclosed(
        self, caller: CallingNode, site_ids: Sequence[int], items: Sequence[WorklistItem]
    ) -> None:
        """One audit entry per patient shown to the node (its orders), or one saying that
        nothing matched."""
        by_patient: dict[str, set[str]] = {}
        for item in items:
            by_patient.setdefault(item.patient_id, set()).add(item.accession_number)
        site = site_ids[0] if len(site_ids) == 1 else caller.site_id
        with transaction(self._sessions) as session:
            patients = _platform_patients(session, site, list(by_patient))
            if not by_patient:
                audit.record(
                    session,
                    caller.actor,
                    WORKLIST_QUERY,
                    "success",
                    object_kind="imaging_order",
                    site_id=site,
                    detail={"calling_ae": caller.ae_title, "matches": 0},
                )
            for identifier, accessions in sorted(by_patient.items()):
                audit.record(
                    session,
                    caller.actor,
                    WORKLIST_QUERY,
                    "success",
                    object_kind="imaging_order",
                    object_id=",".join(sorted(accessions))[:64],
                    patient_id=patients.get(identifier),
                    site_id=site,
                    detail={
                        "calling_ae": caller.ae_title,
                        "accession_numbers": sorted(accessions),
                    },
                )


def _platform_patients(session: Session, site_id: int, identifiers: list[str]) -> dict[str, int]:
    """Platform patient of each identifier of the site."""
    if not identifiers:
        return {}
    rows = session.execute(
        select(PatientIdentifier.value, PatientIdentifier.patient_id).where(
            PatientIdentifier.site_id == site_id, PatientIdentifier.value.in_(identifiers)
        )
    )
    return {value: patient for value, patient in rows}
