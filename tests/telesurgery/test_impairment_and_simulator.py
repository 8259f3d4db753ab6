"""The impairment proxy's scheduling and the kinematic arm."""

from __future__ import annotations

import asyncio
import math
import random
import socket

import pytest

from concilium.telesurgery.impairment import ImpairedDirection as Direction
from concilium.telesurgery.impairment import ImpairmentProfile, ImpairmentProxy, link_kind, profile
from concilium.telesurgery.link import Kind, LinkSession, ProcedureKeys
from concilium.telesurgery.openigtlink import Transform
from concilium.telesurgery.robot_simulator import KinematicArm

pytestmark = pytest.mark.timing


def schedule(p: ImpairmentProfile, seed: int, count: int = 2000) -> list[list[float]]:
    direction = Direction(p, random.Random(seed))
    return [direction.schedule(i * 0.001, 100) for i in range(count)]


def test_same_seed_same_impairments():
    p = profile("degraded")
    assert schedule(p, 3) == schedule(p, 3)
    assert schedule(p, 3) != schedule(p, 4)


def test_delay_loss_and_order():
    p = ImpairmentProfile(delay_ms=75, jitter_ms=1, loss=0.1)
    times = schedule(p, 1)
    lost = sum(1 for t in times if not t)
    assert 150 < lost < 250
    departures = [t[0] for t in times if t]
    assert min(d - i * 0.001 for i, d in enumerate(departures)) >= 0.0
    assert departures == sorted(departures), "jitter alone must not reorder"


def test_reordering_and_duplication_happen_at_their_rates():
    p = ImpairmentProfile(delay_ms=10, reorder=0.05, duplicate=0.05)
    direction = Direction(p, random.Random(2))
    times = [direction.schedule(i * 0.001, 100) for i in range(2000)]
    assert 50 < direction.counters.reordered < 150
    assert 50 < sum(1 for t in times if len(t) == 2) < 150


def test_bandwidth_cap_serialises_and_tail_drops():
    p = ImpairmentProfile(bandwidth_bps=1_000_000, queue_limit_ms=20)
    direction = Direction(p, random.Random(0))
    # 10 datagrams of 1250 bytes at once: 10 ms each on a 1 Mbit/s link.
    departures = [direction.schedule(0.0, 1250) for _ in range(10)]
    assert departures[0] == [pytest.approx(0.010)]
    assert departures[1] == [pytest.approx(0.020)]
    assert direction.counters.queue_dropped == 7


def test_one_kind_is_held_back_and_the_rest_of_the_flow_overtakes_it():
    p = ImpairmentProfile(delay_ms=10, hold_back_ms=((Kind.HEARTBEAT_REPLY, 50.0),))
    direction = Direction(p, random.Random(0))
    kinds = [Kind.COMMAND, Kind.HEARTBEAT_REPLY, Kind.COMMAND, Kind.COMMAND]
    [[command], [reply], [second], [third]] = [
        direction.schedule(i * 0.001, 100, kind) for i, kind in enumerate(kinds)
    ]
    assert reply == pytest.approx(0.001 + 0.010 + 0.050)
    assert command < second < third < reply, "the rest of the flow must not wait for it"
    assert second == pytest.approx(0.002 + 0.010)
    assert direction.counters.held_back == 1


def test_the_kind_is_read_from_the_link_datagram_header():
    session = LinkSession(ProcedureKeys.generate("p"), "console")
    assert link_kind(session.seal(Kind.HEARTBEAT_REPLY, b"x", 0)) == Kind.HEARTBEAT_REPLY
    assert link_kind(b"ping") is None


def test_profile_validation():
    with pytest.raises(ValueError, match="loss must be a probability"):
        ImpairmentProfile(loss=1.5)
    with pytest.raises(ValueError, match="unknown profile"):
        profile("moon")
    with pytest.raises(ValueError, match="not a link datagram kind"):
        ImpairmentProfile(hold_back_ms=((99, 10.0),))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="HEARTBEAT_REPLY must not be negative"):
        ImpairmentProfile(hold_back_ms=((Kind.HEARTBEAT_REPLY, -1.0),))


