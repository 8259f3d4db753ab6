"""A board's meetings, generated from its recurrence, and the agenda planning check.

:func:`meetings` expands a board's :class:`~concilium.platform.recurrence.Recurrence`
(public holidays skipped or moved as the board chose) into meetings with a stable key,
the board's code and the day the rule gives, which stays the same when a holiday moves
the meeting and so can name it in a calendar UID. :func:`next_meeting` is where a
postponed case goes.

:func:`plan_agenda` lays the cases of a meeting end to end in agenda order, each for its
estimated minutes, and works out, from when each invited member arrives and leaves, which
cases would miss their quorum: the board's rules plus the specialties the case needs,
counted over the case's slot as :func:`~concilium.boards.quorum.quorum_for_case` counts
them on the day.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from concilium.boards.quorum import (
    Attendance,
    QuorumResult,
    QuorumRules,
    assess,
    check_specialty_codes,
    present_throughout,
)
from concilium.platform.recurrence import Occurrence, Recurrence, next_occurrence, occurrences

BOARD_CODE = re.compile(r"[a-z0-9][a-z0-9_-]*")
"""Board codes are lower-case stable codes (``"rcp-digestive"``)."""
MAX_CASE_MINUTES = 240
"""Longest time one case may be planned for."""


@dataclass(frozen=True)
class BoardSchedule:
    """When a board meets and what it needs to decide."""

    board: str
    """Stable code of the board."""
    recurrence: Recurrence
    """When it meets."""
    rules: QuorumRules = field(default_factory=QuorumRules)
    """Its quorum."""

    def __post_init__(self) -> None:
        if not isinstance(self.board, str) or not BOARD_CODE.fullmatch(self.board):
            raise ValueError(
                f"board must be a code of lower-case letters, digits, '_' or '-', "
                f"got {self.board!r}"
            )
        if not isinstance(self.recurrence, Recurrence):
            raise ValueError(f"recurrence must be a Recurrence, got {self.recurrence!r}")
        if not isinstance(self.rules, QuorumRules):
            raise ValueError(f"rules must be QuorumRules, got {self.rules!r}")


@dataclass(frozen=True)
class Meeting:
    """One meeting of a board."""

    key: str
    """Stable key, ``<board>.<scheduled day>``."""
    board: str
    """The board's code."""
    occurrence: Occurrence
    """When it takes place, and whether a holiday moved it."""

    @property
    def start(self) -> datetime:
        """Start instant, in UTC."""
        return self.occurrence.start

    @property
    def end(self) -> datetime:
        """End instant, in UTC."""
        return self.occurrence.end


def meeting_key(board: str, scheduled_day: date) -> str:
    """The stable key of a board's meeting for a day its recurrence gives."""
    return f"{board}.{scheduled_day.isoformat()}"


def meetings(schedule: BoardSchedule, since: datetime, until: datetime) -> list[Meeting]:
    """The board's meetings starting in ``[since, until)``, in time order."""
    return [_meeting(schedule, o) for o in occurrences(schedule.recurrence, since, until)]


def next_meeting(schedule: BoardSchedule, after: datetime) -> Meeting | None:
    """The board's first meeting starting at or after ``after``; None when it meets no more."""
    occurrence = next_occurrence(schedule.recurrence, after)
    return None if occurrence is None else _meeting(schedule, occurrence)


def _meeting(schedule: BoardSchedule, occurrence: Occurrence) -> Meeting:
    return Meeting(
        meeting_key(schedule.board, occurrence.scheduled_day), schedule.board, occurrence
    )


# -- agenda planning -----------------------------------------------------------------------


@dataclass(frozen=True)
class AgendaCase:
    """A case on the agenda, as planning sees it."""

    case: str
    """Stable identifier of the case."""
    minutes: int
    """Estimated time to present and discuss it (0 for a case recorded without discussion)."""
    specialties: frozenset[str] = frozenset()
    """Specialties this case needs beyond the board's rules."""

    def __post_init__(self) -> None:
        if not isinstance(self.case, str) or not self.case:
            raise ValueError(f"case must be a non-empty identifier, got {self.case!r}")
        if (
            not isinstance(self.minutes, int)
            or isinstance(self.minutes, bool)
            or not 0 <= self.minutes <= MAX_CASE_MINUTES
        ):
            raise ValueError(
                f"minutes of case {self.case} must be 0 to {MAX_CASE_MINUTES}, got {self.minutes!r}"
            )
        if not isinstance(self.specialties, frozenset):
            raise ValueError(f"specialties must be a frozenset, got {self.specialties!r}")
        check_specialty_codes(self.specialties)


