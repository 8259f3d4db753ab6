"""The robot-side safety state machine, as a pure function of inputs and time."""

from __future__ import annotations

import json

import pytest

from concilium.telesurgery import openigtlink as igtl
from concilium.telesurgery.safety import (
    SafetyState,
    SafetyStateMachine,
    SafetyThresholds,
    load_thresholds,
    status_for,
)

S = SafetyState


def engaged(now: float = 0.0, **overrides: float) -> SafetyStateMachine:
    machine = SafetyStateMachine(SafetyThresholds(**overrides), now=now)
    machine.request_engage(now)
    machine.confirm_engage(now)
    assert machine.state is S.ENGAGED
    return machine


def test_starts_disengaged_and_refuses_commands():
    machine = SafetyStateMachine(SafetyThresholds())
    decision, _ = machine.on_command(0.0, latency_ms=10, jitter_ms=1)
    assert machine.state is S.DISENGAGED and not decision.execute


@pytest.mark.parametrize("order", [("surgeon", "local"), ("local", "surgeon")])
def test_engaging_needs_both_surgeon_request_and_local_confirmation(order):
    machine = SafetyStateMachine(SafetyThresholds())
    first, second = order
    step = {"surgeon": machine.request_engage, "local": machine.confirm_engage}
    assert step[first](0.0) == []
    assert machine.state is S.DISENGAGED
    [transition] = step[second](0.1)
    assert transition.state is S.ENGAGED and machine.state is S.ENGAGED


def test_surgeon_request_alone_twice_does_not_engage():
    machine = SafetyStateMachine(SafetyThresholds())
    machine.request_engage(0.0)
    machine.request_engage(0.1)
    assert machine.state is S.DISENGAGED


def test_fresh_commands_keep_it_engaged_and_execute():
    machine = engaged()
    for i in range(1, 100):
        decision, changes = machine.on_command(i * 0.01, latency_ms=75, jitter_ms=1)
        assert decision.execute and changes == []
    assert machine.state is S.ENGAGED


def test_watchdog_expiry_holds():
    machine = engaged(watchdog_ms=50)
    machine.on_command(0.010, 10, 1)
    assert machine.tick(0.060) == []  # exactly 50 ms of silence is still within
    [transition] = machine.tick(0.0601)
    assert transition.state is S.HOLD and "watchdog 50 ms" in transition.reason
    assert machine.next_deadline() == pytest.approx(0.0601 + 10.0)


def test_next_deadline_is_the_watchdog_expiry():
    machine = engaged(now=0.99, watchdog_ms=50)
    machine.on_command(1.0, 10, 1)
    assert machine.next_deadline() == pytest.approx(1.05)


def test_sustained_latency_above_warning_degrades_and_recovery_re_engages():
    machine = engaged(latency_warning_ms=100, latency_halt_ms=200)
    now = 0.0
    for _ in range(20):
        now += 0.01
        machine.on_command(now, latency_ms=75, jitter_ms=1)
    decision, changes = machine.on_command(now + 0.01, latency_ms=190, jitter_ms=1)
    assert decision.execute and changes == [], "one late packet must not flap the state"
    seen = []
    for _ in range(40):
        now += 0.01
        seen += machine.on_command(now, latency_ms=130, jitter_ms=1)[1]
    assert [t.state for t in seen] == [S.DEGRADED]
    assert "above warning 100 ms" in seen[0].reason
    for _ in range(60):
        now += 0.01
        seen += machine.on_command(now, latency_ms=60, jitter_ms=1)[1]
    assert [t.state for t in seen] == [S.DEGRADED, S.ENGAGED]


def test_first_command_above_warning_degrades_at_once():
    machine = engaged(latency_warning_ms=100, latency_halt_ms=200)
    decision, [t] = machine.on_command(0.01, latency_ms=120, jitter_ms=1)
    assert decision.execute and t.state is S.DEGRADED


def test_jitter_above_warning_degrades():
    machine = engaged(jitter_warning_ms=10)
    _, [t] = machine.on_command(0.01, latency_ms=50, jitter_ms=12)
    assert t.state is S.DEGRADED and "jitter" in t.reason


def test_latency_above_halt_holds_and_refuses_the_command():
    machine = engaged(latency_halt_ms=200)
    decision, [t] = machine.on_command(0.01, latency_ms=250, jitter_ms=1)
    assert not decision.execute and t.state is S.HOLD


