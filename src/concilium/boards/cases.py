"""The life of a case presented to a multidisciplinary meeting, as a pure state machine.

States and transitions::

    DRAFT     --submit (complete)--------------> SUBMITTED
    SUBMITTED --list on a meeting--------------> ON_AGENDA
    SUBMITTED/ON_AGENDA --send back------------> DRAFT       (incomplete, wrong board)
    ON_AGENDA --discuss------------------------> DISCUSSED
    DISCUSSED --decide (quorum met)------------> DECIDED
    ON_AGENDA/DISCUSSED --postpone to a meeting-> ON_AGENDA   (re-listed on that meeting)
    ON_AGENDA/DISCUSSED --postpone, no meeting-> POSTPONED --list on a meeting--> ON_AGENDA
    ON_AGENDA --record without discussion-----> RECORDED    (within guidelines, if the
                                                             board's charter allows it)
    any but DECIDED/RECORDED/WITHDRAWN --withdraw--> WITHDRAWN

A postponed case goes straight onto the meeting it is postponed to: the caller passes the
board's next meeting (:func:`concilium.boards.schedule.next_meeting`) so nobody has to list
it again. Every transition goes through :func:`advance`, which refuses an event the current
state does not accept with a :class:`CaseTransitionError` naming the state, the event and
the states that would accept it. Time is passed in.

:func:`missing` is the completeness check a case must pass to be submitted: it names what
is missing with stable codes, to be labelled in French and English by the pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from concilium.boards.quorum import QuorumResult


class CaseStatus(StrEnum):
    """Where a case is in its life."""

    DRAFT = "draft"
    """Being prepared by the referring physician."""
    SUBMITTED = "submitted"
    """Complete, waiting to be put on a meeting's agenda."""
    ON_AGENDA = "on_agenda"
    """Listed on a meeting."""
    DISCUSSED = "discussed"
    """Discussed, its decision not yet validated."""
    DECIDED = "decided"
    """The board's decision is validated."""
    POSTPONED = "postponed"
    """Postponed with no next meeting known yet."""
    RECORDED = "recorded"
    """Recorded without discussion, the case being within guidelines."""
    WITHDRAWN = "withdrawn"
    """Will not be presented."""


FINAL_STATUSES = frozenset({CaseStatus.DECIDED, CaseStatus.RECORDED, CaseStatus.WITHDRAWN})
"""States no event leaves."""
LISTED_STATUSES = frozenset(
    {CaseStatus.ON_AGENDA, CaseStatus.DISCUSSED, CaseStatus.DECIDED, CaseStatus.RECORDED}
)
"""States in which a case belongs to a meeting."""


@dataclass(frozen=True)
class Case:
    """The state of a case; refused at construction when inconsistent."""

    status: CaseStatus = CaseStatus.DRAFT
    """Where it is."""
    meeting: str | None = None
    """The meeting it is listed on, or was decided or recorded at."""
    postponements: int = 0
    """How many times it was postponed."""

    def __post_init__(self) -> None:
        if not isinstance(self.status, CaseStatus):
            raise ValueError(f"status must be a CaseStatus, got {self.status!r}")
        listed = self.status in LISTED_STATUSES
        if listed and not (isinstance(self.meeting, str) and self.meeting):
            raise ValueError(f"a case {self.status.value} needs its meeting")
        if not listed and self.meeting is not None:
            raise ValueError(f"a case {self.status.value} belongs to no meeting")
        if (
            not isinstance(self.postponements, int)
            or isinstance(self.postponements, bool)
            or self.postponements < 0
        ):
            raise ValueError(f"postponements must be a count, got {self.postponements!r}")


@dataclass(frozen=True)
class BoardCharter:
    """What a board's charter allows."""

    records_without_discussion: bool = False
    """Whether cases within guidelines may be recorded without being discussed."""


# -- completeness --------------------------------------------------------------------------


class Missing(StrEnum):
    """Codes of what a case lacks to be submitted."""

    PATIENT = "patient"
    """No patient is set."""
    NON_OPPOSITION = "non_opposition"
    """The patient's non-opposition to presenting the case is not recorded."""
    QUESTION = "question"
    """No question is asked of the board."""
    DIAGNOSIS = "summary.diagnosis"
    """The summary has no diagnosis."""
    HISTOLOGY = "summary.histology"
    """The summary has no histology (write what is awaited when there is none yet)."""
    STAGE = "summary.stage"
    """The summary has no stage."""
    PERFORMANCE_STATUS = "summary.performance_status"
    """The summary has no WHO/ECOG performance status."""
    HISTORY = "summary.history"
    """The summary has no relevant history (write "none" when there is none)."""
    CURRENT_TREATMENT = "summary.current_treatment"
    """The summary has no current treatment (write "none" when there is none)."""
    DOCUMENTS = "documents"
    """No document is attached."""


DOCUMENT_CODE_PREFIX = "document."
"""A required document kind that is missing is reported as ``document.<kind>``."""


