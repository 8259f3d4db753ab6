"""User-space UDP impairment proxy: delay, jitter, loss, reordering, duplication, bandwidth
cap, scheduled outages and an on-path attacker's hold-back of one kind of link datagram,
with seeded randomness so test runs are reproducible.

Endpoint A sends to the proxy's listening port; the proxy forwards to endpoint B from its
own upstream socket and sends B's answers back to A's last address. Each direction has
its own copy of the profile's impairments; replacing one direction's ``profile`` impairs
that direction alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
import socket
import time
from dataclasses import dataclass, field, replace
from typing import Any

from concilium.platform.i18n import _
from concilium.telesurgery.link import HEADER_SIZE, Kind, drain_udp_socket, open_udp_socket


def link_kind(data: bytes) -> int | None:
    """The kind byte of a link datagram's clear header (None for anything shorter)."""
    return data[1] if len(data) >= HEADER_SIZE else None


@dataclass(frozen=True)
class ImpairmentProfile:
    """Impairments applied to each direction."""

    name: str = "custom"
    """Profile name."""
    delay_ms: float = 0.0
    """One-way base delay."""
    jitter_ms: float = 0.0
    """Standard deviation of the extra delay (clamped at zero, order kept)."""
    loss: float = 0.0
    """Probability that a datagram is lost."""
    reorder: float = 0.0
    """Probability that a datagram is held back so later ones overtake it."""
    reorder_delay_ms: float = 5.0
    """How long a reordered datagram is held back."""
    duplicate: float = 0.0
    """Probability that a datagram is delivered twice."""
    bandwidth_bps: float = 0.0
    """Serialisation rate cap (0: unlimited)."""
    queue_limit_ms: float = 200.0
    """Queueing delay above which the bandwidth cap drops datagrams (tail drop)."""
    outages: tuple[tuple[float, float], ...] = field(default_factory=tuple)
    """Scheduled outages as (start, duration) in seconds from proxy start."""
    hold_back_ms: tuple[tuple[Kind, float], ...] = field(default_factory=tuple)
    """Extra delay for link datagrams of the given kinds, as (kind, ms): what an on-path
    attacker does who reads the clear header and holds back, say, only the heartbeat
    replies. The rest of the flow overtakes them."""

    def __post_init__(self) -> None:
        for name in ("loss", "reorder", "duplicate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(
                    _("%(name)s must be a probability in [0, 1], got %(value)r")
                    % {"name": name, "value": value}
                )
        for name in ("delay_ms", "jitter_ms", "reorder_delay_ms", "bandwidth_bps"):
            if getattr(self, name) < 0:
                raise ValueError(_("%(name)s must not be negative") % {"name": name})
        if self.queue_limit_ms <= 0:
            raise ValueError(_("%(name)s must be positive") % {"name": "queue_limit_ms"})
        for start, duration in self.outages:
            if start < 0 or duration <= 0:
                raise ValueError(
                    _("outage (%(start)s, %(duration)s) needs start >= 0, duration > 0")
                    % {"start": start, "duration": duration}
                )
        for kind, delay in self.hold_back_ms:
            if kind not in Kind._value2member_map_:
                raise ValueError(
                    _("hold-back kind %(kind)r is not a link datagram kind") % {"kind": kind}
                )
            if not delay >= 0:
                raise ValueError(
                    _("hold-back delay for %(kind)s must not be negative")
                    % {"kind": Kind(kind).name}
                )


PROFILES: dict[str, ImpairmentProfile] = {
    "lan": ImpairmentProfile("lan", delay_ms=0.2, jitter_ms=0.05),
    "regional-500km": ImpairmentProfile("regional-500km", delay_ms=5.0, jitter_ms=0.5, loss=0.0005),
    # About 12,000 km of fibre at 2/3 c gives ~60 ms one way; routing brings it to ~75 ms.
    "intercontinental-12000km": ImpairmentProfile(
        "intercontinental-12000km",
        delay_ms=75.0,
        jitter_ms=1.0,
        loss=0.001,
        reorder=0.001,
        duplicate=0.0005,
    ),
    "degraded": ImpairmentProfile(
        "degraded",
        delay_ms=120.0,
        jitter_ms=25.0,
        loss=0.05,
        reorder=0.02,
        duplicate=0.01,
        bandwidth_bps=2_000_000,
        outages=((0.4, 0.25),),
    ),
}
"""Named profiles."""


