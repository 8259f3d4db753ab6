"""A board of the test world, as the store makes it."""

from __future__ import annotations

from datetime import date, time
from typing import Any

from concilium.boards import registry
from concilium.boards.tables import Board
from concilium.platform import audit
from concilium.platform.db import transaction

OPERATOR = audit.Actor(None, "cli:test")


def fields(site_id: int, **overrides: Any) -> registry.BoardFields:
    """Every Friday at 14:00 Europe/Paris for two hours, no meeting on a holiday."""
    values: dict[str, Any] = {
        "name": "RCP régionale d'hématologie",
        "board_type": "haematology",
        "site_id": site_id,
        "starts_on": date(2026, 1, 1),
        "weekday": 4,
        "at": time(14, 0),
        "duration_minutes": 120,
    }
    values.update(overrides)
    return registry.BoardFields(**values)


def make_board(runtime: Any, site_id: int, code: str = "rcp-hemato", **overrides: Any) -> Board:
    with transaction(runtime.sessions) as db:
        board = registry.create_board(db, OPERATOR, code, fields(site_id, **overrides))
        db.expunge(board)
        return board
