"""The session websocket: chat, questions through moderation, telestration, and who may
connect and stay connected."""

from __future__ import annotations

import pytest
from starlette.websockets import WebSocketDisconnect


def test_chat_round_trip_and_a_malformed_frame_hurts_only_its_sender(
    signed_in, people, live_id, hub
):
    coord = signed_in(people["coord"])
    tech = signed_in(people["tech"])
    viewer = signed_in(people["viewer"])
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
    signed_in, people, live_id, hub
):
    coord = signed_in(people["coord"])
    tech = signed_in(people["tech"])
    viewer = signed_in(people["viewer"])
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


def test_telestration_strokes_fan_out_and_only_drawers_draw(signed_in, people, live_id, hub):
    coord = signed_in(people["coord"])
    tech = signed_in(people["tech"])
    viewer = signed_in(people["viewer"])
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


def test_the_websocket_refuses_strangers_and_the_signed_out(
    signed_in, app, world, people, live_id, hub
):
    stranger = signed_in(people["stranger"])
    for browser in (stranger, world.client(app)):
        with pytest.raises(WebSocketDisconnect) as refused, hub(browser, live_id) as ws:
            ws.receive_json()
        assert refused.value.code == 1008
    # Another site's page must not ride the cookie (cross-site websocket hijacking).
    tech = signed_in(people["tech"])
    with (
        pytest.raises(WebSocketDisconnect),
        hub(tech, live_id, origin="https://evil.example") as ws,
    ):
        ws.receive_json()
    with hub(tech, live_id, origin="https://testserver") as ws:
        assert ws.receive_json()["type"] == "hello"


def test_signing_out_stops_a_connected_socket(signed_in, people, live_id, hub):
    tech = signed_in(people["tech"])
    coord = signed_in(people["coord"])
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
