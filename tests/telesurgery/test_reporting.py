"""The robot gateway's report to the platform: nothing is lost while the platform is away."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from concilium.telesurgery.gateways import RobotGateway
from concilium.telesurgery.link import Drop, ProcedureKeys
from concilium.telesurgery.reporting import TimelineReporter
from concilium.telesurgery.safety import SafetyState, Transition


class Platform(ThreadingHTTPServer):
    """Stands in for Concilium: records each report and answers with the next status."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.answers: list[int] = []
        self.received: list[tuple[str, dict[str, str], dict[str, object]]] = []


class Handler(BaseHTTPRequestHandler):
    server: Platform

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.received.append((self.path, headers, body))
        self.send_response(self.server.answers.pop(0))
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def platform() -> Iterator[Platform]:
    server = Platform()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_events_wait_for_the_platform_and_go_once(platform):
    gateway = RobotGateway(ProcedureKeys.generate("procedure-5"), "127.0.0.1", 9)
    host, port = platform.server_address[:2]
    reporter = TimelineReporter(f"http://{host}:{port}/", 5, "cnc_api", "tsg_gateway")
    reporter.attach(gateway)
    for hook in gateway.on_transition:
        hook(Transition(1.0, SafetyState.DISENGAGED, SafetyState.ENGAGED, "confirmed"))
    gateway.session.drops[Drop.AUTH_FAILED] += 3
    gateway.counters["refused_state"] += 2

    platform.answers = [503, 201, 201]
    assert asyncio.run(reporter.send_once()) is False
    assert reporter.failures == 1
    assert len(reporter.pending) == 3
    assert asyncio.run(reporter.send_once()) is True
    assert not reporter.pending
    assert asyncio.run(reporter.send_once()) is True

    path, headers, body = platform.received[1]
    assert path == "/api/v1/telesurgery/procedures/5/timeline"
    assert headers["authorization"] == "Bearer cnc_api"
    assert headers["x-gateway-token"] == "tsg_gateway"
    events = body["events"]
    assert [(e["kind"], e["state"]) for e in events] == [
        ("transition", "ENGAGED"),
        ("alarm", ""),
        ("refusal", ""),
    ]
    assert events[1]["detail"] == "3 datagram(s) dropped: auth_failed"
    assert events[2]["detail"] == "2 command(s) refused state"
    # Counted once: the next report carries nothing new.
    assert platform.received[2][2]["events"] == []


def test_a_reporter_needs_a_positive_interval():
    with pytest.raises(ValueError, match="interval"):
        TimelineReporter("http://127.0.0.1", 1, "a", "b", interval=0)
