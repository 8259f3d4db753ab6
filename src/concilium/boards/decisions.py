"""The decision of a board on a case, and its addenda.

The facilitator writes the collective proposal (the treatment plan), the guideline or
reference used, whether it is outside guidelines (then a justification is required), a
clinical trial proposed, further examinations or a new presentation, and the referent
physician who follows the patient up, and validates it with their second factor. The
validation is accepted only when the case's quorum is met: those present, validated, from
the start of its discussion to that instant
(:func:`concilium.boards.attendance.case_quorum`). Otherwise nothing of the decision is
kept and the case goes by itself onto the board's next meeting, the missing specialties
named as the reason (:func:`concilium.boards.case_store.postpone`).

A validated decision is version 1 of :class:`~concilium.boards.tables.BoardDecision` and
is never changed: a correction is an addendum, the next version, with what it corrects,
signed the same way. Each version keeps a SHA-256 digest of its content chained to the
previous version's, so a changed row shows. Every step is audited with the patient.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.boards import attendance, case_store, registry
from concilium.boards.actions import BoardAction
from concilium.boards.cases import CaseStatus
from concilium.boards.quorum import QuorumResult
from concilium.boards.tables import BoardCase, BoardDecision, BoardMeeting
from concilium.platform import audit
from concilium.platform.errors import Conflict, InvalidInput
from concilium.platform.i18n import _

MAX_TEXT = case_store.MAX_TEXT


@dataclass(frozen=True)
class DecisionFields:
    """What the facilitator writes on the decision form."""

    proposal: str = ""
    guideline: str = ""
    outside_guidelines: bool = False
    justification: str = ""
    trial: str = ""
    further_exams: str = ""
    represent: bool = False
    referent_id: int | None = None


@dataclass(frozen=True)
class Validation:
    """What came of a validation: the decision, or the case postponed for want of quorum."""

    quorum: QuorumResult
    decision: BoardDecision | None = None
    postponed_to: BoardMeeting | None = None
    missing: tuple[str, ...] = ()
    """What the quorum lacked, in words."""


def decisions_of(session: Session, case: BoardCase) -> list[BoardDecision]:
    """The decision and its addenda, oldest first."""
    return list(
        session.scalars(
            select(BoardDecision)
            .where(BoardDecision.case_id == case.id)
            .order_by(BoardDecision.version)
        )
    )


def referent_ids(session: Session, case: BoardCase) -> list[int]:
    """Who may be named referent: the referring physician and the board's members."""
    board = registry.get_board(session, case.board_id)
    members = [m.user_id for m in registry.members_of(session, board)]
    return [case.referrer_id] + [m for m in members if m != case.referrer_id]


def check_fields(session: Session, case: BoardCase, fields: DecisionFields) -> None:
    """Refuse an incomplete or inconsistent form, saying what to write."""
    if not fields.proposal.strip():
        raise InvalidInput(_("Write the board's proposal."))
    if not fields.guideline.strip():
        raise InvalidInput(_("Name the guideline or reference used."))
    if fields.outside_guidelines and not fields.justification.strip():
        raise InvalidInput(_("A proposal outside guidelines needs its justification."))
    texts = (
        fields.proposal,
        fields.guideline,
        fields.justification,
        fields.trial,
        fields.further_exams,
    )
    if any(len(text) > MAX_TEXT for text in texts):
        raise InvalidInput(_("Each field is at most %(n)d characters.") % {"n": MAX_TEXT})
    if fields.referent_id is None or fields.referent_id not in referent_ids(session, case):
        raise InvalidInput(
            _("Choose the referent physician among the referring physician and the members.")
        )


