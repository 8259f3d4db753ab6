"""The cases of the boards, kept in the database: a referring physician prepares a draft
(structured summary, documents, studies of the archive), submits it once complete and the
patient's non-opposition recorded; the coordinator lists it on a meeting, sets its time and
the specialties it needs, postpones it (re-listed on the board's next meeting by itself),
records it without discussion where the charter allows it; the referring physician may
withdraw it.

Every change goes through :func:`concilium.boards.cases.advance`, writes one
:class:`~concilium.boards.tables.BoardCaseTransition` (who, when, from, to) and one audit
entry naming the patient, in the caller's transaction. Every view of a case is audited
(:func:`record_view`). A refused change is an :class:`~concilium.platform.errors.InvalidInput`
(what to complete, 422) or a :class:`~concilium.platform.errors.Conflict` (the case's state
does not allow it, 409), in the reader's language, and writes nothing. No patient data goes
to the logs: audit entries name the patient by the record's id only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from concilium.boards import cases, registry
from concilium.boards.actions import BoardAction
from concilium.boards.cases import BoardCharter, CaseFacts, CaseStatus, CaseTransitionError
from concilium.boards.meetings import PLANNED
from concilium.boards.quorum import QuorumResult
from concilium.boards.schedule import MAX_CASE_MINUTES, next_meeting
from concilium.boards.tables import (
    Board,
    BoardCase,
    BoardCaseDocument,
    BoardCaseStudy,
    BoardCaseTransition,
    BoardMeeting,
    BoardMember,
)
from concilium.config import mailbox_address
from concilium.platform import audit, patients
from concilium.platform.errors import Conflict, InvalidInput, NotFound
from concilium.platform.i18n import N_, _
from concilium.platform.policy import Target

CASE_KIND = "board_case"
"""The policy's and the audit trail's name for a case."""
MDT_PRESENTATION = patients.MDT_PRESENTATION
"""The consent purpose a case needs: the patient's non-opposition to its presentation."""
MAX_TEXT = 4000
MAX_STAGE = 200
DEFAULT_MINUTES = 10
AGENDA_ROLES = frozenset({"coordinator", "facilitator"})
"""Members of a board who build its agendas."""

STATUS_LABELS: dict[str, str] = {
    CaseStatus.DRAFT: N_("draft"),
    CaseStatus.SUBMITTED: N_("submitted"),
    CaseStatus.ON_AGENDA: N_("on an agenda"),
    CaseStatus.DISCUSSED: N_("discussed"),
    CaseStatus.DECIDED: N_("decided"),
    CaseStatus.POSTPONED: N_("postponed"),
    CaseStatus.RECORDED: N_("recorded without discussion"),
    CaseStatus.WITHDRAWN: N_("withdrawn"),
}
EVENT_LABELS: dict[str, str] = {
    "create": N_("Draft created"),
    "submit": N_("Submitted"),
    "send_back": N_("Sent back to its author"),
    "put_on_agenda": N_("Listed on a meeting"),
    "discuss": N_("Discussed"),
    "decide": N_("Decided"),
    "postpone": N_("Postponed"),
    "record_without_discussion": N_("Recorded without discussion"),
    "withdraw": N_("Withdrawn"),
}
MISSING_LABELS: dict[str, str] = {
    cases.Missing.PATIENT: N_("the patient"),
    cases.Missing.NON_OPPOSITION: N_(
        "the patient's non-opposition to the presentation of their case, recorded on the "
        "patient's page"
    ),
    cases.Missing.QUESTION: N_("the question asked of the board"),
    cases.Missing.DIAGNOSIS: N_("the diagnosis"),
    cases.Missing.HISTOLOGY: N_("the histology (write what is awaited if there is none yet)"),
    cases.Missing.STAGE: N_("the stage"),
    cases.Missing.PERFORMANCE_STATUS: N_("the performance status (WHO/ECOG 0 to 4)"),
    cases.Missing.HISTORY: N_("the relevant history (write “none” if there is none)"),
    cases.Missing.CURRENT_TREATMENT: N_("the current treatment (write “none” if there is none)"),
    cases.Missing.DOCUMENTS: N_("at least one document"),
}


