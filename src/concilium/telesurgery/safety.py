"""Robot-side safety state machine: a pure function of its inputs, time injected by the caller.

States and transitions::

    DISENGAGED --(surgeon request + local confirmation)--> ENGAGED
    ENGAGED    --(smoothed latency or jitter above warning)--> DEGRADED --(back below)--> ENGAGED
    ENGAGED/DEGRADED --(no fresh command within the watchdog, latency or the clock's
                        round trip above halt, clock alarm,
                        or robot controller lost)-----------------> HOLD
    HOLD       --(hold_to_disengage elapsed)-------------> DISENGAGED
    HOLD/DISENGAGED --(surgeon request + local confirmation)--> ENGAGED
    any        --(local team takeover)-------------------> LOCAL_CONTROL --(release)--> DISENGAGED

Every transition goes through :meth:`SafetyStateMachine._transition`, which appends a
:class:`Transition` to the timeline; :func:`status_for` turns it into an OpenIGTLink STATUS.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from concilium.telesurgery.openigtlink import Status, StatusCode


class SafetyState(StrEnum):
    """States of the robot side."""

    DISENGAGED = "DISENGAGED"
    ENGAGED = "ENGAGED"
    DEGRADED = "DEGRADED"
    HOLD = "HOLD"
    LOCAL_CONTROL = "LOCAL_CONTROL"


MOVING_STATES = frozenset({SafetyState.ENGAGED, SafetyState.DEGRADED})
"""States in which remote commands are executed."""


@dataclass(frozen=True)
class SafetyThresholds:
    """Per-procedure safety thresholds; refused at construction when inconsistent."""

    watchdog_ms: float = 50.0
    """HOLD when no fresh command arrived for this long while engaged."""
    latency_warning_ms: float = 100.0
    """Smoothed one-way latency above which the state is DEGRADED."""
    latency_halt_ms: float = 200.0
    """One-way latency, or round trip of the heartbeat exchange the link's clock offset
    comes from, above which the robot is put in HOLD."""
    jitter_warning_ms: float = 10.0
    """Interarrival jitter (RFC 3550) above which the state is DEGRADED."""
    command_freshness_ms: float = 150.0
    """Commands that may be older than this on arrival are dropped, never executed late: the
    estimated age plus the clock offset's uncertainty (half the round trip it comes from)
    must be within it."""
    hold_to_disengage_s: float = 10.0
    """Time spent in HOLD before the robot disengages."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValueError(f"{f.name} must be a number, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{f.name} must be a positive finite number, got {value!r}")
        if self.latency_warning_ms >= self.latency_halt_ms:
            raise ValueError(
                f"latency_warning_ms ({self.latency_warning_ms}) must be below "
                f"latency_halt_ms ({self.latency_halt_ms})"
            )
        if self.command_freshness_ms > self.latency_halt_ms:
            raise ValueError(
                f"command_freshness_ms ({self.command_freshness_ms}) must not exceed "
                f"latency_halt_ms ({self.latency_halt_ms})"
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SafetyThresholds:
        """Build from a mapping, refusing unknown keys (a typo must not fall back silently)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown safety threshold(s): {', '.join(sorted(unknown))}")
        return cls(**dict(data))


def load_procedure_file(path: Path) -> dict[str, Any]:
    """Read a per-procedure TOML or JSON file into a mapping of sections."""
    text = path.read_text()
    data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a table of sections")
    return data


def load_thresholds(path: Path) -> SafetyThresholds:
    """Load the ``[safety]`` section of a procedure file."""
    return SafetyThresholds.from_mapping(load_procedure_file(path).get("safety", {}))


@dataclass(frozen=True)
class Transition:
    """One timeline entry."""

    at: float
    """Time of the transition, in the caller's clock (seconds)."""
    previous: SafetyState
    """State left."""
    state: SafetyState
    """State entered."""
    reason: str
    """Why."""


@dataclass(frozen=True)
class CommandDecision:
    """Whether a remote motion command may be executed."""

    execute: bool
    """True when the command may go to the robot (after the motion limits)."""
    reason: str
    """Why not, when refused."""


_STATUS_CODES: dict[SafetyState, StatusCode] = {
    SafetyState.ENGAGED: StatusCode.OK,
    SafetyState.DEGRADED: StatusCode.OK,
    SafetyState.HOLD: StatusCode.NOT_READY,
    SafetyState.DISENGAGED: StatusCode.DISABLED,
    SafetyState.LOCAL_CONTROL: StatusCode.MANUAL_MODE,
}


def status_for_state(state: SafetyState) -> StatusCode:
    """The STATUS code that reports ``state``."""
    return _STATUS_CODES[state]


def status_for(transition: Transition) -> Status:
    """The STATUS content announcing a transition (error name is the new state)."""
    return Status(
        code=_STATUS_CODES[transition.state],
        subcode=0,
        error_name=transition.state.value,
        message=f"{transition.previous.value} -> {transition.state.value}: {transition.reason}",
    )


class SafetyStateMachine:
    """The robot-side safety logic; every input takes ``now`` in seconds (monotonic)."""

    def __init__(self, thresholds: SafetyThresholds, now: float = 0.0) -> None:
        self.thresholds = thresholds
        self.state = SafetyState.DISENGAGED
        self.timeline: list[Transition] = []
        self.entered_at = now
        self.last_command_at: float | None = None
        self.smoothed_latency_ms: float | None = None
        self.clock_round_trip_ms: float | None = None
        """Round trip of the exchange the link's clock offset comes from (None before one)."""
        self._surgeon_requested = False
        self._local_confirmed = False

    # -- the one place where state changes ----------------------------------------------

    def _transition(self, state: SafetyState, now: float, reason: str) -> list[Transition]:
        if state is self.state:
            return []
        entry = Transition(now, self.state, state, reason)
        self.timeline.append(entry)
        self.state = state
        self.entered_at = now
        self._surgeon_requested = False
        self._local_confirmed = False
        if state in MOVING_STATES and entry.previous not in MOVING_STATES:
            self.last_command_at = now
            self.smoothed_latency_ms = None
        return [entry]

    # -- inputs --------------------------------------------------------------------------

    def request_engage(self, now: float) -> list[Transition]:
        """The surgeon asks to engage (from the console, over the link)."""
        if self.state not in (SafetyState.DISENGAGED, SafetyState.HOLD):
            return []
        self._surgeon_requested = True
        return self._maybe_engage(now)

    def confirm_engage(self, now: float) -> list[Transition]:
        """The local team at the robot confirms engagement."""
        if self.state not in (SafetyState.DISENGAGED, SafetyState.HOLD):
            return []
        self._local_confirmed = True
        return self._maybe_engage(now)

    def _maybe_engage(self, now: float) -> list[Transition]:
        if self._surgeon_requested and self._local_confirmed:
            return self._transition(
                SafetyState.ENGAGED, now, "surgeon request confirmed by local team"
            )
        return []

    def surgeon_disengage(self, now: float) -> list[Transition]:
        """The surgeon releases the robot."""
        if self.state is SafetyState.LOCAL_CONTROL:
            return []
        return self._transition(SafetyState.DISENGAGED, now, "surgeon disengaged")

    def local_takeover(self, now: float) -> list[Transition]:
        """The local team takes the robot over; wins from any state."""
        return self._transition(SafetyState.LOCAL_CONTROL, now, "local team takeover")

    def local_release(self, now: float) -> list[Transition]:
        """The local team hands the robot back (disengaged, to be re-engaged)."""
        if self.state is not SafetyState.LOCAL_CONTROL:
            return []
        return self._transition(SafetyState.DISENGAGED, now, "local team released control")

    def robot_lost(self, now: float) -> list[Transition]:
        """The robot controller connection dropped: nothing can be commanded, so hold."""
        if self.state not in MOVING_STATES:
            return []
        return self._transition(SafetyState.HOLD, now, "robot controller disconnected")

    def on_clock(self, now: float, round_trip_ms: float) -> list[Transition]:
        """The link's clock estimate changed: ``round_trip_ms`` is the round trip of the
        exchange its offset now comes from. Half of it bounds the offset's error, hence every
        command's age; above the halt threshold the link cannot be trusted with motion."""
        self.clock_round_trip_ms = round_trip_ms
        changes = self.tick(now)
        if self.state in MOVING_STATES:
            changes += self._hold_for_round_trip(now)
        return changes

    def clock_alarm(self, now: float, detail: str) -> list[Transition]:
        """A command came with an age below zero by more than the clock's uncertainty: the
        clocks are not what the link believes, so no command's freshness can be judged."""
        changes = self.tick(now)
        if self.state in MOVING_STATES:
            changes += self._transition(SafetyState.HOLD, now, f"clock alarm: {detail}")
        return changes

    def _hold_for_round_trip(self, now: float) -> list[Transition]:
        round_trip = self.clock_round_trip_ms
        halt = self.thresholds.latency_halt_ms
        if round_trip is None or round_trip <= halt:
            return []
        return self._transition(
            SafetyState.HOLD,
            now,
            f"clock round trip {round_trip:.1f} ms above halt threshold {halt:g} ms",
        )

    def on_command(
        self, now: float, latency_ms: float, jitter_ms: float
    ) -> tuple[CommandDecision, list[Transition]]:
        """A fresh, authenticated motion command arrived with the link's current estimates."""
        changes = self.tick(now)
        if self.state not in MOVING_STATES:
            return CommandDecision(False, f"robot is {self.state.value}"), changes
        t = self.thresholds
        if latency_ms > t.latency_halt_ms:
            changes += self._transition(
                SafetyState.HOLD,
                now,
                f"latency {latency_ms:.1f} ms above halt threshold {t.latency_halt_ms:g} ms",
            )
            return CommandDecision(False, "latency above halt threshold"), changes
        # Re-engaged while the clock's round trip is still above halt.
        held = self._hold_for_round_trip(now)
        if held:
            return CommandDecision(False, "clock round trip above halt threshold"), changes + held
        self.last_command_at = now
        # The warning follows a smoothed latency (same gain as RFC 3550's jitter, 1/16) so a
        # single late packet does not flap the state; the halt threshold above is immediate.
        if self.smoothed_latency_ms is None:
            self.smoothed_latency_ms = latency_ms
        else:
            self.smoothed_latency_ms += (latency_ms - self.smoothed_latency_ms) / 16.0
        smoothed = self.smoothed_latency_ms
        if smoothed > t.latency_warning_ms:
            changes += self._transition(
                SafetyState.DEGRADED,
                now,
                f"latency {smoothed:.1f} ms above warning {t.latency_warning_ms:g} ms",
            )
        elif jitter_ms > t.jitter_warning_ms:
            changes += self._transition(
                SafetyState.DEGRADED,
                now,
                f"jitter {jitter_ms:.1f} ms above warning {t.jitter_warning_ms:g} ms",
            )
        elif self.state is SafetyState.DEGRADED:
            changes += self._transition(SafetyState.ENGAGED, now, "latency and jitter recovered")
        return CommandDecision(True, ""), changes

    def tick(self, now: float) -> list[Transition]:
        """Let time pass: watchdog expiry and HOLD timeout."""
        t = self.thresholds
        if self.state in MOVING_STATES and self.last_command_at is not None:
            silent_ms = (now - self.last_command_at) * 1000.0
            if silent_ms > t.watchdog_ms:
                return self._transition(
                    SafetyState.HOLD,
                    now,
                    f"no fresh command for {silent_ms:.1f} ms (watchdog {t.watchdog_ms:g} ms)",
                )
        if self.state is SafetyState.HOLD and now - self.entered_at >= t.hold_to_disengage_s:
            return self._transition(
                SafetyState.DISENGAGED, now, f"{t.hold_to_disengage_s:g} s in HOLD"
            )
        return []

    def next_deadline(self) -> float | None:
        """When :meth:`tick` may next change the state, if nothing else happens."""
        if self.state in MOVING_STATES and self.last_command_at is not None:
            return self.last_command_at + self.thresholds.watchdog_ms / 1000.0
        if self.state is SafetyState.HOLD:
            return self.entered_at + self.thresholds.hold_to_disengage_s
        return None