def _digest(row: BoardDecision, previous: str) -> str:
    content = {
        "case": row.case_id,
        "version": row.version,
        "proposal": row.proposal,
        "guideline": row.guideline,
        "outside_guidelines": row.outside_guidelines,
        "justification": row.justification,
        "trial": row.trial,
        "further_exams": row.further_exams,
        "represent": row.represent,
        "referent": row.referent_id,
        "reason": row.reason,
        "participants": row.participants,
        "signed_by": row.signed_by_id,
        "signed_at": row.signed_at.astimezone(UTC).isoformat(),
        "previous": previous,
    }
    text = json.dumps(content, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _row(
    case: BoardCase,
    version: int,
    meeting_id: int,
    fields: DecisionFields,
    participants: list[dict[str, object]],
    started_at: datetime,
    signer: int,
    now: datetime,
    reason: str = "",
) -> BoardDecision:
    assert fields.referent_id is not None
    return BoardDecision(
        case_id=case.id,
        version=version,
        meeting_id=meeting_id,
        proposal=fields.proposal.strip(),
        guideline=fields.guideline.strip(),
        outside_guidelines=fields.outside_guidelines,
        justification=fields.justification.strip() if fields.outside_guidelines else "",
        trial=fields.trial.strip(),
        further_exams=fields.further_exams.strip(),
        represent=fields.represent,
        referent_id=fields.referent_id,
        reason=reason,
        participants=participants,
        discussion_started_at=started_at,
        signed_by_id=signer,
        signed_at=now,
    )


def _audit(
    session: Session, actor: audit.Actor, case: BoardCase, change: str, version: int
) -> None:
    board = registry.get_board(session, case.board_id)
    audit.record(
        session,
        actor,
        str(BoardAction.MEETING_RUN),
        "success",
        object_kind=case_store.CASE_KIND,
        object_id=case.id,
        patient_id=case.patient_id,
        site_id=board.site_id,
        detail={"board": board.code, "change": change, "version": version},
    )


def validate(
    session: Session,
    actor: audit.Actor,
    case: BoardCase,
    fields: DecisionFields,
    now: datetime,
) -> Validation:
    """Validate the decision on a discussed case, its quorum met; otherwise postpone the
    case onto the next meeting, naming what the quorum lacked. The signer's second factor
    is confirmed by the caller first."""
    if case.status != CaseStatus.DISCUSSED.value:
        raise Conflict(_("Only a case under discussion is decided."))
    check_fields(session, case, fields)
    discussion = attendance.discussion_of(session, case)
    if discussion is None:  # pragma: no cover - a discussed case was taken up
        raise Conflict(_("Only a case under discussion is decided."))
    board = registry.get_board(session, case.board_id)
    quorum = attendance.case_quorum(session, board, case, discussion.started_at, now)
    if not quorum.met:
        missing = tuple(attendance.missing_specialties(quorum))
        reason = _("Quorum not met, missing: %(missing)s.") % {"missing": "; ".join(missing)}
        target = case_store.postpone(session, actor, case, reason, now)
        return Validation(quorum, postponed_to=target, missing=missing)
    meeting_id = case.meeting_id
    assert meeting_id is not None
    case_store.decide(session, actor, case, quorum, now)
    participants: list[dict[str, object]] = [
        {"user": int(person), "specialty": quorum.counted.get(person, "")}
        for person in sorted(quorum.present, key=int)
    ]
    row = _row(
        case, 1, meeting_id, fields, participants, discussion.started_at, actor.user_id or 0, now
    )
    row.digest = _digest(row, "")
    session.add(row)
    session.flush()
    _audit(session, actor, case, "decision validated", 1)
    return Validation(quorum, decision=row)


def add_addendum(
    session: Session,
    actor: audit.Actor,
    case: BoardCase,
    fields: DecisionFields,
    reason: str,
    now: datetime,
) -> BoardDecision:
    """Correct a validated decision with a new, signed version; the earlier ones stay."""
    versions = decisions_of(session, case)
    if case.status != CaseStatus.DECIDED.value or not versions:
        raise Conflict(_("Only a validated decision is corrected by an addendum."))
    if not reason.strip():
        raise InvalidInput(_("Say what the addendum corrects."))
    if len(reason) > MAX_TEXT:
        raise InvalidInput(_("Each field is at most %(n)d characters.") % {"n": MAX_TEXT})
    check_fields(session, case, fields)
    last = versions[-1]
    row = _row(
        case,
        last.version + 1,
        last.meeting_id,
        fields,
        list(last.participants),
        last.discussion_started_at,
        actor.user_id or 0,
        now,
        reason.strip(),
    )
    row.digest = _digest(row, last.digest)
    session.add(row)
    session.flush()
    _audit(session, actor, case, "addendum signed", row.version)
    return row


def intact(versions: list[BoardDecision]) -> bool:
    """Whether every version's digest matches its content and the chain before it."""
    previous = ""
    for row in versions:
        if _digest(row, previous) != row.digest:
            return False
        previous = row.digest
    return True
