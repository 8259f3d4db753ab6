"""The link: sealing, authentication, replay window, reordering, freshness, clock, keys."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest

from concilium.telesurgery.link import (
    ClockEstimator,
    Datagram,
    Drop,
    Dropped,
    JitterEstimator,
    KeyFileError,
    Kind,
    LinkSession,
    ProcedureKeys,
    ReplayWindow,
    judge_freshness,
    load_keys,
    write_keys,
)

MS = 1_000_000


@pytest.fixture
def keys():
    return ProcedureKeys.generate("proc-1", key_id=7)


def synced_pair(keys, freshness_ms=150):
    console = LinkSession(keys, "console", freshness_ns=freshness_ms * MS)
    robot = LinkSession(keys, "robot", freshness_ns=freshness_ms * MS)
    # One heartbeat exchange robot -> console -> robot at t=0..2 ms on equal clocks.
    hb = console.open(robot.seal(Kind.HEARTBEAT, b"", 0), 1 * MS)
    reply = robot.open(
        console.seal(Kind.HEARTBEAT_REPLY, console.heartbeat_reply_payload(hb), 1 * MS), 2 * MS
    )
    robot.on_heartbeat_reply(reply)
    return console, robot


def test_replay_window_accepts_new_and_refuses_seen_or_too_old():
    window = ReplayWindow(size=64)
    for seq in (5, 3, 10):
        assert window.check(seq)
        window.accept(seq)
    assert not window.check(5) and not window.check(10)
    assert window.check(4)
    window.accept(200)
    assert not window.check(200 - 64), "behind the window must be refused"
    assert window.check(200 - 63)


def test_a_sequence_number_jumping_by_2_to_the_63_is_opened_at_once(keys):
    # Found by fuzz/link_datagram.py: an authentic datagram whose sequence number leapt far
    # ahead made the replay window shift its bitmap by as many places (a MemoryError).
    console, robot = synced_pair(keys)
    first = console.seal(Kind.TELEMETRY, b"before", 3 * MS)
    console._next_sequence = 1 << 63
    leap = console.seal(Kind.TELEMETRY, b"far ahead", 4 * MS)
    assert isinstance(robot.open(first, 5 * MS), Datagram)
    opened = robot.open(leap, 6 * MS)
    assert isinstance(opened, Datagram) and opened.payload == b"far ahead"
    assert robot.open(first, 7 * MS) == Dropped(Drop.REPLAY, Kind.TELEMETRY)
    assert robot.open(leap, 8 * MS) == Dropped(Drop.REPLAY, Kind.TELEMETRY)
    window = ReplayWindow(size=64)
    window.accept(0)
    window.accept((1 << 64) - 1)
    assert not window.check((1 << 64) - 1) and window.check((1 << 64) - 2)


def test_sealed_command_is_delivered_with_latency(keys):
    console, robot = synced_pair(keys)
    result = robot.open(console.seal(Kind.COMMAND, b"pose", 10 * MS), 12 * MS)
    assert isinstance(result, Datagram)
    assert result.payload == b"pose" and result.latency_ns == pytest.approx(2 * MS, abs=MS // 2)


def test_forged_datagram_fails_authentication(keys):
    _console, robot = synced_pair(keys)
    forger = LinkSession(replace(ProcedureKeys.generate("proc-1"), key_id=7), "console")
    result = robot.open(forger.seal(Kind.COMMAND, b"evil", 10 * MS), 11 * MS)
    assert result == Dropped(Drop.AUTH_FAILED, Kind.COMMAND)
    assert robot.drops[Drop.AUTH_FAILED] == 1


def test_tampered_header_fails_authentication(keys):
    console, robot = synced_pair(keys)
    data = bytearray(console.seal(Kind.COMMAND, b"pose", 10 * MS))
    data[1] = Kind.TELEMETRY
    assert robot.open(bytes(data), 11 * MS).reason is Drop.AUTH_FAILED


def test_replayed_datagram_is_dropped(keys):
    console, robot = synced_pair(keys)
    data = console.seal(Kind.COMMAND, b"pose", 10 * MS)
    assert isinstance(robot.open(data, 11 * MS), Datagram)
    assert robot.open(data, 12 * MS).reason is Drop.REPLAY


def test_reordered_command_is_dropped_but_counted(keys):
    console, robot = synced_pair(keys)
    first = console.seal(Kind.COMMAND, b"1", 10 * MS)
    second = console.seal(Kind.COMMAND, b"2", 11 * MS)
    assert isinstance(robot.open(second, 12 * MS), Datagram)
    assert robot.open(first, 13 * MS).reason is Drop.REORDERED
    assert robot.drops[Drop.REORDERED] == 1


def test_stale_command_is_dropped_not_executed_late(keys):
    console, robot = synced_pair(keys, freshness_ms=150)
    data = console.seal(Kind.COMMAND, b"late", 10 * MS)
    assert robot.open(data, 10 * MS + 151 * MS).reason is Drop.STALE
    fresh = console.seal(Kind.COMMAND, b"ok", 200 * MS)
    assert isinstance(robot.open(fresh, 300 * MS), Datagram)


def test_commands_before_clock_synchronisation_are_refused(keys):
    console = LinkSession(keys, "console")
    robot = LinkSession(keys, "robot")
    assert robot.open(console.seal(Kind.COMMAND, b"x", 0), 1).reason is Drop.UNSYNCHRONISED


def test_wrong_key_id_and_garbage_are_counted(keys):
    _console, robot = synced_pair(keys)
    other = LinkSession(replace(keys, key_id=8), "console")
    assert robot.open(other.seal(Kind.COMMAND, b"x", 0), 1).reason is Drop.UNKNOWN_KEY
    assert robot.open(b"\x01\x02", 1).reason is Drop.MALFORMED
    assert robot.open(bytes(60), 1).reason is Drop.MALFORMED
    assert robot.drops[Drop.MALFORMED] == 2


def test_restarted_peer_is_accepted_but_an_old_epoch_replay_is_not(keys):
    console, robot = synced_pair(keys)
    old = console.seal(Kind.COMMAND, b"old", 10 * MS)
    assert isinstance(robot.open(old, 11 * MS), Datagram)
    restarted = LinkSession(keys, "console")
    assert isinstance(robot.open(restarted.seal(Kind.COMMAND, b"new", 20 * MS), 21 * MS), Datagram)
    older = console.seal(Kind.COMMAND, b"from the old epoch", 15 * MS)
    assert robot.open(older, 22 * MS).reason is Drop.OLD_EPOCH


def test_clock_estimator_recovers_offset_and_rtt_ntp_style():
    clock = ClockEstimator()
    # Peer clock is 500 ms ahead; 20 ms out, 30 ms back, 1 ms processing.
    t1 = 1_000 * MS
    t2 = t1 + 20 * MS + 500 * MS
    t3 = t2 + 1 * MS
    t4 = t3 - 500 * MS + 30 * MS
    sample = clock.add(t1, t2, t3, t4)
    assert sample.rtt_ns == 50 * MS
    # NTP's estimate is off by half the asymmetry (5 ms).
    assert sample.offset_ns == 495 * MS
    clock.add(t1, t1 + 500 * MS + 10 * MS, t1 + 511 * MS, t1 + 11 * MS + 10 * MS)
    assert clock.offset_ns == 500 * MS, "the lowest-RTT sample is trusted"


def test_jitter_follows_rfc3550():
    jitter = JitterEstimator()
    jitter.add(10 * MS)
    assert jitter.add(26 * MS) == pytest.approx(1 * MS)


def test_keys_refuse_equal_directions_and_short_keys():
    with pytest.raises(ValueError, match="different keys"):
        ProcedureKeys("p", 1, bytes(32), bytes(32))
    with pytest.raises(ValueError, match="32 bytes"):
        ProcedureKeys("p", 1, bytes(16), bytes(32))


def test_key_file_round_trip_and_permission_check(tmp_path, keys):
    path = tmp_path / "keys.json"
    write_keys(keys, path)
    assert load_keys(path) == keys
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="0644"):
        load_keys(path)


def test_malformed_key_file_is_refused(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"procedure_id": "p", "key_id": 1}))
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="malformed"):
        load_keys(path)


# --- an on-path attacker skewing the clock offset -----------------------------------------

CONSOLE_AHEAD = 3_000 * MS
"""The console's clock reads this much more than the robot's."""


def exchange(console, robot, sent, out_ns=MS, back_ns=MS):
    """One robot heartbeat at robot time ``sent``, answered at once, the heartbeat taking
    ``out_ns`` and the reply ``back_ns`` on the wire; returns the robot's sample."""
    console_time = sent + CONSOLE_AHEAD + out_ns
    heartbeat = console.open(robot.seal(Kind.HEARTBEAT, b"", sent), console_time)
    reply = console.seal(
        Kind.HEARTBEAT_REPLY, console.heartbeat_reply_payload(heartbeat), console_time
    )
    return robot.on_heartbeat_reply(robot.open(reply, sent + out_ns + back_ns))


