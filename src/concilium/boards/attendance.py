"""Who is at a meeting, when, and the quorum of the case under discussion.

Attendance is kept as stretches of presence (:class:`~concilium.boards.tables.BoardAttendance`),
one per arrival: someone who leaves and comes back has two. They are taken from the
meeting's room (:func:`joined_room`, :func:`left_room`: having the meeting page open), each
awaiting the facilitator's validation (:func:`validate`), or recorded by the facilitator on
the meeting page (arrived, left, at what time), validated then; only validated stretches
count.

The facilitator takes up a case (:func:`take_up`): its discussion starts then
(:class:`~concilium.boards.tables.BoardDiscussion`), and its quorum is
:func:`concilium.boards.quorum.quorum_for_case` over the validated attendance, from that
instant to the instant asked (:func:`case_quorum`): who left in between does not count,
nor who came in late. Each member counts for the specialties they hold on the board;
anyone else present counts for none. Every change is audited; no log line names anyone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.boards import case_store, registry, specialties
from concilium.boards.actions import BoardAction
from concilium.boards.cases import CaseStatus
from concilium.boards.quorum import Attendance, QuorumResult, quorum_for_case
from concilium.boards.tables import (
    Board,
    BoardAttendance,
    BoardCase,
    BoardDiscussion,
    BoardMeeting,
    BoardMember,
)
from concilium.platform import audit
from concilium.platform.errors import Conflict, InvalidInput
from concilium.platform.i18n import _
from concilium.platform.policy import Target

MEETING_KIND = "board_meeting"
RUN_ROLES = frozenset({"facilitator"})
"""Members of a board who run its meetings."""
EARLY = timedelta(hours=2)
"""How long before a meeting's start an arrival may be recorded."""
RECONNECTION = timedelta(seconds=15)
"""Back in the room this soon after leaving it, a person's stretch of presence goes on."""


def run_target(session: Session, board: Board) -> Target:
    """A board's meetings as they are run: by its facilitators only."""
    facilitators = session.scalars(
        select(BoardMember.user_id).where(
            BoardMember.board_id == board.id, BoardMember.role.in_(RUN_ROLES)
        )
    )
    return Target(
        kind=MEETING_KIND,
        id=str(board.id),
        site_ids=frozenset({board.site_id}),
        shared_user_ids=frozenset(facilitators),
    )


def meeting_target(session: Session, board: Board) -> Target:
    """A meeting as its participants see it: the board's members and the organising site's
    coordinators (the rule of :data:`BoardAction.CASE_READ`, since it shows cases)."""
    members = session.scalars(select(BoardMember.user_id).where(BoardMember.board_id == board.id))
    return Target(
        kind=MEETING_KIND,
        id=str(board.id),
        site_ids=frozenset({board.site_id}),
        shared_user_ids=frozenset(members),
    )


def attendance_of(session: Session, meeting: BoardMeeting) -> list[BoardAttendance]:
    """The meeting's stretches of presence, in order of arrival."""
    return list(
        session.scalars(
            select(BoardAttendance)
            .where(BoardAttendance.meeting_id == meeting.id)
            .order_by(BoardAttendance.joined_at, BoardAttendance.id)
        )
    )


def as_attendance(
    session: Session, board: Board, rows: Sequence[BoardAttendance]
) -> list[Attendance]:
    """The validated stretches as the quorum counts them, each person with their
    specialties on the board (none for who is not a member)."""
    specialties = {m.user_id: frozenset(m.specialties) for m in registry.members_of(session, board)}
    return [
        Attendance(str(r.user_id), specialties.get(r.user_id, frozenset()), r.joined_at, r.left_at)
        for r in rows
        if r.validated_by_id is not None
    ]


def parse_time(text: str, board: Board, meeting: BoardMeeting, now: datetime) -> datetime:
    """``HH:MM`` on the meeting's day in the board's time zone; empty is now."""
    text = text.strip()
    if not text:
        return now
    try:
        clock = time.fromisoformat(text)
    except ValueError:
        raise InvalidInput(_("Write the time as hours and minutes (e.g. 14:05).")) from None
    zone = ZoneInfo(board.timezone)
    day = meeting.starts_at.astimezone(zone).date()
    return datetime.combine(day, clock.replace(tzinfo=None), zone)


