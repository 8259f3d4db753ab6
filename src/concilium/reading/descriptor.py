"""How the teleradiology service plugs into the process assembly."""

from __future__ import annotations

from pathlib import Path

from concilium.platform.fhir import ResourceSupport
from concilium.platform.i18n import N_
from concilium.platform.policy import actions_of
from concilium.platform.services import NavEntry, ServiceDescriptor
from concilium.reading.actions import ReadingAction

_HERE = Path(__file__).parent

SERVICE = ServiceDescriptor(
    name="reading",
    summary="Teleradiology: orders from the hospital systems over HL7 v2, worklists, reports.",
    actions=actions_of(ReadingAction),
    tables="concilium.reading.tables",
    migrations=_HERE / "migrations",
    routers=(
        "concilium.reading.pages:router",
        "concilium.reading.outbound_pages:router",
        "concilium.reading.worklist_web:api_router",
        "concilium.reading.worklist_web:router",
        "concilium.reading.report_web:router",
        "concilium.reading.critical_web:router",
        "concilium.reading.fhir_web:router",
        "concilium.reading.fhir_reports:router",
        "concilium.reading.worklist_items_web:api_router",
    ),
    documented_routers=(
        "concilium.reading.worklist_web:api_router",
        "concilium.reading.worklist_items_web:api_router",
    ),
    commands=("concilium.reading.cli:hl7", "concilium.reading.groups_cli:reading"),
    nav=(
        NavEntry(ReadingAction.WORKLIST_READ, "/reading", N_("Reading worklist"), 35),
        NavEntry(ReadingAction.HL7_SENDER_MANAGE, "/admin/reading/hl7", N_("HL7 senders"), 91),
    ),
    templates=_HERE / "templates",
    locale=_HERE / "locale",
    runtime="concilium.reading.process:ReadingProcess",
    fhir=(
        ResourceSupport(
            "Patient",
            ("read", "create", "update"),
            conditional_create=True,
            search_params=(("identifier", "token"),),
            documentation="A site's patient under its identifier (IPP): "
            "urn:concilium:ipp:<FINESS>.",
        ),
        ResourceSupport(
            "ServiceRequest",
            ("read", "create", "update"),
            conditional_create=True,
            search_params=(("identifier", "token"),),
            documentation="An imaging order (as HL7 ORM/OMI): accession number "
            "urn:concilium:accession:<FINESS>; status revoked cancels it.",
        ),
        ResourceSupport(
            "DiagnosticReport",
            ("read", "search-type"),
            search_params=(("based-on", "reference"), ("identifier", "token")),
            documentation="A signed imaging report (latest version: preliminary, final or "
            "appended), its PDF, and the study as a contained ImagingStudy.",
        ),
    ),
)
