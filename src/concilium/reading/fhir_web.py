"""FHIR R4 REST of the teleradiology service: ``Patient`` (create, read, update) and
``ServiceRequest`` (create, read, update, cancel by ``status: revoked``) under ``/fhir``.

The same effects as the HL7 v2 path (``inbound``): patients through ``patient_sync`` (the
platform's patient functions), orders through ``order_store.store_orders`` (the same
orders, steps, routing and modality worklist). A create with
``If-None-Exist: identifier=<system>|<value>`` that finds its resource answers it and
changes nothing, as a repeated HL7 message does; an update with ``If-Match`` on another
version than the current one is refused (412).

Access: ``imaging_order.place`` at the site the identifier system names. A resource the
caller may not reach is answered 404, as if it did not exist (the refusal is audited);
a create for another site is refused 403 (audited). Every answer naming a patient is
audited with that patient.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Annotated

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from concilium.platform import audit, patients
from concilium.platform.errors import Conflict, Forbidden, NotFound
from concilium.platform.fhir import (
    BusinessRuleViolation,
    InvalidResource,
    Issue,
    expected_version,
)
from concilium.platform.i18n import _
from concilium.platform.policy import Target
from concilium.platform.tables import Patient as PlatformPatient
from concilium.platform.tables import Site
from concilium.reading import fhir_orders, patient_sync, versions
from concilium.reading.actions import ReadingAction
from concilium.reading.adt import Patient
from concilium.reading.hl7v2_datatypes import PersonIdentifier
from concilium.reading.hl7v2_errors import ErrorCode, HL7Error
from concilium.reading.order_store import store_orders
from concilium.reading.orders import OrderMessage, OrderStatus
from concilium.reading.tables import ImagingOrderRecord
from concilium.web.context import Ctx, gate
from concilium.web.fhir import FHIR_BASE, numeric_id, read_body, resource_response

if TYPE_CHECKING:
    from fhir.resources.R4B.patient import Patient as FhirPatient
    from fhir.resources.R4B.servicerequest import ServiceRequest

router = APIRouter(include_in_schema=False)
"""The FHIR interactions (documented by ``GET /fhir/metadata``, not by OpenAPI)."""

PLACE = ReadingAction.ORDER_PLACE
_PATIENT = FHIR_BASE + "/Patient"
_ORDER = FHIR_BASE + "/ServiceRequest"
_ENDED = frozenset({OrderStatus.CANCELLED, OrderStatus.DISCONTINUED, OrderStatus.COMPLETED})


def _patient_model() -> type[FhirPatient]:
    from fhir.resources.R4B.patient import Patient as FhirPatient

    return FhirPatient


def _order_model() -> type[ServiceRequest]:
    from fhir.resources.R4B.servicerequest import ServiceRequest

    return ServiceRequest


def _at_site(site: Site, kind: str, patient_id: int | None = None) -> Target:
    return Target(kind=kind, id=str(site.id), site_ids=frozenset({site.id}), patient_id=patient_id)


def _or_missing(ctx: Ctx, target: Target) -> None:
    """Authorise, answering a refusal as 404: whether the resource exists elsewhere is not
    told (the refusal is audited all the same)."""
    try:
        ctx.authorize(PLACE, target)
    except Forbidden:
        raise NotFound(_("no such resource")) from None


def _same_id(resource_id: str | None, path_id: str) -> None:
    if resource_id != path_id:
        raise InvalidResource(
            _("The resource's id must be the id of its address."),
            [Issue("invalid", _("The resource's id must be the id of its address."), "id")],
        )


def _survivor(ctx: Ctx, patient_id: int) -> PlatformPatient | None:
    patient = ctx.db.get(PlatformPatient, patient_id)
    while patient is not None and patient.merged_into_id is not None:
        patient = ctx.db.get(PlatformPatient, patient.merged_into_id)
    return patient


def _sites(ctx: Ctx, patient: PlatformPatient) -> dict[int, Site]:
    """The sites whose identifiers of the patient the caller is shown: where they place
    orders."""
    mine = ctx.principal.sites_with(PLACE.rule.roles)
    wanted = [i.site_id for i in patient.identifiers if i.site_id in mine]
    return {s.id: s for s in ctx.db.execute(select(Site).where(Site.id.in_(wanted))).scalars()}


def _patient_answer(
    ctx: Ctx, patient: PlatformPatient, status: int = 200, moved: bool = False
) -> Response:
    version = versions.current(ctx.db, versions.PATIENT, patient.id)
    body = fhir_orders.patient_resource(patient, _sites(ctx, patient), version)
    location = f"{_PATIENT}/{patient.id}/_history/{version}" if moved else ""
    return resource_response(body, version=version, status_code=status, location=location)


def _hl7_refusal(error: HL7Error, where: str) -> Exception:
    if error.code in (ErrorCode.DUPLICATE_KEY_IDENTIFIER,):
        return Conflict(error.text)
    return BusinessRuleViolation(error.text, where)


# --- Patient --------------------------------------------------------------------------------


@router.post(_PATIENT)
async def create_patient(request: Request, ctx: Annotated[Ctx, gate(PLACE)]) -> Response:
    """Register a patient of a site under its identifier (IPP); 409 when the site already
    uses it, or the existing patient (200) with ``If-None-Exist``."""
    resource = await read_body(request, _patient_model())
    header = request.headers.get("if-none-exist", "")
    return await to_thread.run_sync(partial(_create_patient, ctx, resource, header))


def _create_patient(ctx: Ctx, resource: FhirPatient, header: str) -> Response:
    site, value = fhir_orders.patient_site(ctx.db, resource)
    ctx.authorize(PLACE, _at_site(site, "patient"))
    wanted = fhir_orders.if_none_exist(header, fhir_orders.ipp_system(site))
    if wanted is not None:
        found = patient_sync.resolve(ctx.db, site.id, wanted)
        if found is not None:
            return _read_patient_answer(ctx, found, site)
    if patient_sync.resolve(ctx.db, site.id, value) is not None:
        raise Conflict(_("This identifier already designates a patient of the site."))
    try:
        patient = patient_sync.patient_for(
            ctx.db,
            ctx.actor,
            site.id,
            fhir_orders.patient_from(resource, value),
            update_known=False,
        )
    except HL7Error as error:
        raise _hl7_refusal(error, "Patient.identifier") from None
    answer = _patient_answer(ctx, patient, 201, moved=True)
    _commit(ctx)
    return answer


def _read_patient_answer(ctx: Ctx, patient: PlatformPatient, site: Site) -> Response:
    audit.record(
        ctx.db,
        ctx.actor,
        "patient.read",
        "success",
        object_kind="patient",
        object_id=patient.id,
        patient_id=patient.id,
        site_id=site.id,
        detail={"channel": "fhir"},
    )
    answer = _patient_answer(ctx, patient)
    ctx.commit()
    return answer


@router.get(_PATIENT + "/{patient_id}")
def read_patient(patient_id: str, ctx: Annotated[Ctx, gate(PLACE)]) -> Response:
    """A patient, with their identifiers at the sites where the caller places orders."""
    patient = ctx.db.get(PlatformPatient, numeric_id(patient_id))
    if patient is None:
        raise NotFound(_("no such resource"))
    target = patients.patient_target(ctx.db, patient, ctx.now)
    _or_missing(ctx, target)
    sites = _sites(ctx, patient)
    site = next(iter(sites.values()), None)
    if site is None:
        raise NotFound(_("no such resource"))
    return _read_patient_answer(ctx, patient, site)


@router.put(_PATIENT + "/{patient_id}")
async def update_patient(
    patient_id: str, request: Request, ctx: Annotated[Ctx, gate(PLACE)]
) -> Response:
    """Update a patient's name, birth date and sex as the site knows them (``If-Match``)."""
    resource = await read_body(request, _patient_model())
    if_match = request.headers.get("if-match")
    work = partial(_update_patient, ctx, patient_id, resource, if_match)
    return await to_thread.run_sync(work)