@dataclass(frozen=True)
class CaseFields:
    """What the case form gives: the question and the structured summary."""

    question: str = ""
    diagnosis: str = ""
    histology: str = ""
    stage: str = ""
    performance_status: int | None = None
    history: str = ""
    current_treatment: str = ""
    within_guidelines: bool = False
    gp_email: str = ""
    """The patient's general practitioner's address, who gets the fiche RCP."""


@dataclass(frozen=True)
class EarlierDecision:
    """A case of the same patient that a board decided or recorded."""

    case: BoardCase
    board: Board
    at: datetime
    """When it was decided or recorded."""
    detail: str
    """The guideline given when recorded without discussion."""


# --- what the policy needs to know ----------------------------------------------------------


def _member_ids(session: Session, board_id: int, roles: frozenset[str] | None = None) -> set[int]:
    query = select(BoardMember.user_id).where(BoardMember.board_id == board_id)
    if roles is not None:
        query = query.where(BoardMember.role.in_(roles))
    return set(session.scalars(query))


def case_target(session: Session, case: BoardCase) -> Target:
    """A case as the policy sees it: owned by its board's organising site (whose
    coordinators see it), shared with its referring physician and the board's members."""
    board = registry.get_board(session, case.board_id)
    return Target(
        kind=CASE_KIND,
        id=str(case.id),
        site_ids=frozenset({board.site_id}),
        patient_id=case.patient_id,
        shared_user_ids=frozenset(_member_ids(session, board.id) | {case.referrer_id}),
    )


def edit_target(case: BoardCase) -> Target:
    """A case as its author edits it: nobody but the referring physician."""
    return Target(
        kind=CASE_KIND,
        id=str(case.id),
        patient_id=case.patient_id,
        shared_user_ids=frozenset({case.referrer_id}),
    )


def agenda_target(session: Session, board: Board) -> Target:
    """A board's agendas: built by its coordinators and facilitators and the organising
    site's coordinators."""
    return Target(
        kind=registry.BOARD_KIND,
        id=str(board.id),
        site_ids=frozenset({board.site_id}),
        shared_user_ids=frozenset(_member_ids(session, board.id, AGENDA_ROLES)),
    )


def submission_target(session: Session, board: Board) -> Target:
    """A board cases are submitted to: by physicians of its member sites and its members."""
    return Target(
        kind=registry.BOARD_KIND,
        id=str(board.id),
        site_ids=registry.site_ids_of(session, board),
        shared_user_ids=frozenset(_member_ids(session, board.id)),
    )


# --- reading -----------------------------------------------------------------------------------


def get_case(session: Session, case_id: int) -> BoardCase:
    case = session.get(BoardCase, case_id)
    if case is None:
        raise NotFound(_("No such case."))
    return case


def get_meeting(session: Session, meeting_id: int) -> BoardMeeting:
    meeting = session.get(BoardMeeting, meeting_id)
    if meeting is None:
        raise NotFound(_("No such meeting."))
    return meeting


def record_view(
    session: Session, actor: audit.Actor, case: BoardCase, outcome: str, what: str = "case"
) -> None:
    """Audit one view of a case (``what``: the case, a document)."""
    board = registry.get_board(session, case.board_id)
    audit.record(
        session,
        actor,
        str(BoardAction.CASE_READ),
        outcome,
        object_kind=CASE_KIND,
        object_id=case.id,
        patient_id=case.patient_id,
        site_id=board.site_id,
        detail={"board": board.code, "viewed": what},
    )


def record_views(
    session: Session,
    actor: audit.Actor,
    board: Board,
    shown: Sequence[BoardCase],
    outcome: str,
    what: str,
) -> None:
    """Audit the view of each case of ``shown`` (a list of ``board``'s cases on a page), as
    :func:`record_view` does, in one round (``audit.record_many``)."""
    audit.record_many(
        session,
        actor,
        [
            audit.Entry(
                str(BoardAction.CASE_READ),
                outcome,
                object_kind=CASE_KIND,
                object_id=case.id,
                patient_id=case.patient_id,
                site_id=board.site_id,
                detail={"board": board.code, "viewed": what},
            )
            for case in shown
        ],
    )


def documents_of(session: Session, case: BoardCase) -> list[BoardCaseDocument]:
    return list(
        session.scalars(
            select(BoardCaseDocument)
            .where(BoardCaseDocument.case_id == case.id)
            .order_by(BoardCaseDocument.id)
        )
    )