def test_proxy_forwards_both_ways_and_cut_stops_traffic():
    async def scenario() -> tuple[bytes, bytes, int]:
        loop = asyncio.get_running_loop()
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.bind(("127.0.0.1", 0))
        server.setblocking(False)
        proxy = ImpairmentProxy(server.getsockname(), profile("lan"), seed=1)
        await proxy.start()
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.setblocking(False)
        client.sendto(b"ping", proxy.address)
        data, peer = await asyncio.wait_for(loop.sock_recvfrom(server, 100), 2)
        server.sendto(b"pong", peer)
        back, _ = await asyncio.wait_for(loop.sock_recvfrom(client, 100), 2)
        proxy.cut()
        client.sendto(b"lost", proxy.address)
        await asyncio.sleep(0.05)
        cut = proxy.forward.counters.cut
        proxy.close()
        server.close()
        client.close()
        return data, back, cut

    data, back, cut = asyncio.run(scenario())
    assert (data, back, cut) == (b"ping", b"pong", 1)


def test_proxy_forwards_the_rest_of_the_flow_while_one_kind_is_held_back():
    session = LinkSession(ProcedureKeys.generate("p"), "console")
    reply = session.seal(Kind.HEARTBEAT_REPLY, b"r", 0)
    command = session.seal(Kind.COMMAND, b"c", 0)

    async def scenario() -> list[tuple[bytes, float]]:
        loop = asyncio.get_running_loop()
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.bind(("127.0.0.1", 0))
        server.setblocking(False)
        held = ImpairmentProfile(hold_back_ms=((Kind.HEARTBEAT_REPLY, 300.0),))
        proxy = ImpairmentProxy(server.getsockname(), held)
        await proxy.start()
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.setblocking(False)
        start = loop.time()
        client.sendto(reply, proxy.address)
        await asyncio.sleep(0.01)
        client.sendto(command, proxy.address)
        arrivals = []
        for _ in range(2):
            data, _ = await asyncio.wait_for(loop.sock_recvfrom(server, 100), 2)
            arrivals.append((data, loop.time() - start))
        proxy.close()
        server.close()
        client.close()
        return arrivals

    [(first, first_at), (second, second_at)] = asyncio.run(scenario())
    assert (first, second) == (command, reply)
    assert first_at < 0.15, f"the command waited {first_at * 1000:.0f} ms for the held-back reply"
    assert second_at >= 0.3


def test_arm_respects_velocity_and_position_limits():
    arm = KinematicArm()
    arm.set_target(Transform(translation=(500.0, 10.0, 0.0)))
    arm.step(0.01)
    assert arm.positions[0] == pytest.approx(4.0)  # 400 mm/s for 10 ms
    for _ in range(200):
        arm.step(0.01)
    assert arm.positions[0] == pytest.approx(200.0)  # clamped at the joint limit
    assert arm.pose().translation[1] == pytest.approx(10.0)


def test_arm_yaw_from_rotation_and_hold():
    arm = KinematicArm()
    c, s = math.cos(0.5), math.sin(0.5)
    arm.set_target(Transform(rotation=(c, -s, 0, s, c, 0, 0, 0, 1)))
    for _ in range(100):
        arm.step(0.01)
    assert arm.positions[3] == pytest.approx(0.5)
    arm.set_target(Transform(translation=(100.0, 0, 0)))
    arm.step(0.01)
    arm.hold()
    held = arm.positions[0]
    arm.step(0.5)
    assert arm.positions[0] == held


def test_scheduled_outages_follow_the_profile_clock():
    proxy = ImpairmentProxy(("127.0.0.1", 9), ImpairmentProfile(outages=((1.0, 0.5),)))
    proxy._started_at = 100.0
    assert not proxy.in_outage(100.9)
    assert proxy.in_outage(101.0) and proxy.in_outage(101.49)
    assert not proxy.in_outage(101.5)
    proxy.cut()
    assert proxy.in_outage(100.0)