def test_hold_needs_re_engagement_even_when_commands_come_back():
    machine = engaged()
    machine.tick(1.0)
    assert machine.state is S.HOLD
    decision, _ = machine.on_command(1.01, 10, 1)
    assert not decision.execute and machine.state is S.HOLD
    machine.request_engage(1.02)
    machine.confirm_engage(1.03)
    assert machine.state is S.ENGAGED
    assert machine.on_command(1.04, 10, 1)[0].execute


def test_hold_disengages_after_the_configured_time():
    machine = engaged(hold_to_disengage_s=2.0)
    machine.tick(1.0)
    assert machine.tick(2.99) == []
    [t] = machine.tick(3.0)
    assert t.state is S.DISENGAGED


def test_engagement_flags_do_not_survive_a_transition():
    machine = engaged()
    machine.tick(1.0)  # HOLD
    machine.request_engage(1.1)
    machine.tick(12.0)  # DISENGAGED after 10 s in HOLD
    machine.confirm_engage(12.1)
    assert machine.state is S.DISENGAGED, "a stale surgeon request must not count"


@pytest.mark.parametrize("setup", ["disengaged", "engaged", "degraded", "hold"])
def test_local_takeover_wins_from_any_state(setup):
    machine = SafetyStateMachine(SafetyThresholds())
    if setup != "disengaged":
        machine.request_engage(0)
        machine.confirm_engage(0)
    if setup == "degraded":
        machine.on_command(0.01, 120, 1)
    if setup == "hold":
        machine.tick(1.0)
    [t] = machine.local_takeover(1.5)
    assert t.state is S.LOCAL_CONTROL
    assert not machine.on_command(1.51, 10, 1)[0].execute
    assert machine.request_engage(1.6) == [] and machine.surgeon_disengage(1.7) == []
    assert machine.state is S.LOCAL_CONTROL
    [t] = machine.local_release(2.0)
    assert t.state is S.DISENGAGED


def test_every_transition_is_on_the_timeline_and_has_a_status():
    machine = engaged()
    machine.on_command(0.01, 120, 1)
    machine.tick(1.0)
    machine.local_takeover(1.1)
    states = [t.state for t in machine.timeline]
    assert states == [S.ENGAGED, S.DEGRADED, S.HOLD, S.LOCAL_CONTROL]
    codes = [status_for(t).code for t in machine.timeline]
    assert codes == [
        igtl.StatusCode.OK,
        igtl.StatusCode.OK,
        igtl.StatusCode.NOT_READY,
        igtl.StatusCode.MANUAL_MODE,
    ]
    assert status_for(machine.timeline[2]).error_name == "HOLD"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"watchdog_ms": 0}, "watchdog_ms must be a positive finite number"),
        ({"latency_warning_ms": 300}, "latency_warning_ms (300) must be below latency_halt_ms"),
        ({"command_freshness_ms": 500}, "command_freshness_ms (500) must not exceed"),
        ({"jitter_warning_ms": float("nan")}, "jitter_warning_ms must be a positive finite"),
        ({"hold_to_disengage_s": "10"}, "hold_to_disengage_s must be a number"),
    ],
)
def test_thresholds_are_validated_with_precise_messages(overrides, message):
    with pytest.raises(ValueError) as info:
        SafetyThresholds(**overrides)
    assert message in str(info.value)


def test_thresholds_load_from_toml_and_json(tmp_path):
    toml = tmp_path / "procedure.toml"
    toml.write_text("[safety]\nwatchdog_ms = 40\nlatency_halt_ms = 180\n")
    assert load_thresholds(toml) == SafetyThresholds(watchdog_ms=40, latency_halt_ms=180)
    js = tmp_path / "procedure.json"
    js.write_text(json.dumps({"safety": {"jitter_warning_ms": 5}}))
    assert load_thresholds(js).jitter_warning_ms == 5
    bad = tmp_path / "typo.toml"
    bad.write_text("[safety]\nwatchdog = 40\n")
    with pytest.raises(ValueError, match="unknown safety threshold"):
        load_thresholds(bad)


def test_losing_the_robot_controller_holds_only_when_moving():
    machine = SafetyStateMachine(SafetyThresholds())
    assert machine.robot_lost(0.0) == []
    machine = engaged()
    [t] = machine.robot_lost(0.01)
    assert t.state is S.HOLD and "disconnected" in t.reason


