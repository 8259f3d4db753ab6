"""A board's figures over a period: how many cases each meeting took, how often the quorum
was met, how long from submission to decision, how many cases were presented again, how
many decisions departed from guidelines or proposed a trial. Counts and durations only:
nothing here names or identifies a patient.

Definitions (the period is ``[start, end)`` in UTC instants, the pages give local days):

- the meetings are the board's planned meetings starting in the period; a meeting's cases
  are those taken up (``discuss``) or recorded without discussion at it;
- a validation is a decision validated (a ``decide`` transition) or a discussed case
  postponed (a ``postpone`` from ``discussed``, which is what a validation without quorum
  does); the quorum-met rate is the first over both, in the period;
- the time from submission to decision is, for each decision validated (version 1) in the
  period, its signature less the case's submission; the median and the 90th percentile are
  nearest-rank (the smallest value with at least that share of values at or below it);
- re-presentations: the postponements in the period (each puts the case onto a later
  meeting), and the decisions asking for the case to be presented again;
- decisions outside guidelines and trials proposed count the decisions validated in the
  period (addenda are corrections, not new decisions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from concilium.boards.cases import CaseStatus
from concilium.boards.tables import (
    Board,
    BoardCase,
    BoardCaseTransition,
    BoardDecision,
    BoardMeeting,
)

PLANNED = "planned"


@dataclass(frozen=True)
class MeetingCount:
    """One meeting and the cases it took."""

    meeting_id: int
    starts_at: datetime
    cases: int


@dataclass(frozen=True)
class BoardStatistics:
    """A board's figures over a period."""

    board_id: int
    start: datetime
    end: datetime
    meetings: tuple[MeetingCount, ...]
    validations: int
    """Decisions validated plus validations refused for want of quorum."""
    quorum_met: int
    """Decisions validated."""
    delays: tuple[timedelta, ...]
    """Submission to decision, for each decision validated, shortest first."""
    postponements: int
    represent: int
    """Decisions asking for the case to be presented again."""
    outside_guidelines: int
    trials: int

    @property
    def cases(self) -> int:
        return sum(m.cases for m in self.meetings)

    @property
    def cases_per_meeting(self) -> float | None:
        return self.cases / len(self.meetings) if self.meetings else None

    @property
    def quorum_rate(self) -> float | None:
        return self.quorum_met / self.validations if self.validations else None

    @property
    def decisions(self) -> int:
        return self.quorum_met

    @property
    def median_delay(self) -> timedelta | None:
        return percentile(self.delays, 50)

    @property
    def p90_delay(self) -> timedelta | None:
        return percentile(self.delays, 90)


def percentile(values: Sequence[timedelta], rank: float) -> timedelta | None:
    """The nearest-rank ``rank``-th percentile of ``values`` (sorted); None when empty."""
    if not values:
        return None
    if not 0 < rank <= 100:
        raise ValueError(f"rank must be in (0, 100], got {rank}")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(rank / 100 * len(ordered))) - 1]


def board_statistics(
    session: Session, board: Board, start: datetime, end: datetime
) -> BoardStatistics:
    """The figures of ``board`` from ``start`` (included) to ``end`` (excluded)."""
    meeting_rows = session.execute(
        select(BoardMeeting.id, BoardMeeting.starts_at)
        .where(
            BoardMeeting.board_id == board.id,
            BoardMeeting.status == PLANNED,
            BoardMeeting.starts_at >= start,
            BoardMeeting.starts_at < end,
        )
        .order_by(BoardMeeting.starts_at)
    ).all()
    ids = [int(row.id) for row in meeting_rows]
    taken: dict[int, int] = {}
    if ids:
        counted = session.execute(
            select(
                BoardCaseTransition.meeting_id,
                func.count(func.distinct(BoardCaseTransition.case_id)),
            )
            .where(
                BoardCaseTransition.meeting_id.in_(ids),
                BoardCaseTransition.event.in_(("discuss", "record_without_discussion")),
            )
            .group_by(BoardCaseTransition.meeting_id)
        ).all()
        taken = {int(meeting or 0): int(n) for meeting, n in counted}
    meetings = tuple(
        MeetingCount(int(r.id), r.starts_at, taken.get(int(r.id), 0)) for r in meeting_rows
    )

    in_period = and_(
        BoardCase.board_id == board.id,
        BoardCaseTransition.at >= start,
        BoardCaseTransition.at < end,
    )
    by_event = dict(
        session.execute(
            select(BoardCaseTransition.event, func.count())
            .join(BoardCase, BoardCase.id == BoardCaseTransition.case_id)
            .where(
                in_period,
                BoardCaseTransition.event.in_(("decide", "postpone")),
            )
            .group_by(BoardCaseTransition.event)
        ).all()
    )
    refused = session.scalar(
        select(func.count())
        .select_from(BoardCaseTransition)
        .join(BoardCase, BoardCase.id == BoardCaseTransition.case_id)
        .where(
            in_period,
            BoardCaseTransition.event == "postpone",
            BoardCaseTransition.from_status == CaseStatus.DISCUSSED.value,
        )
    )
    decided = session.execute(
        select(
            BoardDecision.signed_at,
            BoardCase.submitted_at,
            BoardDecision.outside_guidelines,
            BoardDecision.trial,
            BoardDecision.represent,
        )
        .join(BoardCase, BoardCase.id == BoardDecision.case_id)
        .where(
            BoardCase.board_id == board.id,
            BoardDecision.version == 1,
            BoardDecision.signed_at >= start,
            BoardDecision.signed_at < end,
        )
    ).all()
    delays = tuple(
        sorted(row.signed_at - row.submitted_at for row in decided if row.submitted_at is not None)
    )
    validated = int(by_event.get("decide", 0))
    return BoardStatistics(
        board_id=board.id,
        start=start,
        end=end,
        meetings=meetings,
        validations=validated + int(refused or 0),
        quorum_met=validated,
        delays=delays,
        postponements=int(by_event.get("postpone", 0)),
        represent=sum(1 for row in decided if row.represent),
        outside_guidelines=sum(1 for row in decided if row.outside_guidelines),
        trials=sum(1 for row in decided if row.trial.strip()),
    )
