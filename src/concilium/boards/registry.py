"""The boards of the installation: creating and editing a board (its schedule and quorum
rules), its member sites and its members, and what the policy needs to know about it.

Every change is checked before anything is written (a bad value is an
:class:`~concilium.platform.errors.InvalidInput` saying what to write instead) and leaves
one audit entry (``board.manage``) in the same transaction. A board holds no patient data:
the audit entries name the board by its code and the members by their account.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from concilium.boards.actions import BoardAction
from concilium.boards.quorum import HAEMATOLOGY, SOLID_TUMOUR, SPECIALTY_CODE, QuorumRules
from concilium.boards.schedule import BOARD_CODE, BoardSchedule
from concilium.boards.tables import Board, BoardMember, BoardSite
from concilium.platform import audit, holidays
from concilium.platform.db import utcnow
from concilium.platform.errors import Conflict, InvalidInput, NotFound
from concilium.platform.i18n import N_, _
from concilium.platform.policy import Target
from concilium.platform.recurrence import HolidayPolicy, Recurrence
from concilium.platform.tables import Site, User

BOARD_KIND = "board"
"""The policy's and the audit trail's name for a board."""
MAX_CODE_LENGTH = 40
BOARD_TYPES: dict[str, str] = {
    "haematology": N_("Haematology"),
    "solid_tumour": N_("Solid tumours"),
    "other": N_("Other"),
}
"""Kinds of boards, each starting from its own quorum rules (:data:`TYPE_RULES`)."""
TYPE_RULES: dict[str, QuorumRules] = {
    "haematology": HAEMATOLOGY,
    "solid_tumour": SOLID_TUMOUR,
    "other": QuorumRules(),
}
"""The rules a new board of each type starts with (editable afterwards)."""
MEMBER_ROLES: dict[str, str] = {
    "member": N_("Member"),
    "coordinator": N_("Coordinator"),
    "facilitator": N_("Facilitator"),
}
"""A member's role in the board: the coordinator builds agendas and invites, the
facilitator (animateur) runs the meeting and validates attendance and decisions."""
HOLIDAY_CHOICES: dict[str, str] = {
    HolidayPolicy.SKIP.value: N_("No meeting"),
    HolidayPolicy.PREVIOUS_WORKING_DAY.value: N_("Move to the working day before"),
    HolidayPolicy.NEXT_WORKING_DAY.value: N_("Move to the working day after"),
    HolidayPolicy.KEEP.value: N_("Meet anyway"),
}
"""What a board does when its day is a public holiday."""
WEEKDAYS = (
    N_("Monday"),
    N_("Tuesday"),
    N_("Wednesday"),
    N_("Thursday"),
    N_("Friday"),
    N_("Saturday"),
    N_("Sunday"),
)
"""Week days, Monday first, as :meth:`datetime.date.weekday` numbers them."""
MAX_DURATION_MINUTES = 12 * 60
MAX_SPECIALTIES = 30
_SEPARATORS = re.compile(r"[,;\n]+")


@dataclass(frozen=True)
class BoardFields:
    """What a board's form or command gives: its name and schedule."""

    name: str
    board_type: str
    site_id: int
    starts_on: date
    weekday: int
    at: time
    duration_minutes: int
    timezone: str = "Europe/Paris"
    interval_weeks: int = 1
    holiday_region: str | None = holidays.METROPOLITAN
    on_holiday: str = HolidayPolicy.SKIP.value
    until: date | None = None


# --- reading what people write -----------------------------------------------------------------


def parse_specialties(text: str | Iterable[str]) -> frozenset[str]:
    """Specialty codes written ``haematology, pathology`` (or given one by one)."""
    items = _SEPARATORS.split(text) if isinstance(text, str) else list(text)
    codes = frozenset(item.strip().lower() for item in items if item.strip())
    for code in sorted(codes):
        if not SPECIALTY_CODE.fullmatch(code):
            raise InvalidInput(
                _(
                    "%(code)s is not a specialty code: lower-case letters, digits, '-' or '_', "
                    "starting with a letter (e.g. haematology)."
                )
                % {"code": code}
            )
    if len(codes) > MAX_SPECIALTIES:
        raise InvalidInput(_("At most %(n)d specialties.") % {"n": MAX_SPECIALTIES})
    return codes