def _update_patient(
    ctx: Ctx, patient_id: str, resource: FhirPatient, if_match: str | None
) -> Response:
    patient = ctx.db.get(PlatformPatient, numeric_id(patient_id))
    if patient is None:
        raise NotFound(_("no such resource"))
    _or_missing(ctx, patients.patient_target(ctx.db, patient, ctx.now))
    _same_id(resource.id, patient_id)
    site, value = fhir_orders.patient_site(ctx.db, resource)
    ctx.authorize(PLACE, _at_site(site, "patient", patient.id))
    found = patient_sync.resolve(ctx.db, site.id, value)
    if found is None or found.id != patient.id:
        raise BusinessRuleViolation(
            _("The identifier is not this patient's at the site (change it over HL7 ADT^A47)."),
            "Patient.identifier",
        )
    expected_version(if_match, versions.current(ctx.db, versions.PATIENT, patient.id))
    try:
        patient_sync.patient_for(
            ctx.db, ctx.actor, site.id, fhir_orders.patient_from(resource, value), update_known=True
        )
    except HL7Error as error:
        raise _hl7_refusal(error, "Patient") from None
    answer = _patient_answer(ctx, patient, moved=True)
    _commit(ctx)
    return answer


# --- ServiceRequest -------------------------------------------------------------------------


