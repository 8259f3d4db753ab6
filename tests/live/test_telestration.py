"""Telestration strokes, kept with the session, on both databases."""

from __future__ import annotations

from concilium.live import lifecycle, telestration
from concilium.platform import audit
from concilium.platform.db import transaction


def people(world):
    """A Metz specialist, who organises, and a Briey learner."""
    return (
        world.user("metz-cardio", (world.metz, "specialist")),
        world.user("briey-student", (world.briey, "learner")),
    )


def test_telestration_strokes_are_kept_and_a_clear_starts_over(world):
    doctor, _ = people(world)
    now = world.runtime.now()
    with transaction(world.runtime.sessions) as db:
        live = lifecycle.create_session(
            db,
            audit.Actor(doctor.id, doctor.username),
            kind="supervision",
            title="Strokes",
            site_id=world.metz.id,
            scheduled_at=now,
            now=now,
        )
        draw = dict(color="#ff0000", width=3, source_id=None, now=now)
        telestration.add_stroke(db, doctor.id, live, points=[(0.1, 0.1), (0.2, 0.2)], **draw)
        telestration.clear_strokes(db, doctor.id, live, now)
        telestration.add_stroke(db, doctor.id, live, points=[(0.5, 0.5)], **draw)
        assert [s.points for s in telestration.strokes(db, live)] == [[[0.5, 0.5]]]
        assert len(telestration.strokes(db, live, since_clear=False)) == 3
