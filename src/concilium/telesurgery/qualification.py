"""Link qualification before a procedure: a test session between two link endpoints at the
planned command rate and video bitrate, measured and judged go/no-go.

Metrics follow the IP performance metrics RFCs: round-trip delay (RFC 2681) from heartbeat
exchanges, one-way delay (RFC 7679) with the NTP-style clock offset, delay variation as
IPDV (RFC 3393, consecutive packets), loss (RFC 7680), reordering (RFC 4737) and outages as
gaps in command reception. The verdict is the pure function :func:`judge`.

The link is judged against the procedure's safety thresholds too, by the rule the robot
gateway applies to every command (:func:`concilium.telesurgery.link.judge_freshness`): a
command is executed only if its estimated age plus the clock offset's uncertainty (half the
round trip of the heartbeat exchange the offset comes from, plus drift) is within
``command_freshness_ms``. The session measures exactly that figure for every probe, on the
robot side's own clock estimate, so a link whose commands would be refused as stale is
no-go however good its other figures; and the robot holds when the clock's round trip
exceeds ``latency_halt_ms``, so the measured round trip must stay below it.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import math
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from concilium.platform.i18n import N_, _, gettext, ngettext
from concilium.telesurgery.impairment import ImpairmentProfile, ImpairmentProxy
from concilium.telesurgery.link import (
    Datagram,
    Drop,
    Kind,
    LinkEndpoint,
    LinkSession,
    ProcedureKeys,
)
from concilium.telesurgery.safety import SafetyThresholds

PADDING_DATAGRAM_SIZE = 1200
"""Payload size of the padding datagrams standing in for video (fits a 1280-byte MTU)."""
PROBE_SIZE = 64
"""Payload size of a probe command, close to a packed OpenIGTLink TRANSFORM."""
_PROBE = struct.Struct(">Q")


@dataclass(frozen=True)
class QualificationThresholds:
    """Per-procedure go/no-go criteria; refused at construction when absurd."""

    rtt_p999_ms: float = 250.0
    """Highest acceptable 99.9th percentile of the round-trip time."""
    jitter_p99_ms: float = 10.0
    """Highest acceptable 99th percentile of the delay variation between commands."""
    max_loss: float = 0.01
    """Highest acceptable fraction of commands lost."""
    max_outage_ms: float = 50.0
    """Longest acceptable gap in command reception (keep it below the safety watchdog)."""
    min_throughput_ratio: float = 0.95
    """Fraction of the planned video bitrate that must get through."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ValueError(
                    _("%(name)s must be a positive finite number, got %(value)r")
                    % {"name": f.name, "value": value}
                )
        if self.max_loss >= 1:
            raise ValueError(
                _("%(name)s is a fraction below 1, got %(value)s")
                % {"name": "max_loss", "value": self.max_loss}
            )
        if self.min_throughput_ratio > 1:
            raise ValueError(
                _("%(name)s is a fraction up to 1, got %(value)s")
                % {"name": "min_throughput_ratio", "value": self.min_throughput_ratio}
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> QualificationThresholds:
        """Build from a procedure file's ``[qualification]`` section."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                ngettext(
                    "unknown qualification threshold: %(names)s",
                    "unknown qualification thresholds: %(names)s",
                    len(unknown),
                )
                % {"names": ", ".join(sorted(unknown))}
            )
        return cls(**dict(data))


@dataclass
class Measurements:
    """What a qualification session measured."""

    duration_s: float
    """Length of the measured session."""
    rate_hz: float
    """Planned command rate."""
    bitrate_bps: float
    """Planned video bitrate."""
    commands_sent: int = 0
    """Probe commands sent."""
    commands_received: int = 0
    """Probe commands received, reordered ones included, duplicates excluded."""
    duplicates: int = 0
    """Probe commands received more than once."""
    reordered: int = 0
    """Probe commands received after a later one."""
    loss: float = 0.0
    """Fraction of probe commands never received."""
    rtt_ms: dict[str, float] = field(default_factory=dict)
    """Round-trip time percentiles (p50, p99, p999, max)."""
    one_way_ms: dict[str, float] = field(default_factory=dict)
    """One-way latency percentiles, console to robot."""
    command_age_ms: dict[str, float] = field(default_factory=dict)
    """Percentiles of each command's age at worst as the robot side judges it: the age
    estimated on arrival plus the clock offset's uncertainty (what must be within the
    freshness budget)."""
    jitter_ms: dict[str, float] = field(default_factory=dict)
    """Delay variation percentiles between consecutive commands."""
    longest_outage_ms: float = 0.0
    """Longest stretch of the send schedule with no command delivered."""
    outages: list[tuple[float, float]] = field(default_factory=list)
    """Runs of lost commands longer than three periods, as (start s, length ms)."""
    throughput_bps: float = 0.0
    """Average video (padding) bitrate received."""
    latency_series: list[tuple[float, float]] = field(default_factory=list)
    """(time s, one-way latency ms), down-sampled for plotting."""
    command_age_series: list[tuple[float, float]] = field(default_factory=list)
    """(time s, command age at worst ms), down-sampled for plotting."""
    rtt_series: list[tuple[float, float]] = field(default_factory=list)
    """(time s, RTT ms) for plotting."""
    throughput_series: list[tuple[float, float]] = field(default_factory=list)
    """(time s, received video kbit/s) per 100 ms bin."""
    link_drops: dict[str, int] = field(default_factory=dict)
    """Drop counters of the receiving endpoint."""


@dataclass(frozen=True)
class Criterion:
    """One go/no-go criterion as judged."""

    name: str
    """What is judged."""
    measured: float
    """Measured value."""
    limit: float
    """Threshold."""
    passed: bool
    """Whether the measurement is within the threshold."""
    reason: str
    """Why it failed (empty when passed)."""
    threshold: str = ""
    """The threshold the limit is, as ``section.name`` of the procedure file."""

    def said(self) -> str:
        """Why it failed, in the current language (empty when passed)."""
        return _reason(self.name, self.measured, self.limit, self.passed, self.threshold, gettext)


_CONSEQUENCES = {
    "safety.command_freshness_ms": N_(
        "%(name)s %(measured)s is above the limit %(limit)s: commands would be refused as "
        "stale by the freshness budget (command_freshness_ms %(budget)s ms)"
    ),
    "safety.latency_halt_ms": N_(
        "%(name)s %(measured)s is above the limit %(limit)s: the robot would hold for the "
        "clock's round trip (latency_halt_ms %(budget)s ms)"
    ),
}
"""Failures of the criteria that guard a safety threshold, and what the robot would do."""


def _reason(
    name: str,
    measured: float,
    limit: float,
    passed: bool,
    threshold: str,
    translate: Callable[[str], str] = str,
) -> str:
    """Why a criterion failed, in English (``translate`` keeping the message) or translated."""
    values = {"name": name, "measured": f"{measured:.3g}", "limit": f"{limit:.3g}"}
    if math.isnan(measured):
        return translate(N_("%(name)s: not measured")) % values
    if passed:
        return ""
    if threshold in _CONSEQUENCES:
        return translate(_CONSEQUENCES[threshold]) % {**values, "budget": f"{limit:g}"}
    if measured < limit:
        return translate(N_("%(name)s %(measured)s is below the limit %(limit)s")) % values
    return translate(N_("%(name)s %(measured)s is above the limit %(limit)s")) % values


@dataclass(frozen=True)
class Verdict:
    """The go/no-go decision."""

    go: bool
    """True when every criterion passed."""
    criteria: tuple[Criterion, ...]
    """Each criterion with its measurement."""

    @property
    def reasons(self) -> list[str]:
        """Why it is no-go, one line per failed criterion (in English, as kept)."""
        return [c.reason for c in self.criteria if not c.passed]

    def said(self) -> list[str]:
        """Why it is no-go, in the current language."""
        return [c.said() for c in self.criteria if not c.passed]


@dataclass(frozen=True)
class QualificationReport:
    """Everything a qualification produced."""

    profile: str
    """Network profile under test (or "direct")."""
    started_at: str
    """UTC start time, ISO 8601."""
    thresholds: QualificationThresholds
    """Criteria used."""
    safety: SafetyThresholds
    """The procedure's safety thresholds the link was judged against."""
    measurements: Measurements
    """What was measured."""
    verdict: Verdict
    """The decision."""
    link_class: str = ""
    """The procedure's link class, when known."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "profile": self.profile,
            "link_class": self.link_class,
            "started_at": self.started_at,
            "go": self.verdict.go,
            "reasons": self.verdict.reasons,
            "criteria": [asdict(c) for c in self.verdict.criteria],
            "thresholds": asdict(self.thresholds),
            "safety": asdict(self.safety),
            "measurements": asdict(self.measurements),
        }


# --- pure functions -----------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarise(values: Sequence[float]) -> dict[str, float]:
    """p50, p99, p99.9 and max."""
    return {
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "p999": percentile(values, 99.9),
        "max": max(values) if values else math.nan,
    }


def judge(m: Measurements, t: QualificationThresholds, safety: SafetyThresholds) -> Verdict:
    """Go/no-go from measurements, the qualification criteria and the procedure's safety
    thresholds; a missing measurement fails its criterion.

    Against the safety thresholds, by the rules the robot gateway applies:

    - ``command_age_p999_ms``: the 99.9th percentile of the commands' age at worst
      (estimated age plus the clock offset's uncertainty, as
      :func:`concilium.telesurgery.link.judge_freshness` takes them) within
      ``command_freshness_ms``. The percentile is the round trip's: the one command in a
      thousand it leaves out would be refused as stale, like a lost one, a tenth of the
      loss accepted by default;
    - ``clock_rtt_p999_ms``: the 99.9th percentile of the heartbeat round trip within
      ``latency_halt_ms``. The robot holds when the round trip of the exchange its clock
      offset comes from, the lowest of the last 32, exceeds it: with nearly every exchange
      within the halt, the lowest of 32 is.
    """

    def criterion(
        name: str,
        measured: float,
        limit: float,
        threshold: str,
        higher_is_better: bool = False,
    ) -> Criterion:
        ok = not math.isnan(measured) and (
            measured >= limit if higher_is_better else measured <= limit
        )
        reason = _reason(name, measured, limit, ok, threshold)
        return Criterion(name, measured, limit, ok, reason, threshold)

    throughput_ratio = m.throughput_bps / m.bitrate_bps if m.bitrate_bps > 0 else 1.0
    freshness = safety.command_freshness_ms
    halt = safety.latency_halt_ms
    criteria = (
        criterion(
            "rtt_p999_ms",
            m.rtt_ms.get("p999", math.nan),
            t.rtt_p999_ms,
            "qualification.rtt_p999_ms",
        ),
        criterion(
            "jitter_p99_ms",
            m.jitter_ms.get("p99", math.nan),
            t.jitter_p99_ms,
            "qualification.jitter_p99_ms",
        ),
        criterion(
            "loss", m.loss if m.commands_sent else math.nan, t.max_loss, "qualification.max_loss"
        ),
        criterion(
            "longest_outage_ms",
            m.longest_outage_ms,
            t.max_outage_ms,
            "qualification.max_outage_ms",
        ),
        criterion(
            "throughput_ratio",
            throughput_ratio,
            t.min_throughput_ratio,
            "qualification.min_throughput_ratio",
            higher_is_better=True,
        ),
        criterion(
            "command_age_p999_ms",
            m.command_age_ms.get("p999", math.nan),
            freshness,
            "safety.command_freshness_ms",
        ),
        criterion(
            "clock_rtt_p999_ms",
            m.rtt_ms.get("p999", math.nan),
            halt,
            "safety.latency_halt_ms",
        ),
    )
    return Verdict(go=all(c.passed for c in criteria), criteria=criteria)


def analyse(
    *,
    duration_s: float,
    rate_hz: float,
    bitrate_bps: float,
    sent: int,
    arrivals: Sequence[tuple[float, int, float, bool]],
    duplicates: int,
    rtts: Sequence[tuple[float, float]],
    padding: Sequence[tuple[float, int]],
    link_drops: Mapping[str, int],
    command_ages: Sequence[tuple[float, float]] = (),
) -> Measurements:
    """Turn raw observations into measurements.

    ``arrivals`` are (time s, probe index, one-way latency ms, reordered) for each unique
    probe received; ``rtts`` are (time s, ms); ``padding`` are (time s, bytes) received;
    ``command_ages`` are (time s, age at worst ms) for each probe received.
    """
    m = Measurements(duration_s=duration_s, rate_hz=rate_hz, bitrate_bps=bitrate_bps)
    m.commands_sent = sent
    m.commands_received = len(arrivals)
    m.duplicates = duplicates
    m.reordered = sum(1 for a in arrivals if a[3])
    m.loss = (1 - len(arrivals) / sent) if sent else 0.0
    m.link_drops = dict(link_drops)
    latencies = [a[2] for a in arrivals]
    m.one_way_ms = summarise(latencies)
    m.command_age_ms = summarise([a[1] for a in command_ages])
    by_index = sorted(arrivals, key=lambda a: a[1])
    ipdv = [abs(b[2] - a[2]) for a, b in itertools.pairwise(by_index) if b[1] == a[1] + 1]
    m.jitter_ms = summarise(ipdv)
    m.rtt_ms = summarise([r[1] for r in rtts])
    # Outages are judged on the send schedule of the probes that got through, so a stall of
    # the measuring process itself does not pass for a network outage: the longest run of
    # lost probes, in time, is what the robot's watchdog would have seen.
    period_ms = 1000.0 / rate_hz
    received = sorted({a[1] for a in arrivals})
    if received:
        bounds = [-1 if received[0] > 0 else 0, *received, max(sent - 1, received[-1])]
        gaps = [
            (max(a, 0) * period_ms / 1000.0, (b - a) * period_ms)
            for a, b in itertools.pairwise(bounds)
        ]
        m.outages = [(round(a, 4), round(g, 3)) for a, g in gaps if g > 3 * period_ms]
        m.longest_outage_ms = max(g for _, g in gaps)
    else:
        m.outages = [(0.0, duration_s * 1000.0)] if sent else []
        m.longest_outage_ms = duration_s * 1000.0
    total_padding = sum(p[1] for p in padding)
    m.throughput_bps = total_padding * 8 / duration_s if duration_s > 0 else 0.0
    bins: dict[int, int] = {}
    for t, size in padding:
        bins[int(t * 10)] = bins.get(int(t * 10), 0) + size
    m.throughput_series = [
        (b / 10, bins.get(b, 0) * 8 * 10 / 1000.0) for b in range(int(duration_s * 10))
    ]
    step = max(1, len(arrivals) // 2000)
    m.latency_series = [(round(a[0], 4), round(a[2], 3)) for a in sorted(arrivals)[::step]]
    age_step = max(1, len(command_ages) // 2000)
    m.command_age_series = [
        (round(t, 4), round(age, 3)) for t, age in sorted(command_ages)[::age_step]
    ]
    m.rtt_series = [(round(t, 4), round(v, 3)) for t, v in rtts]
    return m


# --- the session --------------------------------------------------------------------------


async def run_session(
    profile: ImpairmentProfile | None,
    duration_s: float,
    rate_hz: float,
    bitrate_bps: float,
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
    sync_timeout_s: float = 5.0,
) -> Measurements:
    """Run a measured session between two endpoints, through a proxy when ``profile``."""
    if duration_s <= 0 or rate_hz <= 0 or bitrate_bps < 0:
        raise ValueError("duration and rate must be positive, bitrate not negative")
    keys = ProcedureKeys.generate("qualification")
    # Freshness is measured here, not enforced: late probes must be counted, not dropped.
    robot = LinkSession(keys, "robot", freshness_ns=60_000_000_000)
    console = LinkSession(keys, "console", freshness_ns=60_000_000_000)
    start = 0.0
    start_wall_ns = 0
    arrivals: list[tuple[float, int, float, bool]] = []
    command_ages: list[tuple[float, float]] = []
    seen: set[int] = set()
    duplicates = 0
    padding: list[tuple[float, int]] = []
    measuring = False

    def on_robot(d: Datagram) -> None:
        nonlocal duplicates
        if not measuring or d.kind is not Kind.COMMAND or len(d.payload) < _PROBE.size:
            return
        (index,) = _PROBE.unpack_from(d.payload)
        if index in seen:
            duplicates += 1
            return
        seen.add(index)
        latency = (d.network_latency_ns or 0) / 1e6
        at = (d.arrived_ns - start_wall_ns) / 1e9
        arrivals.append((at, index, latency, d.reordered))
        # What the robot gateway's link compares with the freshness budget: the age when
        # processed, on this side's clock estimate, plus that estimate's error bound.
        uncertainty_ns = robot.clock.uncertainty_ns(d.received_ns)
        if d.latency_ns is not None and uncertainty_ns is not None:
            command_ages.append((at, (d.latency_ns + uncertainty_ns) / 1e6))

    def on_console(d: Datagram) -> None:
        if measuring and d.kind is Kind.PADDING:
            padding.append(((d.arrived_ns - start_wall_ns) / 1e9, len(d.payload)))

    robot_end = await LinkEndpoint.start(robot, on_robot, heartbeat_interval=0.02)
    proxy: ImpairmentProxy | None = None
    remote = robot_end.local_address
    if profile is not None:
        proxy = ImpairmentProxy(remote, profile, seed=seed)
        await proxy.start()
        remote = proxy.address
    console_end = await LinkEndpoint.start(
        console, on_console, remote=remote, heartbeat_interval=0.02
    )
    try:
        deadline = time.monotonic() + sync_timeout_s
        while not (robot.clock.synchronised and console.clock.synchronised):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
        rtt_start = len(console.clock.history)
        # Probes that were reordered across the start line would look lost: the receiver's
        # drop counters are read as differences.
        drops_before = dict(robot.drops)
        start = time.monotonic()
        start_wall_ns = time.time_ns()
        if proxy is not None:
            # Scheduled outages are relative to the measured session, not to the warm-up.
            proxy.restart_schedule()
        measuring = True
        sent = await _drive(
            console_end, robot_end, start, duration_s, rate_hz, bitrate_bps, progress
        )
        # Let the last datagrams in flight land before closing the books.
        await asyncio.sleep(min(1.0, 0.05 + 2 * (profile.delay_ms / 1000 if profile else 0)))
        measuring = False
        rtts = [
            ((s.at_ns - start_wall_ns) / 1e9, s.rtt_ns / 1e6)
            for s in list(console.clock.history)[rtt_start:]
        ]
        drops = {k: v - drops_before.get(k, 0) for k, v in robot.drops.items()}
        # A probe dropped as reordered still arrived: it counts as received, not lost.
        reordered_drops = drops.get(Drop.REORDERED, 0)
        return _with_reordered(
            analyse(
                duration_s=duration_s,
                rate_hz=rate_hz,
                bitrate_bps=bitrate_bps,
                sent=sent,
                arrivals=arrivals,
                duplicates=duplicates,
                rtts=rtts,
                padding=padding,
                link_drops={str(k): v for k, v in drops.items()},
                command_ages=command_ages,
            ),
            reordered_drops,
        )
    finally:
        console_end.close()
        robot_end.close()
        if proxy is not None:
            proxy.close()


def _with_reordered(m: Measurements, reordered_drops: int) -> Measurements:
    m.reordered += reordered_drops
    m.commands_received += reordered_drops
    if m.commands_sent:
        m.loss = max(0.0, 1 - m.commands_received / m.commands_sent)
    return m


async def _drive(
    console: LinkEndpoint,
    robot: LinkEndpoint,
    start: float,
    duration_s: float,
    rate_hz: float,
    bitrate_bps: float,
    progress: Callable[[float], None] | None,
) -> int:
    command_period = 1.0 / rate_hz
    padding_period = PADDING_DATAGRAM_SIZE * 8 / bitrate_bps if bitrate_bps else math.inf
    filler = bytes(PROBE_SIZE - _PROBE.size)
    video = bytes(PADDING_DATAGRAM_SIZE)
    sent = 0
    next_command = start
    next_padding = start
    next_progress = start
    end = start + duration_s
    while True:
        now = time.monotonic()
        # Catch up on schedule after a late wake-up instead of drifting, up to the end: the
        # planned load is sent whole even when the process was descheduled near the end.
        horizon = min(now, end)
        while next_command <= horizon and next_command < end:
            console.send(Kind.COMMAND, _PROBE.pack(sent) + filler)
            sent += 1
            next_command += command_period
        while next_padding <= horizon and next_padding < end:
            robot.send(Kind.PADDING, video)
            next_padding += padding_period
        if now >= end:
            break
        if progress is not None and now >= next_progress:
            progress(min(1.0, (now - start) / duration_s))
            next_progress = now + 0.5
        await asyncio.sleep(max(0.0, min(next_command, next_padding, end) - time.monotonic()))
    if progress is not None:
        progress(1.0)
    return sent


def qualify(
    profile: ImpairmentProfile | None,
    thresholds: QualificationThresholds,
    duration_s: float = 10.0,
    rate_hz: float = 1000.0,
    bitrate_bps: float = 4_000_000.0,
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
    *,
    safety: SafetyThresholds,
    link_class: str = "",
) -> QualificationReport:
    """Run a qualification session and judge it against the qualification criteria and the
    procedure's ``safety`` thresholds (of its ``link_class``, named in the report)."""
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    measurements = asyncio.run(
        run_session(profile, duration_s, rate_hz, bitrate_bps, seed=seed, progress=progress)
    )
    return QualificationReport(
        profile=profile.name if profile else "direct",
        started_at=started,
        thresholds=thresholds,
        safety=safety,
        measurements=measurements,
        verdict=judge(measurements, thresholds, safety),
        link_class=link_class,
    )


