"""How live sessions plug into the process assembly."""

from __future__ import annotations

from pathlib import Path

from concilium.live.actions import LiveAction
from concilium.platform.i18n import N_
from concilium.platform.policy import actions_of
from concilium.platform.services import NavEntry, ServiceDescriptor

_HERE = Path(__file__).parent

SERVICE = ServiceDescriptor(
    name="live",
    summary="Live sessions on a media server: supervision, broadcast, meetings, recordings.",
    actions=actions_of(LiveAction),
    tables="concilium.live.tables",
    migrations=_HERE / "migrations",
    routers=(
        "concilium.live.web:api_router",
        "concilium.live.playback_web:api_router",
        "concilium.live.playback_web:router",
        "concilium.live.web:router",
    ),
    documented_routers=(
        "concilium.live.web:api_router",
        "concilium.live.playback_web:api_router",
    ),
    nav=(
        NavEntry(LiveAction.LIVE_READ, "/live", N_("Live"), 30),
        NavEntry(LiveAction.LIVE_READ, "/live/library", N_("Recordings"), 40),
    ),
    templates=_HERE / "templates",
    static=_HERE / "static",
    locale=_HERE / "locale",
    runtime="concilium.live.process:LiveProcess",
)