def get_document(session: Session, case: BoardCase, document_id: int) -> BoardCaseDocument:
    document = session.get(BoardCaseDocument, document_id)
    if document is None or document.case_id != case.id:
        raise NotFound(_("No such document."))
    return document


def studies_of(session: Session, case: BoardCase) -> list[BoardCaseStudy]:
    return list(
        session.scalars(
            select(BoardCaseStudy)
            .where(BoardCaseStudy.case_id == case.id)
            .order_by(BoardCaseStudy.study_date, BoardCaseStudy.id)
        )
    )


def history_of(session: Session, case: BoardCase) -> list[BoardCaseTransition]:
    """Every change of state of the case, oldest first."""
    return list(
        session.scalars(
            select(BoardCaseTransition)
            .where(BoardCaseTransition.case_id == case.id)
            .order_by(BoardCaseTransition.at, BoardCaseTransition.id)
        )
    )


def facts_of(session: Session, case: BoardCase) -> CaseFacts:
    """What the completeness check reads of the case, the recorded consent included."""
    kinds = session.scalars(
        select(BoardCaseDocument.kind).where(BoardCaseDocument.case_id == case.id)
    )
    return CaseFacts(
        patient=str(case.patient_id),
        non_opposition_recorded=patients.has_consent(session, case.patient_id, MDT_PRESENTATION),
        question=case.question,
        diagnosis=case.diagnosis,
        histology=case.histology,
        stage=case.stage,
        performance_status=case.performance_status,
        history=case.history,
        current_treatment=case.current_treatment,
        documents=tuple(kinds),
    )


def missing_of(session: Session, case: BoardCase) -> tuple[str, ...]:
    """What the case lacks to be submitted (codes of :class:`concilium.boards.cases.Missing`)."""
    return cases.missing(facts_of(session, case))


def missing_labels(codes: Sequence[str]) -> list[str]:
    """What is missing, in the reader's language."""
    return [_(MISSING_LABELS[code]) if code in MISSING_LABELS else code for code in codes]


def earlier_decisions(session: Session, case: BoardCase) -> list[EarlierDecision]:
    """The patient's other cases that a board decided or recorded, newest first (the
    caller shows only those the reader may see)."""
    ended = (CaseStatus.DECIDED.value, CaseStatus.RECORDED.value)
    last = (
        select(
            BoardCaseTransition.case_id,
            func.max(BoardCaseTransition.id).label("last_id"),
        )
        .where(BoardCaseTransition.to_status.in_(ended))
        .group_by(BoardCaseTransition.case_id)
        .subquery()
    )
    rows = session.execute(
        select(BoardCase, Board, BoardCaseTransition)
        .join(Board, Board.id == BoardCase.board_id)
        .join(last, last.c.case_id == BoardCase.id)
        .join(BoardCaseTransition, BoardCaseTransition.id == last.c.last_id)
        .where(
            BoardCase.patient_id == case.patient_id,
            BoardCase.id != case.id,
            BoardCase.status.in_(ended),
        )
        .order_by(BoardCaseTransition.at.desc(), BoardCase.id.desc())
    )
    return [EarlierDecision(c, b, t.at, t.detail) for c, b, t in rows.all()]


def cases_of_referrer(session: Session, user_id: int, limit: int = 100) -> list[BoardCase]:
    """The cases a physician refers, newest first."""
    return list(
        session.scalars(
            select(BoardCase)
            .where(BoardCase.referrer_id == user_id)
            .order_by(BoardCase.created_at.desc(), BoardCase.id.desc())
            .limit(limit)
        )
    )


def waiting_cases(session: Session, board: Board) -> list[BoardCase]:
    """The board's cases submitted or postponed, waiting to be listed, oldest first."""
    return list(
        session.scalars(
            select(BoardCase)
            .where(
                BoardCase.board_id == board.id,
                BoardCase.status.in_((CaseStatus.SUBMITTED.value, CaseStatus.POSTPONED.value)),
            )
            .order_by(BoardCase.submitted_at, BoardCase.id)
        )
    )


def agenda_of(session: Session, meeting: BoardMeeting) -> list[BoardCase]:
    """The cases of a meeting, in agenda order."""
    return list(
        session.scalars(
            select(BoardCase)
            .where(BoardCase.meeting_id == meeting.id)
            .order_by(BoardCase.agenda_order, BoardCase.id)
        )
    )