# --- reports ------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def svg_plot(
    series: Sequence[tuple[float, float]],
    title: str,
    unit: str,
    limits: Sequence[tuple[float, str]] = (),
    width: int = 720,
    height: int = 220,
) -> str:
    """A line plot of ``series`` with a dashed, labelled line for each of ``limits``; it
    scales to the width of the page (``viewBox``), its texts escaped."""
    pad = 40
    if not series:
        return f"<p>{html.escape(title)}: {html.escape(_('no data'))}</p>"
    xs = [p[0] for p in series]
    ys = [p[1] for p in series]
    x0, x1 = min(xs), max(xs) or 1.0
    top = max([*ys, *(value for value, _ in limits)]) * 1.1 or 1.0
    span = (x1 - x0) or 1.0

    def sx(x: float) -> float:
        return pad + (x - x0) / span * (width - 2 * pad)

    def sy(y: float) -> float:
        return height - pad - y / top * (height - 2 * pad)

    points = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in series)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" class="ts-plot" role="img" '
        f'aria-label="{html.escape(title)}">',
        f'<text x="{pad}" y="16" font-size="14">{html.escape(title)} ({html.escape(unit)})</text>',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="#888"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#888"/>',
        f'<text x="4" y="{sy(top / 1.1) + 4:.1f}" font-size="12">{top / 1.1:.0f}</text>',
        f'<text x="4" y="{height - pad + 4}" font-size="12">0</text>',
        f'<text x="{width - pad - 30}" y="{height - pad + 16}" font-size="12">{x1:.1f} s</text>',
        f'<polyline fill="none" stroke="#1f5fa8" stroke-width="1" points="{points}"/>',
    ]
    for value, label in limits:
        parts.append(
            f'<line x1="{pad}" y1="{sy(value):.1f}" x2="{width - pad}" y2="{sy(value):.1f}" '
            'stroke="#c0392b" stroke-dasharray="4 3"/>'
        )
        parts.append(
            f'<text x="{width - pad - 4}" y="{sy(value) - 3:.1f}" font-size="12" '
            f'text-anchor="end" fill="#c0392b">{html.escape(label)} {value:g}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: QualificationReport) -> str:
    """A self-contained HTML page with inline SVG plots."""
    m, v, safety = report.measurements, report.verdict, report.safety
    verdict = "GO" if v.go else "NO-GO"
    rows = "".join(
        f"<tr><td>{html.escape(c.name)}</td><td>{c.measured:.4g}</td><td>{c.limit:.4g}</td>"
        f"<td>{html.escape(c.threshold)}</td><td>{'pass' if c.passed else 'FAIL'}</td></tr>"
        for c in v.criteria
    )
    link_class = (
        f" of link class <b>{html.escape(report.link_class)}</b>" if report.link_class else ""
    )
    plots = "\n".join(
        (
            svg_plot(m.latency_series, "One-way latency, console to robot", "ms"),
            svg_plot(
                m.command_age_series,
                "Command age at worst, as the robot judges freshness",
                "ms",
                [(safety.command_freshness_ms, "command_freshness_ms")],
            ),
            svg_plot(
                m.rtt_series,
                "Round-trip time",
                "ms",
                [
                    (report.thresholds.rtt_p999_ms, "rtt_p999_ms"),
                    (safety.latency_halt_ms, "latency_halt_ms"),
                ],
            ),
            svg_plot(
                m.throughput_series,
                "Video throughput received",
                "kbit/s",
                [(m.bitrate_bps / 1000, "planned")],
            ),
        )
    )
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in v.reasons)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Link qualification: {verdict}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:60em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em}}
.go{{color:#1e7d32}}.nogo{{color:#c0392b}}</style></head><body>
<h1 class="{"go" if v.go else "nogo"}">Link qualification: {verdict}</h1>
<p>Profile <b>{html.escape(report.profile)}</b>, started {html.escape(report.started_at)},
{m.duration_s:g} s at {m.rate_hz:g} commands/s and {m.bitrate_bps / 1e6:g} Mbit/s video.</p>
<p>Judged against the procedure's safety thresholds{link_class}: a command is executed only
if its age at worst (estimated age plus the clock offset's uncertainty) is within the
freshness budget of {safety.command_freshness_ms:g} ms; the robot holds when the clock's
round trip exceeds {safety.latency_halt_ms:g} ms.</p>
{"<h2>Reasons</h2><ul>" + reasons + "</ul>" if reasons else ""}
<h2>Criteria</h2>
<table><tr><th>criterion</th><th>measured</th><th>limit</th><th>threshold</th><th>result</th></tr>
{rows}</table>
<h2>Over time</h2>
{plots}
<h2>Counts</h2>
<p>{m.commands_sent} commands sent, {m.commands_received} received, {m.reordered} reordered,
{m.duplicates} duplicated; {len(m.outages)} outage(s), longest {m.longest_outage_ms:.1f} ms.</p>
</body></html>
"""


def write_report(report: QualificationReport, out_dir: Path) -> tuple[Path, Path]:
    """Write ``qualification.json`` and ``qualification.html`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "qualification.json"
    html_path = out_dir / "qualification.html"
    json_path.write_text(json.dumps(_json_safe(report.to_dict()), indent=2))
    html_path.write_text(render_html(report))
    return json_path, html_path
