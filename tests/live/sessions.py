"""Live sessions the live tests start directly through the service, as an organiser would,
and the people they need."""

from __future__ import annotations

from typing import Any

from concilium.live import invitations, lifecycle
from concilium.live.tables import LiveSession
from concilium.platform import audit, patients
from concilium.platform.db import transaction


def start_broadcast(
    world: Any, organiser: Any, title: str, *, record: bool = False, viewers: tuple[Any, ...] = ()
) -> tuple[audit.Actor, LiveSession]:
    """A broadcast of Metz organised by ``organiser``, with ``viewers`` invited, gone live."""
    now = world.runtime.now()
    actor = audit.Actor(organiser.id, organiser.username)
    with transaction(world.runtime.sessions) as db:
        live = lifecycle.create_session(
            db, actor, kind="broadcast", title=title, site_id=world.metz.id,
            scheduled_at=now, now=now, record=record,
        )  # fmt: skip
        for viewer in viewers:
            invitations.invite(db, actor, live, user_id=viewer.id, role="viewer", now=now)
        lifecycle.start(db, actor, live, now, teaching_consent=False)
    return actor, live


def people_and_patient(world: Any) -> tuple[Any, Any, int]:
    """A specialist of Metz, a learner of Briey, and the id of a patient of Metz
    (Marie Dupont, MTZ-7)."""
    doctor = world.user("metz-cardio", (world.metz, "specialist"))
    viewer = world.user("briey-student", (world.briey, "learner"))
    with transaction(world.runtime.sessions) as db:
        actor = audit.Actor(doctor.id, doctor.username)
        patient = patients.create_patient(
            db, actor, world.metz.id, "MTZ-7", patients.Demographics("Dupont", "Marie")
        )
        return doctor, viewer, patient.id