def parse_requirements(text: str) -> tuple[frozenset[str], ...]:
    """Required specialties written ``surgery, oncology | radiotherapy, radiology``: each
    requirement separated by a comma, the specialties meeting one by ``|``."""
    found: list[frozenset[str]] = []
    for part in _SEPARATORS.split(text):
        if part.strip():
            found.append(parse_specialties(part.replace("|", ",")))
    return tuple(found)


def show_requirements(required: Sequence[Iterable[str]]) -> str:
    """Required specialties as :func:`parse_requirements` reads them."""
    return ", ".join(" | ".join(sorted(entry)) for entry in required)


def check_rules(min_specialties: int, required: tuple[frozenset[str], ...]) -> QuorumRules:
    """The quorum rules, or a message saying what is wrong with them."""
    if not 1 <= min_specialties <= MAX_SPECIALTIES:
        raise InvalidInput(
            _("The minimum number of specialties is 1 to %(n)d.") % {"n": MAX_SPECIALTIES}
        )
    seen: set[str] = set()
    for entry in required:
        shared = seen & entry
        if shared:
            raise InvalidInput(
                _("%(code)s appears in two requirements: each specialty meets one only.")
                % {"code": sorted(shared)[0]}
            )
        seen |= entry
    try:
        return QuorumRules(min_specialties, required)
    except ValueError as exc:  # pragma: no cover - every case is checked above
        raise InvalidInput(str(exc)) from exc


