"""Patients and imaging orders as FHIR R4 resources (``Patient``, ``ServiceRequest``), read
into the very values the HL7 v2 path reads (``adt.Patient``, ``orders.ImagingOrder``) so
that both channels keep the same patients and the same orders and steps.

Served with the FHIR R4B (4.3) models of ``fhir.resources``, wire-compatible with R4 for
these two resources. Identifiers are per site, under systems named after the site's FINESS:

- the patient's identifier at the site (its IPP, HL7 PID-3 of type ``PI``):
  ``urn:concilium:ipp:<FINESS>``;
- the accession number (HL7 OBR-18 / IPC-1; identifier type ``ACSN`` of table 0203):
  ``urn:concilium:accession:<FINESS>``, which also names the ordering site;
- the Study Instance UID, when the hospital assigns one (IPC-3): system ``urn:dicom:uid``,
  value ``urn:oid:<uid>`` (as FHIR ImagingStudy writes it).

A ``ServiceRequest`` maps as RAD-4/RAD-13 do: ``code`` is the requested procedure (OBR-44),
``orderDetail`` with a DICOM modality code (system DCM) the modality (OBR-24), ``priority``
routine/urgent/asap/stat the priority (R/A/A/S), ``requester`` the requesting physician
(ORC-12; ``display`` a person name ``family^given``, ``identifier`` the RPPS number), the
extension :data:`REFERRER_EXTENSION` the referring physician (PV1-8, which R4
ServiceRequest has no element for), ``reasonCode`` the reason (OBR-31), ``occurrence`` the
scheduled start. ``status`` drives the order as ORC-1/ORC-5 do: ``active`` schedules,
``on-hold`` holds, ``completed`` completes, ``revoked`` cancels (ORC CA).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.platform.fhir import BusinessRuleViolation, InvalidResource, Issue
from concilium.platform.i18n import _
from concilium.platform.tables import Patient as PlatformPatient
from concilium.platform.tables import Site
from concilium.reading.adt import Patient, Sex
from concilium.reading.hl7v2_datatypes import (
    CodedElement,
    EntityIdentifier,
    PersonIdentifier,
    PersonName,
    Practitioner,
)
from concilium.reading.orders import (
    ImagingOrder,
    OrderAction,
    OrderStatus,
    Priority,
    ScheduledProcedureStep,
)
from concilium.reading.tables import ImagingOrderRecord

if TYPE_CHECKING:
    from fhir.resources.R4B.patient import Patient as FhirPatient
    from fhir.resources.R4B.reference import Reference
    from fhir.resources.R4B.servicerequest import ServiceRequest

__all__ = [
    "REFERRER_EXTENSION",
    "accession_system",
    "ipp_system",
    "order_from",
    "patient_from",
    "patient_resource",
    "service_request_resource",
    "site_of_identifier",
]

IPP = "urn:concilium:ipp:"
ACCESSION = "urn:concilium:accession:"
DICOM_UID = "urn:dicom:uid"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
REFERRER_EXTENSION = "urn:concilium:fhir:extension:referring-physician"
"""Extension (``valueReference``) naming the referring physician of an order."""

CODING_SCHEMES = {
    "http://loinc.org": "LN",
    "http://snomed.info/sct": "SCT",
    DCM: "DCM",
    "http://radlex.org": "RADLEX",
}
"""FHIR code systems and the DICOM coding scheme designators the worklist shows."""
_SYSTEMS = {scheme: system for system, scheme in CODING_SCHEMES.items()}

PRIORITIES = {"routine": Priority.ROUTINE, "urgent": Priority.ASAP, "asap": Priority.ASAP}
PRIORITIES["stat"] = Priority.STAT
_FHIR_PRIORITY = {"S": "stat", "A": "urgent", "T": "urgent", "P": "urgent"}

_GENDERS = {"female": Sex.FEMALE, "male": Sex.MALE, "other": Sex.OTHER, "unknown": Sex.UNKNOWN}
_FHIR_GENDER = {"F": "female", "M": "male", "O": "other", "U": "unknown"}

_STATUS_IN = {
    "active": (OrderAction.STATUS_CHANGE, ""),
    "on-hold": (OrderAction.STATUS_CHANGE, "HD"),
    "completed": (OrderAction.STATUS_CHANGE, "CM"),
    "revoked": (OrderAction.CANCEL, "CA"),
}
"""ServiceRequest.status accepted on update, as ORC-1 and ORC-5 would say it."""
_STATUS_OUT = {
    OrderStatus.SCHEDULED: "active",
    OrderStatus.IN_PROGRESS: "active",
    OrderStatus.ON_HOLD: "on-hold",
    OrderStatus.COMPLETED: "completed",
    OrderStatus.CANCELLED: "revoked",
    OrderStatus.DISCONTINUED: "revoked",
}
_INTENTS = frozenset({"order", "original-order", "filler-order", "instance-order"})
_FINESS = re.compile(r"^\d{9}$")


def ipp_system(site: Site) -> str:
    """The system of the site's patient identifiers (its IPP)."""
    return IPP + site.finess