def profile(name: str, **overrides: Any) -> ImpairmentProfile:
    """A named profile, optionally with some fields replaced."""
    try:
        base = PROFILES[name]
    except KeyError:
        raise ValueError(
            _("unknown profile %(name)r; known: %(known)s")
            % {"name": name, "known": ", ".join(PROFILES)}
        ) from None
    return replace(base, **overrides) if overrides else base


@dataclass
class DirectionCounters:
    """What the proxy did to one direction."""

    received: int = 0
    """Datagrams that entered the proxy."""
    forwarded: int = 0
    """Datagrams sent on (duplicates included)."""
    lost: int = 0
    """Dropped by random loss."""
    cut: int = 0
    """Dropped by a cut or a scheduled outage."""
    queue_dropped: int = 0
    """Dropped by the bandwidth cap."""
    reordered: int = 0
    """Held back to be overtaken."""
    held_back: int = 0
    """Held back for their kind (the profile's ``hold_back_ms``)."""
    duplicated: int = 0
    """Delivered twice."""


class ImpairedDirection:
    """Scheduling state of one direction (pure given the random generator and times)."""

    def __init__(self, profile: ImpairmentProfile, rng: random.Random) -> None:
        self.profile = profile
        self.rng = rng
        self.counters = DirectionCounters()
        self._last_departure = 0.0
        self._link_free_at = 0.0
        self.pending: list[tuple[float, int, bytes]] = []
        self.timer: asyncio.TimerHandle | None = None
        self.timer_due = 0.0
        """Departure time (monotonic) the timer is armed for."""
        self._order = 0

    def push(self, departure: float, data: bytes) -> None:
        """Queue a datagram for ``departure``."""
        self._order += 1
        heapq.heappush(self.pending, (departure, self._order, data))

    def schedule(self, now: float, size: int, kind: int | None = None) -> list[float]:
        """Departure times for one datagram of link ``kind`` arriving at ``now`` (empty
        when dropped)."""
        p = self.profile
        self.counters.received += 1
        if p.loss and self.rng.random() < p.loss:
            self.counters.lost += 1
            return []
        start = now
        if p.bandwidth_bps:
            start = max(now, self._link_free_at)
            if (start - now) * 1000.0 > p.queue_limit_ms:
                self.counters.queue_dropped += 1
                return []
            self._link_free_at = start + size * 8 / p.bandwidth_bps
            start = self._link_free_at
        delay = p.delay_ms / 1000.0
        if p.jitter_ms:
            delay += abs(self.rng.gauss(0.0, p.jitter_ms / 1000.0))
        departure = start + delay
        if p.reorder and self.rng.random() < p.reorder:
            self.counters.reordered += 1
            departure = max(departure, self._last_departure) + p.reorder_delay_ms / 1000.0
        else:
            # Jitter on a real path rarely reorders packets of one flow: keep FIFO order.
            departure = max(departure, self._last_departure)
            self._last_departure = departure
        for held_kind, held_ms in p.hold_back_ms:
            if held_kind == kind:
                # After the FIFO bookkeeping: what follows is not held behind it.
                self.counters.held_back += 1
                departure += held_ms / 1000.0
                break
        times = [departure]
        if p.duplicate and self.rng.random() < p.duplicate:
            self.counters.duplicated += 1
            times.append(departure + 0.0001)
        return times