def _member(session: Session, board: Board, user_id: int) -> BoardMember:
    member = session.scalar(
        select(BoardMember).where(BoardMember.board_id == board.id, BoardMember.user_id == user_id)
    )
    if member is None:
        raise InvalidInput(_("Choose a member of the board."))
    return member


def _audit(
    session: Session,
    actor: audit.Actor,
    board: Board,
    meeting: BoardMeeting,
    detail: dict[str, object],
) -> None:
    audit.record(
        session,
        actor,
        str(BoardAction.MEETING_RUN),
        "success",
        object_kind=MEETING_KIND,
        object_id=meeting.key,
        site_id=board.site_id,
        detail=detail,
    )


def arrive(
    session: Session,
    actor: audit.Actor,
    meeting: BoardMeeting,
    user_id: int,
    at: datetime,
    now: datetime,
) -> BoardAttendance:
    """Record, validated, that a member arrived at ``at``."""
    board = registry.get_board(session, meeting.board_id)
    _member(session, board, user_id)
    if at > now:
        raise InvalidInput(_("An arrival is recorded when it has happened, not before."))
    if at < meeting.starts_at - EARLY or at > meeting.ends_at + EARLY:
        raise InvalidInput(_("The time must be within the meeting."))
    rows = [r for r in attendance_of(session, meeting) if r.user_id == user_id]
    if any(r.left_at is None for r in rows):
        raise Conflict(_("This member is already recorded as present."))
    if any(r.left_at is not None and r.left_at > at for r in rows):
        raise InvalidInput(_("This member was already present at that time."))
    row = BoardAttendance(
        meeting_id=meeting.id,
        user_id=user_id,
        joined_at=at,
        validated_by_id=actor.user_id,
        validated_at=now,
    )
    session.add(row)
    session.flush()
    _audit(session, actor, board, meeting, {"change": "arrived", "user": user_id})
    return row


def leave(
    session: Session,
    actor: audit.Actor,
    meeting: BoardMeeting,
    user_id: int,
    at: datetime,
    now: datetime,
) -> BoardAttendance:
    """Record that a present member left at ``at``."""
    board = registry.get_board(session, meeting.board_id)
    open_rows = [
        r for r in attendance_of(session, meeting) if r.user_id == user_id and r.left_at is None
    ]
    if not open_rows:
        raise Conflict(_("This member is not recorded as present."))
    row = open_rows[-1]
    if at > now:
        raise InvalidInput(_("A departure is recorded when it has happened, not before."))
    if at <= row.joined_at:
        raise InvalidInput(_("A member leaves after arriving."))
    row.left_at = at
    row.validated_by_id = actor.user_id
    row.validated_at = now
    session.flush()
    _audit(session, actor, board, meeting, {"change": "left", "user": user_id})
    return row


def discussion_of(session: Session, case: BoardCase) -> BoardDiscussion | None:
    """The latest discussion of the case at the meeting it is on."""
    if case.meeting_id is None:
        return None
    return session.scalar(
        select(BoardDiscussion)
        .where(BoardDiscussion.case_id == case.id, BoardDiscussion.meeting_id == case.meeting_id)
        .order_by(BoardDiscussion.started_at.desc(), BoardDiscussion.id.desc())
        .limit(1)
    )


def under_discussion(session: Session, meeting: BoardMeeting) -> BoardCase | None:
    """The case of the meeting being discussed (taken up, not yet decided nor postponed)."""
    return session.scalar(
        select(BoardCase)
        .join(BoardDiscussion, BoardDiscussion.case_id == BoardCase.id)
        .where(
            BoardDiscussion.meeting_id == meeting.id,
            BoardCase.meeting_id == meeting.id,
            BoardCase.status == CaseStatus.DISCUSSED.value,
        )
        .order_by(BoardDiscussion.started_at.desc(), BoardDiscussion.id.desc())
        .limit(1)
    )


def take_up(
    session: Session, actor: audit.Actor, meeting: BoardMeeting, case: BoardCase, now: datetime
) -> BoardDiscussion:
    """Start discussing a case of the meeting's agenda, one case at a time."""
    if case.meeting_id != meeting.id:
        raise InvalidInput(_("Choose a case of this meeting's agenda."))
    current = under_discussion(session, meeting)
    if current is not None and current.id != case.id:
        raise Conflict(_("Decide or postpone the case under discussion first."))
    if now < meeting.starts_at - EARLY or now > meeting.ends_at + EARLY:
        raise Conflict(_("A case is discussed during its meeting."))
    case_store.discuss(session, actor, case, now)
    row = BoardDiscussion(
        meeting_id=meeting.id, case_id=case.id, started_at=now, started_by_id=actor.user_id
    )
    session.add(row)
    session.flush()
    return row