@dataclass(frozen=True)
class InvitedMember:
    """Someone invited to the meeting, and when they expect to be there."""

    person: str
    """Stable identifier of the person."""
    specialties: frozenset[str]
    """Specialties they may count for."""
    arrives: datetime | None = None
    """When they arrive, with a time zone; None for the start of the meeting."""
    leaves: datetime | None = None
    """When they leave, with a time zone; None for the end of the meeting or later."""

    def __post_init__(self) -> None:
        if not isinstance(self.person, str) or not self.person:
            raise ValueError(f"person must be a non-empty identifier, got {self.person!r}")
        if not isinstance(self.specialties, frozenset):
            raise ValueError(f"specialties must be a frozenset, got {self.specialties!r}")
        check_specialty_codes(self.specialties)
        for name in ("arrives", "leaves"):
            value = getattr(self, name)
            if value is not None:
                _check_instant(name, value)
        if self.arrives is not None and self.leaves is not None and self.leaves <= self.arrives:
            raise ValueError(f"{self.person} leaves before arriving")


@dataclass(frozen=True)
class PlannedCase:
    """A case placed on the agenda."""

    case: str
    """The case."""
    start: datetime
    """When its discussion would start."""
    end: datetime
    """When its decision would be taken."""
    quorum: QuorumResult
    """The quorum it would have."""
    overruns: bool
    """Whether it would end after the meeting's end."""


@dataclass(frozen=True)
class AgendaPlan:
    """The agenda laid out in time."""

    cases: tuple[PlannedCase, ...]
    """Every case, in agenda order."""
    overrun: timedelta
    """How far past the meeting's end the agenda runs (zero when it fits)."""

    @property
    def missing_quorum(self) -> tuple[PlannedCase, ...]:
        """The cases that would miss their quorum, each saying what it lacks."""
        return tuple(planned for planned in self.cases if not planned.quorum.met)


def plan_agenda(
    start: datetime,
    end: datetime,
    rules: QuorumRules,
    cases: Sequence[AgendaCase],
    members: Sequence[InvitedMember],
) -> AgendaPlan:
    """Lay ``cases`` out from ``start`` in order and check each one's quorum against when
    ``members`` are there. ``end`` is the meeting's planned end."""
    _check_instant("start", start)
    _check_instant("end", end)
    if end <= start:
        raise ValueError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
    identifiers = [item.case for item in cases]
    if len(set(identifiers)) != len(identifiers):
        raise ValueError("a case is on the agenda twice")
    attendance = [
        Attendance(
            member.person,
            member.specialties,
            start if member.arrives is None else member.arrives,
            member.leaves,
        )
        for member in members
    ]
    planned: list[PlannedCase] = []
    slot_start = start
    # The quorum of a case depends only on its rules and who is there throughout its slot
    # (quorum.quorum_for_case): an agenda of a thousand cases has few distinct pairs.
    known: dict[tuple[QuorumRules, frozenset[tuple[str, frozenset[str]]]], QuorumResult] = {}
    for item in cases:
        slot_end = slot_start + timedelta(minutes=item.minutes)
        case_rules = rules.requiring(item.specialties)
        present = present_throughout(attendance, slot_start, slot_end)
        key = (case_rules, frozenset(present.items()))
        quorum = known.get(key)
        if quorum is None:
            quorum = known[key] = assess(case_rules, present)
        planned.append(PlannedCase(item.case, slot_start, slot_end, quorum, slot_end > end))
        slot_start = slot_end
    return AgendaPlan(tuple(planned), max(timedelta(0), slot_start - end))


def _check_instant(name: str, value: datetime) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be a datetime with a time zone, got {value!r}")
