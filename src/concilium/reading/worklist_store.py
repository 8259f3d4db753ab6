"""The scheduled procedure steps as a modality worklist reads them (PS3.4 K.6), and the
step status a modality reports through MPPS (PS3.4 F.7).

:func:`scheduled_steps` returns plain values holding every attribute a worklist item
needs: the patient's from the platform (name, the site's identifier, birth date, sex,
following merges), the order's (accession number, requested procedure, Study Instance
UID, referring physician, priority) and the step's (ID, station, modality, start,
description, status, performing physician). The DICOM side matches and encodes them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.platform.db import utcnow
from concilium.platform.errors import NotFound
from concilium.platform.tables import Patient, PatientIdentifier
from concilium.reading import versions
from concilium.reading.orders import OrderStatus
from concilium.reading.tables import ImagingOrderRecord, ScheduledStepRecord

__all__ = [
    "DICOM_PRIORITIES",
    "ScheduledExam",
    "StepKey",
    "scheduled_steps",
    "set_step_status",
]

DICOM_PRIORITIES = {
    "S": "STAT",
    "A": "HIGH",
    "T": "HIGH",
    "P": "HIGH",
    "C": "MEDIUM",
    "R": "ROUTINE",
}
"""HL7 table 0027 priority → Requested Procedure Priority (0040,1003) defined terms."""


@dataclass(frozen=True)
class StepKey:
    """What identifies a step across the system: its site, accession number, requested
    procedure ID and scheduled procedure step ID."""

    site_id: int
    accession_number: str
    requested_procedure_id: str
    step_id: str


@dataclass(frozen=True)
class ScheduledExam:
    """One scheduled procedure step with its order and patient."""

    key: StepKey
    """The step's identity."""
    site_id: int
    patient_id: int
    """Platform patient (the survivor of any merge)."""
    patient_family_name: str
    patient_given_name: str
    patient_identifier: str
    """Patient ID (0010,0020): the site's identifier of the patient."""
    issuer_of_patient_id: str
    """Issuer of Patient ID (0010,0021) as the order named it; may be empty."""
    patient_birth_date: date | None
    patient_sex: str
    """F, M, O or U."""
    accession_number: str
    requested_procedure_id: str
    requested_procedure_description: str
    requested_procedure_code: str
    requested_procedure_coding_system: str
    study_instance_uid: str
    referring_physician_name: str
    """DICOM PN form, ``family^given``."""
    requesting_physician_name: str
    priority: str
    """Requested Procedure Priority: STAT, HIGH, ROUTINE, MEDIUM or LOW."""
    reason: str
    step_id: str
    station_ae_title: str
    station_name: str
    location: str
    modality: str
    start: datetime | None
    """Scheduled Procedure Step Start Date and Time (aware, UTC)."""
    description: str
    protocol_code: str
    protocol_coding_system: str
    performing_physician_name: str
    status: OrderStatus
    order_status: OrderStatus

    @property
    def patient_name(self) -> str:
        """Patient's Name (0010,0010) in PN form."""
        return f"{self.patient_family_name}^{self.patient_given_name}"


def scheduled_steps(
    session: Session,
    site_ids: Collection[int] | None,
    station_ae: str | None = None,
    modality: str | None = None,
    start_from: datetime | None = None,
    start_to: datetime | None = None,
    statuses: Collection[OrderStatus] = (OrderStatus.SCHEDULED, OrderStatus.IN_PROGRESS),
    accession_numbers: Collection[str] | None = None,
) -> list[ScheduledExam]:
    """The steps of the sites (None: every site) in ``statuses``, by start then ID.

    ``station_ae``, ``modality`` and ``accession_numbers`` match exactly;
    ``start_from``/``start_to`` bound the start (inclusive); a step without a start matches
    only an unbounded query.
    """
    query = (
        select(ScheduledStepRecord, ImagingOrderRecord, Patient)
        .join(ImagingOrderRecord, ScheduledStepRecord.order_id == ImagingOrderRecord.id)
        .join(Patient, ImagingOrderRecord.patient_id == Patient.id)
        .where(ScheduledStepRecord.status.in_([s.value for s in statuses]))
        .order_by(ScheduledStepRecord.start_at, ScheduledStepRecord.id)
    )
    if site_ids is not None:
        query = query.where(ImagingOrderRecord.site_id.in_(list(site_ids)))
    if station_ae:
        query = query.where(ScheduledStepRecord.station_ae_title == station_ae)
    if modality:
        query = query.where(ScheduledStepRecord.modality == modality)
    if start_from is not None:
        query = query.where(ScheduledStepRecord.start_at >= start_from)
    if start_to is not None:
        query = query.where(ScheduledStepRecord.start_at <= start_to)
    if accession_numbers is not None:
        query = query.where(ImagingOrderRecord.accession_number.in_(list(accession_numbers)))
    rows = session.execute(query).all()
    identifiers = _identifiers(session, {(o.site_id, p.id) for _s, o, p in rows})
    return [
        _item(step, order, _survivor(session, patient), identifiers)
        for step, order, patient in rows
    ]


