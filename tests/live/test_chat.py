"""Chat and questions: moderation as a pure state machine, then on both databases."""

from __future__ import annotations

import pytest

from concilium.live import chat, lifecycle
from concilium.platform import audit, i18n
from concilium.platform.db import transaction
from concilium.platform.errors import Conflict


def people(world):
    """A Metz specialist, who organises, and a Briey learner."""
    return (
        world.user("metz-cardio", (world.metz, "specialist")),
        world.user("briey-student", (world.briey, "learner")),
    )


def test_questions_are_moderated_merged_and_answered(world):
    doctor, viewer = people(world)
    now = world.runtime.now()
    actor = audit.Actor(doctor.id, doctor.username)
    with transaction(world.runtime.sessions) as db:
        live = lifecycle.create_session(
            db,
            actor,
            kind="broadcast",
            title="Teaching session",
            site_id=world.metz.id,
            scheduled_at=now,
            now=now,
        )
        first = chat.submit_question(db, viewer.id, live, "Which access?", now)
        twin = chat.submit_question(db, viewer.id, live, "Femoral or radial?", now)
        spam = chat.submit_question(db, viewer.id, live, "buy now", now)
        chat.moderate(db, actor, live, first.id, "approve", now)
        chat.moderate(db, actor, live, twin.id, "merge", now, into=first.id)
        chat.moderate(db, actor, live, spam.id, "reject", now)
        chat.moderate(db, actor, live, first.id, "answer", now, answer="Radial, here.")
        with pytest.raises(Conflict):
            chat.moderate(db, actor, live, spam.id, "approve", now)
        with i18n.using_locale("en"), pytest.raises(Conflict, match="still open"):
            third = chat.submit_question(db, viewer.id, live, "Again?", now)
            chat.moderate(db, actor, live, third.id, "merge", now, into=spam.id)
        states = {q.body: (q.status, q.merged_into_id, q.answer) for q in chat.questions(db, live)}
    assert states["Which access?"] == ("answered", None, "Radial, here.")
    assert states["Femoral or radial?"] == ("merged", first.id, "")
    assert states["buy now"] == ("rejected", None, "")
