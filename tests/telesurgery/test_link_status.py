"""Each gateway's view of the link: loss and reordering counted from sequence numbers, both
sides reported, and the samples shared by every Concilium process through the event bus."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis

from concilium.platform.errors import InvalidInput
from concilium.platform.events import EventBus, RedisEventBus
from concilium.telesurgery.gateways import ConsoleGateway
from concilium.telesurgery.link import (
    Datagram,
    Dropped,
    Kind,
    LinkSession,
    ProcedureKeys,
    SequenceCount,
    link_quality,
)
from concilium.telesurgery.link_status import STATUS_TOPIC, LinkStatusBoard
from concilium.telesurgery.reporting import TimelineReporter

pytestmark = pytest.mark.timing

REDIS_URL = "redis://127.0.0.1:6379/0"


def _pair() -> tuple[LinkSession, LinkSession]:
    keys = ProcedureKeys.generate("procedure-9")
    return LinkSession(keys, "robot"), LinkSession(keys, "console")


def test_loss_and_reordering_come_from_the_sequence_numbers():
    robot, console = _pair()
    sent = [robot.seal(Kind.HEARTBEAT, b"", time.time_ns()) for _ in range(10)]
    # 2 and 7 are lost; 5 arrives after 6; 3 arrives twice (a duplicate is no delivery).
    for index in (0, 1, 3, 4, 6, 5, 8, 9):
        assert isinstance(console.open(sent[index], time.time_ns()), Datagram)
        if index == 3:
            assert isinstance(console.open(sent[3], time.time_ns()), Dropped)
    count = console.sequence_count()
    assert (count.expected, count.authentic, count.reordered) == (10, 8, 1)
    loss, reordering = link_quality(None, count)
    assert loss == pytest.approx(0.2)
    assert reordering == pytest.approx(1 / 8)
    # The next interval: everything arrives, in order.
    for _ in range(5):
        console.open(robot.seal(Kind.HEARTBEAT, b"", time.time_ns()), time.time_ns())
    assert link_quality(count, console.sequence_count()) == (0.0, 0.0)
    # Nothing sent since: nothing to say.
    assert link_quality(console.sequence_count(), console.sequence_count()) is None


def test_a_restarted_peer_starts_the_count_again():
    before = SequenceCount(epoch=1, expected=1000, authentic=990, reordered=3)
    after = SequenceCount(epoch=2, expected=10, authentic=9, reordered=0)
    assert link_quality(before, after) == (pytest.approx(0.1), 0.0)


def test_the_console_gateway_reports_its_own_view_of_the_link():
    keys = ProcedureKeys.generate("procedure-9")
    console = ConsoleGateway(keys, ("127.0.0.1", 9))
    robot = LinkSession(keys, "robot")
    reporter = TimelineReporter("http://127.0.0.1:9", 9, "cnc_api", "tsg_console")
    reporter.attach(console)
    sent = [robot.seal(Kind.TELEMETRY, b"x", time.time_ns()) for _ in range(4)]
    for data in (sent[0], sent[1], sent[3]):
        console.session.open(data, time.time_ns())
    console.counters["commands_sent"] += 50

    async def sample() -> dict[str, object]:
        return reporter.status()

    first = asyncio.run(sample())
    assert first["loss"] == pytest.approx(0.25)
    assert first["reordering"] == 0.0
    assert "state" not in first and "latency_ms" not in first  # the robot side's to say


def test_the_board_keeps_each_side_and_the_robot_side_on_top():
    board = LinkStatusBoard()
    assert board.latest(4) == (0, {})
    board.update(4, "robot", {"state": "ENGAGED", "latency_ms": 80.0, "loss": 0.0, "x": 1})
    board.update(4, "console", {"rtt_ms": 151.0, "loss": 0.02})
    version, sample = board.latest(4)
    assert version == 2
    assert sample["state"] == "ENGAGED" and sample["loss"] == 0.0
    assert sample["sides"]["console"]["loss"] == 0.02
    assert sample["sides"]["console"]["rtt_ms"] == 151.0
    assert sample["sides"]["robot"]["latency_ms"] == 80.0
    assert "x" not in sample["sides"]["robot"]
    with pytest.raises(InvalidInput):
        board.update(4, "platform", {})


def test_samples_go_through_the_in_process_bus():
    bus = EventBus()
    seen: list[dict[str, object]] = []
    bus.subscribe(STATUS_TOPIC, lambda topic, payload: seen.append(payload))
    board = LinkStatusBoard(bus)
    board.update(3, "robot", {"latency_ms": 12.5})
    assert seen and seen[0]["procedure_id"] == 3
    assert board.latest(3)[1]["latency_ms"] == 12.5
    # What another process publishes, malformed or not, never breaks the board.
    bus.publish(STATUS_TOPIC, {"procedure_id": "x"})
    bus.publish(STATUS_TOPIC, {"procedure_id": 3, "source": "robot", "sample": [], "at": 0})
    assert board.latest(3)[0] == 1


def test_a_board_in_another_process_sees_the_samples_through_redis():
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is needed at {REDIS_URL} (make test starts it): {exc}")
    procedure_id = uuid.uuid4().int % 1_000_000_000
    here, there = RedisEventBus(REDIS_URL), RedisEventBus(REDIS_URL)
    try:
        ingesting, supervising = LinkStatusBoard(here), LinkStatusBoard(there)
        deadline = time.monotonic() + 10
        # The subscriptions are asynchronous: report until the other board has it.
        while supervising.latest(procedure_id)[0] == 0:
            assert time.monotonic() < deadline, "the sample never reached the other board"
            ingesting.update(procedure_id, "console", {"rtt_ms": 150.5, "loss": 0.001})
            time.sleep(0.1)
        sample = supervising.latest(procedure_id)[1]
        assert sample["sides"]["console"]["rtt_ms"] == 150.5
        assert sample["console_seen"] is True
        # The ingesting process's own board takes the sample from the bus as well.
        while ingesting.latest(procedure_id)[0] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert ingesting.latest(procedure_id)[1]["sides"]["console"]["loss"] == 0.001
    finally:
        here.close()
        there.close()
