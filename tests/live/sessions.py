"""Live sessions the live tests start directly through the service, as an organiser would."""

from __future__ import annotations

from typing import Any

from concilium.live import invitations, lifecycle
from concilium.live.tables import LiveSession
from concilium.platform import audit
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