class ImpairmentProxy:
    """The proxy; :meth:`cut` and :meth:`restore` switch the link off and on."""

    def __init__(
        self,
        upstream: tuple[str, int],
        profile: ImpairmentProfile,
        listen: tuple[str, int] = ("127.0.0.1", 0),
        seed: int = 0,
    ) -> None:
        self.upstream = upstream
        self.profile = profile
        self.listen = listen
        rng = random.Random(seed)
        self.forward = ImpairedDirection(profile, random.Random(rng.random()))
        self.backward = ImpairedDirection(profile, random.Random(rng.random()))
        self.is_cut = False
        self._client: tuple[str, int] | None = None
        self._front: socket.socket | None = None
        self._back: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started_at = 0.0
        self._closed = False

    async def start(self) -> None:
        """Bind both sockets."""
        loop = asyncio.get_running_loop()
        self._started_at = time.monotonic()
        self._front, _stamped = open_udp_socket(self.listen)
        # Connected, so only the upstream endpoint's answers come back through.
        self._back, _stamped = open_udp_socket(remote=self.upstream)
        loop.add_reader(self._front.fileno(), drain_udp_socket, self._front, self._from_client)
        loop.add_reader(self._back.fileno(), drain_udp_socket, self._back, self._from_upstream)
        self._loop = loop

    @property
    def address(self) -> tuple[str, int]:
        """Where endpoint A should send."""
        assert self._front is not None
        host, port = self._front.getsockname()[:2]
        return str(host), int(port)

    def restart_schedule(self) -> None:
        """Count scheduled outages from now (e.g. after a warm-up)."""
        self._started_at = time.monotonic()

    def cut(self) -> None:
        """Drop everything from now on (datagrams already in flight still arrive)."""
        self.is_cut = True

    def restore(self) -> None:
        """Let traffic through again."""
        self.is_cut = False

    def in_outage(self, now: float) -> bool:
        """Whether a cut or a scheduled outage is in force."""
        if self.is_cut:
            return True
        elapsed = now - self._started_at
        return any(start <= elapsed < start + length for start, length in self.profile.outages)

    def close(self) -> None:
        """Close both sockets and forget datagrams in flight."""
        if self._closed:
            return
        self._closed = True
        for sock in (self._front, self._back):
            if sock is not None:
                if self._loop is not None and not self._loop.is_closed():
                    self._loop.remove_reader(sock.fileno())
                sock.close()

    def _from_client(self, data: bytes, addr: tuple[str, int], arrived_ns: int | None) -> None:
        self._client = addr
        self._relay(self.forward, data, self._send_upstream, arrived_ns)

    def _from_upstream(self, data: bytes, addr: tuple[str, int], arrived_ns: int | None) -> None:
        self._relay(self.backward, data, self._send_client, arrived_ns)

    def _relay(
        self, direction: ImpairedDirection, data: bytes, send: Any, arrived_ns: int | None
    ) -> None:
        now = time.monotonic()
        if arrived_ns is not None:
            # Delay counts from the kernel's receipt, so the proxy's own wake-up latency is
            # absorbed by the emulated delay instead of being added to it.
            now -= max(0, time.time_ns() - arrived_ns) / 1e9
        if self.in_outage(now):
            direction.counters.received += 1
            direction.counters.cut += 1
            return
        for departure in direction.schedule(now, len(data), link_kind(data)):
            direction.push(departure, data)
        self._arm(direction, send)

    def _arm(self, direction: ImpairedDirection, send: Any) -> None:
        # One timer per direction, draining a heap in departure order: separate timers with
        # equal deadlines would fire in arbitrary order and reorder the flow.
        if not direction.pending:
            return
        due = direction.pending[0][0]
        if direction.timer is not None:
            # A datagram held back (reordering, hold-back) armed the timer for later than
            # the one just queued: the rest of the flow must not wait for it.
            if direction.timer_due <= due:
                return
            direction.timer.cancel()
        loop = asyncio.get_running_loop()
        direction.timer_due = due
        direction.timer = loop.call_later(
            max(0.0, due - time.monotonic()), self._drain, direction, send
        )

    def _drain(self, direction: ImpairedDirection, send: Any) -> None:
        direction.timer = None
        if self._closed:
            return
        now = time.monotonic()
        while direction.pending and direction.pending[0][0] <= now:
            _due, _order, data = heapq.heappop(direction.pending)
            direction.counters.forwarded += 1
            send(data)
        self._arm(direction, send)

    def _send_upstream(self, data: bytes) -> None:
        if self._back is not None and not self._closed:
            with contextlib.suppress(OSError):
                self._back.send(data)

    def _send_client(self, data: bytes) -> None:
        if self._client and self._front is not None and not self._closed:
            with contextlib.suppress(OSError):
                self._front.sendto(data, self._client)

    def counters(self) -> dict[str, dict[str, int]]:
        """Counters of both directions."""
        return {"forward": vars(self.forward.counters), "backward": vars(self.backward.counters)}


async def run_proxy(
    listen: tuple[str, int], upstream: tuple[str, int], profile: ImpairmentProfile, seed: int
) -> None:
    """Run a proxy until cancelled."""
    proxy = ImpairmentProxy(upstream, profile, listen=listen, seed=seed)
    await proxy.start()
    try:
        await asyncio.Event().wait()
    finally:
        proxy.close()
