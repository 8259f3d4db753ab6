"""The JSON API of live sessions, as scripts and the consoles use it."""

from __future__ import annotations

from datetime import timedelta

from concilium.live import lifecycle


def test_a_script_schedules_invites_starts_and_ends_through_the_json_api(client, world, people):
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
    assert started["status"] == "live" and started["room"] == lifecycle.ROOM_ID_BASE + sid
    again = client.post(f"/api/v1/live/sessions/{sid}/start", headers=h)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert client.post(f"/api/v1/live/sessions/{sid}/end", headers=h).json()["status"] == "ended"
    # A token without the live:direct scope cannot take the cameras, whatever the roles.
    refused = client.post(f"/api/v1/live/sessions/{sid}/control", headers=h)
    assert refused.status_code == 403 and "live:direct" in refused.json()["detail"]


def test_the_director_puts_a_feed_on_program_and_every_viewer_follows(
    signed_in, people, live_id, hub
):
    director = signed_in(people["tech"])
    viewer = signed_in(people["viewer"])
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
