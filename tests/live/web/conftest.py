"""Fixtures of the live web tests: the people of a Metz broadcast, the broadcast itself, and
websockets on one client."""

from __future__ import annotations

import pytest

from concilium.live import invitations, lifecycle
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.web.context import SESSION_COOKIE


@pytest.fixture
def people(world):
    return {
        "doctor": world.user("metz-cardio", (world.metz, "specialist"), with_totp=True),
        "coord": world.user("metz-coord", (world.metz, "coordinator")),
        "tech": world.user("metz-tech", (world.metz, "technologist")),
        "viewer": world.user("briey-student", (world.briey, "learner")),
        "stranger": world.user("briey-doc", (world.briey, "referring_physician")),
    }


@pytest.fixture
def live_id(world, people):
    """A live Metz session: the coordinator moderates, the Briey student is invited to watch."""
    now = world.runtime.now()
    coord = people["coord"]
    with transaction(world.runtime.sessions) as db:
        actor = audit.Actor(coord.id, coord.username)
        live = lifecycle.create_session(
            db,
            actor,
            kind="broadcast",
            title="Mitral clip, live",
            site_id=world.metz.id,
            scheduled_at=now,
            now=now,
        )
        invitations.invite(db, actor, live, user_id=coord.id, role="moderator", now=now)
        invitations.invite(db, actor, live, user_id=people["viewer"].id, role="viewer", now=now)
        lifecycle.start(db, actor, live, now, teaching_consent=False)
        return live.id


@pytest.fixture
def signed_in(app, world):
    """A browser of ``user``, signed in, sending its CSRF token."""

    def sign_in(user):
        browser = world.client(app)
        csrf = world.sign_in(browser, user)
        browser.headers["x-csrf-token"] = csrf
        return browser

    return sign_in


@pytest.fixture
def hub(client):
    """One client (one event loop) for every websocket, as a server has; each socket still
    carries its own person's cookie."""

    def connect(browser, live_id, **headers):
        cookie = browser.cookies.get(SESSION_COOKIE)
        return client.websocket_connect(
            f"/live/{live_id}/ws", headers={"cookie": f"{SESSION_COOKIE}={cookie}", **headers}
        )

    return connect
