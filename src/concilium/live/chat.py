"""Chat lines and audience questions of a live session; questions go through moderation.

Architecture "Data flows" 2: Q&A goes over the session websocket
(:mod:`concilium.live.web.session_socket`). Moderation is a pure state machine
(:func:`next_question_status`); the functions taking a ``Session`` apply it and write the
messages and, for moderation, the audit trail.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.live.invitations import RESOURCE_KIND
from concilium.live.tables import LiveMessage, LiveSession
from concilium.platform import audit
from concilium.platform.errors import Conflict, InvalidInput, NotFound
from concilium.platform.i18n import N_, _

__all__ = [
    "chat_history",
    "get_question",
    "moderate",
    "next_question_status",
    "post_chat",
    "questions",
    "submit_question",
]

_QUESTION_MOVES: Mapping[str, Mapping[str, str]] = {
    "submitted": {
        "approve": "approved",
        "reject": "rejected",
        "merge": "merged",
        "answer": "answered",
    },
    "approved": {"reject": "rejected", "merge": "merged", "answer": "answered"},
}
"""Question moderation: rejected, answered and merged questions are final."""


_STATUS_LABELS = {
    "submitted": N_("awaiting moderation"),
    "approved": N_("approved"),
    "rejected": N_("rejected"),
    "answered": N_("answered"),
    "merged": N_("merged"),
}
"""A question's state as a refusal names it."""
_ACTION_LABELS = {
    "approve": N_("approve"),
    "reject": N_("reject"),
    "answer": N_("answer"),
    "merge": N_("merge"),
}
"""A moderation action as a refusal names it."""


def next_question_status(status: str, action: str) -> str:
    """Where a moderation ``action`` takes a question in ``status``."""
    moved = _QUESTION_MOVES.get(status, {}).get(action)
    if moved is None:
        raise Conflict(
            _("This question is %(status)s: it cannot be given %(action)s.")
            % {
                "status": _(_STATUS_LABELS.get(status, status)),
                "action": _(_ACTION_LABELS.get(action, action)),
            }
        )
    return moved


def post_chat(
    db: Session, user_id: int, live: LiveSession, body: str, now: datetime
) -> LiveMessage:
    message = LiveMessage(
        session_id=live.id,
        user_id=user_id,
        kind="chat",
        body=body,
        status="posted",
        created_at=now,
        updated_at=now,
    )
    db.add(message)
    db.flush()
    return message


def chat_history(db: Session, live: LiveSession, limit: int = 100) -> list[LiveMessage]:
    rows = db.execute(
        select(LiveMessage)
        .where(LiveMessage.session_id == live.id, LiveMessage.kind == "chat")
        .order_by(LiveMessage.id.desc())
        .limit(limit)
    ).scalars()
    return list(reversed(list(rows)))


def submit_question(
    db: Session, user_id: int, live: LiveSession, body: str, now: datetime
) -> LiveMessage:
    question = LiveMessage(
        session_id=live.id,
        user_id=user_id,
        kind="question",
        body=body,
        status="submitted",
        created_at=now,
        updated_at=now,
    )
    db.add(question)
    db.flush()
    return question


def get_question(db: Session, live: LiveSession, question_id: int) -> LiveMessage:
    question = db.get(LiveMessage, question_id)
    if question is None or question.session_id != live.id or question.kind != "question":
        raise NotFound(_("No such question in this session."))
    return question


def moderate(
    db: Session,
    actor: audit.Actor,
    live: LiveSession,
    question_id: int,
    action: str,
    now: datetime,
    *,
    answer: str = "",
    into: int | None = None,
) -> LiveMessage:
    """Approve, reject, answer or merge a question (merging keeps a link to the survivor)."""
    question = get_question(db, live, question_id)
    status = next_question_status(question.status, action)
    if action == "merge":
        if into is None or into == question.id:
            raise InvalidInput(_("Merge it into another question of this session."))
        survivor = get_question(db, live, into)
        if survivor.status in ("rejected", "merged"):
            raise Conflict(_("Merge it into a question that is still open or answered."))
        question.merged_into_id = survivor.id
    if action == "answer":
        if not answer.strip():
            raise InvalidInput(_("Write the answer."))
        question.answer = answer.strip()
    question.status = status
    question.updated_at = now
    audit.record(
        db,
        actor,
        f"live.question.{action}",
        "success",
        object_kind=RESOURCE_KIND,
        object_id=live.id,
        detail={"question": question.id, "into": into},
    )
    return question


def questions(db: Session, live: LiveSession) -> list[LiveMessage]:
    return list(
        db.execute(
            select(LiveMessage)
            .where(LiveMessage.session_id == live.id, LiveMessage.kind == "question")
            .order_by(LiveMessage.id)
        ).scalars()
    )
