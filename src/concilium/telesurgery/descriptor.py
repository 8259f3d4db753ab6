"""How telesurgery plugs into the process assembly."""

from __future__ import annotations

from pathlib import Path

from concilium.platform.i18n import N_
from concilium.platform.policy import actions_of
from concilium.platform.services import NavEntry, ServiceDescriptor
from concilium.telesurgery.actions import TelesurgeryAction

_HERE = Path(__file__).parent

SERVICE = ServiceDescriptor(
    name="telesurgery",
    summary="Telesurgery: gateways, the secure low-latency link, safety, qualification.",
    actions=actions_of(TelesurgeryAction),
    tables="concilium.telesurgery.tables",
    migrations=_HERE / "migrations",
    routers=("concilium.telesurgery.web.api:router", "concilium.telesurgery.web.pages:router"),
    documented_routers=("concilium.telesurgery.web.api:router",),
    commands="concilium.telesurgery.cli:telesurgery",
    nav=(NavEntry(TelesurgeryAction.PROCEDURE_READ, "/telesurgery", N_("Telesurgery"), 50),),
    templates=_HERE / "templates",
    static=_HERE / "static",
    locale=_HERE / "locale",
    runtime="concilium.telesurgery.process:TelesurgeryProcess",
)
