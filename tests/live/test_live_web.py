"""The live pages, JSON API and session websocket, as signed-in people use them."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from starlette.websockets import WebSocketDisconnect

from concilium.live import service
from concilium.live.media import LiveMedia
from concilium.live.web import live_runtime
from concilium.platform import audit, patients
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
        live = service.create_session(
            db,
            actor,
            kind="broadcast",
            title="Mitral clip, live",
            site_id=world.metz.id,
            scheduled_at=now,
            now=now,
        )
        service.invite(db, actor, live, user_id=coord.id, role="moderator", now=now)
        service.invite(db, actor, live, user_id=people["viewer"].id, role="viewer", now=now)
        service.start(db, actor, live, now, teaching_consent=False)
        return live.id


def signed_in(app, world, user):
    browser = world.client(app)
    csrf = world.sign_in(browser, user)
    browser.headers["x-csrf-token"] = csrf
    return browser


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


def test_chat_round_trip_and_a_malformed_frame_hurts_only_its_sender(
    app, world, people, live_id, hub
):
    coord = signed_in(app, world, people["coord"])
    tech = signed_in(app, world, people["tech"])
    viewer = signed_in(app, world, people["viewer"])
    with hub(coord, live_id) as a, hub(tech, live_id) as b, hub(viewer, live_id) as c:
        for ws in (a, b, c):
            assert ws.receive_json()["type"] == "hello"
        a.send_text('{"type": "chat", "body": "Patient is on the table"}')
        for ws in (a, b, c):
            event = ws.receive_json()
            assert (event["type"], event["body"], event["author"]) == (
                "chat",
                "Patient is on the table",
                "Metz-Coord",
            )
        c.send_text("{this is not json")
        assert c.receive_json() == {"type": "error", "detail": "frame is not JSON"}
        c.send_bytes(b"\xff\xfe")
        assert c.receive_json() == {"type": "error", "detail": "frame is not JSON"}
        b.send_text('{"type": "chat", "body": "Starting now"}')
        for ws in (a, b, c):
            event = ws.receive_json()
            assert (event["type"], event["body"]) == ("chat", "Starting now")
    # A newcomer gets the history.
    with hub(tech, live_id) as late:
        hello = late.receive_json()
        assert [m["body"] for m in hello["chat"]] == ["Patient is on the table", "Starting now"]


def test_questions_go_through_the_moderator_before_the_audience_sees_them(
    app, world, people, live_id, hub
):
    coord = signed_in(app, world, people["coord"])
    tech = signed_in(app, world, people["tech"])
    viewer = signed_in(app, world, people["viewer"])
    with (
        hub(coord, live_id) as mod,
        hub(tech, live_id) as aud,
        hub(viewer, live_id) as ask,
    ):
        assert mod.receive_json()["may_moderate"] is True
        assert aud.receive_json()["may_moderate"] is False
        hello = ask.receive_json()
        assert hello["may_chat"] is True and hello["may_draw"] is False
        ask.send_json({"type": "question", "body": "Which device size?"})
        submitted = mod.receive_json()
        assert (submitted["type"], submitted["status"]) == ("question", "submitted")
        assert ask.receive_json()["status"] == "submitted"  # the author sees their own
        ask.send_json({"type": "question", "body": "What size of device?"})
        twin = mod.receive_json()
        ask.receive_json()
        # Only moderators moderate: refused to the viewer alone.
        ask.send_json({"type": "moderate", "question_id": submitted["id"], "action": "approve"})
        assert ask.receive_json()["detail"] == "only moderators moderate questions"
        mod.send_json({"type": "moderate", "question_id": submitted["id"], "action": "approve"})
        # The audience sees nothing before approval: approval is the first event it gets.
        for ws in (mod, aud, ask):
            event = ws.receive_json()
            assert (event["id"], event["status"]) == (submitted["id"], "approved")
        mod.send_json(
            {
                "type": "moderate",
                "question_id": twin["id"],
                "action": "merge",
                "into": submitted["id"],
            }
        )
        merged = mod.receive_json()
        assert (merged["status"], merged["merged_into"]) == ("merged", submitted["id"])
        ask.receive_json()
        mod.send_json(
            {
                "type": "moderate",
                "question_id": submitted["id"],
                "action": "answer",
                "answer": "A 24 mm clip.",
            }
        )
        for ws in (mod, aud, ask):
            event = ws.receive_json()
            assert (event["status"], event["answer"]) == ("answered", "A 24 mm clip.")
        mod.send_json({"type": "moderate", "question_id": submitted["id"], "action": "reject"})
        assert "cannot be given reject" in mod.receive_json()["detail"]


def test_telestration_strokes_fan_out_and_only_drawers_draw(app, world, people, live_id, hub):
    coord = signed_in(app, world, people["coord"])
    tech = signed_in(app, world, people["tech"])
    viewer = signed_in(app, world, people["viewer"])
    stroke = {"type": "stroke", "points": [[0.1, 0.2], [0.3, 0.4]], "color": "#00FF00"}
    with hub(tech, live_id) as drawer, hub(coord, live_id) as a, hub(viewer, live_id) as b:
        for ws in (drawer, a, b):
            ws.receive_json()
        drawer.send_json(stroke)
        for ws in (drawer, a, b):
            event = ws.receive_json()
            assert (event["type"], event["points"], event["color"]) == (
                "stroke",
                [[0.1, 0.2], [0.3, 0.4]],
                "#00ff00",
            )
        b.send_json(stroke)
        assert "draw" in b.receive_json()["detail"]
        drawer.send_json({"type": "stroke", "points": [[5, 5]]})
        assert "within 0..1" in drawer.receive_json()["detail"]
        drawer.send_json({"type": "clear"})
        for ws in (drawer, a, b):
            assert ws.receive_json()["type"] == "clear"
    with hub(viewer, live_id) as late:
        assert late.receive_json()["strokes"] == []


def test_the_websocket_refuses_strangers_and_the_signed_out(app, world, people, live_id, hub):
    stranger = signed_in(app, world, people["stranger"])
    for browser in (stranger, world.client(app)):
        with pytest.raises(WebSocketDisconnect) as refused, hub(browser, live_id) as ws:
            ws.receive_json()
        assert refused.value.code == 1008
    # Another site's page must not ride the cookie (cross-site websocket hijacking).
    tech = signed_in(app, world, people["tech"])
    with (
        pytest.raises(WebSocketDisconnect),
        hub(tech, live_id, origin="https://evil.example") as ws,
    ):
        ws.receive_json()
    with hub(tech, live_id, origin="https://testserver") as ws:
        assert ws.receive_json()["type"] == "hello"


def test_pages_and_api_for_organiser_invitee_and_stranger(app, world, people, live_id):
    coord = signed_in(app, world, people["coord"])
    page = coord.get("/live")
    assert page.status_code == 200 and "Mitral clip, live" in page.text
    assert 'href="/live"' in page.text  # in the menu
    created = coord.post(
        "/live",
        data={
            "kind": "supervision",
            "title": "Carotid stenting",
            "site_id": world.metz.id,
            "scheduled_at": "2030-05-01T08:30",
        },
    )
    assert created.status_code == 303
    session_page = coord.get(created.headers["location"])
    assert "Carotid stenting" in session_page.text and "Go live" in session_page.text
    for console in ("join", "watch", "moderator"):
        assert coord.get(f"/live/{live_id}/{console}").status_code == 200, console
    # The coordinator is not a director of this session by invitation, but directs by role.
    assert coord.get(f"/live/{live_id}/director").status_code == 200

    viewer = signed_in(app, world, people["viewer"])
    listed = viewer.get("/api/v1/live/sessions").json()
    assert [s["title"] for s in listed] == ["Mitral clip, live"]
    assert viewer.get(f"/live/{live_id}/watch").status_code == 200
    assert viewer.get(f"/live/{live_id}/director").status_code == 403
    assert viewer.post(f"/live/{live_id}/end").status_code == 403
    # No media server in this test: joining says so instead of failing obscurely.
    joined = viewer.post(f"/api/v1/live/sessions/{live_id}/join")
    assert joined.status_code == 503 and "media server" in joined.json()["detail"]

    stranger = signed_in(app, world, people["stranger"])
    assert stranger.get("/api/v1/live/sessions").json() == []
    assert stranger.get(f"/live/{live_id}").status_code == 403


def test_a_patient_without_teaching_consent_is_not_broadcast_from_the_page(app, world, people):
    doctor = people["doctor"]
    with transaction(world.runtime.sessions) as db:
        patient = patients.create_patient(
            db,
            audit.Actor(doctor.id, doctor.username),
            world.metz.id,
            "MTZ-3",
            patients.Demographics("Martin", "Paul"),
        )
        patient_id = patient.id
    browser = signed_in(app, world, doctor)
    form = {
        "kind": "broadcast",
        "title": "Martin aortic valve",
        "site_id": world.metz.id,
        "scheduled_at": "2030-05-01T08:30",
        "patient_id": str(patient_id),
    }
    refused = browser.post("/live", data=form)
    assert refused.status_code == 422 and "must not identify the patient" in refused.text
    created = browser.post("/live", data={**form, "title": "Aortic valve, teaching"})
    session_url = created.headers["location"]
    started = browser.post(f"{session_url}/start")
    assert started.status_code == 409
    assert "has not consented to teaching" in started.text
    assert "scheduled" in browser.get(session_url).text


def test_the_media_proxy_forwards_only_own_credentials_and_browser_requests():
    from concilium.live.credentials import CredentialBook
    from concilium.live.web import check_janus_request, credential_for
    from concilium.platform.errors import Forbidden

    class Media:
        book = CredentialBook()
        now = 1000.0

        def clock(self) -> float:
            return self.now

    media = Media()
    mine = media.book.mint("7", 10_000_001, now=1000.0, ttl=60)
    assert credential_for(media, 7, mine.token) is mine
    for user, token in ((8, mine.token), (7, "guess"), (7, "")):
        with pytest.raises(Forbidden, match="no media credential"):
            credential_for(media, user, token)
    with pytest.raises(Forbidden):
        credential_for(None, 7, mine.token)  # no media server, no credential
    media.now = 1060.0
    with pytest.raises(Forbidden):
        credential_for(media, 7, mine.token)  # lapsed

    check_janus_request({"janus": "create"}, mine, may_publish=False)
    publisher = {"request": "join", "ptype": "publisher", "room": 10_000_001}
    subscriber = {"request": "join", "ptype": "subscriber", "room": 10_000_001}
    check_janus_request({"janus": "message", "body": publisher}, mine, may_publish=True)
    check_janus_request({"janus": "message", "body": subscriber}, mine, may_publish=False)
    with pytest.raises(Forbidden, match="receives media only"):
        check_janus_request({"janus": "message", "body": publisher}, mine, may_publish=False)
    refused = [
        {"janus": "message", "body": {"request": "list"}},
        {"janus": "message", "body": {"request": "listparticipants", "room": 10_000_001}},
        {"janus": "message", "body": {"request": "join", "room": 10_000_002}},
        {"janus": "message", "body": "join"},
    ]
    for body in refused:
        with pytest.raises(Forbidden):
            check_janus_request(body, mine, may_publish=True)


def test_signing_out_stops_a_connected_socket(app, world, people, live_id, hub):
    tech = signed_in(app, world, people["tech"])
    coord = signed_in(app, world, people["coord"])
    with hub(tech, live_id) as leaving, hub(coord, live_id) as staying:
        leaving.receive_json()
        staying.receive_json()
        assert tech.post("/logout").status_code == 303
        leaving.send_json({"type": "chat", "body": "still here?"})
        assert leaving.receive_json() == {"type": "error", "detail": "sign in first"}
        with pytest.raises(WebSocketDisconnect):
            leaving.receive_json()
        staying.send_json({"type": "chat", "body": "carry on"})
        assert staying.receive_json()["body"] == "carry on"


def test_a_script_schedules_invites_starts_and_ends_through_the_json_api(
    app, client, world, people
):
    coord = people["coord"]
    token = world.token(coord, "live:manage", "live:read")
    h = {"authorization": f"Bearer {token}"}
    created = client.post(
        "/api/v1/live/sessions",
        headers=h,
        json={
            "kind": "conference",
            "title": "Heart team",
            "site_id": world.metz.id,
            "scheduled_at": (world.runtime.now() + timedelta(days=30)).isoformat(),
        },
    )
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    invited = client.post(
        f"/api/v1/live/sessions/{sid}/invitations",
        headers=h,
        json={"user_id": people["viewer"].id, "role": "viewer"},
    )
    assert invited.json() == {"user_id": people["viewer"].id, "role": "viewer"}
    unknown = client.post(
        f"/api/v1/live/sessions/{sid}/invitations",
        headers=h,
        json={"user_id": 999, "role": "viewer"},
    )
    assert unknown.status_code == 404
    started = client.post(f"/api/v1/live/sessions/{sid}/start", headers=h).json()
    assert started["status"] == "live" and started["room"] == service.ROOM_ID_BASE + sid
    again = client.post(f"/api/v1/live/sessions/{sid}/start", headers=h)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert client.post(f"/api/v1/live/sessions/{sid}/end", headers=h).json()["status"] == "ended"
    # A token without the live:direct scope cannot take the cameras, whatever the roles.
    refused = client.post(f"/api/v1/live/sessions/{sid}/control", headers=h)
    assert refused.status_code == 403 and "live.direct" in refused.json()["detail"]


def test_a_broadcast_viewer_is_sent_to_hls_once_enough_people_receive_over_webrtc(
    app, world, people, live_id, janus_config
):
    hls = f'data-hls-access="/api/v1/live/sessions/{live_id}/hls"'
    viewer = signed_in(app, world, people["viewer"])
    # No media server: the audience can only watch HLS.
    assert hls in viewer.get(f"/live/{live_id}/watch").text

    # A media server, with a room of two WebRTC receivers at most for viewers. Counting
    # credentials needs only Concilium's own book, not Janus itself, which is not started.
    runtime = live_runtime(app)
    runtime.media = LiveMedia(janus_config, httpx.AsyncClient(), clock=world.runtime.now)
    world.runtime.settings.live_webrtc_viewers = 2
    with world.runtime.sessions() as db:
        room = service.get_session(db, live_id).janus_room_id
    now = world.runtime.now().timestamp()
    book = runtime.media.book
    try:
        assert hls not in viewer.get(f"/live/{live_id}/watch").text
        first = book.mint("metz-coord", room, now, 600)
        camera = book.mint("metz-tech", room, now, 600)
        runtime.publishing_tokens.add(camera.token)  # a camera sends, it does not receive
        book.mint("elsewhere", room + 1, now, 600)  # another session's room
        assert hls not in viewer.get(f"/live/{live_id}/watch").text
        book.mint("briey-student-2", room, now, 600)
        assert hls in viewer.get(f"/live/{live_id}/watch").text
        # One leaves: the next viewer gets the low-delay picture again.
        book.forget(first.token)
        assert hls not in viewer.get(f"/live/{live_id}/watch").text
        # The team stays on WebRTC however many watch.
        book.mint("briey-student-3", room, now, 600)
        coord = signed_in(app, world, people["coord"])
        assert hls not in coord.get(f"/live/{live_id}/watch").text
    finally:
        runtime.media = None


def test_the_director_puts_a_feed_on_program_and_every_viewer_follows(
    app, world, people, live_id, hub
):
    director = signed_in(app, world, people["tech"])
    viewer = signed_in(app, world, people["viewer"])
    with hub(viewer, live_id) as watching:
        assert watching.receive_json()["program_feed"] is None
        switched = director.post(f"/api/v1/live/sessions/{live_id}/program", json={"feed": 4242})
        assert switched.status_code == 200
        assert watching.receive_json() == {"type": "program", "feed": 4242}
    assert viewer.get(f"/api/v1/live/sessions/{live_id}").json()["program_feed"] == 4242
    # An invited viewer does not direct.
    assert (
        viewer.post(f"/api/v1/live/sessions/{live_id}/program", json={"feed": 1}).status_code == 403
    )
    with hub(viewer, live_id) as late:
        assert late.receive_json()["program_feed"] == 4242
