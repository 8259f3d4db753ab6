"""A meeting's agenda laid out in time, with the quorum each case would have.

:func:`forecast` reads the meeting's cases in agenda order, each for its estimated minutes
and the specialties it needs, and the people invited, and asks
:func:`concilium.boards.schedule.plan_agenda` which cases would miss their quorum under the
board's rules. Everyone who is a member of the board is invited, for the whole meeting:
members do not yet say when they will arrive or leave, so the forecast is what the
board's membership allows at best (a case needing a specialty no member holds is shown
as missing it). A case recorded without discussion takes no time.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from concilium.boards import case_store, registry
from concilium.boards.cases import CaseStatus
from concilium.boards.schedule import (
    AgendaCase,
    AgendaPlan,
    InvitedMember,
    PlannedCase,
    plan_agenda,
)
from concilium.boards.tables import Board, BoardCase, BoardMeeting


@dataclass(frozen=True)
class AgendaItem:
    """A case of the agenda with its slot and forecast quorum."""

    case: BoardCase
    planned: PlannedCase


@dataclass(frozen=True)
class Forecast:
    """The agenda of a meeting as the coordinator sees it."""

    items: tuple[AgendaItem, ...]
    plan: AgendaPlan

    @property
    def missing_quorum(self) -> tuple[AgendaItem, ...]:
        """The cases that would miss their quorum."""
        return tuple(item for item in self.items if not item.planned.quorum.met)


def invited_members(session: Session, board: Board) -> list[InvitedMember]:
    """Everyone of the board, there for the whole meeting."""
    return [
        InvitedMember(str(member.user_id), frozenset(member.specialties))
        for member in registry.members_of(session, board)
    ]


def forecast(session: Session, board: Board, meeting: BoardMeeting) -> Forecast:
    """The meeting's cases laid out from its start, each with the quorum it would have."""
    listed = case_store.agenda_of(session, meeting)
    agenda = [
        AgendaCase(
            str(case.id),
            0 if case.status == CaseStatus.RECORDED.value else case.minutes,
            frozenset(case.specialties_needed),
        )
        for case in listed
    ]
    plan = plan_agenda(
        meeting.starts_at,
        meeting.ends_at,
        registry.rules_of(board),
        agenda,
        invited_members(session, board),
    )
    items = tuple(
        AgendaItem(case, planned) for case, planned in zip(listed, plan.cases, strict=True)
    )
    return Forecast(items, plan)