def case_quorum(
    session: Session, board: Board, case: BoardCase, started_at: datetime, at: datetime
) -> QuorumResult:
    """The case's quorum at ``at``: the board's rules and the specialties the case needs,
    over who was present, validated, from the start of its discussion to ``at``."""
    meeting = case_store.get_meeting(session, case.meeting_id or 0)
    rules = registry.rules_of(board).requiring(case.specialties_needed)
    rows = as_attendance(session, board, attendance_of(session, meeting))
    return quorum_for_case(rules, rows, started_at, max(at, started_at))


def missing_specialties(result: QuorumResult) -> list[str]:
    """What a quorum lacks, in words: each missing requirement, then how many more."""
    parts = [specialties.alternatives_text(r) for r in result.missing_required]
    extra = result.more_needed - len(result.missing_required)
    if extra > 0:
        parts.append(
            _("%(n)d more specialty") % {"n": extra}
            if extra == 1
            else _("%(n)d more specialties") % {"n": extra}
        )
    return parts


def present_ids(session: Session, meeting: BoardMeeting) -> frozenset[int]:
    """Who is at the meeting now (an open stretch, validated or not)."""
    return frozenset(r.user_id for r in attendance_of(session, meeting) if r.left_at is None)


def joined_room(
    session: Session, actor: audit.Actor, meeting: BoardMeeting, now: datetime
) -> BoardAttendance | None:
    """The person behind ``actor`` came into the meeting's room: a stretch awaiting the
    facilitator's validation, unless one is open already or the meeting is not on (none);
    back within :data:`RECONNECTION` of leaving, their last stretch goes on."""
    if actor.user_id is None or not (meeting.starts_at - EARLY <= now <= meeting.ends_at + EARLY):
        return None
    rows = [r for r in attendance_of(session, meeting) if r.user_id == actor.user_id]
    if any(r.left_at is None for r in rows):
        return None
    if rows and rows[-1].left_at is not None and now - rows[-1].left_at <= RECONNECTION:
        # A page reloaded (a form sent, a network hiccup): the same stretch goes on.
        rows[-1].left_at = None
        session.flush()
        return rows[-1]
    row = BoardAttendance(meeting_id=meeting.id, user_id=actor.user_id, joined_at=now)
    session.add(row)
    session.flush()
    board = registry.get_board(session, meeting.board_id)
    _audit(session, actor, board, meeting, {"change": "joined the room", "user": actor.user_id})
    return row


def left_room(
    session: Session, actor: audit.Actor, meeting: BoardMeeting, now: datetime
) -> BoardAttendance | None:
    """The person behind ``actor`` left the meeting's room: their open stretch ends now,
    validated or not (someone who left does not count, whoever validated them)."""
    open_rows = [
        r
        for r in attendance_of(session, meeting)
        if r.user_id == actor.user_id and r.left_at is None
    ]
    if not open_rows:
        return None
    row = open_rows[-1]
    row.left_at = max(now, row.joined_at)
    session.flush()
    board = registry.get_board(session, meeting.board_id)
    _audit(session, actor, board, meeting, {"change": "left the room", "user": actor.user_id})
    return row


def validate(
    session: Session, actor: audit.Actor, meeting: BoardMeeting, row_id: int, now: datetime
) -> BoardAttendance:
    """The facilitator validates a stretch of presence taken from the room: from then on
    it counts for the quorum."""
    row = session.get(BoardAttendance, row_id)
    if row is None or row.meeting_id != meeting.id:
        raise InvalidInput(_("Choose a presence of this meeting."))
    if row.validated_by_id is not None:
        raise Conflict(_("This presence is already validated."))
    row.validated_by_id = actor.user_id
    row.validated_at = now
    session.flush()
    board = registry.get_board(session, meeting.board_id)
    _audit(session, actor, board, meeting, {"change": "validated", "user": row.user_id})
    return row
