"""Imaging orders stored from ORM^O01 and OMI^O23 (IHE RAD-4 "Procedure Scheduled",
RAD-13 "Procedure Update").

An order is one accession number of a site. A new order (NW) creates it with its steps; a
change (XO, SC) rewrites what the message says and adds the steps it brings (creating the
order when the site placed it before its interface was connected); a cancel (CA)
or a discontinue (DC) ends it and its steps that were not performed; XO or SC with ORC-5
``CM`` completes it. The order's status drives its steps' status (``order_status``).
A new order is routed to its reading group (``assignments.route_order``) in the same
transaction.

An order belongs to one patient for good: a message whose patient is not the order's
(after following merges) is refused, never applied to another patient's order.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.platform import audit
from concilium.platform.db import utcnow
from concilium.platform.tables import Patient as PlatformPatient
from concilium.reading import versions
from concilium.reading.assignments import route_order
from concilium.reading.hl7v2_datatypes import CodedElement, Practitioner
from concilium.reading.hl7v2_errors import ErrorCode, ErrorLocation, HL7Error
from concilium.reading.orders import (
    ImagingOrder,
    OrderAction,
    OrderMessage,
    OrderStatus,
    ScheduledProcedureStep,
)
from concilium.reading.tables import ImagingOrderRecord, ScheduledStepRecord, StationRule

__all__ = ["person_name", "station_for", "store_orders"]

_FINAL = frozenset({OrderStatus.COMPLETED, OrderStatus.CANCELLED, OrderStatus.DISCONTINUED})
"""States a step never leaves because of a later order message."""


def person_name(practitioner: Practitioner | None) -> str:
    """A practitioner as a DICOM person name: ``family^given^middle^prefix^suffix``."""
    if practitioner is None:
        return ""
    parts = [
        practitioner.family,
        practitioner.given,
        practitioner.middle,
        practitioner.prefix,
        practitioner.suffix,
    ]
    return "^".join(parts).rstrip("^")[:200]


def station_for(session: Session, site_id: int, modality: str, procedure_code: str) -> str:
    """The station AE title the site's rules give a step that names none ("" if none
    applies): a rule with the procedure code first, then one with the modality, then one
    for any."""
    rules = session.execute(select(StationRule).where(StationRule.site_id == site_id)).scalars()
    best: tuple[int, str] | None = None
    for rule in rules:
        if rule.procedure_code and rule.procedure_code != procedure_code:
            continue
        if rule.modality and rule.modality != modality:
            continue
        rank = (2 if rule.procedure_code else 0) + (1 if rule.modality else 0)
        if best is None or rank > best[0]:
            best = (rank, rule.station_ae_title)
    return best[1] if best else ""


def store_orders(
    session: Session,
    site_id: int,
    patient: PlatformPatient,
    message: OrderMessage,
    resolve_patient: Callable[[int], int],
    now: datetime | None = None,
) -> list[ImagingOrderRecord]:
    """Create or update the orders of a message for ``patient`` at the site.

    ``resolve_patient`` gives the surviving patient of a stored order's patient id, to
    compare with ``patient``. Raises :class:`HL7Error` (the caller rolls back) on an order
    of another patient, an update of an unknown order, or a field too long to keep.
    """
    stored: list[ImagingOrderRecord] = []
    issuer = ""
    for identifier in message.patient.identifiers:
        if identifier.assigning_authority:
            issuer = str(identifier.assigning_authority)[:64]
            break
    for index, order in enumerate(message.orders, start=1):
        by_accession: dict[str, list[ScheduledProcedureStep]] = {}
        for step in order.steps:
            by_accession.setdefault(step.accession_number, []).append(step)
        for accession, steps in by_accession.items():
            stored.append(
                _store(
                    session,
                    site_id,
                    patient,
                    issuer,
                    order,
                    accession,
                    steps,
                    index,
                    resolve_patient,
                    now or utcnow(),
                )
            )
    return stored


def _too_long(value: str, size: int, what: str, location: ErrorLocation) -> str:
    if len(value) > size:
        raise HL7Error(
            ErrorCode.DATA_TYPE_ERROR, f"{what} is longer than {size} characters", location
        )
    return value


def _store(
    session: Session,
    site_id: int,
    patient: PlatformPatient,
    issuer: str,
    order: ImagingOrder,
    accession: str,
    steps: list[ScheduledProcedureStep],
    sequence: int,
    resolve_patient: Callable[[int], int],
    now: datetime,
) -> ImagingOrderRecord:
    orc = ErrorLocation("ORC", sequence)
    _too_long(accession, 16, "the accession number", ErrorLocation("OBR", sequence, 18))
    record = session.execute(
        select(ImagingOrderRecord).where(
            ImagingOrderRecord.site_id == site_id,
            ImagingOrderRecord.accession_number == accession,
        )
    ).scalar_one_or_none()
    if record is not None and resolve_patient(record.patient_id) != patient.id:
        raise HL7Error(
            ErrorCode.UNKNOWN_KEY_IDENTIFIER,
            "the order with this accession number belongs to another patient; "
            "merge or correct the patient first",
            ErrorLocation("PID", 1, 3),
        )
    if record is not None:
        versions.bump(session, versions.SERVICE_REQUEST, record.id, now)
    else:
        if order.action in (OrderAction.CANCEL, OrderAction.DISCONTINUE):
            raise HL7Error(
                ErrorCode.UNKNOWN_KEY_IDENTIFIER,
                "no order of this site has this accession number",
                ErrorLocation("ORC", sequence, 1),
            )
        record = ImagingOrderRecord(
            site_id=site_id, accession_number=accession, patient_id=patient.id, created_at=now
        )
        session.add(record)
    record.patient_id = patient.id
    record.status = order.status.value
    record.order_control = order.order_control[:2]
    record.updated_at = now
    if order.action not in (OrderAction.CANCEL, OrderAction.DISCONTINUE):
        _describe(record, order, steps, issuer, orc)
    session.flush()
    _store_steps(session, record, order, steps, sequence, now)
    if order.action not in (OrderAction.CANCEL, OrderAction.DISCONTINUE):
        # Each order is routed once, to the group on call at its scheduled start.
        route_order(session, audit.SYSTEM, record, now)
    return record


def uuid_derived_uid() -> str:
    """A new UID derived from a random UUID (PS3.5 B.2): the Study Instance UID of an order
    whose HIS names none, since a worklist item must carry one (PS3.4 K.6, Type 1) and the
    modality then puts it in the images."""
    return f"2.25.{uuid.uuid4().int}"


def _describe(
    record: ImagingOrderRecord,
    order: ImagingOrder,
    steps: list[ScheduledProcedureStep],
    issuer: str,
    orc: ErrorLocation,
) -> None:
    first = steps[0]
    procedure: CodedElement = order.procedure
    record.issuer_of_patient_id = issuer or record.issuer_of_patient_id or ""
    record.requested_procedure_id = first.requested_procedure_id[:16]
    record.procedure_code = procedure.code[:64]
    record.procedure_coding_system = procedure.coding_system[:64]
    record.procedure_description = procedure.text[:200]
    record.study_instance_uid = (
        first.study_instance_uid or record.study_instance_uid or uuid_derived_uid()
    )[:64]
    record.priority = order.priority.value
    record.referring_physician_name = person_name(order.referring_physician)
    record.referring_physician_id = (
        order.referring_physician.id[:64] if order.referring_physician else ""
    )
    record.requesting_physician_name = person_name(order.ordering_provider)
    record.requesting_physician_id = (
        order.ordering_provider.id[:64] if order.ordering_provider else ""
    )
    reason = str(order.reason) if order.reason else ""
    record.reason = reason or order.clinical_information
    starts = [s.scheduled_start for s in steps if s.scheduled_start is not None]
    record.scheduled_at = min(starts) if starts else record.scheduled_at
    placer = order.placer_order_number
    record.placer_order_number = placer.entity_id[:64]
    record.placer_issuer = (placer.namespace_id or placer.universal_id)[:64]
    filler = order.filler_order_number
    if filler is not None:
        record.filler_order_number = filler.entity_id[:64]
        record.filler_issuer = (filler.namespace_id or filler.universal_id)[:64]


def _store_steps(
    session: Session,
    record: ImagingOrderRecord,
    order: ImagingOrder,
    steps: list[ScheduledProcedureStep],
    sequence: int,
    now: datetime,
) -> None:
    status = order.status
    existing = {(s.requested_procedure_id, s.step_id): s for s in record.steps}
    if order.action not in (OrderAction.CANCEL, OrderAction.DISCONTINUE):
        for step in steps:
            location = ErrorLocation("OBR", sequence)
            key = (
                _too_long(step.requested_procedure_id, 16, "the requested procedure ID", location),
                _too_long(step.step_id, 16, "the scheduled procedure step ID", location),
            )
            row = existing.get(key)
            if row is None:
                row = ScheduledStepRecord(
                    order_id=record.id,
                    requested_procedure_id=key[0],
                    step_id=key[1],
                    modality=step.modality[:16],
                    status=OrderStatus.SCHEDULED.value,
                )
                session.add(row)
                record.steps.append(row)
                existing[key] = row
            _describe_step(session, record, row, step, location)
    for row in existing.values():
        current = OrderStatus(row.status)
        # CM completes every step; CA, DC, a new schedule or a hold leave the steps already
        # performed or ended as they are.
        settles = status in _FINAL or status in (OrderStatus.SCHEDULED, OrderStatus.ON_HOLD)
        if status is OrderStatus.COMPLETED or (settles and current not in _FINAL):
            row.status = status.value
        row.updated_at = now
    session.flush()


def _describe_step(
    session: Session,
    record: ImagingOrderRecord,
    row: ScheduledStepRecord,
    step: ScheduledProcedureStep,
    location: ErrorLocation,
) -> None:
    modality = _too_long(step.modality, 16, "the modality", location)
    with session.no_autoflush:
        station = step.station_ae_title or station_for(
            session, record.site_id, modality, record.procedure_code
        )
    row.modality = modality
    row.station_ae_title = _too_long(station.strip(), 16, "the station AE title", location)
    row.station_name = (step.station_name or "")[:16]
    row.location = (step.location or "")[:64]
    row.study_instance_uid = (step.study_instance_uid or record.study_instance_uid)[:64]
    row.start_at = step.scheduled_start or row.start_at
    protocol = step.protocol_codes[0] if step.protocol_codes else None
    row.description = ((protocol.text if protocol else "") or record.procedure_description)[:64]
    row.protocol_code = (protocol.code if protocol else "")[:64]
    row.protocol_coding_system = (protocol.coding_system if protocol else "")[:64]