def accession_system(site: Site) -> str:
    """The system of the site's accession numbers."""
    return ACCESSION + site.finess


def site_of_identifier(session: Session, system: str, prefix: str) -> Site | None:
    """The site whose IPP (or accession, per ``prefix``) system ``system`` is."""
    if not system.startswith(prefix) or not _FINESS.match(system[len(prefix) :]):
        return None
    return session.execute(
        select(Site).where(Site.finess == system[len(prefix) :])
    ).scalar_one_or_none()


def _site_identifier(
    session: Session, identifiers: list[Any] | None, prefix: str, where: str
) -> tuple[Site, str]:
    for index, identifier in enumerate(identifiers or ()):
        if identifier.system and identifier.system.startswith(prefix):
            site = site_of_identifier(session, identifier.system, prefix)
            if site is None:
                raise BusinessRuleViolation(
                    _("No site of this installation uses the identifier system %(system)s.")
                    % {"system": identifier.system[:100]},
                    f"{where}.identifier[{index}].system",
                    "not-found",
                )
            value = (identifier.value or "").strip()
            if not value:
                raise BusinessRuleViolation(
                    _("The identifier has no value."), f"{where}.identifier[{index}].value"
                )
            return site, value
    raise BusinessRuleViolation(
        _("An identifier of system %(system)s<FINESS> is required.") % {"system": prefix},
        f"{where}.identifier",
        "required",
    )


def patient_site(session: Session, resource: FhirPatient) -> tuple[Site, str]:
    """The site a ``Patient`` is given for, and its identifier there."""
    return _site_identifier(session, resource.identifier, IPP, "Patient")


def order_site(session: Session, resource: ServiceRequest) -> tuple[Site, str]:
    """The ordering site of a ``ServiceRequest`` and the accession number."""
    return _site_identifier(session, resource.identifier, ACCESSION, "ServiceRequest")


def patient_from(resource: FhirPatient, identifier: str) -> Patient:
    """The patient as an ADT message would describe them (PID), for the platform."""
    names = resource.name or []
    official = next((n for n in names if n.use == "official"), names[0] if names else None)
    if official is None or not official.family or not official.given:
        raise BusinessRuleViolation(
            _("The patient needs a family name and a given name."), "Patient.name", "required"
        )
    birth = resource.birthDate
    if birth is not None and birth > datetime.now().date():
        raise BusinessRuleViolation(_("The birth date is in the future."), "Patient.birthDate")
    return Patient(
        identifiers=(PersonIdentifier(identifier, identifier_type="PI"),),
        names=(PersonName(official.family, " ".join(g for g in official.given if g)),),
        birth_date=birth,
        sex=_GENDERS.get(resource.gender or "", Sex.UNKNOWN),
    )


def patient_resource(
    patient: PlatformPatient, sites: dict[int, Site], version: int
) -> dict[str, Any]:
    """The platform patient as a ``Patient``, with its identifiers at ``sites`` only."""
    return {
        "resourceType": "Patient",
        "id": str(patient.id),
        "meta": {"versionId": str(version)},
        "identifier": [
            {
                "use": "usual",
                "type": {"coding": [{"system": V2_0203, "code": "PI"}]},
                "system": ipp_system(sites[i.site_id]),
                "value": i.value,
            }
            for i in patient.identifiers
            if i.site_id in sites
        ],
        "name": [{"use": "official", "family": patient.family_name, "given": [patient.given_name]}],
        "gender": _FHIR_GENDER.get(patient.sex, "unknown"),
        **({"birthDate": patient.birth_date.isoformat()} if patient.birth_date else {}),
    }


def subject_id(resource: ServiceRequest) -> int:
    """The platform patient a ``ServiceRequest.subject`` names (``Patient/<id>``)."""
    reference = (resource.subject.reference or "") if resource.subject else ""
    kind, _sep, value = reference.rpartition("/")
    if not kind.endswith("Patient") or not value.isdigit():
        raise BusinessRuleViolation(
            _("The subject must reference a Patient of this server (Patient/<id>)."),
            "ServiceRequest.subject",
        )
    return int(value)