@dataclass(frozen=True)
class CaseFacts:
    """What a case holds, as far as completeness is concerned."""

    patient: str | None = None
    """Identifier of the patient record, once set."""
    non_opposition_recorded: bool = False
    """Whether the patient, informed, did not object to the case being presented."""
    question: str = ""
    """The question asked of the board."""
    diagnosis: str = ""
    """Summary: diagnosis."""
    histology: str = ""
    """Summary: histology."""
    stage: str = ""
    """Summary: stage (TNM or the staging system of the disease)."""
    performance_status: int | None = None
    """Summary: WHO/ECOG performance status, 0 to 4."""
    history: str = ""
    """Summary: relevant history."""
    current_treatment: str = ""
    """Summary: current treatment."""
    documents: tuple[str, ...] = ()
    """Kind of each attached document (``"pathology_report"``, ``"imaging_report"``)."""

    def __post_init__(self) -> None:
        if self.performance_status is not None and (
            not isinstance(self.performance_status, int)
            or isinstance(self.performance_status, bool)
            or not 0 <= self.performance_status <= 4
        ):
            raise ValueError(
                f"performance_status is WHO/ECOG 0 to 4, got {self.performance_status!r}"
            )
        if not isinstance(self.documents, tuple) or not all(
            isinstance(kind, str) and kind for kind in self.documents
        ):
            raise ValueError(f"documents must be a tuple of kinds, got {self.documents!r}")