# --- a draft -----------------------------------------------------------------------------------


def check_fields(fields: CaseFields) -> None:
    """Refuse what does not fit, saying what to write instead."""
    if fields.gp_email.strip():
        try:
            mailbox_address(fields.gp_email.strip())
        except ValueError:
            raise InvalidInput(
                _("Write the general practitioner's e-mail address as name@domain.")
            ) from None
    for value in (
        fields.question,
        fields.diagnosis,
        fields.histology,
        fields.history,
        fields.current_treatment,
    ):
        if len(value) > MAX_TEXT:
            raise InvalidInput(_("Each text is at most %(n)d characters.") % {"n": MAX_TEXT})
    if len(fields.stage) > MAX_STAGE:
        raise InvalidInput(_("The stage is at most %(n)d characters.") % {"n": MAX_STAGE})
    if fields.performance_status is not None and not 0 <= fields.performance_status <= 4:
        raise InvalidInput(_("The performance status is WHO/ECOG 0 to 4."))


def audit_case(
    session: Session,
    actor: audit.Actor,
    action: str,
    case: BoardCase,
    change: str,
    detail: dict[str, Any] | None = None,
) -> None:
    board = registry.get_board(session, case.board_id)
    audit.record(
        session,
        actor,
        action,
        "success",
        object_kind=CASE_KIND,
        object_id=case.id,
        patient_id=case.patient_id,
        site_id=board.site_id,
        detail={"board": board.code, "change": change, **(detail or {})},
    )


def _apply_fields(case: BoardCase, fields: CaseFields) -> None:
    case.question = fields.question.strip()
    case.diagnosis = fields.diagnosis.strip()
    case.histology = fields.histology.strip()
    case.stage = fields.stage.strip()
    case.performance_status = fields.performance_status
    case.history = fields.history.strip()
    case.current_treatment = fields.current_treatment.strip()
    case.within_guidelines = fields.within_guidelines
    case.gp_email = fields.gp_email.strip()


def create_draft(
    session: Session,
    actor: audit.Actor,
    board: Board,
    patient_id: int,
    referrer_id: int,
    fields: CaseFields,
    now: datetime,
) -> BoardCase:
    """A new draft case of ``patient_id`` for ``board``, referred by ``referrer_id``."""
    check_fields(fields)
    patients.get_patient(session, patient_id)
    case = BoardCase(
        board_id=board.id,
        patient_id=patient_id,
        referrer_id=referrer_id,
        status=CaseStatus.DRAFT.value,
        minutes=DEFAULT_MINUTES,
        specialties_needed=[],
        agenda_order=0,
        postponements=0,
        created_at=now,
        updated_at=now,
    )
    _apply_fields(case, fields)
    session.add(case)
    session.flush()
    session.add(
        BoardCaseTransition(
            case_id=case.id,
            at=now,
            actor_id=actor.user_id,
            event="create",
            from_status=CaseStatus.DRAFT.value,
            to_status=CaseStatus.DRAFT.value,
            detail="",
        )
    )
    session.flush()
    audit_case(session, actor, str(BoardAction.CASE_SUBMIT), case, "draft created")
    return case


def check_editable(case: BoardCase) -> None:
    if case.status != CaseStatus.DRAFT.value:
        raise Conflict(
            _("This case is %(status)s: only a draft can be changed.")
            % {"status": _(STATUS_LABELS[case.status])}
        )


def update_draft(
    session: Session, actor: audit.Actor, case: BoardCase, fields: CaseFields, now: datetime
) -> None:
    """Change the question and summary of a draft."""
    check_editable(case)
    check_fields(fields)
    _apply_fields(case, fields)
    case.updated_at = now
    session.flush()
    audit_case(session, actor, str(BoardAction.CASE_EDIT), case, "edited")


# --- changes of state --------------------------------------------------------------------------


def _meeting_key(session: Session, meeting_id: int | None) -> str | None:
    if meeting_id is None:
        return None
    return get_meeting(session, meeting_id).key


def _state(session: Session, case: BoardCase) -> cases.Case:
    status = CaseStatus(case.status)
    key = _meeting_key(session, case.meeting_id) if status in cases.LISTED_STATUSES else None
    return cases.Case(status, key, case.postponements)


