"""Worklist items placed, changed and cancelled by hand (the JSON API), as Orthanc's worklist
plugin and dcm4chee-arc let a department schedule a modality without an order interface.

An item is a scheduled procedure step (PS3.4 K.6) of an order of its own accession number:
creating one places the order through the same path as an HL7 ORM/OMI or a FHIR
ServiceRequest (``order_store.store_orders``: routing, the modality worklist, versions), so
the modality's C-FIND answers it at once. A change moves its start, station, modality or
description; a cancel ends it (and its order, once none of its steps is left), as ORC CA
does. A step that has ended (completed, cancelled, discontinued) no longer changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from concilium.platform import patients
from concilium.platform.errors import Conflict, InvalidInput, NotFound
from concilium.platform.i18n import _
from concilium.platform.tables import Patient as PlatformPatient
from concilium.reading import versions
from concilium.reading.adt import Patient
from concilium.reading.hl7v2_datatypes import (
    CodedElement,
    EntityIdentifier,
    PersonIdentifier,
    Practitioner,
)
from concilium.reading.hl7v2_errors import HL7Error
from concilium.reading.order_store import store_orders
from concilium.reading.orders import (
    ImagingOrder,
    OrderAction,
    OrderMessage,
    OrderStatus,
    Priority,
    ScheduledProcedureStep,
)
from concilium.reading.tables import ImagingOrderRecord, ScheduledStepRecord

__all__ = ["ItemChange", "NewItem", "cancel_item", "change_item", "create_item"]

ENDED = frozenset({OrderStatus.COMPLETED, OrderStatus.CANCELLED, OrderStatus.DISCONTINUED})


@dataclass(frozen=True)
class NewItem:
    """A worklist item to schedule (the API has checked each value's form)."""

    site_id: int
    patient_id: int
    """The platform patient, known at the site."""
    accession_number: str
    modality: str
    scheduled_at: datetime
    procedure_code: str
    procedure_scheme: str
    procedure_meaning: str
    station_ae_title: str = ""
    """Empty: the site's station rules choose."""
    requested_procedure_id: str = ""
    """Empty: the accession number."""
    step_id: str = ""
    """Empty: the requested procedure ID."""
    priority: Priority = Priority.ROUTINE
    study_instance_uid: str | None = None
    referring_physician: str = ""
    """A DICOM person name, ``family^given``."""
    reason: str = ""


@dataclass(frozen=True)
class ItemChange:
    """What a change sets (None: unchanged)."""

    scheduled_at: datetime | None = None
    station_ae_title: str | None = None
    modality: str | None = None
    description: str | None = None


def _survivor(session: Session, patient_id: int) -> PlatformPatient | None:
    patient = session.get(PlatformPatient, patient_id)
    while patient is not None and patient.merged_into_id is not None:
        patient = session.get(PlatformPatient, patient.merged_into_id)
    return patient


def create_item(session: Session, item: NewItem, now: datetime) -> ScheduledStepRecord:
    """Place the item's order and its one step; 404 for a patient the site does not know,
    409 for an accession number the site already uses."""
    patient = _survivor(session, item.patient_id)
    identifier = next(
        (i.value for i in (patient.identifiers if patient else ()) if i.site_id == item.site_id),
        None,
    )
    if patient is None or identifier is None:
        raise NotFound(_("No patient of this site has this id."))
    taken = session.execute(
        select(ImagingOrderRecord.id).where(
            ImagingOrderRecord.site_id == item.site_id,
            ImagingOrderRecord.accession_number == item.accession_number,
        )
    ).first()
    if taken is not None:
        raise Conflict(_("The site already has an order with this accession number."))
    requested = item.requested_procedure_id or item.accession_number
    family, _sep, given = item.referring_physician.partition("^")
    order = ImagingOrder(
        order_control="NW",
        action=OrderAction.NEW,
        status=OrderStatus.SCHEDULED,
        placer_order_number=EntityIdentifier(item.accession_number),
        filler_order_number=None,
        procedure=CodedElement(item.procedure_code, item.procedure_meaning, item.procedure_scheme),
        priority=item.priority,
        referring_physician=Practitioner(family=family, given=given)
        if item.referring_physician
        else None,
        reason=CodedElement("", item.reason) if item.reason else None,
        steps=(
            ScheduledProcedureStep(
                step_id=item.step_id or requested,
                accession_number=item.accession_number,
                requested_procedure_id=requested,
                modality=item.modality,
                study_instance_uid=item.study_instance_uid,
                scheduled_start=item.scheduled_at,
                station_ae_title=item.station_ae_title or None,
            ),
        ),
    )
    message = OrderMessage(
        "API",
        Patient(identifiers=(PersonIdentifier(identifier, identifier_type="PI"),)),
        None,
        (order,),
    )

    def survivor_of(patient_id: int) -> int:
        found = _survivor(session, patient_id)
        return found.id if found is not None else patient_id

    try:
        [record] = store_orders(session, item.site_id, patient, message, survivor_of, now)
    except HL7Error as error:
        raise InvalidInput(error.text) from None
    except IntegrityError:
        # The same accession number scheduled at the same instant by another request (the
        # caller's transaction is discarded with the error).
        raise Conflict(_("The site already has an order with this accession number.")) from None
    return record.steps[0]


def _open(step: ScheduledStepRecord) -> None:
    if OrderStatus(step.status) in ENDED:
        raise Conflict(
            _("The worklist item has ended (%(status)s) and can no longer change.")
            % {"status": step.status}
        )


def change_item(
    session: Session, step: ScheduledStepRecord, change: ItemChange, now: datetime
) -> None:
    """Move the item (start, station, modality, description)."""
    _open(step)
    order = step.order
    if change.scheduled_at is not None:
        step.start_at = change.scheduled_at
        starts = [s.start_at for s in order.steps if s.start_at is not None]
        order.scheduled_at = min(starts) if starts else change.scheduled_at
    if change.station_ae_title is not None:
        step.station_ae_title = change.station_ae_title
    if change.modality is not None:
        step.modality = change.modality
    if change.description is not None:
        step.description = change.description
    step.updated_at = order.updated_at = now
    session.flush()
    versions.bump(session, versions.SERVICE_REQUEST, order.id, now)


def cancel_item(session: Session, step: ScheduledStepRecord, now: datetime) -> None:
    """Cancel the item; its order is cancelled with its last open step."""
    _open(step)
    order = step.order
    step.status = OrderStatus.CANCELLED.value
    step.updated_at = order.updated_at = now
    states = {OrderStatus(s.status) for s in order.steps}
    if states <= {OrderStatus.CANCELLED, OrderStatus.DISCONTINUED}:
        order.status = OrderStatus.CANCELLED.value
        order.order_control = "CA"
    session.flush()
    versions.bump(session, versions.SERVICE_REQUEST, order.id, now)


def identifier_at(session: Session, patient_id: int, site_id: int) -> str:
    """The patient's identifier at the site ("" when none: merged away meanwhile)."""
    patient = _survivor(session, patient_id) or patients.get_patient(session, patient_id)
    return next((i.value for i in patient.identifiers if i.site_id == site_id), "")
