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
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from concilium.platform.i18n import N_, _, ngettext
from concilium.telesurgery.limits import MotionLimits
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
                raise ValueError(
                    _("%(name)s must be a number, got %(value)r") % {"name": f.name, "value": value}
                )
            if not math.isfinite(value) or value <= 0:
                raise ValueError(
                    _("%(name)s must be a positive finite number, got %(value)r")
                    % {"name": f.name, "value": value}
                )
        if self.latency_warning_ms >= self.latency_halt_ms:
            raise ValueError(
                _("%(name)s (%(value)s) must be below %(limit_name)s (%(limit)s)")
                % {
                    "name": "latency_warning_ms",
                    "value": self.latency_warning_ms,
                    "limit_name": "latency_halt_ms",
                    "limit": self.latency_halt_ms,
                }
            )
        if self.command_freshness_ms > self.latency_halt_ms:
            raise ValueError(
                _("%(name)s (%(value)s) must not exceed %(limit_name)s (%(limit)s)")
                % {
                    "name": "command_freshness_ms",
                    "value": self.command_freshness_ms,
                    "limit_name": "latency_halt_ms",
                    "limit": self.latency_halt_ms,
                }
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SafetyThresholds:
        """Build from a mapping, refusing unknown keys (a typo must not fall back silently)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                ngettext(
                    "unknown safety threshold: %(names)s",
                    "unknown safety thresholds: %(names)s",
                    len(unknown),
                )
                % {"names": ", ".join(sorted(unknown))}
            )
        return cls(**dict(data))


def load_procedure_file(path: Path) -> dict[str, Any]:
    """Read a per-procedure TOML or JSON file into a mapping of sections."""
    text = path.read_text()
    data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    if not isinstance(data, dict):
        raise ValueError(_("%(path)s must hold a table of sections") % {"path": path})
    return data


def load_thresholds(path: Path) -> SafetyThresholds:
    """Load the safety thresholds of a procedure file: its link class's, overridden by its
    ``[safety]`` section."""
    return SafetyThresholds.from_mapping(resolve_link_class(load_procedure_file(path))["safety"])


# --- presets by link class ------------------------------------------------------------------


@dataclass(frozen=True)
class LinkClass:
    """Safety thresholds and motion limits fitted to the distance between console and robot.

    A procedure names its class (``link_class`` in the procedure file, ``--link-class`` when
    planning); the values of its ``[safety]`` and ``[limits]`` sections override the class's
    one by one. What distance changes is the time a command needs: the robot executes a
    command only if its age at worst, about one round trip on a symmetric path
    (:func:`concilium.telesurgery.link.judge_freshness`), is within the freshness budget.
    """

    name: str
    """How a procedure names the class."""
    title: str
    """One line for the planning form and the command line."""
    profile: str
    """The impairment profile (:data:`concilium.telesurgery.impairment.PROFILES`) of such a
    link, to qualify and rehearse on."""
    safety: SafetyThresholds
    """The safety thresholds of the class."""
    limits: MotionLimits
    """The motion limits of the class."""

    def sections(self) -> dict[str, dict[str, Any]]:
        """The class as procedure file sections (``safety``, ``limits``)."""
        limits = asdict(self.limits)
        for corner in ("workspace_min_mm", "workspace_max_mm"):
            limits[corner] = list(limits[corner])
        return {"safety": asdict(self.safety), "limits": limits}


LAN = LinkClass(
    "lan",
    N_("Same hospital or metropolitan fibre (one-way delay under 1 ms)"),
    "lan",
    SafetyThresholds(),
    MotionLimits(),
)
"""The defaults. On a link of well under a millisecond a command reaches the robot in
microseconds; the 150 ms freshness budget and the 200 ms halt are not what such a link
spends, they are how late the robot may act on a command if the network degrades (a round
trip up to about 140 ms still executes), in line with the latency surgeons operated at over
long distances (Operation Lindbergh, New York to Strasbourg, 2001: 155 ms). 200 mm/s and
360 deg/s leave the surgeon's hand its natural speed."""

REGIONAL = LinkClass(
    "regional",
    N_("Hospitals of one region or neighbouring regions (up to about 1,000 km)"),
    "regional-500km",
    SafetyThresholds(),
    MotionLimits(),
)
"""The defaults too. 500 km of fibre is about 5 ms one way, a round trip of 10 to 20 ms
with routing: more than 100 ms of the 150 ms budget is left for the network to degrade
before a command is refused, and a delay this short is not perceptible at the console, so
speeds need no reduction."""

INTERCONTINENTAL = LinkClass(
    "intercontinental",
    N_("Another continent (about 12,000 km, 150 ms round trip)"),
    "intercontinental-12000km",
    SafetyThresholds(
        latency_warning_ms=110.0,
        latency_halt_ms=300.0,
        command_freshness_ms=250.0,
    ),
    MotionLimits(max_velocity_mm_s=120.0, max_angular_velocity_deg_s=216.0),
)
"""12,000 km of fibre is about 60 ms one way at 2/3 c, 75 ms with routing: a command needs
a round trip, about 150 ms, before the robot may execute it, which the default 150 ms budget
never allows. So:

- ``command_freshness_ms`` 250: the round trip plus 100 ms for jitter bursts and route
  changes; the robot never executes a command more than 250 ms after the console gateway
  sent it, within the 150 to 250 ms round trips at which remote operations were performed;
- ``latency_halt_ms`` 300: the robot holds when the clock's round trip doubles (a route
  change, congestion); simulator studies of added latency find surgeons' performance
  intact up to about 200 ms and degrading from about 300 ms;
- ``latency_warning_ms`` 110: DEGRADED when the one-way delay grows past the path's 75 ms
  by a third, before commands start being refused near 125 ms (half the budget on a
  symmetric path), so the surgeon is warned before the robot holds;
- ``max_velocity_mm_s`` 120 and ``max_angular_velocity_deg_s`` 216: the tool may move no
  further within one freshness budget than at the defaults (200 mm/s x 150 ms = 30 mm,
  360 deg/s x 150 ms = 54 deg), as surgeons slow down to operate over such a delay; the
  surgeon's console keeps within them with its motion scaling;
- the watchdog stays at 50 ms: it watches for silence in the command stream as it
  arrives, and a long path delays the stream without thinning it.
"""

LINK_CLASSES: dict[str, LinkClass] = {c.name: c for c in (LAN, REGIONAL, INTERCONTINENTAL)}
"""The presets, by name."""
DEFAULT_LINK_CLASS = LAN.name
"""The class of a procedure that names none."""


def resolve_link_class(data: Mapping[str, Any], link_class: str | None = None) -> dict[str, Any]:
    """A procedure's sections with its link class filled in: the class named by
    ``link_class``, or by the file's own ``link_class`` key, or :data:`DEFAULT_LINK_CLASS`;
    its ``safety`` and ``limits`` values are the base, the file's values override them one
    by one. The ``qualification`` section is passed on as it is. The result names its
    ``link_class``.

    Raises:
        ValueError: an unknown class, two different classes named, or a section that is not
            a table of values.
    """
    named = data.get("link_class")
    if named is not None and not isinstance(named, str):
        raise ValueError(
            _("%(name)s must be a name, got %(value)r") % {"name": "link_class", "value": named}
        )
    if link_class is not None and named is not None and link_class != named:
        raise ValueError(
            _("the procedure names link class %(named)r, not %(chosen)r")
            % {"named": named, "chosen": link_class}
        )
    name = link_class or named or DEFAULT_LINK_CLASS
    preset = LINK_CLASSES.get(name)
    if preset is None:
        raise ValueError(
            _("unknown link class %(name)r; known: %(known)s")
            % {"name": name, "known": ", ".join(LINK_CLASSES)}
        )
    resolved: dict[str, Any] = {k: v for k, v in data.items() if k != "link_class"}
    resolved["link_class"] = name
    for section, base in preset.sections().items():
        given = data.get(section, {})
        if not isinstance(given, Mapping):
            raise ValueError(_("section %(name)s must be a table of values") % {"name": section})
        resolved[section] = {**base, **given}
    return resolved


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
