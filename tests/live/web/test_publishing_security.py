"""Who sends media into a session showing a patient, and under which name, attacked through
the JSON API, the ``/janus`` proxy and the session websocket.

No media server runs here: the control plane mints credentials in its own book and the
proxy's upstream is a recorder, so what the proxy forwards (or refuses) is seen exactly.
Janus's own enforcement of the credentials is tested with a real Janus in
``tests/live/test_credentials.py``.
"""

from __future__ import annotations

import json

import httpx
import pytest

from concilium.live import invitations, lifecycle
from concilium.live.credentials import RoomCredential
from concilium.live.media import LiveMedia
from concilium.live.rooms import RoomSpec
from concilium.live.web import live_runtime
from concilium.platform import accounts, audit, patients
from concilium.platform.db import transaction

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class BookOnlyMedia(LiveMedia):
    """The control plane without Janus: rooms and credentials live in its registry and book."""

    async def create_room(self, spec: RoomSpec) -> None:
        self.registry.add_room(spec)

    async def issue(self, user_id: str, room_id: int, ttl: float = 600.0) -> RoomCredential:
        return self.book.mint(user_id, room_id, self.clock(), ttl)


@pytest.fixture
def janus(app, world, janus_config):
    """A media plane of its book only, and a recorder of what the proxy sends to Janus."""
    forwarded: list[dict[str, object]] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        forwarded.append(json.loads(request.content or b"{}"))
        return httpx.Response(200, json={"janus": "ack"})

    runtime = live_runtime(app)
    runtime.media = BookOnlyMedia(
        janus_config, httpx.AsyncClient(), clock=lambda: world.runtime.now().timestamp()
    )
    runtime.api_url = "http://janus.invalid/janus"
    runtime.http = httpx.AsyncClient(transport=httpx.MockTransport(upstream))
    yield forwarded
    runtime.media, runtime.http = None, None


@pytest.fixture
def patient_session(world, people):
    """A live supervision of a Metz patient; a Briey learner invited as presenter, another
    as director."""
    doctor = people["doctor"]
    now = world.runtime.now()
    directing = world.user("briey-intern", (world.briey, "learner"))
    with transaction(world.runtime.sessions) as db:
        actor = audit.Actor(doctor.id, doctor.username)
        patient = patients.create_patient(
            db, actor, world.metz.id, "MTZ-77", patients.Demographics("Durand", "Rose")
        )
        live = lifecycle.create_session(
            db,
            actor,
            kind="supervision",
            title="TAVI, hybrid room",
            site_id=world.metz.id,
            scheduled_at=now,
            now=now,
            patient_id=patient.id,
        )
        invitations.invite(db, actor, live, user_id=people["viewer"].id, role="presenter", now=now)
        invitations.invite(db, actor, live, user_id=directing.id, role="director", now=now)
        lifecycle.start(db, actor, live, now, teaching_consent=False)
        return live.id


def _message(token: str, body: dict[str, object]) -> dict[str, object]:
    return {"janus": "message", "transaction": "t", "token": token, "body": body}


def test_learners_only_watch_a_patient(signed_in, world, people, patient_session, janus, hub):
    room = lifecycle.ROOM_ID_BASE + patient_session
    with world.runtime.sessions() as db:
        users = {"briey-intern": accounts.user_by_username(db, "briey-intern")}
    publisher = {"request": "join", "ptype": "publisher", "room": room, "display": "x"}
    learners = {
        "invited as presenter": signed_in(people["viewer"]),
        "invited as director": signed_in(users["briey-intern"]),
        "of the owning site": signed_in(world.user("metz-student", (world.metz, "learner"))),
    }
    for case, learner in learners.items():
        joined = learner.post(f"/api/v1/live/sessions/{patient_session}/join")
        assert joined.status_code == 200, (case, joined.text)
        grant = joined.json()
        assert grant["may_publish"] is False, case
        token = grant["token"]
        for attempt in (
            publisher,
            {"request": "join", "room": room},  # a join without ptype publishes
            {"request": "publish", "audio": True, "video": True},
        ):
            refused = learner.post("/janus/1/2", json=_message(token, attempt))
            assert refused.status_code == 403, (case, attempt)
            assert refused.headers["content-type"] == "application/problem+json"
        # Watching goes through.
        watched = learner.post(
            "/janus/1/2", json=_message(token, {"request": "join", "ptype": "subscriber"})
        )
        assert watched.status_code == 200, case
        # Nor do they draw over the picture.
        with hub(learner, patient_session) as socket:
            assert socket.receive_json()["may_draw"] is False, case
            socket.send_json({"type": "stroke", "points": [[0.1, 0.2], [0.3, 0.4]]})
            assert "draw" in socket.receive_json()["detail"], case
        # Nor direct: the program, the cameras, the sources.
        program = learner.post(f"/api/v1/live/sessions/{patient_session}/program", json={"feed": 1})
        assert program.status_code == 403, case
        source = learner.post(
            f"/api/v1/live/sessions/{patient_session}/sources",
            json={"name": "Screen", "kind": "screen"},
        )
        assert source.status_code == 403, case
    assert all(f["body"]["ptype"] == "subscriber" for f in janus if "body" in f)  # type: ignore[index]

    # The team publishes as before.
    tech = signed_in(people["tech"])
    grant = tech.post(f"/api/v1/live/sessions/{patient_session}/join").json()
    assert grant["may_publish"] is True
    sent = tech.post("/janus/1/2", json=_message(grant["token"], publisher))
    assert sent.status_code == 200


def test_the_name_others_see_is_the_accounts(signed_in, people, patient_session, janus):
    room = lifecycle.ROOM_ID_BASE + patient_session
    tech = signed_in(people["tech"])
    grant = tech.post(f"/api/v1/live/sessions/{patient_session}/join").json()
    token = grant["token"]
    impostor = "Pr. Chief of Cardiology"
    for body in (
        {"request": "join", "ptype": "publisher", "room": room, "display": impostor},
        {"request": "join", "ptype": "publisher", "room": room},
        {"request": "configure", "display": impostor},
        {"request": "publish", "display": impostor, "audio": True},
    ):
        assert tech.post("/janus/1/2", json=_message(token, body)).status_code == 200
    names = [f["body"]["display"] for f in janus]  # type: ignore[index]
    assert names == [grant["display"]] * 4
    assert grant["display"] == people["tech"].full_name
