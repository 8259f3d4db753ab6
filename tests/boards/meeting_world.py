"""A meeting under way: the cases' haematology board with two radiologists and a
radiotherapist as members too, and two cases on its first meeting (19 March 2027, 14:00
Paris, 13:00 UTC), each needing a radiologist."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from concilium.boards import attendance, case_store, registry
from concilium.platform.db import transaction
from concilium.platform.tables import User

from .boards_world import OPERATOR
from .cases_world import CasesWorld, actor, build, consent, listed

START = datetime(2027, 3, 19, 13, tzinfo=UTC)
"""The first meeting's start."""


@dataclass
class MeetingWorld:
    cw: CasesWorld
    radiologist: User
    second_radiologist: User
    meeting_id: int
    cases: list[int]


def at(minutes: int) -> datetime:
    """``minutes`` after the meeting's start."""
    return START.replace(minute=minutes)


def build_meeting(world: Any, clock: Any) -> MeetingWorld:
    cw = build(world, clock)
    radiologist = world.user("dr-radio", (world.metz, "radiologist"), with_totp=True)
    second = world.user("dr-radio2", (world.briey, "radiologist"), with_totp=True)
    with transaction(world.runtime.sessions) as db:
        board = registry.get_board(db, cw.board_id)
        for user in (radiologist, second):
            registry.set_member(
                db, OPERATOR, board, db.get(User, user.id), frozenset({"radiology"})
            )
    consent(world, cw)
    cases = [listed(world, cw), listed(world, cw)]
    with transaction(world.runtime.sessions) as db:
        for case_id in cases:
            case_store.plan_case(
                db,
                actor(cw.coordinator),
                case_store.get_case(db, case_id),
                15,
                frozenset({"radiology"}),
                clock.now,
            )
    return MeetingWorld(cw, radiologist, second, cw.meetings[0], cases)


def arrive(world: Any, mw: MeetingWorld, user: User, minutes: int, now: datetime) -> None:
    with transaction(world.runtime.sessions) as db:
        meeting = case_store.get_meeting(db, mw.meeting_id)
        attendance.arrive(db, actor(mw.cw.pathologist), meeting, user.id, at(minutes), now)


def leave(world: Any, mw: MeetingWorld, user: User, minutes: int, now: datetime) -> None:
    with transaction(world.runtime.sessions) as db:
        meeting = case_store.get_meeting(db, mw.meeting_id)
        attendance.leave(db, actor(mw.cw.pathologist), meeting, user.id, at(minutes), now)


def take_up(world: Any, mw: MeetingWorld, case_id: int, now: datetime) -> None:
    with transaction(world.runtime.sessions) as db:
        meeting = case_store.get_meeting(db, mw.meeting_id)
        case = case_store.get_case(db, case_id)
        attendance.take_up(db, actor(mw.cw.pathologist), meeting, case, now)
