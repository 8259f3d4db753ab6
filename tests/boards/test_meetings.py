"""A board's meetings generated from its schedule: idempotent, exact across the changes of
time, holidays as the board chose, and a member's coming meetings."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from sqlalchemy import func, select

from concilium.boards import meetings, registry
from concilium.boards.tables import BoardMeeting
from concilium.platform import accounts
from concilium.platform.db import transaction
from concilium.platform.errors import InvalidInput
from concilium.platform.holidays import ALSACE_MOSELLE
from concilium.platform.i18n import using_locale

from .boards_world import OPERATOR, fields, make_board


@pytest.fixture(autouse=True)
def _english():
    """Messages in English, whichever catalogues an earlier test loaded (French is the
    default, tested with the pages and the command)."""
    with using_locale("en"):
        yield


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def generate(runtime, board_id: int, now: datetime, weeks: int) -> meetings.Generated:
    with transaction(runtime.sessions) as db:
        board = registry.get_board(db, board_id)
        return meetings.generate_meetings(db, OPERATOR, board, now, weeks)


def planned(runtime, board_id: int) -> dict[str, tuple[datetime, datetime, str]]:
    with runtime.sessions() as db:
        rows = db.scalars(
            select(BoardMeeting)
            .where(BoardMeeting.board_id == board_id, BoardMeeting.status == "planned")
            .order_by(BoardMeeting.starts_at)
        )
        return {r.key: (r.starts_at, r.ends_at, r.moved_for) for r in rows}


def test_generating_twice_adds_nothing_the_second_time(runtime, world):
    board = make_board(runtime, world.metz.id)
    first = generate(runtime, board.id, utc(2027, 3, 1), 6)
    assert (first.added, first.moved, first.cancelled) == (6, 0, 0)
    again = generate(runtime, board.id, utc(2027, 3, 1), 6)
    assert (again.added, again.moved, again.cancelled, again.planned) == (0, 0, 0, 6)
    # A later run that overlaps adds only the weeks it reaches beyond.
    later = generate(runtime, board.id, utc(2027, 3, 15), 6)
    assert later.added == 2
    with runtime.sessions() as db:
        assert db.scalar(select(func.count()).select_from(BoardMeeting)) == 8


def test_meetings_stay_at_14_00_in_paris_across_both_changes_of_time(runtime, world):
    board = make_board(runtime, world.metz.id)
    generate(runtime, board.id, utc(2027, 3, 20), 3)
    generate(runtime, board.id, utc(2027, 10, 23), 3)
    found = planned(runtime, board.id)
    # Clocks go forward on Sunday 28 March 2027 and back on Sunday 31 October 2027.
    assert found["rcp-hemato.2027-03-26"][:2] == (utc(2027, 3, 26, 13), utc(2027, 3, 26, 15))
    assert found["rcp-hemato.2027-04-02"][:2] == (utc(2027, 4, 2, 12), utc(2027, 4, 2, 14))
    assert found["rcp-hemato.2027-10-29"][:2] == (utc(2027, 10, 29, 12), utc(2027, 10, 29, 14))
    assert found["rcp-hemato.2027-11-05"][:2] == (utc(2027, 11, 5, 13), utc(2027, 11, 5, 15))


def test_a_public_holiday_skips_or_moves_the_meeting_as_the_board_chose(runtime, world):
    # 1 January 2027 is a Friday: no meeting for one board, Thursday for the other.
    skipping = make_board(runtime, world.metz.id, "skips")
    moving = make_board(runtime, world.metz.id, "moves", on_holiday="previous_working_day")
    for board in (skipping, moving):
        generate(runtime, board.id, utc(2026, 12, 20), 3)
    assert list(planned(runtime, skipping.id)) == ["skips.2027-01-08"]
    moved = planned(runtime, moving.id)
    # 25 December is a holiday too: moved to Thursday 24, as 1 January to Thursday 31.
    assert moved["moves.2027-01-01"] == (utc(2026, 12, 31, 13), utc(2026, 12, 31, 15), "new_year")
    assert moved["moves.2026-12-25"][0] == utc(2026, 12, 24, 13)


def test_good_friday_is_a_holiday_in_alsace_moselle_only(runtime, world):
    national = make_board(runtime, world.metz.id, "national")
    local = make_board(runtime, world.metz.id, "moselle", holiday_region=ALSACE_MOSELLE)
    for board in (national, local):
        generate(runtime, board.id, utc(2027, 3, 22), 1)
    assert list(planned(runtime, national.id)) == ["national.2027-03-26"]
    assert list(planned(runtime, local.id)) == []


def test_a_new_schedule_moves_and_cancels_the_meetings_it_no_longer_gives(runtime, world):
    board = make_board(runtime, world.metz.id)
    generate(runtime, board.id, utc(2027, 5, 31), 2)
    with transaction(runtime.sessions) as db:
        found = registry.get_board(db, board.id)
        registry.update_board(db, OPERATOR, found, fields(world.metz.id, at=time(15, 30)))
    moved = generate(runtime, board.id, utc(2027, 5, 31), 2)
    assert (moved.added, moved.moved, moved.cancelled) == (0, 2, 0)
    assert planned(runtime, board.id)["rcp-hemato.2027-06-04"][0] == utc(2027, 6, 4, 13, 30)
    with transaction(runtime.sessions) as db:
        found = registry.get_board(db, board.id)
        registry.update_board(db, OPERATOR, found, fields(world.metz.id, weekday=1))
    changed = generate(runtime, board.id, utc(2027, 5, 31), 2)
    assert (changed.added, changed.cancelled) == (2, 2)
    assert list(planned(runtime, board.id)) == ["rcp-hemato.2027-06-01", "rcp-hemato.2027-06-08"]


def test_a_member_sees_the_coming_meetings_of_their_boards_only(runtime, world):
    mine = make_board(runtime, world.metz.id, "mine", starts_on=date(2027, 1, 1))
    other = make_board(runtime, world.metz.id, "other", weekday=1)
    doctor = world.user("dr-hemato", (world.briey, "specialist"))
    with transaction(runtime.sessions) as db:
        registry.set_member(
            db,
            OPERATOR,
            registry.get_board(db, mine.id),
            accounts.get_user(db, doctor.id),
            frozenset({"haematology"}),
        )
    for board in (mine, other):
        generate(runtime, board.id, utc(2027, 2, 1), 4)
    with runtime.sessions() as db:
        coming = meetings.upcoming_meetings(db, doctor.id, utc(2027, 2, 12, 14))
    # The meeting under way on 12 February is still coming until it ends.
    assert [m.key for m, _b in coming] == [
        "mine.2027-02-12",
        "mine.2027-02-19",
        "mine.2027-02-26",
    ]


def test_weeks_out_of_range_are_refused(runtime, world):
    board = make_board(runtime, world.metz.id)
    with pytest.raises(InvalidInput, match="1 to 104"):
        generate(runtime, board.id, utc(2027, 1, 1), 0)
