"""The server's log: one JSON object a line, without the chatter of the libraries it uses."""

from __future__ import annotations

import io
import json
import logging

import httpx

from concilium.web.observability import configure_logging


def test_the_log_is_json_and_the_http_clients_requests_stay_out_of_it(monkeypatch):
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("httpx").level)
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    try:
        configure_logging("info")
        transport = httpx.MockTransport(lambda request: httpx.Response(200))
        with httpx.Client(transport=transport) as client:
            client.get("http://127.0.0.1:8288/janus/1234")
        logging.getLogger("concilium.test").info("kept", extra={"room": 7})
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging.getLogger("httpx").setLevel(saved[2])
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    logged = [(e["logger"], e["msg"], e.get("room")) for e in lines]
    assert logged == [("concilium.test", "kept", 7)]