def _practitioner(reference: Reference | None) -> Practitioner | None:
    if reference is None:
        return None
    display = (reference.display or "").strip()
    number = (reference.identifier.value or "") if reference.identifier else ""
    if not display and not number:
        return None
    parts = display.split("^") + [""] * 5
    return Practitioner(
        id=number.strip(),
        family=parts[0],
        given=parts[1],
        middle=parts[2],
        prefix=parts[3],
        suffix=parts[4],
    )


def _coded(concept: Any, where: str) -> CodedElement:
    codings = (concept.coding or []) if concept is not None else []
    coding = next((c for c in codings if c.code), None)
    text = (concept.text or "") if concept is not None else ""
    if coding is None:
        raise BusinessRuleViolation(
            _("The requested procedure needs a code."), f"{where}.coding", "required"
        )
    system = coding.system or ""
    scheme = CODING_SCHEMES.get(system, system)
    if len(scheme) > 64 or len(coding.code) > 64:
        raise BusinessRuleViolation(_("The procedure code or its system is too long."), where)
    return CodedElement(coding.code, coding.display or text, scheme)


def _modality(resource: ServiceRequest) -> str:
    for detail in resource.orderDetail or []:
        for coding in detail.coding or []:
            if coding.system == DCM and coding.code:
                return str(coding.code).strip().upper()
    raise BusinessRuleViolation(
        _("The modality is required: an orderDetail coding of system %(system)s (CT, MR...).")
        % {"system": DCM},
        "ServiceRequest.orderDetail",
        "required",
    )


def _start(resource: ServiceRequest) -> datetime | None:
    start = resource.occurrenceDateTime
    if start is None and resource.occurrencePeriod is not None:
        start = resource.occurrencePeriod.start
    if start is None:
        return None
    if not isinstance(start, datetime) or start.tzinfo is None:
        raise BusinessRuleViolation(
            _("The occurrence needs a date, a time and a time zone offset."),
            "ServiceRequest.occurrence",
        )
    return start


def _study_uid(resource: ServiceRequest) -> str | None:
    for index, identifier in enumerate(resource.identifier or []):
        if identifier.system == DICOM_UID:
            value = (identifier.value or "").removeprefix("urn:oid:")
            if not re.fullmatch(r"[0-9]+(\.[0-9]+)*", value) or len(value) > 64:
                raise BusinessRuleViolation(
                    _("A Study Instance UID is urn:oid: then a DICOM UID."),
                    f"ServiceRequest.identifier[{index}].value",
                )
            return value
    return None


def _placer(resource: ServiceRequest, accession: str) -> EntityIdentifier:
    for identifier in resource.identifier or []:
        codings = identifier.type.coding or [] if identifier.type else []
        if any(c.code == "PLAC" for c in codings) and identifier.value:
            return EntityIdentifier(identifier.value, (identifier.system or "")[:64])
    return EntityIdentifier(accession)


def _referrer(resource: ServiceRequest) -> Practitioner | None:
    for extension in resource.extension or []:
        if extension.url == REFERRER_EXTENSION:
            return _practitioner(extension.valueReference)
    return None


def order_from(resource: ServiceRequest, accession: str, *, creating: bool) -> ImagingOrder:
    """The order a ``ServiceRequest`` places (``creating``) or changes, as ORM/OMI would."""
    if resource.intent not in _INTENTS:
        raise BusinessRuleViolation(
            _("Only orders are accepted (intent order)."), "ServiceRequest.intent"
        )
    status = resource.status
    allowed = ("active",) if creating else tuple(_STATUS_IN)
    if status not in allowed:
        raise BusinessRuleViolation(
            _("The status must be one of: %(statuses)s.") % {"statuses": ", ".join(allowed)},
            "ServiceRequest.status",
            "code-invalid",
        )
    if len(accession) > 16:
        raise BusinessRuleViolation(
            _("An accession number has at most 16 characters."), "ServiceRequest.identifier"
        )
    action, status_code = _STATUS_IN[status]
    action = OrderAction.NEW if creating else action
    priority = PRIORITIES.get(resource.priority or "routine", Priority.ROUTINE)
    reasons = [
        (r.text or next((c.display or c.code for c in r.coding or [] if c.code), "")) or ""
        for r in resource.reasonCode or []
    ]
    step = ScheduledProcedureStep(
        step_id=accession,
        accession_number=accession,
        requested_procedure_id=accession,
        modality=_modality(resource),
        study_instance_uid=_study_uid(resource),
        scheduled_start=_start(resource),
    )
    if len(step.modality) > 16:
        raise BusinessRuleViolation(_("The modality is too long."), "ServiceRequest.orderDetail")
    order_status = {
        "": OrderStatus.SCHEDULED,
        "HD": OrderStatus.ON_HOLD,
        "CM": OrderStatus.COMPLETED,
        "CA": OrderStatus.CANCELLED,
    }[status_code]
    return ImagingOrder(
        order_control="CA" if action is OrderAction.CANCEL else ("NW" if creating else "XO"),
        action=action,
        status=order_status,
        placer_order_number=_placer(resource, accession),
        filler_order_number=None,
        procedure=_coded(resource.code, "ServiceRequest.code"),
        priority=priority,
        ordering_provider=_practitioner(resource.requester),
        referring_physician=_referrer(resource),
        reason=CodedElement("", "; ".join(r for r in reasons if r)) if any(reasons) else None,
        clinical_information="",
        ordered_at=None,
        steps=(step,),
    )