def _refused(case: BoardCase, exc: CaseTransitionError) -> Conflict | InvalidInput:
    if exc.missing:
        return InvalidInput(
            _("The case cannot be submitted yet; missing: %(missing)s.")
            % {"missing": "; ".join(missing_labels(exc.missing))}
        )
    return Conflict(
        _("This is not possible for a case that is %(status)s.")
        % {"status": _(STATUS_LABELS[case.status])}
    )


def _advance(
    session: Session,
    actor: audit.Actor,
    action: str,
    case: BoardCase,
    event: cases.CaseEvent,
    now: datetime,
    meeting: BoardMeeting | None = None,
    charter: BoardCharter | None = None,
) -> cases.CaseTransition:
    try:
        transition = cases.advance(_state(session, case), event, now, charter)
    except CaseTransitionError as exc:
        raise _refused(case, exc) from exc
    status = transition.case.status
    if status in cases.LISTED_STATUSES:
        if meeting is not None:
            if case.meeting_id != meeting.id:
                case.agenda_order = _next_order(session, meeting)
            case.meeting_id = meeting.id
    else:
        case.meeting_id = None
        case.agenda_order = 0
    case.status = status.value
    case.postponements = transition.case.postponements
    case.updated_at = now
    session.add(
        BoardCaseTransition(
            case_id=case.id,
            at=now,
            actor_id=actor.user_id,
            event=transition.event,
            from_status=transition.previous.value,
            to_status=status.value,
            meeting_id=case.meeting_id,
            detail=transition.detail,
        )
    )
    session.flush()
    audit_case(
        session,
        actor,
        action,
        case,
        transition.event,
        {"from": transition.previous.value, "to": status.value, "meeting": transition.case.meeting},
    )
    return transition


def _next_order(session: Session, meeting: BoardMeeting) -> int:
    last = session.scalar(
        select(func.max(BoardCase.agenda_order)).where(BoardCase.meeting_id == meeting.id)
    )
    return (last or 0) + 1


def _check_consent(session: Session, case: BoardCase) -> None:
    if not patients.has_consent(session, case.patient_id, MDT_PRESENTATION):
        raise InvalidInput(
            _(
                "The patient's non-opposition to the presentation of their case is not "
                "recorded: record it on the patient's page first."
            )
        )


def submit(session: Session, actor: audit.Actor, case: BoardCase, now: datetime) -> None:
    """Submit a complete draft, the patient's non-opposition recorded."""
    _advance(
        session, actor, str(BoardAction.CASE_EDIT), case, cases.Submit(facts_of(session, case)), now
    )
    case.submitted_at = now
    session.flush()


def _open_meeting(board: Board, meeting: BoardMeeting, now: datetime) -> None:
    if meeting.board_id != board.id:
        raise InvalidInput(_("Choose a meeting of this board."))
    if meeting.status != PLANNED or meeting.ends_at <= now:
        raise InvalidInput(_("Choose a meeting that is planned and not over."))


def list_on_meeting(
    session: Session, actor: audit.Actor, case: BoardCase, meeting: BoardMeeting, now: datetime
) -> None:
    """Put a submitted (or postponed) case at the end of a coming meeting's agenda."""
    board = registry.get_board(session, case.board_id)
    _open_meeting(board, meeting, now)
    _check_consent(session, case)
    event = cases.PutOnAgenda(meeting.key)
    _advance(session, actor, str(BoardAction.AGENDA_MANAGE), case, event, now, meeting)


def plan_case(
    session: Session,
    actor: audit.Actor,
    case: BoardCase,
    minutes: int,
    specialties: frozenset[str],
    now: datetime,
) -> None:
    """Set the time a listed case is planned for and the specialties it needs."""
    if case.status != CaseStatus.ON_AGENDA.value:
        raise Conflict(_("Only a case on an agenda is planned."))
    if not 0 <= minutes <= MAX_CASE_MINUTES:
        raise InvalidInput(_("The time of a case is 0 to %(n)d minutes.") % {"n": MAX_CASE_MINUTES})
    case.minutes = minutes
    case.specialties_needed = sorted(specialties)
    case.updated_at = now
    session.flush()
    audit_case(
        session,
        actor,
        str(BoardAction.AGENDA_MANAGE),
        case,
        "planned",
        {"minutes": minutes, "specialties": case.specialties_needed},
    )