def check_fields(fields: BoardFields) -> Recurrence:
    """The board's schedule, or a message saying which field is wrong."""
    if not fields.name.strip() or len(fields.name.strip()) > 200:
        raise InvalidInput(_("Give the board a name (at most 200 characters)."))
    if fields.board_type not in BOARD_TYPES:
        raise InvalidInput(_("Choose the type of board."))
    if not 0 <= fields.weekday <= 6:
        raise InvalidInput(_("Choose the day of the week."))
    if not 1 <= fields.duration_minutes <= MAX_DURATION_MINUTES:
        raise InvalidInput(_("The duration is 1 to %(n)d minutes.") % {"n": MAX_DURATION_MINUTES})
    if not 1 <= fields.interval_weeks <= 52:
        raise InvalidInput(_("A board meets every 1 to 52 weeks."))
    try:
        ZoneInfo(fields.timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidInput(
            _("%(zone)s is not a time zone (e.g. Europe/Paris).") % {"zone": fields.timezone}
        ) from None
    if fields.holiday_region is not None and fields.holiday_region not in holidays.REGIONS:
        raise InvalidInput(_("Choose the region whose public holidays apply."))
    if fields.on_holiday not in HOLIDAY_CHOICES:
        raise InvalidInput(_("Choose what happens on a public holiday."))
    if fields.until is not None and fields.until < fields.starts_on:
        raise InvalidInput(_("The last meeting day is before the first."))
    try:
        return Recurrence(
            start=fields.starts_on,
            weekday=fields.weekday,
            at=fields.at,
            duration=timedelta(minutes=fields.duration_minutes),
            timezone=fields.timezone,
            interval=fields.interval_weeks,
            until=fields.until,
            holiday_region=fields.holiday_region,
            on_holiday=HolidayPolicy(fields.on_holiday),
        )
    except ValueError as exc:  # pragma: no cover - every case is checked above
        raise InvalidInput(str(exc)) from exc


# --- what a board is, for the schedule and the policy ------------------------------------------


def rules_of(board: Board) -> QuorumRules:
    """The board's quorum rules."""
    required = tuple(frozenset(entry) for entry in board.required_specialties)
    return QuorumRules(board.min_specialties, required)


def recurrence_of(board: Board) -> Recurrence:
    """When the board meets."""
    return Recurrence(
        start=board.starts_on,
        weekday=board.weekday,
        at=board.at,
        duration=timedelta(minutes=board.duration_minutes),
        timezone=board.timezone,
        interval=board.interval_weeks,
        until=board.until,
        holiday_region=board.holiday_region,
        on_holiday=HolidayPolicy(board.on_holiday),
    )


def schedule_of(board: Board) -> BoardSchedule:
    """The board's schedule and rules, as the meeting planning reads them."""
    return BoardSchedule(board.code, recurrence_of(board), rules_of(board))


def members_of(session: Session, board: Board) -> list[BoardMember]:
    """The board's members, in the order they were added."""
    return list(
        session.scalars(
            select(BoardMember).where(BoardMember.board_id == board.id).order_by(BoardMember.id)
        )
    )


def site_ids_of(session: Session, board: Board) -> frozenset[int]:
    """The board's member sites."""
    return frozenset(
        session.scalars(select(BoardSite.site_id).where(BoardSite.board_id == board.id))
    )


def board_target(session: Session, board: Board) -> Target:
    """The board as the policy sees it: owned by its organising site, shared with its
    members (who see it, :data:`BoardAction.BOARD_READ`) and nobody else."""
    members = session.scalars(select(BoardMember.user_id).where(BoardMember.board_id == board.id))
    return Target(
        kind=BOARD_KIND,
        id=str(board.id),
        site_ids=frozenset({board.site_id}),
        shared_user_ids=frozenset(members),
    )


def creation_target(site_id: int) -> Target:
    """A board about to be created at ``site_id``."""
    return Target(kind=BOARD_KIND, site_ids=frozenset({site_id}))


def get_board(session: Session, board_id: int) -> Board:
    board = session.get(Board, board_id)
    if board is None:
        raise NotFound(_("No such board."))
    return board


def board_by_code(session: Session, code: str) -> Board:
    board = session.scalar(select(Board).where(Board.code == code.strip().lower()))
    if board is None:
        raise NotFound(_("No board %(code)s.") % {"code": code})
    return board


def list_boards(session: Session, site_ids: frozenset[int] | None = None) -> list[Board]:
    """Boards organised at ``site_ids`` (every board for None), by name."""
    query = select(Board).order_by(Board.name, Board.id)
    if site_ids is not None:
        query = query.where(Board.site_id.in_(site_ids))
    return list(session.scalars(query))


def boards_of_member(session: Session, user_id: int) -> list[tuple[Board, BoardMember]]:
    """The boards a person is a member of, with their membership, by board name."""
    rows = session.execute(
        select(Board, BoardMember)
        .join(BoardMember, BoardMember.board_id == Board.id)
        .where(BoardMember.user_id == user_id)
        .order_by(Board.name, Board.id)
    )
    return [(board, member) for board, member in rows.all()]


# --- changes -------------------------------------------------------------------------------------


def _flush(session: Session, conflict: str) -> None:
    """Write what was added; a row another request added meanwhile is a conflict (409)."""
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(conflict) from exc


def _audit(
    session: Session, actor: audit.Actor, board: Board, change: str, detail: dict[str, Any]
) -> None:
    audit.record(
        session,
        actor,
        str(BoardAction.BOARD_MANAGE),
        "success",
        object_kind=BOARD_KIND,
        object_id=board.code,
        site_id=board.site_id,
        detail={"change": change, **detail},
    )


def _schedule_detail(board: Board) -> dict[str, Any]:
    return {
        "weekday": board.weekday,
        "at": board.at.isoformat(timespec="minutes"),
        "timezone": board.timezone,
        "duration_minutes": board.duration_minutes,
        "interval_weeks": board.interval_weeks,
        "holiday_region": board.holiday_region,
        "on_holiday": board.on_holiday,
        "starts_on": board.starts_on.isoformat(),
        "until": board.until.isoformat() if board.until else None,
    }


def _apply(board: Board, fields: BoardFields) -> None:
    board.name = fields.name.strip()
    board.board_type = fields.board_type
    board.starts_on = fields.starts_on
    board.until = fields.until
    board.weekday = fields.weekday
    board.at = fields.at.replace(second=0, microsecond=0)
    board.timezone = fields.timezone
    board.duration_minutes = fields.duration_minutes
    board.interval_weeks = fields.interval_weeks
    board.holiday_region = fields.holiday_region
    board.on_holiday = fields.on_holiday


def create_board(
    session: Session,
    actor: audit.Actor,
    code: str,
    fields: BoardFields,
    rules: QuorumRules | None = None,
) -> Board:
    """A new board organised at ``fields.site_id``, which is its first member site; its
    quorum rules are those of its type unless given."""
    code = code.strip().lower()
    if not BOARD_CODE.fullmatch(code) or len(code) > MAX_CODE_LENGTH:
        raise InvalidInput(
            _(
                "The code is lower-case letters, digits, '-' or '_', at most %(n)d "
                "characters (e.g. rcp-hemato-ouest)."
            )
            % {"n": MAX_CODE_LENGTH}
        )
    check_fields(fields)
    if session.get(Site, fields.site_id) is None:
        raise InvalidInput(_("Choose the organising site."))
    if session.scalar(select(Board.id).where(Board.code == code)) is not None:
        raise Conflict(_("A board with the code %(code)s exists already.") % {"code": code})
    chosen = rules if rules is not None else TYPE_RULES[fields.board_type]
    board = Board(
        code=code,
        site_id=fields.site_id,
        min_specialties=chosen.min_specialties,
        required_specialties=[sorted(entry) for entry in chosen.required],
    )
    _apply(board, fields)
    session.add(board)
    _flush(session, _("A board with the code %(code)s exists already.") % {"code": code})
    session.add(BoardSite(board_id=board.id, site_id=board.site_id))
    session.flush()
    _audit(
        session,
        actor,
        board,
        "created",
        {
            "name": board.name,
            "type": board.board_type,
            **_schedule_detail(board),
            "min_specialties": board.min_specialties,
            "required": board.required_specialties,
        },
    )
    return board


def update_board(session: Session, actor: audit.Actor, board: Board, fields: BoardFields) -> None:
    """Change a board's name, type and schedule (its code and organising site stay)."""
    check_fields(fields)
    _apply(board, fields)
    board.updated_at = utcnow()
    session.flush()
    _audit(
        session,
        actor,
        board,
        "edited",
        {"name": board.name, "type": board.board_type, **_schedule_detail(board)},
    )


def set_rules(
    session: Session,
    actor: audit.Actor,
    board: Board,
    rules: QuorumRules,
    records_without_discussion: bool | None = None,
) -> None:
    """Replace the board's quorum rules and, when given, whether its charter lets a case
    within guidelines be recorded without discussion."""
    board.min_specialties = rules.min_specialties
    board.required_specialties = [sorted(entry) for entry in rules.required]
    if records_without_discussion is not None:
        board.records_without_discussion = records_without_discussion
    board.updated_at = utcnow()
    session.flush()
    _audit(
        session,
        actor,
        board,
        "quorum",
        {
            "min_specialties": board.min_specialties,
            "required": board.required_specialties,
            "records_without_discussion": board.records_without_discussion,
        },
    )


def set_member(
    session: Session,
    actor: audit.Actor,
    board: Board,
    user: User,
    specialties: frozenset[str],
    role: str = "member",
) -> BoardMember:
    """Make ``user`` a member of ``board`` with these specialties and role (a member
    already there has them changed)."""
    if role not in MEMBER_ROLES:
        raise InvalidInput(_("Choose the member's role in the board."))
    if user.disabled:
        raise InvalidInput(_("This account is disabled."))
    member = session.scalar(
        select(BoardMember).where(BoardMember.board_id == board.id, BoardMember.user_id == user.id)
    )
    change = "member changed"
    if member is None:
        member = BoardMember(board_id=board.id, user_id=user.id)
        session.add(member)
        change = "member added"
    member.specialties = sorted(specialties)
    member.role = role
    _flush(session, _("This person was added to the board meanwhile; reload the page."))
    _audit(
        session,
        actor,
        board,
        change,
        {"user_id": user.id, "specialties": member.specialties, "role": role},
    )
    return member


def remove_member(session: Session, actor: audit.Actor, board: Board, user_id: int) -> None:
    """Take a person off the board."""
    removed = session.execute(
        delete(BoardMember).where(BoardMember.board_id == board.id, BoardMember.user_id == user_id)
    )
    if not getattr(removed, "rowcount", 0):
        raise NotFound(_("This person is not a member of the board."))
    _audit(session, actor, board, "member removed", {"user_id": user_id})


def add_site(session: Session, actor: audit.Actor, board: Board, site_id: int) -> None:
    """Make a hospital a member site of the board."""
    if session.get(Site, site_id) is None:
        raise InvalidInput(_("Choose a site."))
    if site_id in site_ids_of(session, board):
        raise Conflict(_("This site takes part in the board already."))
    session.add(BoardSite(board_id=board.id, site_id=site_id))
    _flush(session, _("This site takes part in the board already."))
    _audit(session, actor, board, "site added", {"site_id": site_id})


def remove_site(session: Session, actor: audit.Actor, board: Board, site_id: int) -> None:
    """A hospital stops taking part (the organising site always does)."""
    if site_id == board.site_id:
        raise InvalidInput(_("The organising site always takes part in its board."))
    removed = session.execute(
        delete(BoardSite).where(BoardSite.board_id == board.id, BoardSite.site_id == site_id)
    )
    if not getattr(removed, "rowcount", 0):
        raise NotFound(_("This site does not take part in the board."))
    _audit(session, actor, board, "site removed", {"site_id": site_id})