def _order_answer(
    ctx: Ctx, record: ImagingOrderRecord, site: Site, status: int = 200, moved: bool = False
) -> Response:
    version = versions.current(ctx.db, versions.SERVICE_REQUEST, record.id)
    body = fhir_orders.service_request_resource(record, site, version)
    location = f"{_ORDER}/{record.id}/_history/{version}" if moved else ""
    return resource_response(body, version=version, status_code=status, location=location)


def _audit_order(ctx: Ctx, action: str, record: ImagingOrderRecord) -> None:
    audit.record(
        ctx.db,
        ctx.actor,
        action,
        "success",
        object_kind="imaging_order",
        object_id=record.id,
        patient_id=record.patient_id,
        site_id=record.site_id,
        detail={"channel": "fhir"},
    )


def _by_accession(ctx: Ctx, site: Site, accession: str) -> ImagingOrderRecord | None:
    return ctx.db.execute(
        select(ImagingOrderRecord).where(
            ImagingOrderRecord.site_id == site.id,
            ImagingOrderRecord.accession_number == accession,
        )
    ).scalar_one_or_none()


def _commit(ctx: Ctx) -> None:
    """Commit; a concurrent create of the same identifier is a conflict, never a 500."""
    try:
        ctx.commit()
    except IntegrityError:
        ctx.db.rollback()
        raise Conflict(_("The resource was created meanwhile; read it and try again.")) from None


def _store(
    ctx: Ctx, site: Site, patient: PlatformPatient, resource: ServiceRequest, accession: str
) -> ImagingOrderRecord:
    identifier = next(i.value for i in patient.identifiers if i.site_id == site.id)
    creating = _by_accession(ctx, site, accession) is None
    order = fhir_orders.order_from(resource, accession, creating=creating)
    message = OrderMessage(
        "FHIR ServiceRequest",
        Patient(identifiers=(PersonIdentifier(identifier, identifier_type="PI"),)),
        None,
        (order,),
    )

    def survivor_of(patient_id: int) -> int:
        found = _survivor(ctx, patient_id)
        return found.id if found is not None else patient_id

    try:
        [record] = store_orders(ctx.db, site.id, patient, message, survivor_of, ctx.now)
    except HL7Error as error:
        raise _hl7_refusal(error, "ServiceRequest") from None
    except IntegrityError:
        # The same accession number placed at the same instant by another request.
        ctx.db.rollback()
        raise Conflict(_("The resource was created meanwhile; read it and try again.")) from None
    return record


def _subject(ctx: Ctx, resource: ServiceRequest, site: Site) -> PlatformPatient:
    patient = _survivor(ctx, fhir_orders.subject_id(resource))
    if patient is None or not any(i.site_id == site.id for i in patient.identifiers):
        raise BusinessRuleViolation(
            _("The subject is not a patient of the ordering site."), "ServiceRequest.subject"
        )
    return patient