def command_aged(console, robot, sent, age_ns):
    """A command sealed at robot time ``sent`` (console clock) and opened ``age_ns`` later."""
    data = console.seal(Kind.COMMAND, b"pose", sent + CONSOLE_AHEAD)
    return robot.open(data, sent + age_ns)


def test_held_back_heartbeat_replies_cannot_pass_a_late_command_off_as_fresh(keys):
    console = LinkSession(keys, "console", freshness_ns=150 * MS)
    robot = LinkSession(keys, "robot", freshness_ns=150 * MS)
    # Every heartbeat reply held back by 800 ms: the offset estimate moves by 400 ms.
    for i in range(40):
        exchange(console, robot, i * 10 * MS, back_ns=801 * MS)
    assert robot.clock.offset_ns == CONSOLE_AHEAD - 400 * MS
    late = command_aged(console, robot, 1_000 * MS, 505 * MS)
    assert isinstance(late, Dropped), "a 505 ms old command was accepted"
    assert late.reason is Drop.STALE
    # The offset may be wrong by half the round trip it was measured on, so the age of a
    # command is known to within 401 ms: a command is fresh only if it is fresh at worst.
    assert late.age_ns == 105 * MS and late.uncertainty_ns >= 401 * MS
    # A command that is truly fresh still goes through, although its age looks negative.
    fresh = command_aged(console, robot, 1_600 * MS, 5 * MS)
    assert isinstance(fresh, Datagram) and fresh.latency_ns == -395 * MS