def _survivor(session: Session, patient: Patient) -> Patient:
    while patient.merged_into_id is not None:
        found = session.get(Patient, patient.merged_into_id)
        if found is None:  # pragma: no cover - a foreign key keeps it
            break
        patient = found
    return patient


def _identifiers(session: Session, pairs: set[tuple[int, int]]) -> dict[tuple[int, int], str]:
    if not pairs:
        return {}
    found = session.execute(
        select(PatientIdentifier.site_id, PatientIdentifier.patient_id, PatientIdentifier.value)
        .where(PatientIdentifier.site_id.in_({s for s, _p in pairs}))
        .where(PatientIdentifier.patient_id.in_({p for _s, p in pairs}))
    ).all()
    return {(site, patient): value for site, patient, value in found}


def _item(
    step: ScheduledStepRecord,
    order: ImagingOrderRecord,
    patient: Patient,
    identifiers: dict[tuple[int, int], str],
) -> ScheduledExam:
    identifier = identifiers.get((order.site_id, patient.id)) or next(
        (i.value for i in patient.identifiers if i.site_id == order.site_id), ""
    )
    return ScheduledExam(
        key=StepKey(
            order.site_id, order.accession_number, step.requested_procedure_id, step.step_id
        ),
        site_id=order.site_id,
        patient_id=patient.id,
        patient_family_name=patient.family_name,
        patient_given_name=patient.given_name,
        patient_identifier=identifier,
        issuer_of_patient_id=order.issuer_of_patient_id,
        patient_birth_date=patient.birth_date,
        patient_sex=patient.sex,
        accession_number=order.accession_number,
        requested_procedure_id=step.requested_procedure_id,
        requested_procedure_description=order.procedure_description,
        requested_procedure_code=order.procedure_code,
        requested_procedure_coding_system=order.procedure_coding_system,
        study_instance_uid=step.study_instance_uid or order.study_instance_uid,
        referring_physician_name=order.referring_physician_name,
        requesting_physician_name=order.requesting_physician_name,
        priority=DICOM_PRIORITIES.get(order.priority, "ROUTINE"),
        reason=order.reason,
        step_id=step.step_id,
        station_ae_title=step.station_ae_title,
        station_name=step.station_name,
        location=step.location,
        modality=step.modality,
        start=step.start_at,
        description=step.description,
        protocol_code=step.protocol_code,
        protocol_coding_system=step.protocol_coding_system,
        performing_physician_name=step.performing_physician_name,
        status=OrderStatus(step.status),
        order_status=OrderStatus(order.status),
    )


def set_step_status(
    session: Session,
    key: StepKey,
    status: OrderStatus,
    *,
    performing_physician_name: str | None = None,
) -> ScheduledExam:
    """Set a step's status (MPPS: IN PROGRESS, COMPLETED, DISCONTINUED); the order is
    completed when all its steps ended and one was completed, discontinued when all ended
    and none was, and in progress while one is.

    Raises :class:`NotFound` when no step has this key.
    """
    row = session.execute(
        select(ScheduledStepRecord, ImagingOrderRecord)
        .join(ImagingOrderRecord, ScheduledStepRecord.order_id == ImagingOrderRecord.id)
        .where(
            ImagingOrderRecord.site_id == key.site_id,
            ImagingOrderRecord.accession_number == key.accession_number,
            ScheduledStepRecord.requested_procedure_id == key.requested_procedure_id,
            ScheduledStepRecord.step_id == key.step_id,
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"no scheduled procedure step {key.step_id}")
    step, order = row
    now = utcnow()
    step.status = status.value
    step.updated_at = now
    if performing_physician_name is not None:
        step.performing_physician_name = performing_physician_name[:200]
    states = {OrderStatus(s.status) for s in order.steps}
    if states <= {OrderStatus.COMPLETED, OrderStatus.CANCELLED, OrderStatus.DISCONTINUED}:
        if OrderStatus.COMPLETED in states:
            order.status = OrderStatus.COMPLETED.value
        elif OrderStatus.DISCONTINUED in states:
            order.status = OrderStatus.DISCONTINUED.value
    elif OrderStatus.IN_PROGRESS in states and order.status == OrderStatus.SCHEDULED.value:
        order.status = OrderStatus.IN_PROGRESS.value
    order.updated_at = now
    session.flush()
    versions.bump(session, versions.SERVICE_REQUEST, order.id, now)
    patient = _survivor(session, session.get(Patient, order.patient_id) or _missing())
    return _item(step, order, patient, _identifiers(session, {(order.site_id, patient.id)}))


def _missing() -> Patient:  # pragma: no cover - a foreign key keeps the patient
    raise NotFound("patient of the order is missing")