@router.post(_ORDER)
async def create_order(request: Request, ctx: Annotated[Ctx, gate(PLACE)]) -> Response:
    """Place an order (HL7 ORC NW): its scheduled step enters the modality worklist and it
    is routed for reading; 409 when the site already has the accession number, or the
    existing order (200) with ``If-None-Exist``."""
    resource = await read_body(request, _order_model())
    header = request.headers.get("if-none-exist", "")
    return await to_thread.run_sync(partial(_create_order, ctx, resource, header))


def _create_order(ctx: Ctx, resource: ServiceRequest, header: str) -> Response:
    site, accession = fhir_orders.order_site(ctx.db, resource)
    ctx.authorize(PLACE, _at_site(site, "imaging_order"))
    wanted = fhir_orders.if_none_exist(header, fhir_orders.accession_system(site))
    if wanted is not None:
        found = _by_accession(ctx, site, wanted)
        if found is not None:
            _audit_order(ctx, "imaging_order.read", found)
            answer = _order_answer(ctx, found, site)
            ctx.commit()
            return answer
    if _by_accession(ctx, site, accession) is not None:
        raise Conflict(_("The site already has an order with this accession number."))
    patient = _subject(ctx, resource, site)
    record = _store(ctx, site, patient, resource, accession)
    _audit_order(ctx, "imaging_order.place", record)
    answer = _order_answer(ctx, record, site, 201, moved=True)
    _commit(ctx)
    return answer


def _order(ctx: Ctx, order_id: str) -> tuple[ImagingOrderRecord, Site]:
    record = ctx.db.get(ImagingOrderRecord, numeric_id(order_id))
    site = ctx.db.get(Site, record.site_id) if record is not None else None
    if record is None or site is None:
        raise NotFound(_("no such resource"))
    _or_missing(ctx, _at_site(site, "imaging_order", record.patient_id))
    return record, site


@router.get(_ORDER + "/{order_id}")
def read_order(order_id: str, ctx: Annotated[Ctx, gate(PLACE)]) -> Response:
    """An order of a site where the caller places orders."""
    record, site = _order(ctx, order_id)
    _audit_order(ctx, "imaging_order.read", record)
    answer = _order_answer(ctx, record, site)
    ctx.commit()
    return answer


@router.put(_ORDER + "/{order_id}")
async def update_order(
    order_id: str, request: Request, ctx: Annotated[Ctx, gate(PLACE)]
) -> Response:
    """Change an order (HL7 ORC XO), hold or complete it, or cancel it with ``status:
    revoked`` (ORC CA: its steps leave the worklist); ``If-Match`` checks the version."""
    resource = await read_body(request, _order_model())
    if_match = request.headers.get("if-match")
    return await to_thread.run_sync(partial(_update_order, ctx, order_id, resource, if_match))


def _update_order(
    ctx: Ctx, order_id: str, resource: ServiceRequest, if_match: str | None
) -> Response:
    record, site = _order(ctx, order_id)
    _same_id(resource.id, order_id)
    named_site, accession = fhir_orders.order_site(ctx.db, resource)
    if named_site.id != site.id or accession != record.accession_number:
        raise BusinessRuleViolation(
            _("The accession number of an order cannot change."), "ServiceRequest.identifier"
        )
    expected_version(if_match, versions.current(ctx.db, versions.SERVICE_REQUEST, record.id))
    patient = _subject(ctx, resource, site)
    if patient.id != (_survivor(ctx, record.patient_id) or patient).id:
        raise BusinessRuleViolation(
            _("The order belongs to another patient."), "ServiceRequest.subject"
        )
    current = OrderStatus(record.status)
    if current in _ENDED:
        if resource.status == fhir_orders.service_request_resource(record, site, 1)["status"]:
            return _order_answer(ctx, record, site)  # already so: nothing to change
        raise BusinessRuleViolation(
            _("The order has ended (%(status)s) and can no longer change.")
            % {"status": current.value},
            "ServiceRequest.status",
        )
    record = _store(ctx, site, patient, resource, accession)
    cancelled = OrderStatus(record.status) is OrderStatus.CANCELLED
    _audit_order(ctx, "imaging_order.cancel" if cancelled else "imaging_order.update", record)
    answer = _order_answer(ctx, record, site, moved=True)
    _commit(ctx)
    return answer
