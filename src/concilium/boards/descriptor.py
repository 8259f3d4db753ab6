"""How the boards (multidisciplinary meetings) plug into the process assembly."""

from __future__ import annotations

from pathlib import Path

from concilium.boards.actions import BoardAction
from concilium.platform.i18n import N_
from concilium.platform.policy import actions_of
from concilium.platform.services import NavEntry, ServiceDescriptor

_HERE = Path(__file__).parent

SERVICE = ServiceDescriptor(
    name="boards",
    summary="Multidisciplinary meetings (RCP): boards, members, quorum rules, meetings, cases.",
    actions=actions_of(BoardAction),
    tables="concilium.boards.tables",
    migrations=_HERE / "migrations",
    routers=(
        "concilium.boards.pages:router",
        "concilium.boards.case_pages:router",
        "concilium.boards.meeting_pages:router",
        "concilium.boards.calendar_pages:router",
        "concilium.boards.decision_api:api_router",
        "concilium.boards.statistics_pages:router",
        "concilium.boards.room_socket:router",
    ),
    documented_routers=("concilium.boards.decision_api:api_router",),
    commands="concilium.boards.cli:boards",
    nav=(
        NavEntry(BoardAction.BOARD_READ, "/boards", N_("My boards"), 35),
        NavEntry(BoardAction.BOARD_MANAGE, "/admin/boards", N_("Boards"), 85),
    ),
    templates=_HERE / "templates",
    static=_HERE / "static",
    locale=_HERE / "locale",
    public_paths=frozenset({"/boards/calendar/{secret}.ics"}),
    runtime="concilium.boards.process:BoardsProcess",
)
