"""A board's meetings, kept in the database as its schedule gives them.

:func:`generate_meetings` brings the meetings of the next weeks in line with the board's
schedule (:func:`concilium.boards.schedule.meetings`): a meeting the schedule gives and the
database lacks is added, one whose time the schedule changed is moved, and a planned one
the schedule no longer gives (the board now meets on another day, a holiday the board now
skips) is cancelled. Meetings are found by their key, unique in the table, so running it
again changes nothing, and a meeting keeps its identity (and, later, its agenda) when a
holiday or a new start time moves it. :func:`follow_schedule` does the same, after the
schedule changed, for the meetings already planned.

Each change is told to the board's members by e-mail with an iCalendar invitation, update
or cancellation (:mod:`concilium.boards.invitation_mail`), in the same transaction; a moved
or cancelled meeting's ``sequence`` goes up, so calendars replace the event they have.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from concilium.boards.actions import BoardAction
from concilium.boards.invitation_mail import Change, meetings_changed
from concilium.boards.registry import BOARD_KIND, schedule_of
from concilium.boards.schedule import meetings
from concilium.boards.tables import Board, BoardMeeting, BoardMember
from concilium.platform import audit
from concilium.platform.errors import Conflict, InvalidInput
from concilium.platform.i18n import _

MAX_WEEKS = 104
"""Furthest ahead meetings are generated, in weeks."""
PLANNED = "planned"
CANCELLED = "cancelled"


@dataclass(frozen=True)
class Generated:
    """What a generation changed."""

    added: int
    moved: int
    cancelled: int
    planned: int
    """Planned meetings in the window afterwards."""


def generate_meetings(
    session: Session, actor: audit.Actor, board: Board, now: datetime, weeks: int
) -> Generated:
    """Bring the board's meetings starting from ``now`` to ``weeks`` weeks later in line
    with its schedule; one audit entry says what changed."""
    if not 1 <= weeks <= MAX_WEEKS:
        raise InvalidInput(_("Generate 1 to %(n)d weeks of meetings.") % {"n": MAX_WEEKS})
    until = now + timedelta(weeks=weeks)
    wanted = {m.key: m for m in meetings(schedule_of(board), now, until)}
    existing = {
        row.key: row
        for row in session.scalars(
            select(BoardMeeting).where(
                BoardMeeting.board_id == board.id,
                BoardMeeting.starts_at >= now,
                BoardMeeting.starts_at < until,
            )
        )
    }
    # A meeting a change of schedule moves into the window from outside it keeps its row.
    outside = set(wanted) - set(existing)
    if outside:
        existing.update(
            (row.key, row)
            for row in session.scalars(select(BoardMeeting).where(BoardMeeting.key.in_(outside)))
        )
    added = moved = cancelled = 0
    changes: list[tuple[BoardMeeting, Change]] = []
    for key, meeting in wanted.items():
        holiday = meeting.occurrence.moved_for
        moved_for = holiday.code if holiday is not None else ""
        row = existing.get(key)
        if row is None:
            row = BoardMeeting(
                board_id=board.id,
                key=key,
                scheduled_day=meeting.occurrence.scheduled_day,
                starts_at=meeting.start,
                ends_at=meeting.end,
                status=PLANNED,
                moved_for=moved_for,
                sequence=0,
            )
            session.add(row)
            changes.append((row, Change.INVITATION))
            added += 1
        elif (row.starts_at, row.ends_at, row.status, row.moved_for) != (
            meeting.start,
            meeting.end,
            PLANNED,
            moved_for,
        ):
            row.starts_at, row.ends_at = meeting.start, meeting.end
            row.status, row.moved_for = PLANNED, moved_for
            row.sequence += 1
            changes.append((row, Change.UPDATE))
            moved += 1
    for key, row in existing.items():
        if key not in wanted and row.status == PLANNED and row.starts_at >= now:
            row.status = CANCELLED
            row.sequence += 1
            changes.append((row, Change.CANCELLATION))
            cancelled += 1
    try:
        session.flush()
    except IntegrityError as exc:  # the same meetings generated at the same time
        raise Conflict(_("The meetings were being generated meanwhile; try again.")) from exc
    if added or moved or cancelled:
        audit.record(
            session,
            actor,
            str(BoardAction.BOARD_MANAGE),
            "success",
            object_kind=BOARD_KIND,
            object_id=board.code,
            site_id=board.site_id,
            detail={
                "change": "meetings generated",
                "weeks": weeks,
                "added": added,
                "moved": moved,
                "cancelled": cancelled,
            },
        )
        meetings_changed(session, board, changes, now)
    return Generated(added, moved, cancelled, len(wanted))


def follow_schedule(
    session: Session, actor: audit.Actor, board: Board, now: datetime
) -> Generated | None:
    """After the board's schedule changed: bring the meetings already planned from ``now``
    in line with it, as far ahead as they were planned (None when none was)."""
    last = session.scalar(
        select(func.max(BoardMeeting.starts_at)).where(
            BoardMeeting.board_id == board.id,
            BoardMeeting.status == PLANNED,
            BoardMeeting.starts_at >= now,
        )
    )
    if last is None:
        return None
    weeks = min(MAX_WEEKS, (last - now) // timedelta(weeks=1) + 1)
    return generate_meetings(session, actor, board, now, weeks)


def board_meetings(
    session: Session, board: Board, since: datetime, limit: int = 50
) -> list[BoardMeeting]:
    """The board's meetings (planned and cancelled) ending after ``since``, in time order."""
    return list(
        session.scalars(
            select(BoardMeeting)
            .where(BoardMeeting.board_id == board.id, BoardMeeting.ends_at > since)
            .order_by(BoardMeeting.starts_at)
            .limit(limit)
        )
    )


def upcoming_meetings(
    session: Session, user_id: int, since: datetime, limit: int = 50
) -> list[tuple[BoardMeeting, Board]]:
    """The planned meetings of every board a person is a member of, not yet over, in time
    order."""
    rows = session.execute(
        select(BoardMeeting, Board)
        .join(Board, Board.id == BoardMeeting.board_id)
        .join(BoardMember, BoardMember.board_id == Board.id)
        .where(
            BoardMember.user_id == user_id,
            BoardMeeting.status == PLANNED,
            BoardMeeting.ends_at > since,
        )
        .order_by(BoardMeeting.starts_at, Board.name)
        .limit(limit)
    )
    return [(meeting, board) for meeting, board in rows.all()]
