"""The live pages as signed-in people use them."""

from __future__ import annotations

import httpx

from concilium.live import lookup
from concilium.live.media import LiveMedia
from concilium.live.web import live_runtime
from concilium.platform import audit, patients
from concilium.platform.db import transaction


def test_pages_and_api_for_organiser_invitee_and_stranger(signed_in, world, people, live_id):
    coord = signed_in(people["coord"])
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

    viewer = signed_in(people["viewer"])
    listed = viewer.get("/api/v1/live/sessions").json()
    assert [s["title"] for s in listed] == ["Mitral clip, live"]
    assert viewer.get(f"/live/{live_id}/watch").status_code == 200
    assert viewer.get(f"/live/{live_id}/director").status_code == 403
    assert viewer.post(f"/live/{live_id}/end").status_code == 403
    # No media server in this test: joining says so instead of failing obscurely.
    joined = viewer.post(f"/api/v1/live/sessions/{live_id}/join")
    assert joined.status_code == 503 and "media server" in joined.json()["detail"]

    stranger = signed_in(people["stranger"])
    assert stranger.get("/api/v1/live/sessions").json() == []
    assert stranger.get(f"/live/{live_id}").status_code == 403


def test_a_patient_without_teaching_consent_is_not_broadcast_from_the_page(
    signed_in, world, people
):
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
    browser = signed_in(doctor)
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


def test_a_broadcast_viewer_is_sent_to_hls_once_enough_people_receive_over_webrtc(
    signed_in, app, world, people, live_id, janus_config
):
    hls = f'data-hls-access="/api/v1/live/sessions/{live_id}/hls"'
    viewer = signed_in(people["viewer"])
    # No media server: the audience can only watch HLS.
    assert hls in viewer.get(f"/live/{live_id}/watch").text

    # A media server, with a room of two WebRTC receivers at most for viewers. Counting
    # credentials needs only Concilium's own book, not Janus itself, which is not started.
    runtime = live_runtime(app)
    runtime.media = LiveMedia(janus_config, httpx.AsyncClient(), clock=world.runtime.now)
    world.runtime.settings.live_webrtc_viewers = 2
    with world.runtime.sessions() as db:
        room = lookup.get_session(db, live_id).janus_room_id
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
        coord = signed_in(people["coord"])
        assert hls not in coord.get(f"/live/{live_id}/watch").text
    finally:
        runtime.media = None
