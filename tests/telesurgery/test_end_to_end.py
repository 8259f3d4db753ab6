"""Console (pyigtl) -> console gateway -> impairment proxy -> robot gateway -> robot."""

from __future__ import annotations

import itertools
import re
import socket
import struct
import time
from dataclasses import replace

import numpy as np
import pyigtl
import pytest
from telesurgery_rig import RIG_THRESHOLDS, Streamer, transform_message, wait_for

from concilium.telesurgery import openigtlink as igtl
from concilium.telesurgery.impairment import profile
from concilium.telesurgery.limits import MotionLimits
from concilium.telesurgery.link import Kind, LinkSession, ProcedureKeys
from concilium.telesurgery.reporting import TimelineReporter
from concilium.telesurgery.safety import LINK_CLASSES, MOVING_STATES, SafetyState

pytestmark = pytest.mark.timing


def test_commands_reach_the_simulated_robot_in_order(make_rig):
    rig = make_rig(profile=profile("lan"))
    streamer = Streamer(rig).start()
    rig.engage()
    wait_for(lambda: len(rig.simulator.executed) >= 100, what="100 executed commands")
    streamer.stop()
    xs = [t.translation[0] for t in rig.simulator.executed]
    assert all(b > a for a, b in itertools.pairwise(xs)), "commands executed out of order"
    # Motion is relative: the robot (at 0) follows the master from its first pose.
    assert {round(x + streamer.sent[0], 4) for x in xs} <= set(streamer.sent)


def test_pyigtl_peers_on_both_sides_exchange_commands_and_telemetry(make_rig):
    rig = make_rig(profile=profile("lan"), robot="pyigtl")
    robot = rig.pyigtl_robot
    wait_for(robot.is_connected, what="gateway connected to the pyigtl robot")
    rig.client.send_message(pyigtl.StringMessage("ENGAGE", device_name="CONTROL"))
    robot.send_message(pyigtl.StringMessage("CONFIRM_ENGAGE", device_name="LOCAL"))
    wait_for(lambda: rig.robot.state is SafetyState.ENGAGED, what="ENGAGED")
    streamer = Streamer(rig, via_client=True).start()
    target = robot.wait_for_message("TARGET", timeout=5)
    streamer.stop()
    assert target is not None
    assert round(float(target.matrix[0, 3]), 4) in set(streamer.sent)
    measured = np.eye(4)
    measured[0:3, 3] = (1.5, -2.0, 3.25)
    robot.send_message(pyigtl.TransformMessage(measured, device_name="MEASURED"))
    telemetry = rig.client.wait_for_message("MEASURED", timeout=5)
    assert telemetry is not None
    np.testing.assert_allclose(telemetry.matrix[0:3, 3], (1.5, -2.0, 3.25))


def test_intercontinental_profile_stays_engaged(make_rig):
    rig = make_rig(profile=profile("intercontinental-12000km"))
    streamer = Streamer(rig).start()
    rig.engage()
    wait_for(
        lambda: len(rig.simulator.executed) >= 300,
        timeout=10,
        what=lambda: f"300 commands: {rig.robot.stats()} {rig.robot.safety.timeline}",
    )
    streamer.stop()
    states = [t.state for t in rig.robot.safety.timeline]
    assert states == [SafetyState.ENGAGED], f"left ENGAGED: {rig.robot.safety.timeline}"
    latency_ms = rig.robot.session.stats()["rtt_ms"]
    assert latency_ms is not None and latency_ms > 140, "the profile did not delay the link"
    # The console is told the state and the link figures once a second.
    wait_for(lambda: any("RTT" in s.message for s in rig.console.statuses), what="beacon")
    beacon = next(s for s in rig.console.statuses if "RTT" in s.message)
    assert beacon.error_name == "ENGAGED"
    assert 140 < float(re.search(r"RTT ([0-9.]+) ms", beacon.message).group(1)) < 1000


