"""Imaging orders from the hospital read into plain data, as IHE Radiology Scheduled Workflow
carries them: RAD-4 "Procedure Scheduled" and RAD-13 "Procedure Update" (IHE RAD TF-2).

Two message shapes are read:

- ORM^O01 (HL7 v2.3.1, IHE SWF): each ORC/OBR pair is one scheduled procedure step, with
  the accession number in OBR-18, the requested procedure ID in OBR-19, the scheduled
  procedure step ID in OBR-20, the modality in OBR-24 and the Study Instance UID in the
  IHE segment ZDS-1 (optional here);
- OMI^O23 (HL7 v2.5.1, IHE SWF.b): ORC, TQ1, OBR, then one IPC per scheduled procedure
  step with the accession number (IPC-1), requested procedure ID (IPC-2), Study Instance
  UID (IPC-3), step ID (IPC-4), modality (IPC-5), protocol (IPC-6), station name (IPC-7),
  location (IPC-8) and station AE title (IPC-9).

Timing comes from TQ1-7/TQ1-9 (v2.5), else ORC-7 (TQ: .4 start, .6 priority), else OBR-27;
the station AE title from IPC-9, else ORC-18 (as several RIS send it in ORM). ORC-1 and
ORC-5 give what happens to the order (:func:`order_status`). ORC/OBR pairs of an ORM that
share their order numbers, control and status are one order with several steps.

An ORM whose OBR-19 or OBR-20 is empty (a hospital system placing orders rather than a
RIS filling them) gets the accession number as requested procedure ID and that as step
ID, which is what a modality worklist then shows; OMI, which IHE defines with IPC, must
carry them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from enum import StrEnum

from concilium.reading.adt import PARIS, Patient, Visit, read_patient, read_visit
from concilium.reading.hl7v2 import Message, check_message_type
from concilium.reading.hl7v2_datatypes import (
    CodedElement,
    EntityIdentifier,
    Practitioner,
    read_datetime,
)
from concilium.reading.hl7v2_encoding import Segment
from concilium.reading.hl7v2_errors import ErrorCode, ErrorLocation, HL7Error

ORDER_MESSAGES = {"ORM": frozenset({"O01"}), "OMI": frozenset({"O23"})}
"""Message types and events :func:`read_order_message` reads."""


class OrderAction(StrEnum):
    """What an ORC-1 order control code (table 0119) asks."""

    NEW = "new"
    CHANGE = "change"
    STATUS_CHANGE = "status change"
    CANCEL = "cancel"
    DISCONTINUE = "discontinue"


ORDER_CONTROLS = {
    "NW": OrderAction.NEW,
    "XO": OrderAction.CHANGE,
    "SC": OrderAction.STATUS_CHANGE,
    "CA": OrderAction.CANCEL,
    "OC": OrderAction.CANCEL,
    "DC": OrderAction.DISCONTINUE,
    "OD": OrderAction.DISCONTINUE,
}
"""ORC-1 codes understood, from table 0119."""


class OrderStatus(StrEnum):
    """State of an order after the message."""

    SCHEDULED = "SCHEDULED"
    IN_PROGRESS = "IN_PROGRESS"
    ON_HOLD = "ON_HOLD"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    DISCONTINUED = "DISCONTINUED"


ORDER_STATUSES = {
    "SC": OrderStatus.SCHEDULED,
    "IP": OrderStatus.IN_PROGRESS,
    "A": OrderStatus.IN_PROGRESS,
    "HD": OrderStatus.ON_HOLD,
    "CM": OrderStatus.COMPLETED,
    "CA": OrderStatus.CANCELLED,
    "DC": OrderStatus.DISCONTINUED,
}
"""ORC-5 codes understood, from table 0038."""


class Priority(StrEnum):
    """HL7 table 0027, priority (TQ1-9, ORC-7.6)."""

    STAT = "S"
    ASAP = "A"
    ROUTINE = "R"
    PREOP = "P"
    CALLBACK = "C"
    TIMING_CRITICAL = "T"


def order_status(action: OrderAction, status_code: str) -> OrderStatus | None:
    """The state an order reaches from ORC-1 (as ``action``) and ORC-5; None if ORC-5 is
    not in table 0038.

    NW and SC with no ORC-5 schedule; CA cancels and DC discontinues whatever ORC-5 says;
    otherwise ORC-5 decides, so XO with CM completes and XO with SC is a change of a
    scheduled order.
    """
    if action is OrderAction.CANCEL:
        return OrderStatus.CANCELLED
    if action is OrderAction.DISCONTINUE:
        return OrderStatus.DISCONTINUED
    code = status_code.strip().upper()
    if not code:
        return OrderStatus.SCHEDULED
    return ORDER_STATUSES.get(code)


@dataclass(frozen=True)
class ScheduledProcedureStep:
    """One scheduled procedure step, as a modality worklist item will show it."""

    step_id: str
    """Scheduled Procedure Step ID: IPC-4 or OBR-20."""
    accession_number: str
    """IPC-1 or OBR-18."""
    requested_procedure_id: str
    """IPC-2 or OBR-19."""
    modality: str
    """IPC-5 or OBR-24, a DICOM modality such as ``CT``."""
    study_instance_uid: str | None = None
    """IPC-3 or ZDS-1."""
    scheduled_start: datetime | None = None
    """TQ1-7, ORC-7.4 or OBR-27.4."""
    station_ae_title: str | None = None
    """IPC-9 or ORC-18."""
    station_name: str | None = None
    """IPC-7."""
    location: str | None = None
    """IPC-8."""
    protocol_codes: tuple[CodedElement, ...] = ()
    """IPC-6, or the alternate code of OBR-4 (components 4 to 6)."""


@dataclass(frozen=True)
class ImagingOrder:
    """An imaging order with its scheduled procedure steps."""

    order_control: str
    """ORC-1 as sent."""
    action: OrderAction
    """What ORC-1 asks."""
    status: OrderStatus
    """State of the order after this message."""
    placer_order_number: EntityIdentifier
    """ORC-2 (or OBR-2), the number the hospital gave the order."""
    filler_order_number: EntityIdentifier | None
    """ORC-3 (or OBR-3), the number the department gave it."""
    procedure: CodedElement
    """Requested procedure code: OBR-44, else OBR-4."""
    priority: Priority = Priority.ROUTINE
    """TQ1-9, ORC-7.6 or OBR-27.6; routine when none is sent."""
    ordering_provider: Practitioner | None = None
    """Requesting physician: ORC-12, else OBR-16."""
    referring_physician: Practitioner | None = None
    """PV1-8."""
    reason: CodedElement | None = None
    """Reason for study, OBR-31."""
    clinical_information: str = ""
    """Relevant clinical information, OBR-13."""
    ordered_at: datetime | None = None
    """ORC-9, date/time of the transaction."""
    steps: tuple[ScheduledProcedureStep, ...] = field(default=())
    """One or more scheduled procedure steps."""

    @property
    def transaction(self) -> str:
        """``RAD-4`` for a new order, ``RAD-13`` for any update of one."""
        return "RAD-4" if self.action is OrderAction.NEW else "RAD-13"

    @property
    def accession_number(self) -> str:
        """The accession number of the first step."""
        return self.steps[0].accession_number if self.steps else ""


@dataclass(frozen=True)
class OrderMessage:
    """An ORM^O01 or OMI^O23: the patient and the orders it carries."""

    message_type: str
    """``ORM^O01`` or ``OMI^O23``."""
    patient: Patient
    """PID."""
    visit: Visit | None
    """PV1 when sent."""
    orders: tuple[ImagingOrder, ...]
    """At least one."""


@dataclass
class _Detail:
    obr: Segment
    zds: Segment | None = None
    ipcs: list[Segment] = field(default_factory=list)


@dataclass
class _Group:
    orc: Segment
    tq1: Segment | None = None
    details: list[_Detail] = field(default_factory=list)


def read_order_message(message: Message, *, zone: tzinfo = PARIS) -> OrderMessage:
    """Read an ORM^O01 or OMI^O23; raises :class:`HL7Error` with the location of what is wrong.

    200/201 for another message type or event, 100 for missing or misplaced segments (PID,
    ORC, OBR, and IPC in an OMI), 101 for a missing required field (ORC-1, ORC-2, OBR-4,
    the accession number, the modality, and in an OMI IPC-2 to IPC-4), 102 for a malformed
    date/time, 103 for an ORC-1, ORC-5 or priority outside its table. Date/times without
    an offset are local time in ``zone``.
    """
    check_message_type(message, ORDER_MESSAGES)
    message_type = message.header.message_type
    omi = message_type.code == "OMI"
    patient = read_patient(message.require("PID"), zone=zone)
    pv1 = message.segment("PV1")
    visit = read_visit(pv1, zone=zone) if pv1 else None
    orders = [_order(group, omi, visit, zone) for group in _groups(message, omi)]
    return OrderMessage(
        f"{message_type.code}^{message_type.trigger}", patient, visit, _merged(orders)
    )


def _groups(message: Message, omi: bool) -> list[_Group]:
    groups: list[_Group] = []
    for segment in message.segments[1:]:
        if segment.id == "ORC":
            groups.append(_Group(segment))
            continue
        if segment.id not in ("TQ1", "OBR", "ZDS", "IPC"):
            continue
        if not groups:
            raise _sequence_error(f"{segment.id} before any ORC segment", segment.location())
        group = groups[-1]
        if segment.id == "TQ1":
            if group.tq1 is None and not group.details:
                group.tq1 = segment
        elif segment.id == "OBR":
            group.details.append(_Detail(segment))
        elif not group.details:
            raise _sequence_error(f"{segment.id} before the OBR of its order", segment.location())
        elif segment.id == "ZDS":
            group.details[-1].zds = segment
        else:
            group.details[-1].ipcs.append(segment)
    if not groups:
        raise _sequence_error("the message has no ORC segment", ErrorLocation("ORC"))
    for group in groups:
        if not group.details:
            raise _sequence_error(
                f"the order of ORC segment {group.orc.sequence} has no OBR segment",
                group.orc.location(),
            )
        for detail in group.details:
            if omi and not detail.ipcs:
                raise _sequence_error(
                    f"OBR segment {detail.obr.sequence} has no IPC segment; OMI^O23 carries "
                    "each scheduled procedure step in one",
                    detail.obr.location(),
                )
    return groups


def _order(group: _Group, omi: bool, visit: Visit | None, zone: tzinfo) -> ImagingOrder:
    orc, obr = group.orc, group.details[0].obr
    control = orc.require(1, name="order control").strip().upper()
    action = ORDER_CONTROLS.get(control)
    if action is None:
        raise HL7Error(
            ErrorCode.TABLE_VALUE_NOT_FOUND,
            f"ORC-1 (order control) {control[:4]!r} is not one of {', '.join(ORDER_CONTROLS)}",
            orc.location(1),
        )
    status = order_status(action, orc.get(5))
    if status is None:
        raise HL7Error(
            ErrorCode.TABLE_VALUE_NOT_FOUND,
            f"ORC-5 (order status) {orc.get(5)[:4]!r} is not one of {', '.join(ORDER_STATUSES)}",
            orc.location(5),
        )
    placer = EntityIdentifier.read(orc, 2) or EntityIdentifier.read(obr, 2)
    if placer is None:
        location = orc.location(2)
        raise HL7Error(
            ErrorCode.REQUIRED_FIELD_MISSING,
            f"{location} (placer order number) is required",
            location,
        )
    steps: list[ScheduledProcedureStep] = []
    for detail in group.details:
        if omi:
            steps += [_ipc_step(ipc, group, detail.obr, zone) for ipc in detail.ipcs]
        else:
            steps.append(_obr_step(detail, group, zone))
    return ImagingOrder(
        order_control=control,
        action=action,
        status=status,
        placer_order_number=placer,
        filler_order_number=EntityIdentifier.read(orc, 3) or EntityIdentifier.read(obr, 3),
        procedure=_procedure(obr),
        priority=_priority(group, obr),
        ordering_provider=Practitioner.read(orc, 12) or Practitioner.read(obr, 16),
        referring_physician=visit.referring_doctor if visit else None,
        reason=CodedElement.read(obr, 31),
        clinical_information=obr.get(13),
        ordered_at=read_datetime(orc, 9, zone, name="date/time of transaction"),
        steps=tuple(steps),
    )


def _procedure(obr: Segment) -> CodedElement:
    coded = CodedElement.read(obr, 44)
    if coded is None:
        obr.require(4, name="universal service identifier")
        coded = CodedElement(obr.get(4, 1), obr.get(4, 2), obr.get(4, 3))
    return coded


def _priority(group: _Group, obr: Segment) -> Priority:
    candidates = [(group.orc, 7, 6), (obr, 27, 6)]
    if group.tq1 is not None:
        candidates.insert(0, (group.tq1, 9, 1))
    for segment, position, component in candidates:
        code = segment.get(position, component).strip().upper()
        if not code:
            continue
        try:
            return Priority(code)
        except ValueError:
            location = segment.location(position, component if component > 1 else None)
            raise HL7Error(
                ErrorCode.TABLE_VALUE_NOT_FOUND,
                f"{location} (priority) is not a value of table 0027 (S, A, R, P, C, T)",
                location,
            ) from None
    return Priority.ROUTINE


def _scheduled_start(group: _Group, obr: Segment, zone: tzinfo) -> datetime | None:
    if group.tq1 is not None:
        start = read_datetime(group.tq1, 7, zone, name="start date/time")
        if start is not None:
            return start
    return (
        read_datetime(group.orc, 7, zone, 4, name="quantity/timing start date/time")
        or read_datetime(obr, 27, zone, 4, name="quantity/timing start date/time")
        or read_datetime(obr, 36, zone, name="scheduled date/time")
    )


def _obr_step(detail: _Detail, group: _Group, zone: tzinfo) -> ScheduledProcedureStep:
    obr = detail.obr
    accession = obr.require(18, name="accession number").strip()
    requested = obr.get(19).strip() or accession
    protocol = CodedElement.read(obr, 4, first_component=4)
    return ScheduledProcedureStep(
        step_id=obr.get(20).strip() or requested,
        accession_number=accession,
        requested_procedure_id=requested,
        modality=obr.require(24, name="modality (diagnostic service section ID)").strip(),
        study_instance_uid=(detail.zds.get(1).strip() or None) if detail.zds else None,
        scheduled_start=_scheduled_start(group, obr, zone),
        station_ae_title=group.orc.get(18).strip() or None,
        protocol_codes=(protocol,) if protocol else (),
    )


def _ipc_step(ipc: Segment, group: _Group, obr: Segment, zone: tzinfo) -> ScheduledProcedureStep:
    protocols = (CodedElement.read(ipc, 6, r) for r in range(1, ipc.repetitions(6) + 1))
    return ScheduledProcedureStep(
        step_id=ipc.require(4, name="scheduled procedure step ID").strip(),
        accession_number=ipc.require(1, name="accession identifier").strip(),
        requested_procedure_id=ipc.require(2, name="requested procedure ID").strip(),
        modality=ipc.require(5, name="modality").strip(),
        study_instance_uid=ipc.require(3, name="study instance UID").strip(),
        scheduled_start=_scheduled_start(group, obr, zone),
        station_ae_title=ipc.get(9).strip() or group.orc.get(18).strip() or None,
        station_name=ipc.get(7).strip() or None,
        location=ipc.get(8).strip() or None,
        protocol_codes=tuple(code for code in protocols if code is not None),
    )


def _merged(orders: list[ImagingOrder]) -> tuple[ImagingOrder, ...]:
    """Join the ORC/OBR pairs of one order (IHE sends one pair per step) into one order."""
    merged: dict[tuple[object, ...], ImagingOrder] = {}
    for order in orders:
        filler = order.filler_order_number
        key = (
            order.order_control,
            order.status,
            order.placer_order_number.entity_id,
            order.placer_order_number.namespace_id,
            filler.entity_id if filler else None,
            filler.namespace_id if filler else None,
        )
        if key in merged:
            merged[key] = replace(merged[key], steps=merged[key].steps + order.steps)
        else:
            merged[key] = order
    return tuple(merged.values())


def _sequence_error(text: str, location: ErrorLocation) -> HL7Error:
    return HL7Error(ErrorCode.SEGMENT_SEQUENCE_ERROR, text, location)