def reorder(
    session: Session,
    actor: audit.Actor,
    meeting: BoardMeeting,
    case_ids: Sequence[int],
    now: datetime,
) -> None:
    """Put the meeting's cases in this order; every case of the agenda must be named once."""
    listed = agenda_of(session, meeting)
    if sorted(case_ids) != sorted(c.id for c in listed):
        raise InvalidInput(_("Give each case of the agenda a place, each once."))
    by_id = {c.id: c for c in listed}
    for place, case_id in enumerate(case_ids, start=1):
        by_id[case_id].agenda_order = place
        by_id[case_id].updated_at = now
    session.flush()
    board = registry.get_board(session, meeting.board_id)
    audit.record(
        session,
        actor,
        str(BoardAction.AGENDA_MANAGE),
        "success",
        object_kind="board_meeting",
        object_id=meeting.key,
        site_id=board.site_id,
        detail={"change": "agenda reordered", "cases": list(case_ids)},
    )


def _meeting_row(session: Session, board: Board, found: Any) -> BoardMeeting:
    """The meeting row of a meeting the schedule gives, added when not generated yet."""
    row = session.scalar(select(BoardMeeting).where(BoardMeeting.key == found.key))
    if row is None:
        row = BoardMeeting(
            board_id=board.id,
            key=found.key,
            scheduled_day=found.occurrence.scheduled_day,
            starts_at=found.start,
            ends_at=found.end,
            status=PLANNED,
            moved_for=found.occurrence.moved_for.code if found.occurrence.moved_for else "",
        )
        session.add(row)
        session.flush()
    return row


def discuss(session: Session, actor: audit.Actor, case: BoardCase, now: datetime) -> None:
    """The meeting takes the listed case up."""
    _advance(session, actor, str(BoardAction.MEETING_RUN), case, cases.Discuss(), now)


def decide(
    session: Session, actor: audit.Actor, case: BoardCase, quorum: QuorumResult, now: datetime
) -> None:
    """The facilitator validates the discussed case's decision, its quorum met."""
    _advance(session, actor, str(BoardAction.MEETING_RUN), case, cases.Decide(quorum), now)


def postpone(
    session: Session, actor: audit.Actor, case: BoardCase, reason: str, now: datetime
) -> BoardMeeting | None:
    """Postpone a listed case: it goes onto the board's next meeting by itself (the meeting
    the schedule gives after this one), or waits, postponed, when the board meets no more."""
    if not reason.strip():
        raise InvalidInput(_("Say why the case is postponed."))
    board = registry.get_board(session, case.board_id)
    current = get_meeting(session, case.meeting_id) if case.meeting_id is not None else None
    after = now if current is None else max(now, current.starts_at + timedelta(seconds=1))
    found = next_meeting(registry.schedule_of(board), after)
    target = _meeting_row(session, board, found) if found is not None else None
    event = cases.Postpone(reason.strip()[:MAX_TEXT], target.key if target else None)
    _advance(session, actor, str(BoardAction.AGENDA_MANAGE), case, event, now, target)
    return target


def record_without_discussion(
    session: Session, actor: audit.Actor, case: BoardCase, guideline: str, now: datetime
) -> None:
    """Record a listed case within guidelines without discussing it, if the charter allows."""
    board = registry.get_board(session, case.board_id)
    if not board.records_without_discussion:
        raise Conflict(_("This board's charter does not allow recording without discussion."))
    if not guideline.strip():
        raise InvalidInput(_("Name the guideline the case follows."))
    event = cases.RecordWithoutDiscussion(guideline.strip()[:MAX_TEXT])
    charter = BoardCharter(records_without_discussion=True)
    _advance(session, actor, str(BoardAction.AGENDA_MANAGE), case, event, now, charter=charter)


def withdraw(
    session: Session, actor: audit.Actor, case: BoardCase, reason: str, now: datetime
) -> None:
    """The case will not be presented."""
    if not reason.strip():
        raise InvalidInput(_("Say why the case is withdrawn."))
    event = cases.Withdraw(reason.strip()[:MAX_TEXT])
    _advance(session, actor, str(BoardAction.CASE_EDIT), case, event, now)