def test_the_example_procedure_file_documents_the_defaults_and_pins_none(tmp_path):
    import re
    import tomllib
    from pathlib import Path

    from concilium import telesurgery
    from concilium.telesurgery.limits import MotionLimits
    from concilium.telesurgery.qualification import QualificationThresholds
    from concilium.telesurgery.safety import load_procedure_file, resolve_link_class

    path = Path(telesurgery.__file__).parent / "procedure.example.toml"
    # Every option is shown, commented out, with its default.
    shown = tomllib.loads(re.sub(r"^# (\w+ = .*)$", r"\1", path.read_text(), flags=re.M))
    assert shown["link_class"] == "lan"
    assert SafetyThresholds.from_mapping(shown["safety"]) == SafetyThresholds()
    assert MotionLimits.from_mapping(shown["limits"]) == MotionLimits()
    assert QualificationThresholds.from_mapping(shown["qualification"]) == (
        QualificationThresholds()
    )
    # As it is, the file sets nothing: a copy takes its link class's values whole.
    data = load_procedure_file(path)
    assert all(value == {} for value in data.values()), data
    far = resolve_link_class(data, "intercontinental")
    assert SafetyThresholds.from_mapping(far["safety"]).command_freshness_ms == 250


def test_a_clock_round_trip_above_halt_holds_until_it_comes_back_down():
    machine = engaged(latency_halt_ms=200)
    assert machine.on_clock(0.01, round_trip_ms=150) == []
    [t] = machine.on_clock(0.02, round_trip_ms=250)
    assert t.state is S.HOLD
    assert t.reason == "clock round trip 250.0 ms above halt threshold 200 ms"
    # Re-engaged while the round trip is still above halt: the next command holds again.
    machine.request_engage(0.03)
    machine.confirm_engage(0.03)
    decision, [t] = machine.on_command(0.04, latency_ms=10, jitter_ms=1)
    assert not decision.execute and t.state is S.HOLD and "round trip" in t.reason
    assert machine.on_clock(0.05, round_trip_ms=20) == []
    machine.request_engage(0.06)
    machine.confirm_engage(0.06)
    assert machine.on_command(0.07, latency_ms=10, jitter_ms=1)[0].execute


def test_a_clock_alarm_holds_a_moving_robot():
    machine = SafetyStateMachine(SafetyThresholds())
    assert machine.clock_alarm(0.0, "command 998.0 ms ahead") == []
    machine = engaged()
    [t] = machine.clock_alarm(0.01, "command 998.0 ms ahead")
    assert t.state is S.HOLD and t.reason == "clock alarm: command 998.0 ms ahead"


def test_the_lan_class_is_the_defaults_and_each_class_fits_its_link():
    from concilium.telesurgery.impairment import PROFILES
    from concilium.telesurgery.limits import MotionLimits
    from concilium.telesurgery.safety import DEFAULT_LINK_CLASS, LINK_CLASSES

    assert DEFAULT_LINK_CLASS == "lan"
    assert LINK_CLASSES["lan"].safety == SafetyThresholds()
    assert LINK_CLASSES["lan"].limits == MotionLimits()
    defaults = LINK_CLASSES["lan"]
    travel_mm = defaults.limits.max_velocity_mm_s * defaults.safety.command_freshness_ms
    turn_deg = defaults.limits.max_angular_velocity_deg_s * defaults.safety.command_freshness_ms
    for preset in LINK_CLASSES.values():
        profile = PROFILES[preset.profile]
        safety, limits = preset.safety, preset.limits
        # A command needs about one round trip: the budget leaves room beyond it.
        assert safety.command_freshness_ms >= 2 * profile.delay_ms + 50, preset.name
        # Not DEGRADED on the link's own delay.
        assert safety.latency_warning_ms > profile.delay_ms + 10 * profile.jitter_ms, preset.name
        # The tool moves no further within one freshness budget than at the defaults.
        budget = safety.command_freshness_ms
        assert limits.max_velocity_mm_s * budget <= travel_mm, preset.name
        assert limits.max_angular_velocity_deg_s * budget <= turn_deg, preset.name
    far = LINK_CLASSES["intercontinental"].safety
    # DEGRADED warns before commands start being refused (half the budget, symmetric path).
    assert far.latency_warning_ms < far.command_freshness_ms / 2


def test_a_procedure_file_names_its_link_class_and_overrides_its_values(tmp_path):
    path = tmp_path / "procedure.toml"
    path.write_text('link_class = "intercontinental"\n[safety]\nwatchdog_ms = 40\n')
    thresholds = load_thresholds(path)
    assert thresholds.command_freshness_ms == 250 and thresholds.latency_halt_ms == 300
    assert thresholds.watchdog_ms == 40
    path.write_text('link_class = "orbital"\n')
    with pytest.raises(ValueError, match="unknown link class 'orbital'; known: lan, regional"):
        load_thresholds(path)
