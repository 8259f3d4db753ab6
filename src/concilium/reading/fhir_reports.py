"""FHIR R4 ``DiagnosticReport`` of a signed report (read, and search by ``based-on`` or
``identifier``) under ``/fhir``, as IHE RAD Results Distribution and the US Core / FR
imaging report profiles describe it.

The report's id is the report's (one per order); the resource is its latest signed
version: status ``preliminary`` (P), ``final`` (F) or ``appended`` (an addendum, C),
category radiology (LOINC LP29684-5 and v2-0074 ``RAD``), code the order's procedure,
subject the ``Patient``, ``basedOn`` the ``ServiceRequest`` (the order), the signer as
``performer`` and ``resultsInterpreter``, the impression as ``conclusion``, the signed PDF
as ``presentedForm``. The images are a contained ``ImagingStudy`` (``imagingStudy``
``#study``): the Study Instance UID, the patient, and the series the archive holds.
A report with no signed version is not a resource yet (404).

Access: ``reading.report.read`` on the exam's report (:func:`reading_list.report_target`:
the site's radiologists, the routed readers while they read, the referring and requesting
physicians once signed). A report the caller may not read is answered 404 as if it did not
exist (the refusal is audited); every answer is audited with its patient.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from concilium import imaging
from concilium.platform import audit
from concilium.platform.errors import Forbidden, NotFound
from concilium.platform.fhir import InvalidResource, Issue
from concilium.platform.i18n import _
from concilium.platform.tables import Site, User
from concilium.reading import reading_list, report_pdf, reports
from concilium.reading.actions import ReadingAction
from concilium.reading.assignments import assignment_of
from concilium.reading.fhir_orders import (
    ACCESSION,
    CODING_SCHEMES,
    DICOM_UID,
    site_of_identifier,
)
from concilium.reading.tables import ImagingOrderRecord, ReadingReport
from concilium.web.context import Ctx, gate
from concilium.web.fhir import FHIR_BASE, FhirResponse, numeric_id, resource_response

__all__ = ["diagnostic_report", "router"]

router = APIRouter(include_in_schema=False)
"""The ``DiagnosticReport`` interactions (documented by ``GET /fhir/metadata``)."""

READ = ReadingAction.REPORT_READ
AUDIT_READ = "reading.report.read"
_REPORT = FHIR_BASE + "/DiagnosticReport"
LATEST = 100
"""Reports a search considers at most (without criteria: the latest ones)."""
_STATUS = {"P": "preliminary", "F": "final", "C": "appended"}
_SYSTEMS = {scheme: system for system, scheme in CODING_SCHEMES.items()}
RAD_CATEGORY = {
    "coding": [
        {"system": "http://loinc.org", "code": "LP29684-5", "display": "Radiology"},
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"},
    ]
}
"""``DiagnosticReport.category`` of an imaging report."""


def _practitioner(user: User | None) -> dict[str, Any]:
    if user is None:
        return {"type": "Practitioner", "display": "?"}
    reference: dict[str, Any] = {"type": "Practitioner", "display": user.full_name}
    if user.rpps:
        reference["identifier"] = {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": user.rpps}
    return reference


def _code(order: ImagingOrderRecord) -> dict[str, Any]:
    coding: dict[str, str] = {"code": order.procedure_code or "unknown"}
    system = _SYSTEMS.get(order.procedure_coding_system, order.procedure_coding_system)
    if ":" in system:
        coding["system"] = system
    if order.procedure_description:
        coding["display"] = order.procedure_description
    body: dict[str, Any] = {"coding": [coding]}
    if order.procedure_description:
        body["text"] = order.procedure_description
    return body


def _study(ctx: Ctx, order: ImagingOrderRecord) -> dict[str, Any] | None:
    if not order.study_instance_uid:
        return None
    study = imaging.study_by_uid(ctx.db, order.study_instance_uid)
    contained: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "id": "study",
        "identifier": [{"system": DICOM_UID, "value": "urn:oid:" + order.study_instance_uid}],
        "status": "available" if study is not None else "registered",
        "subject": {"reference": f"Patient/{order.patient_id}"},
        "basedOn": [{"reference": f"ServiceRequest/{order.id}"}],
    }
    if study is not None:
        contained["numberOfSeries"] = len(study.series)
        contained["numberOfInstances"] = sum(len(s.instances) for s in study.series)
    return contained


def diagnostic_report(ctx: Ctx, order: ImagingOrderRecord, report: ReadingReport) -> dict[str, Any]:
    """The report's latest signed version as a ``DiagnosticReport`` (404 when unsigned)."""
    versions = reports.versions_of(ctx.db, report)
    if not versions:
        raise NotFound(_("no such resource"))
    latest = versions[-1]
    signer = _practitioner(ctx.db.get(User, latest.signed_by_id))
    site = ctx.db.get(Site, order.site_id)
    body: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": str(report.id),
        "meta": {"versionId": str(latest.version), "lastUpdated": latest.signed_at.isoformat()},
        "basedOn": [{"reference": f"ServiceRequest/{order.id}"}],
        "status": _STATUS.get(latest.status, "final"),
        "category": [RAD_CATEGORY],
        "code": _code(order),
        "subject": {"reference": f"Patient/{order.patient_id}"},
        "effectiveDateTime": (order.scheduled_at or order.created_at).isoformat(),
        "issued": latest.signed_at.isoformat(),
        "performer": [signer],
        "resultsInterpreter": [signer],
        "presentedForm": [
            {
                "contentType": "application/pdf",
                "language": "fr",
                "data": base64.b64encode(latest.pdf).decode("ascii"),
                "title": report_pdf.filename(order, latest),
                "creation": latest.signed_at.isoformat(),
            }
        ],
    }
    if site is not None and order.accession_number:
        body["identifier"] = [
            {
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}
                    ]
                },
                "system": ACCESSION + site.finess,
                "value": order.accession_number,
            }
        ]
    impression = [
        str(s.get("text", "")).strip()
        for s in latest.sections
        if s.get("key") == "impression" and str(s.get("text", "")).strip()
    ]
    addenda = [v.addendum for v in versions if v.status == "C"]
    if impression or addenda:
        body["conclusion"] = "\n\n".join(impression + addenda)
    study = _study(ctx, order)
    if study is not None:
        body["contained"] = [study]
        body["imagingStudy"] = [{"reference": "#study"}]
    return body


