"""The session websocket's messages: parsed, or refused with a reason."""

from __future__ import annotations

import json

import pytest

from concilium.live import protocol
from concilium.platform import i18n


def test_websocket_frames_are_parsed_or_refused_with_a_reason():
    parse = protocol.parse_client_message
    assert parse('{"type": "chat", "body": " hi "}') == protocol.Chat("hi")
    stroke = parse(json.dumps({"type": "stroke", "points": [[0, 0.5], [1, 1]], "width": 4}))
    assert stroke == protocol.Stroke(((0.0, 0.5), (1.0, 1.0)), "#ffcc00", 4)
    merge = parse('{"type": "moderate", "question_id": 2, "action": "merge", "into": 1}')
    assert merge == protocol.Moderate(2, "merge", "", 1)
    refused = {
        "{not json": "not JSON",
        "[1]": "JSON object",
        '{"type": "dance"}': "type must be",
        '{"type": "chat", "body": ""}': "Write something first",
        '{"type": "chat", "body": 3}': "must be a string",
        '{"type": "stroke", "points": [[2, 0]]}': "within 0..1",
        '{"type": "stroke", "points": [[0, 0]], "color": "red"}': "#rrggbb",
        '{"type": "stroke", "points": []}': "points must be",
        '{"type": "moderate", "question_id": true, "action": "approve"}': "integer",
        '{"type": "moderate", "question_id": 1, "action": "answer"}': "Write the answer",
        '{"type": "moderate", "question_id": 1, "action": "merge"}': "into must be",
    }
    for frame, reason in refused.items():
        with i18n.using_locale("en"), pytest.raises(protocol.ProtocolError, match=reason):
            parse(frame)
    with i18n.using_locale("en"), pytest.raises(protocol.ProtocolError, match="at most 2000"):
        parse(json.dumps({"type": "chat", "body": "x" * 2001}))
    with pytest.raises(protocol.ProtocolError, match="larger"):
        parse("x" * (protocol.MAX_FRAME + 1))