def service_request_resource(
    record: ImagingOrderRecord, site: Site, version: int
) -> dict[str, Any]:
    """The stored order as a ``ServiceRequest``."""
    identifiers: list[dict[str, Any]] = [
        {
            "use": "official",
            "type": {"coding": [{"system": V2_0203, "code": "ACSN"}]},
            "system": accession_system(site),
            "value": record.accession_number,
        }
    ]
    if record.placer_order_number and record.placer_order_number != record.accession_number:
        identifiers.append(
            {
                "type": {"coding": [{"system": V2_0203, "code": "PLAC"}]},
                **({"system": record.placer_issuer} if ":" in record.placer_issuer else {}),
                "value": record.placer_order_number,
            }
        )
    if record.study_instance_uid:
        identifiers.append({"system": DICOM_UID, "value": "urn:oid:" + record.study_instance_uid})
    coding: dict[str, str] = {"code": record.procedure_code or "unknown"}
    system = _SYSTEMS.get(record.procedure_coding_system, record.procedure_coding_system)
    if ":" in system:
        coding["system"] = system
    if record.procedure_description:
        coding["display"] = record.procedure_description
    body: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": str(record.id),
        "meta": {"versionId": str(version), "lastUpdated": record.updated_at.isoformat()},
        "identifier": identifiers,
        "status": _STATUS_OUT.get(OrderStatus(record.status), "active"),
        "intent": "order",
        "priority": _FHIR_PRIORITY.get(record.priority, "routine"),
        "code": {"coding": [coding]},
        "orderDetail": [
            {"coding": [{"system": DCM, "code": s.modality}]} for s in record.steps[:1]
        ],
        "subject": {"reference": f"Patient/{record.patient_id}"},
        "authoredOn": record.created_at.isoformat(),
    }
    if record.scheduled_at is not None:
        body["occurrenceDateTime"] = record.scheduled_at.isoformat()
    if record.requesting_physician_name or record.requesting_physician_id:
        body["requester"] = _reference(
            record.requesting_physician_name, record.requesting_physician_id
        )
    if record.referring_physician_name or record.referring_physician_id:
        body["extension"] = [
            {
                "url": REFERRER_EXTENSION,
                "valueReference": _reference(
                    record.referring_physician_name, record.referring_physician_id
                ),
            }
        ]
    if record.reason:
        body["reasonCode"] = [{"text": record.reason}]
    return body


def _reference(name: str, number: str) -> dict[str, Any]:
    reference: dict[str, Any] = {"type": "Practitioner"}
    if name:
        reference["display"] = name  # DICOM person name, as HL7 XCN gives it
    if number:
        reference["identifier"] = {"value": number}
    return reference


def if_none_exist(header: str, system: str) -> str | None:
    """The identifier value an ``If-None-Exist: identifier=<system>|<value>`` searches
    (None without the header); 400 for another search than on ``system``."""
    if not header.strip():
        return None
    name, _sep, value = header.strip().partition("=")
    wanted_system, bar, identifier = value.partition("|")
    if name != "identifier" or not bar or wanted_system != system or not identifier:
        raise InvalidResource(
            _("If-None-Exist supports identifier=%(system)s|<value> only.") % {"system": system},
            [Issue("not-supported", _("If-None-Exist: identifier=<system>|<value> only."))],
        )
    return identifier