def test_intercontinental_link_with_its_link_class_executes_fresh_commands_and_holds_on_cut(
    make_rig,
):
    # The procedure is planned for the distance: the intercontinental class (freshness
    # 250 ms, halt 300 ms, warning 110 ms, its speed limits) over the 75 ms one-way profile.
    # Only the watchdog is the rig's (RIG_THRESHOLDS): it is the same 50 ms in every class,
    # and timed with this class and profile by the bench.
    preset = LINK_CLASSES["intercontinental"]
    thresholds = replace(preset.safety, watchdog_ms=RIG_THRESHOLDS.watchdog_ms)
    rig = make_rig(profile=profile(preset.profile), thresholds=thresholds, limits=preset.limits)
    budget = thresholds.command_freshness_ms / 1000
    watchdog = thresholds.watchdog_ms / 1000
    session = rig.robot.session
    # Both gateways read this machine's clock: the true age of a command when the robot
    # gateway has executed it is the time since the console gateway stamped it.
    true_ages: list[float] = []
    handler = rig.robot.link.handler

    def timed(datagram):
        executed = rig.robot.counters["executed"]
        handler(datagram)
        if rig.robot.counters["executed"] > executed:
            true_ages.append((time.time_ns() - datagram.sent_ns) / 1e9)

    rig.robot.link.handler = timed
    streamer = Streamer(rig).start()
    try:
        rig.engage()
        wait_for(
            lambda: len(rig.simulator.executed) >= 200,
            timeout=10,
            what=lambda: f"200 commands: {rig.robot.stats()} {rig.robot.safety.timeline}",
        )
        # The robot judges each command one round trip old at worst, about 150 ms: within
        # this budget, where the default 150 ms refuses them all.
        assert session.clock.best().rtt_ns > 140_000_000, "the profile did not delay the link"
        assert session.drops["stale"] < rig.robot.counters["executed"], rig.robot.stats()
        # From the surgeon's pose to the robot controller: the one-way delay and more.
        ages = sorted(rig.simulator.executed_ages)
        assert 0.07 < ages[len(ages) // 2] < budget, f"median age {ages[len(ages) // 2]:.3f} s"

        # A stall of this shared machine longer than the watchdog holds the robot, as it
        # should; the cut is measured from a moving state.
        for _ in range(3):
            if rig.robot.state in MOVING_STATES:
                break
            executed = len(rig.simulator.executed)
            rig.engage()
            wait_for(lambda n=executed: len(rig.simulator.executed) > n + 20, what="moving again")

        def cut() -> tuple[float, SafetyState]:
            rig.proxy.cut()
            return rig.loop.loop.time(), rig.robot.state

        cut_at, state_at_cut = rig.loop.call(cut)
        assert state_at_cut in MOVING_STATES, rig.robot.safety.timeline
        wait_for(lambda: rig.robot.state is SafetyState.HOLD, what="HOLD")
        hold = rig.robot.safety.timeline[-1]
        assert hold.at > cut_at
        assert hold.reason.startswith("no fresh command for"), hold.reason
        silent = hold.at - rig.robot.safety.last_command_at
        # Never before the watchdog; the upper bound leaves room for a busy CI machine.
        assert watchdog < silent <= watchdog + 0.1, f"HOLD after {silent * 1000:.1f} ms"
        # The commands in flight when the link was cut still arrive, up to one way later.
        one_way = profile(preset.profile).delay_ms / 1000
        assert hold.at - cut_at <= one_way + watchdog + 0.1, f"{hold.at - cut_at:.3f} s"
        wait_for(lambda: rig.simulator.safety_state == "HOLD", what="robot told to hold")
    finally:
        streamer.stop()
    assert len(true_ages) == rig.robot.counters["executed"] >= 200
    assert max(true_ages) < budget, f"a command was executed {max(true_ages):.3f} s old"


def test_cut_link_holds_within_watchdog_and_restoring_needs_reengagement(make_rig):
    rig = make_rig(profile=profile("lan"))
    thresholds = rig.thresholds
    streamer = Streamer(rig).start()
    rig.engage()
    try:
        wait_for(lambda: len(rig.simulator.executed) >= 20, what="commands flowing")

        def cut() -> float:
            rig.proxy.cut()
            return rig.loop.loop.time()

        cut_at = rig.loop.call(cut)
        assert rig.robot.state is SafetyState.ENGAGED
        wait_for(lambda: rig.robot.state is SafetyState.HOLD, what="HOLD")
        hold = rig.robot.safety.timeline[-1]
        assert hold.at > cut_at
        silent = hold.at - rig.robot.safety.last_command_at
        watchdog = thresholds.watchdog_ms / 1000
        # Never before the watchdog; the upper bound leaves room for a busy CI machine.
        assert watchdog < silent <= watchdog + 0.1, f"HOLD after {silent * 1000:.1f} ms"
        wait_for(lambda: rig.simulator.safety_state == "HOLD", what="robot told to hold")
        executed = len(rig.simulator.executed)

        rig.proxy.restore()
        refused = rig.robot.counters["refused_state"]
        wait_for(lambda: rig.robot.counters["refused_state"] > refused + 20, what="refusals")
        assert rig.robot.state is SafetyState.HOLD
        assert len(rig.simulator.executed) == executed, "moved without re-engagement"
        # The HOLD STATUS was lost with the link; the refusals after it say why.
        wait_for(
            lambda: any(
                s.error_name == "REFUSED" and "HOLD" in s.message for s in rig.console.statuses
            ),
            what="refusal STATUS",
        )

        rig.engage()
        wait_for(lambda: len(rig.simulator.executed) > executed + 10, what="moving again")
    finally:
        streamer.stop()


def test_out_of_limits_command_is_refused_and_reported(make_rig):
    rig = make_rig(profile=profile("lan"))
    rig.engage()
    # Motion is relative to the first master pose, which maps to the robot's pose (0).
    rig.client.send_message(transform_message(1.0))
    wait_for(lambda: len(rig.simulator.executed) == 1, what="first command")
    rig.client.send_message(transform_message(401.0))  # outside the workspace box
    rig.client.send_message(transform_message(30.0))  # a 29 mm jump
    rig.client.send_message(transform_message(1.1))
    wait_for(lambda: len(rig.simulator.executed) == 2, what="the valid command")
    xs = [round(t.translation[0], 3) for t in rig.simulator.executed]
    assert xs == [0.0, 0.1]
    wait_for(lambda: len([s for s in rig.console.statuses if s.error_name == "LIMIT"]) == 2)
    reasons = [s.message for s in rig.console.statuses if s.error_name == "LIMIT"]
    assert "outside workspace" in reasons[0] and "jump" in reasons[1]


def test_a_command_turning_the_tool_too_far_or_too_fast_is_refused_and_reported(make_rig):
    # The limits come from the procedure's [limits] section, as the robot gateway reads it.
    limits = MotionLimits.from_mapping({"max_rotation_deg": 5.0, "max_angular_velocity_deg_s": 90})
    rig = make_rig(profile=profile("lan"), limits=limits)
    rig.engage()

    def turned(degrees: float, x: float, at: float) -> pyigtl.TransformMessage:
        matrix = np.eye(4)
        c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
        matrix[0:2, 0:2] = ((c, -s), (s, c))
        matrix[0, 3] = x
        return pyigtl.TransformMessage(matrix, device_name="MASTER", timestamp=at)

    start = time.time()
    rig.client.send_message(turned(0.0, 1.0, start))
    wait_for(lambda: len(rig.simulator.executed) == 1, what="first command")
    rig.client.send_message(turned(3.0, 1.0, start + 0.05))  # 60 deg/s: within both limits
    rig.client.send_message(turned(10.0, 1.0, start + 0.10))  # a 7 degree turn
    # 3 degrees in the 10 ms since the last executed command: 300 deg/s.
    rig.client.send_message(turned(6.0, 1.0, start + 0.06))
    rig.client.send_message(turned(4.0, 1.1, start + 0.15))
    wait_for(lambda: len(rig.simulator.executed) == 3, what="the valid commands")
    angles = [
        round(float(np.degrees(np.arctan2(t.rotation[3], t.rotation[0]))), 1)
        for t in rig.simulator.executed
    ]
    assert angles == [0.0, 3.0, 4.0]
    wait_for(lambda: len([s for s in rig.console.statuses if s.error_name == "LIMIT"]) == 2)
    reasons = [s.message for s in rig.console.statuses if s.error_name == "LIMIT"]
    assert reasons[0] == "rotation of 7.00 deg exceeds 5 deg"
    assert reasons[1].startswith("angular velocity 3") and "exceeds 90 deg/s" in reasons[1]
    assert rig.robot.counters["refused_limit"] == 2


def test_forged_replayed_and_stale_datagrams_are_never_executed(make_rig):
    rig = make_rig(profile=profile("lan"))
    captured: list[bytes] = []
    send_upstream = rig.proxy._send_upstream

    def tap(data: bytes) -> None:
        captured.append(data)
        send_upstream(data)

    rig.proxy._send_upstream = tap
    streamer = Streamer(rig).start()
    rig.engage()
    try:
        wait_for(lambda: len(rig.simulator.executed) >= 30, what="commands flowing")
        robot_address = rig.robot.link.local_address
        executed_before = len(rig.simulator.executed)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
            # Forged: right key id, wrong key, a pose nobody sent.
            forger = LinkSession(
                replace(ProcedureKeys.generate("proc-test"), key_id=rig.keys.key_id), "console"
            )
            pose = igtl.Message("TARGET", igtl.Transform(translation=(42.4242, 0.0, 0.0)))
            for _ in range(5):
                attacker.sendto(
                    forger.seal(Kind.COMMAND, igtl.pack(pose), time.time_ns()), robot_address
                )
            # Replayed: genuine datagrams sent again.
            commands = [d for d in captured if d[1] == Kind.COMMAND][:20]
            for datagram in commands:
                attacker.sendto(datagram, robot_address)
            wait_for(lambda: rig.robot.session.drops["auth_failed"] >= 5, what="forged drops")
            wait_for(lambda: rig.robot.session.drops["replay"] >= 20, what="replay drops")

        wait_for(
            lambda: len(rig.simulator.executed) > executed_before + 10,
            what="genuine commands still executed during the attack",
        )
        # Stale: the path suddenly takes longer than the freshness budget.
        rig.proxy.forward.profile = replace(rig.proxy.profile, delay_ms=700.0)
        wait_for(lambda: rig.robot.session.drops["stale"] >= 10, what="stale drops")
        assert rig.robot.state is SafetyState.HOLD
    finally:
        streamer.stop()
    xs = [round(t.translation[0], 4) for t in rig.simulator.executed]
    assert 42.4242 not in xs
    assert len(xs) == len(set(xs)), "a command was executed twice"
    budget = rig.thresholds.command_freshness_ms / 1000
    assert max(rig.simulator.executed_ages) < budget, "a command was executed late"


def _raw_message(type_name: bytes, body: bytes, crc: int | None = None) -> bytes:
    header = struct.pack(
        ">H12s20sIIQQ",
        1,
        type_name,
        b"MASTER",
        0,
        0,
        len(body),
        igtl.crc64(body) if crc is None else crc,
    )
    return header + body


def _read_status(sock: socket.socket) -> igtl.Message:
    buffer = b""
    while True:
        buffer += sock.recv(65536)
        while len(buffer) >= igtl.HEADER_SIZE:
            header = igtl.unpack_header(buffer[: igtl.HEADER_SIZE])
            end = igtl.HEADER_SIZE + header.body_size
            if len(buffer) < end:
                break
            message = igtl.unpack_body(header, buffer[igtl.HEADER_SIZE : end])
            buffer = buffer[end:]
            if message.type_name == "STATUS":
                return message


def test_malformed_openigtlink_is_answered_with_status_and_never_forwarded(make_rig):
    rig = make_rig(profile=profile("lan"))
    good = igtl.pack_content(igtl.Transform(translation=(1.0, 2.0, 3.0)))
    sent_before = rig.console.counters["commands_sent"]
    with socket.create_connection(("127.0.0.1", rig.console.igtl_port), timeout=5) as sock:
        sock.sendall(_raw_message(b"TRANSFORM", good, crc=igtl.crc64(good) ^ 1))
        status = _read_status(sock)
        assert status.content.code == igtl.StatusCode.CHECKSUM_ERROR

        sock.sendall(_raw_message(b"TRANSFORM", good[:40]))
        status = _read_status(sock)
        assert status.content.code == igtl.StatusCode.INVALID
        assert "expected 48" in status.content.message

        sock.sendall(_raw_message(b"FOOBAR", b"\x00" * 8))
        status = _read_status(sock)
        assert status.content.code == igtl.StatusCode.UNKNOWN_INSTRUCTION

        assert rig.console.counters["commands_sent"] == sent_before
        # The stream stayed aligned: a valid message right after is forwarded.
        sock.sendall(_raw_message(b"TRANSFORM", good))
        wait_for(lambda: rig.console.counters["commands_sent"] == sent_before + 1)
    assert rig.console.counters["igtl_CrcMismatchError"] == 1
    assert rig.console.counters["igtl_SizeError"] == 1
    assert rig.console.counters["igtl_UnknownTypeError"] == 1


def test_console_pose_read_after_the_freshness_budget_is_not_sent(make_rig):
    rig = make_rig(profile=profile("lan"))
    sent = rig.console.counters["commands_sent"]
    old = transform_message(1.0)
    old.timestamp = time.time() - 1.0
    rig.client.send_message(old)
    wait_for(lambda: rig.console.counters["stale_from_console"] == 1, what="stale pose")
    rig.client.send_message(transform_message(1.0))
    wait_for(lambda: rig.console.counters["commands_sent"] == sent + 1, what="fresh pose")


def test_losing_the_robot_controller_holds_and_reports(make_rig):
    rig = make_rig(profile=profile("lan"))
    streamer = Streamer(rig).start()
    try:
        rig.engage()
        wait_for(lambda: len(rig.simulator.executed) >= 10, what="commands flowing")
        rig.loop.run(rig.simulator.close())
        wait_for(lambda: rig.robot.state is SafetyState.HOLD, what="HOLD")
        assert rig.robot.safety.timeline[-1].reason == "robot controller disconnected"
        wait_for(
            lambda: any(s.error_name == "HOLD" for s in rig.console.statuses),
            what="HOLD reported to the console",
        )
    finally:
        streamer.stop()


def test_local_team_takeover_wins_while_the_surgeon_is_driving(make_rig):
    rig = make_rig(profile=profile("lan"))
    streamer = Streamer(rig).start()
    try:
        rig.engage()
        wait_for(lambda: len(rig.simulator.executed) >= 10, what="commands flowing")
        rig.loop.call(rig.simulator.send_local, "TAKEOVER")
        wait_for(lambda: rig.robot.state is SafetyState.LOCAL_CONTROL, what="LOCAL_CONTROL")
        executed = len(rig.simulator.executed)
        rig.client.send_message(pyigtl.StringMessage("ENGAGE", device_name="CONTROL"))
        refused = rig.robot.counters["refused_state"]
        wait_for(lambda: rig.robot.counters["refused_state"] > refused + 20, what="refusals")
        assert rig.robot.state is SafetyState.LOCAL_CONTROL
        assert len(rig.simulator.executed) == executed
        wait_for(
            lambda: any(s.code == igtl.StatusCode.MANUAL_MODE for s in rig.console.statuses),
            what="MANUAL_MODE reported to the console",
        )
    finally:
        streamer.stop()


def test_re_engaging_far_from_the_robot_is_refused_as_a_jump(make_rig):
    rig = make_rig(profile=profile("lan"))
    rig.engage()
    rig.client.send_message(transform_message(1.0))  # the anchor: robot stays at 0
    wait_for(lambda: len(rig.simulator.executed) == 1, what="first command")
    time.sleep(0.05)  # 1 mm in 50 ms: well within the velocity limit
    rig.client.send_message(transform_message(2.0))
    wait_for(lambda: len(rig.simulator.executed) == 2, what="second command")
    wait_for(lambda: rig.robot.measured is not None and rig.robot.measured[0] > 0.99)
    wait_for(lambda: rig.robot.state is SafetyState.HOLD, what="watchdog HOLD")
    rig.engage()
    rig.client.send_message(transform_message(21.0))
    wait_for(lambda: any(s.error_name == "LIMIT" for s in rig.console.statuses))
    refusal = next(s for s in rig.console.statuses if s.error_name == "LIMIT")
    assert refusal.message.startswith("jump of 19.00 mm")
    assert len(rig.simulator.executed) == 2


# --- an on-path attacker skewing the robot's clock offset -----------------------------------

MS = 1_000_000


def _late(rig) -> list[float]:
    budget = rig.thresholds.command_freshness_ms / 1000
    return [age for age in rig.simulator.executed_ages if age > budget]


def test_held_back_heartbeat_replies_never_get_a_late_command_executed(make_rig):
    rig = make_rig(profile=profile("lan"))
    budget_ms = rig.thresholds.command_freshness_ms
    # Console to robot: every datagram 30 ms past the freshness budget; the heartbeat replies
    # a further 50 ms, so the robot's offset estimate moves by half their round trip.
    rig.proxy.forward.profile = replace(
        profile("lan"),
        delay_ms=budget_ms + 30,
        hold_back_ms=((Kind.HEARTBEAT_REPLY, 50.0),),
    )
    clock = rig.robot.session.clock
    wait_for(
        lambda: clock.best() is not None and clock.best().rtt_ns > (budget_ms + 50) * MS,
        what="only held-back heartbeat replies in the robot's clock window",
    )
    # Both gateways share this machine's clock: the true offset is zero.
    assert clock.offset_ns < -(budget_ms / 2) * MS, "the attack did not skew the offset"
    streamer = Streamer(rig).start()
    session = rig.robot.session
    try:
        rig.client.send_message(pyigtl.StringMessage("ENGAGE", device_name="CONTROL"))
        rig.loop.call(rig.simulator.send_local, "CONFIRM_ENGAGE")
        wait_for(
            lambda: session.drops["stale"] + session.received["command"] >= 100,
            timeout=10,
            what=lambda: f"100 commands through the attack: {rig.robot.stats()}",
        )
    finally:
        streamer.stop()
    late = _late(rig)
    assert not late, f"{len(late)} command(s) executed late, up to {max(late) * 1000:.0f} ms"
    assert session.drops["stale"] >= 100
    assert rig.engagements() == 0, "the ENGAGE request was just as late"


def test_heartbeat_replies_held_back_past_the_halt_threshold_hold_the_robot(make_rig):
    rig = make_rig(profile=profile("lan"))
    halt_ms = rig.thresholds.latency_halt_ms
    streamer = Streamer(rig).start()
    rig.engage()
    try:
        wait_for(lambda: len(rig.simulator.executed) >= 20, what="commands flowing")
        # Only the heartbeat replies are held back; the commands themselves arrive on time.
        rig.proxy.forward.profile = replace(
            profile("lan"), hold_back_ms=((Kind.HEARTBEAT_REPLY, halt_ms + 100),)
        )
        wait_for(
            lambda: rig.robot.state is SafetyState.HOLD,
            what=lambda: f"HOLD: {rig.robot.stats()} {rig.robot.safety.timeline}",
        )
        hold = rig.robot.safety.timeline[-1]
        assert f"above halt threshold {halt_ms:g} ms" in hold.reason
        assert hold.reason.startswith("clock round trip"), hold.reason
        wait_for(
            lambda: any(s.error_name == "HOLD" for s in rig.console.statuses),
            what="HOLD reported to the console",
        )
    finally:
        streamer.stop()
    assert not _late(rig)


def test_a_console_clock_stepped_ahead_raises_the_clock_alarm_and_holds(make_rig):
    rig = make_rig(profile=profile("lan"))
    reporter = TimelineReporter("http://127.0.0.1:9", 1, "api", "gateway")
    reporter.attach(rig.robot)
    streamer = Streamer(rig).start()
    rig.engage()
    try:
        wait_for(lambda: len(rig.simulator.executed) >= 20, what="commands flowing")
        # Its commands now say they were sent a second after the robot received them.
        rig.console.link.clock_ns = lambda: time.time_ns() + 1_000 * MS
        wait_for(lambda: rig.robot.state is SafetyState.HOLD, what="HOLD")
        wait_for(
            lambda: any(s.error_name == "CLOCK_ALARM" for s in rig.console.statuses),
            what="clock alarm reported to the console",
        )
    finally:
        streamer.stop()
    hold = next(t for t in rig.robot.safety.timeline if t.state is SafetyState.HOLD)
    assert hold.reason.startswith("clock alarm: command"), hold.reason
    assert rig.robot.session.drops["negative_age"] >= 1
    reporter.collect_counters()
    alarms = [e["detail"] for e in reporter.pending if e["kind"] == "alarm"]
    assert any("dropped: negative_age" in a for a in alarms), alarms
    assert not _late(rig)