def missing(facts: CaseFacts, required_documents: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """What the case lacks to be submitted, as stable codes in a fixed order (empty when it
    is complete). ``required_documents`` are the document kinds the board asks for."""
    gaps: list[str] = []
    if not (facts.patient and facts.patient.strip()):
        gaps.append(Missing.PATIENT)
    if not facts.non_opposition_recorded:
        gaps.append(Missing.NON_OPPOSITION)
    texts: list[tuple[Missing, str]] = [
        (Missing.QUESTION, facts.question),
        (Missing.DIAGNOSIS, facts.diagnosis),
        (Missing.HISTOLOGY, facts.histology),
        (Missing.STAGE, facts.stage),
    ]
    gaps += [code for code, text in texts if not text.strip()]
    if facts.performance_status is None:
        gaps.append(Missing.PERFORMANCE_STATUS)
    texts = [(Missing.HISTORY, facts.history), (Missing.CURRENT_TREATMENT, facts.current_treatment)]
    gaps += [code for code, text in texts if not text.strip()]
    if not facts.documents:
        gaps.append(Missing.DOCUMENTS)
    gaps += [
        DOCUMENT_CODE_PREFIX + kind
        for kind in sorted(required_documents)
        if kind not in facts.documents
    ]
    return tuple(str(code) for code in gaps)


# -- events --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submit:
    """The referring physician submits the case."""

    facts: CaseFacts
    """The case's content, checked for completeness."""
    required_documents: frozenset[str] = frozenset()
    """Document kinds the board asks for."""


@dataclass(frozen=True)
class SendBack:
    """The coordinator returns the case to its author."""

    reason: str
    """Why (what to complete or correct)."""


@dataclass(frozen=True)
class PutOnAgenda:
    """The coordinator lists the case on a meeting."""

    meeting: str
    """The meeting."""


@dataclass(frozen=True)
class Discuss:
    """The board has discussed the case."""


@dataclass(frozen=True)
class Decide:
    """The facilitator validates the decision at the decision instant."""

    quorum: QuorumResult
    """The quorum for the case at that instant (:func:`quorum.quorum_for_case`)."""


@dataclass(frozen=True)
class Postpone:
    """The case is postponed, before or after being discussed."""

    reason: str
    """Why (missing examination, quorum not met, no time left)."""
    next_meeting: str | None = None
    """The meeting it goes to; None when none is scheduled yet."""


@dataclass(frozen=True)
class RecordWithoutDiscussion:
    """The case is within guidelines and recorded with the guideline's decision."""

    guideline: str
    """The guideline (référentiel) the case follows."""


@dataclass(frozen=True)
class Withdraw:
    """The case will not be presented."""

    reason: str
    """Why."""


CaseEvent = (
    Submit
    | SendBack
    | PutOnAgenda
    | Discuss
    | Decide
    | Postpone
    | RecordWithoutDiscussion
    | Withdraw
)
"""Everything that can happen to a case."""

_S = CaseStatus
ACCEPTED_BY: dict[type[CaseEvent], frozenset[CaseStatus]] = {
    Submit: frozenset({_S.DRAFT}),
    SendBack: frozenset({_S.SUBMITTED, _S.ON_AGENDA}),
    PutOnAgenda: frozenset({_S.SUBMITTED, _S.POSTPONED}),
    Discuss: frozenset({_S.ON_AGENDA}),
    Decide: frozenset({_S.DISCUSSED}),
    Postpone: frozenset({_S.ON_AGENDA, _S.DISCUSSED}),
    RecordWithoutDiscussion: frozenset({_S.ON_AGENDA}),
    Withdraw: frozenset(set(_S) - FINAL_STATUSES),
}
"""For each event, the states that accept it."""

_EVENT_NAMES: dict[type[CaseEvent], str] = {
    Submit: "submit",
    SendBack: "send_back",
    PutOnAgenda: "put_on_agenda",
    Discuss: "discuss",
    Decide: "decide",
    Postpone: "postpone",
    RecordWithoutDiscussion: "record_without_discussion",
    Withdraw: "withdraw",
}


class CaseTransitionError(ValueError):
    """An event the case's state refuses, and why."""

    def __init__(
        self, status: CaseStatus, event: str, message: str, missing: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        """The state the case is in."""
        self.event = event
        """The event refused."""
        self.missing = missing
        """What the case lacks, when it was refused for being incomplete."""


@dataclass(frozen=True)
class CaseTransition:
    """One entry of a case's history."""

    at: datetime
    """When, with a time zone."""
    previous: CaseStatus
    """State left."""
    case: Case
    """The case after the event."""
    event: str
    """The event's name (``"postpone"``)."""
    detail: str = ""
    """The reason, guideline or meeting given with the event."""


def event_name(event: CaseEvent) -> str:
    """The stable name of an event (``"record_without_discussion"``)."""
    return _EVENT_NAMES[type(event)]


def advance(
    case: Case, event: CaseEvent, at: datetime, charter: BoardCharter | None = None
) -> CaseTransition:
    """Apply ``event`` to ``case`` at ``at``: the one place where a case changes state."""
    if not isinstance(at, datetime) or at.utcoffset() is None:
        raise ValueError(f"at must be a datetime with a time zone, got {at!r}")
    if type(event) not in ACCEPTED_BY:
        raise ValueError(f"unknown case event {event!r}")
    charter = charter or BoardCharter()
    name = event_name(event)
    accepted = ACCEPTED_BY[type(event)]
    if case.status not in accepted:
        states = ", ".join(sorted(status.value for status in accepted))
        raise CaseTransitionError(
            case.status,
            name,
            f"cannot {name.replace('_', ' ')} a case that is {case.status.value} "
            f"(only a case that is {states})",
        )

    def refuse(message: str, gaps: tuple[str, ...] = ()) -> CaseTransitionError:
        return CaseTransitionError(case.status, name, message, gaps)

    def text(value: object, what: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise refuse(f"{what} must be given")
        return value.strip()

    def to(
        status: CaseStatus,
        detail: str = "",
        meeting: str | None = None,
        postponements: int | None = None,
    ) -> CaseTransition:
        if status in LISTED_STATUSES:
            meeting = meeting or case.meeting
        after = Case(
            status,
            meeting if status in LISTED_STATUSES else None,
            case.postponements if postponements is None else postponements,
        )
        return CaseTransition(at, case.status, after, name, detail)

    match event:
        case Submit(facts=facts, required_documents=required):
            gaps = missing(facts, required)
            if gaps:
                raise refuse(f"the case is incomplete: {', '.join(gaps)}", gaps)
            return to(_S.SUBMITTED)
        case SendBack(reason=reason):
            return to(_S.DRAFT, text(reason, "a reason"))
        case PutOnAgenda(meeting=meeting):
            meeting = text(meeting, "a meeting")
            return to(_S.ON_AGENDA, meeting, meeting=meeting)
        case Discuss():
            return to(_S.DISCUSSED)
        case Decide(quorum=quorum):
            if not quorum.met:
                raise refuse(f"the quorum is not met: {_shortfall(quorum)}")
            return to(_S.DECIDED)
        case Postpone(reason=reason, next_meeting=next_meeting):
            detail = text(reason, "a reason")
            count = case.postponements + 1
            if next_meeting is None:
                return to(_S.POSTPONED, detail, postponements=count)
            meeting = text(next_meeting, "a meeting")
            if meeting == case.meeting:
                raise refuse(f"a case postponed from meeting {meeting} cannot go back onto it")
            return to(_S.ON_AGENDA, detail, meeting=meeting, postponements=count)
        case RecordWithoutDiscussion(guideline=guideline):
            if not charter.records_without_discussion:
                raise refuse("the board's charter does not allow recording without discussion")
            return to(_S.RECORDED, text(guideline, "a guideline"))
        case Withdraw(reason=reason):
            return to(_S.WITHDRAWN, text(reason, "a reason"))
    raise AssertionError(f"unhandled case event {event!r}")  # pragma: no cover


def _shortfall(quorum: QuorumResult) -> str:
    parts = [" or ".join(sorted(requirement)) for requirement in quorum.missing_required]
    text = f"{quorum.more_needed} more specialt{'y' if quorum.more_needed == 1 else 'ies'}"
    return f"{text} needed, including {'; '.join(parts)}" if parts else f"{text} needed"