def _readable(ctx: Ctx, report: ReadingReport) -> ImagingOrderRecord:
    """The report's order, if the caller may read the report (else 404, audited)."""
    order = ctx.db.get(ImagingOrderRecord, report.order_id)
    assignment = assignment_of(ctx.db, order.id) if order is not None else None
    if order is None or assignment is None:
        raise NotFound(_("no such resource"))
    try:
        ctx.authorize(READ, reading_list.report_target(ctx.db, assignment))
    except Forbidden:
        raise NotFound(_("no such resource")) from None
    return order


def _audit(ctx: Ctx, order: ImagingOrderRecord, report: ReadingReport) -> None:
    audit.record(
        ctx.db,
        ctx.actor,
        AUDIT_READ,
        "success",
        object_kind=reports.REPORT_KIND,
        object_id=report.id,
        patient_id=order.patient_id,
        site_id=order.site_id,
        detail={"channel": "fhir"},
    )


@router.get(_REPORT + "/{report_id}")
def read_report(report_id: str, ctx: Annotated[Ctx, gate(READ)]) -> Response:
    """A signed report as a ``DiagnosticReport`` (its latest version)."""
    report = ctx.db.get(ReadingReport, numeric_id(report_id))
    if report is None:
        raise NotFound(_("no such resource"))
    order = _readable(ctx, report)
    body = diagnostic_report(ctx, order, report)
    _audit(ctx, order, report)
    ctx.commit()
    return resource_response(body, version=int(body["meta"]["versionId"]))


def _candidates(ctx: Ctx, request: Request) -> list[ReadingReport]:
    params = request.query_params
    unknown = sorted(set(params) - {"based-on", "identifier"})
    if unknown:
        message = _("Search DiagnosticReport by based-on or identifier only.")
        raise InvalidResource(message, [Issue("not-supported", message)])
    query = select(ReadingReport).join(
        ImagingOrderRecord, ImagingOrderRecord.id == ReadingReport.order_id
    )
    based_on = params.get("based-on")
    if based_on is not None:
        order_id = based_on.removeprefix("ServiceRequest/")
        if not order_id.isdigit() or len(order_id) > 18:
            return []
        query = query.where(ImagingOrderRecord.id == int(order_id))
    identifier = params.get("identifier")
    if identifier is not None:
        system, bar, value = identifier.partition("|")
        site = site_of_identifier(ctx.db, system, ACCESSION) if bar else None
        if site is None or not value:
            return []
        query = query.where(
            ImagingOrderRecord.site_id == site.id, ImagingOrderRecord.accession_number == value
        )
    if not params:  # the latest reports, those the caller may read among them
        return list(ctx.db.scalars(query.order_by(ReadingReport.id.desc()).limit(LATEST)))
    return list(ctx.db.scalars(query.order_by(ReadingReport.id).limit(LATEST)))


@router.get(_REPORT)
def search_reports(request: Request, ctx: Annotated[Ctx, gate(READ)]) -> Response:
    """The signed reports of an order (``based-on=ServiceRequest/<id>``) or of an accession
    number (``identifier=urn:concilium:accession:<FINESS>|<number>``) the caller may read,
    as a ``searchset`` Bundle; without criteria, those among the latest reports."""
    entries = []
    base = ctx.runtime.settings.public_url.rstrip("/")
    for report in _candidates(ctx, request):
        try:
            order = _readable(ctx, report)
            body = diagnostic_report(ctx, order, report)
        except NotFound:
            continue
        _audit(ctx, order, report)
        entries.append(
            {
                "fullUrl": f"{base}{_REPORT}/{report.id}",
                "resource": body,
                "search": {"mode": "match"},
            }
        )
    ctx.commit()
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(entries)}
    if entries:
        bundle["entry"] = entries
    return FhirResponse(bundle)