def test_the_lowest_delay_sample_still_wins_over_held_back_ones(keys):
    console = LinkSession(keys, "console", freshness_ns=150 * MS)
    robot = LinkSession(keys, "robot", freshness_ns=150 * MS)
    for i in range(40):
        exchange(console, robot, i * 10 * MS, back_ns=(801 if i % 4 else 1) * MS)
    assert robot.clock.offset_ns == CONSOLE_AHEAD and robot.clock.best().rtt_ns == 2 * MS
    assert isinstance(command_aged(console, robot, 1_000 * MS, 140 * MS), Datagram)
    assert command_aged(console, robot, 1_100 * MS, 151 * MS).reason is Drop.STALE


def test_random_asymmetric_delays_never_let_a_late_command_through(keys):
    rng = random.Random(5905)
    budget = 150 * MS
    for trial in range(200):
        console = LinkSession(keys, "console", freshness_ns=budget)
        robot = LinkSession(keys, "robot", freshness_ns=budget)
        for i in range(rng.randint(1, 40)):
            out, back = (rng.choice((0, rng.randint(0, 300 * MS))) for _ in range(2))
            exchange(console, robot, i * 10 * MS, out, back)
        for j in range(20):
            age = rng.randint(0, 400 * MS)
            result = command_aged(console, robot, (1_000 + 10 * j) * MS, age)
            if isinstance(result, Datagram):
                assert age <= budget, f"trial {trial}: a {age / MS:.1f} ms old command passed"
            else:
                assert result.reason is Drop.STALE


def test_a_command_younger_than_the_clock_allows_raises_the_clock_alarm(keys):
    console, robot = synced_pair(keys)
    # The console's clock jumped a second ahead after the exchange (uncertainty 1 ms).
    data = console.seal(Kind.COMMAND, b"pose", 1_010 * MS)
    result = robot.open(data, 12 * MS)
    assert isinstance(result, Dropped) and result.reason is Drop.NEGATIVE_AGE
    assert result.age_ns == -998 * MS
    assert robot.drops[Drop.NEGATIVE_AGE] == 1 and robot.drops[Drop.STALE] == 0
    # Within the uncertainty, a slightly negative age is what an exact clock would show.
    assert isinstance(robot.open(console.seal(Kind.COMMAND, b"ok", 13 * MS), 12 * MS), Datagram)


def test_freshness_is_judged_on_the_age_at_worst():
    assert judge_freshness(100 * MS, 50 * MS, 150 * MS) is None
    assert judge_freshness(100 * MS, 51 * MS, 150 * MS) is Drop.STALE
    assert judge_freshness(-50 * MS, 50 * MS, 150 * MS) is None
    assert judge_freshness(-51 * MS, 50 * MS, 150 * MS) is Drop.NEGATIVE_AGE


def test_clock_uncertainty_is_half_the_round_trip_growing_with_the_sample_age():
    clock = ClockEstimator()
    assert clock.uncertainty_ns(0) is None
    clock.add(0, 11 * MS, 11 * MS, 21 * MS)  # 21 ms round trip
    assert clock.uncertainty_ns(21 * MS) == 10_500_001
    # Two clocks within RFC 5905's 500 ppm of true time drift apart by up to 1 ms a second.
    assert clock.uncertainty_ns(1_021 * MS) == 11_500_001
    with pytest.raises(ValueError, match="negative round trip"):
        clock.add(0, 10 * MS, 30 * MS, 5 * MS)
