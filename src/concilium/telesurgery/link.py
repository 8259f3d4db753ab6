"""The WAN link between the console gateway and the robot gateway: authenticated, encrypted
UDP datagrams with sequence numbers, sender timestamps, replay and reordering protection,
freshness checks and NTP-style clock offset and RTT estimation (RFC 5905 section 8), the
offset carrying the error bound an on-path attacker cannot shrink (see :class:`ClockEstimator`).

Datagram layout (all integers big-endian)::

    version u8 | kind u8 | reserved u16 | key id u32 | epoch u32 | sequence u64 |
    sender timestamp ns u64 | ChaCha20-Poly1305 ciphertext of the payload + 16-byte tag

The 28-byte header is the associated data (RFC 8439 AEAD); the nonce is epoch || sequence.
The epoch is drawn at random when a sender starts, so a restarted gateway does not reuse a
nonce under the procedure's key (a repeat needs tens of thousands of restarts).

:class:`LinkSession` is the pure protocol state (seal/open with injected clocks);
:class:`LinkEndpoint` runs it over an asyncio UDP socket and sends the heartbeats.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import secrets
import socket
import stat
import struct
import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from concilium.platform.i18n import _

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

LINK_VERSION = 1
"""Version of the datagram format."""

_HEADER = struct.Struct(">BBHIIQQ")
HEADER_SIZE = _HEADER.size
"""Size of the clear, authenticated datagram header."""
TAG_SIZE = 16
"""Size of the Poly1305 tag."""
_HEARTBEAT_REPLY = struct.Struct(">Qqq")

REPLAY_WINDOW = 1024
"""Width of the sliding anti-replay window, in sequence numbers (RFC 4303 section 3.4.3)."""

MAX_RELATIVE_DRIFT_PPM = 1_000
"""How fast the two clocks may drift apart after an exchange: each within the frequency
tolerance of RFC 5905's clock discipline (MAXFREQ, 500 ppm; the Linux kernel's bound too)."""


class Kind(IntEnum):
    """What a datagram carries."""

    COMMAND = 1
    TELEMETRY = 2
    HEARTBEAT = 3
    HEARTBEAT_REPLY = 4
    STATUS = 5
    PADDING = 6


class Direction(IntEnum):
    """Which way a key protects traffic."""

    CONSOLE_TO_ROBOT = 0
    ROBOT_TO_CONSOLE = 1


class Drop(StrEnum):
    """Reasons for which a received datagram is dropped (also the counter names)."""

    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown_key"
    AUTH_FAILED = "auth_failed"
    REPLAY = "replay"
    REORDERED = "reordered"
    STALE = "stale"
    NEGATIVE_AGE = "negative_age"
    UNSYNCHRONISED = "unsynchronised"
    OLD_EPOCH = "old_epoch"
    HANDLER_ERROR = "handler_error"
    SEND_FAILED = "send_failed"


# --- keys ---------------------------------------------------------------------------------


class KeyFileError(ValueError):
    """A procedure key file is unreadable, malformed or too widely readable."""


@dataclass(frozen=True)
class ProcedureKeys:
    """The symmetric keys of one procedure, one per direction."""

    procedure_id: str
    """Identifier of the procedure these keys belong to."""
    key_id: int
    """Identifier of this key set (0..2^32-1), carried in every datagram."""
    console_to_robot: bytes
    """32-byte key for the console to robot direction."""
    robot_to_console: bytes
    """32-byte key for the robot to console direction."""

    def __post_init__(self) -> None:
        if not self.procedure_id:
            raise ValueError(_("%(name)s must not be empty") % {"name": "procedure_id"})
        if not 0 <= self.key_id <= 0xFFFFFFFF:
            raise ValueError(
                _("%(name)s must fit in 32 bits, got %(value)s")
                % {"name": "key_id", "value": self.key_id}
            )
        for name in ("console_to_robot", "robot_to_console"):
            if len(getattr(self, name)) != 32:
                raise ValueError(_("%(name)s key must be 32 bytes") % {"name": name})
        if self.console_to_robot == self.robot_to_console:
            raise ValueError(_("the two directions must use different keys"))

    @classmethod
    def generate(cls, procedure_id: str, key_id: int = 1) -> ProcedureKeys:
        """Fresh random keys (for tests, qualification and the demo)."""
        return cls(procedure_id, key_id, secrets.token_bytes(32), secrets.token_bytes(32))

    def key_for(self, direction: Direction) -> bytes:
        """The key protecting ``direction``."""
        if direction is Direction.CONSOLE_TO_ROBOT:
            return self.console_to_robot
        return self.robot_to_console

    def to_json(self) -> str:
        """The key file text (keys in base64)."""
        return json.dumps(
            {
                "procedure_id": self.procedure_id,
                "key_id": self.key_id,
                "console_to_robot": base64.b64encode(self.console_to_robot).decode(),
                "robot_to_console": base64.b64encode(self.robot_to_console).decode(),
            },
            indent=2,
        )


def write_keys(keys: ProcedureKeys, path: Path) -> None:
    """Write a key file readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(keys.to_json())
    path.chmod(0o600)


def load_keys(path: Path) -> ProcedureKeys:
    """Load a procedure key file, refusing one that group or others may access."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise KeyFileError(
            _("cannot read key file %(path)s: %(error)s") % {"path": path, "error": exc.strerror}
        ) from exc
    if stat.S_IMODE(mode) & 0o077:
        raise KeyFileError(
            _("key file %(path)s has mode %(mode)04o; it must be 0600 or stricter")
            % {"path": path, "mode": stat.S_IMODE(mode)}
        )
    try:
        data = json.loads(path.read_text())
        return ProcedureKeys(
            procedure_id=str(data["procedure_id"]),
            key_id=int(data["key_id"]),
            console_to_robot=base64.b64decode(data["console_to_robot"], validate=True),
            robot_to_console=base64.b64decode(data["robot_to_console"], validate=True),
        )
    except (KeyError, TypeError, json.JSONDecodeError, binascii.Error) as exc:
        raise KeyFileError(
            _("key file %(path)s is malformed: %(error)s") % {"path": path, "error": exc}
        ) from exc
    except ValueError as exc:
        raise KeyFileError(
            _("key file %(path)s is invalid: %(error)s") % {"path": path, "error": exc}
        ) from exc


# --- pure building blocks -----------------------------------------------------------------


class ReplayWindow:
    """Sliding anti-replay window over 64-bit sequence numbers (RFC 4303 section 3.4.3)."""

    def __init__(self, size: int = REPLAY_WINDOW) -> None:
        if size < 1:
            raise ValueError("replay window size must be at least 1")
        self.size = size
        self.highest = -1
        self._bitmap = 0

    def check(self, sequence: int) -> bool:
        """True if ``sequence`` has not been seen and is not behind the window."""
        if sequence > self.highest:
            return True
        offset = self.highest - sequence
        if offset >= self.size:
            return False
        return not (self._bitmap >> offset) & 1

    def accept(self, sequence: int) -> None:
        """Mark ``sequence`` as seen (call only after authentication)."""
        if sequence > self.highest:
            shift = sequence - self.highest
            # A jump past the window's width forgets all it saw (and must not shift a bitmap
            # by up to 2^64 places).
            if shift >= self.size:
                self._bitmap = 1
            else:
                self._bitmap = ((self._bitmap << shift) | 1) & ((1 << self.size) - 1)
            self.highest = sequence
        else:
            self._bitmap |= 1 << (self.highest - sequence)


@dataclass(frozen=True)
class ClockSample:
    """One heartbeat exchange (RFC 5905 section 8 on-wire protocol)."""

    offset_ns: int
    """Peer clock minus local clock."""
    rtt_ns: int
    """Round-trip delay, excluding the peer's processing time."""
    at_ns: int
    """Local time the reply arrived."""


class ClockEstimator:
    """Clock offset and RTT from heartbeat exchanges, trusting the lowest-delay recent sample,
    and the bound on that offset's error.

    The sample with the smallest round trip has the least queueing asymmetry, which is what
    the NTP clock filter (RFC 5905 section 10) relies on too.

    Why the bound is sound: in an exchange, the heartbeat takes ``d1`` on the wire and the
    reply ``d2``, so the sample's round trip is ``d1 + d2`` and its offset is off by
    ``(d1 - d2) / 2``. The timestamps are authenticated and an on-path attacker can only add
    delay, never make a datagram arrive before it was sent: ``d1, d2 >= 0``, hence the error
    is at most half the round trip *of the sample used*. Holding back one direction (the
    replies, say) moves the offset, but by no more than it lengthens that round trip, so for
    a received datagram ``age_est - rtt/2 <= age_true <= age_est + rtt/2``. The attacker can
    hide where the delay is, not how much there is; the lowest-delay choice keeps the bound
    tight while some exchanges go through untouched. After the exchange the bound grows by
    the clocks' relative drift (:data:`MAX_RELATIVE_DRIFT_PPM`), as RFC 5905's dispersion
    grows with time. A clock stepped during an exchange is refused (:meth:`add`); one
    stepped later shows as an impossible age (:func:`judge_freshness`) once the step exceeds
    the bound.
    """

    def __init__(self, history: int = 32) -> None:
        self._samples: deque[ClockSample] = deque(maxlen=history)
        self.history: deque[ClockSample] = deque(maxlen=100_000)
        self._best: ClockSample | None = None

    def add(self, t1: int, t2: int, t3: int, t4: int) -> ClockSample:
        """Record an exchange: t1 sent, t2 peer received, t3 peer replied, t4 reply received.

        Raises ValueError when the peer claims to have held the heartbeat longer than the
        whole round trip took (a clock stepped during the exchange): no bound holds then.
        """
        rtt = (t4 - t1) - (t3 - t2)
        if rtt < 0 or t3 < t2:
            raise ValueError(f"exchange with a negative round trip ({rtt} ns) or turnaround")
        sample = ClockSample(offset_ns=((t2 - t1) + (t3 - t4)) // 2, rtt_ns=rtt, at_ns=t4)
        self._samples.append(sample)
        self.history.append(sample)
        # Chosen once per exchange, not per datagram: every datagram reads the offset. Of
        # equal round trips the newest wins, having drifted least.
        self._best = min(reversed(self._samples), key=lambda s: s.rtt_ns)
        return sample

    @property
    def synchronised(self) -> bool:
        """Whether at least one exchange completed."""
        return bool(self._samples)

    def best(self) -> ClockSample | None:
        """The lowest-RTT recent sample: the one the offset comes from."""
        return self._best

    @property
    def offset_ns(self) -> int:
        """Best estimate of peer clock minus local clock (0 before any exchange)."""
        return self._best.offset_ns if self._best is not None else 0

    def uncertainty_ns(self, now_ns: int) -> int | None:
        """Bound on the offset's error at local time ``now_ns`` (None before any exchange):
        half the round trip of the sample used (plus 1 ns for the offset's rounding), grown
        by the drift since."""
        best = self._best
        if best is None:
            return None
        drift_ns = max(0, now_ns - best.at_ns) * MAX_RELATIVE_DRIFT_PPM // 1_000_000
        return best.rtt_ns // 2 + 1 + drift_ns

    @property
    def rtt_ns(self) -> int | None:
        """Most recent round-trip time."""
        return self._samples[-1].rtt_ns if self._samples else None


class JitterEstimator:
    """Interarrival jitter as in RFC 3550 section 6.4.1, on transit times in nanoseconds."""

    def __init__(self) -> None:
        self._last_transit: int | None = None
        self.jitter_ns = 0.0

    def add(self, transit_ns: int) -> float:
        """Update with one packet's transit time; returns the jitter in nanoseconds."""
        if self._last_transit is not None:
            d = abs(transit_ns - self._last_transit)
            self.jitter_ns += (d - self.jitter_ns) / 16.0
        self._last_transit = transit_ns
        return self.jitter_ns


@dataclass(frozen=True)
class Datagram:
    """An accepted, decrypted datagram."""

    kind: Kind
    """What it carries."""
    sequence: int
    """Sender's sequence number."""
    sent_ns: int
    """Sender timestamp, on the sender's clock."""
    received_ns: int
    """Local time it was processed."""
    latency_ns: int | None
    """Age when processed, from the sender's timestamp and the clock offset (None before
    synchronisation): what freshness and safety judge."""
    payload: bytes
    """Decrypted payload."""
    reordered: bool
    """Whether a later sequence number had already been accepted."""
    arrived_ns: int = 0
    """Local time the kernel received it (equals ``received_ns`` without kernel stamps)."""
    network_latency_ns: int | None = None
    """One-way network latency, from the kernel arrival time (None before synchronisation)."""


@dataclass(frozen=True)
class Dropped:
    """A datagram that was not accepted."""

    reason: Drop
    """Why it was dropped."""
    kind: Kind | None = None
    """Its kind, when the header was readable."""
    age_ns: int | None = None
    """Estimated age of a command refused for its age (STALE, NEGATIVE_AGE)."""
    uncertainty_ns: int | None = None
    """Bound on the error of that estimate (the clock offset's)."""


def judge_freshness(age_ns: int, uncertainty_ns: int, budget_ns: int) -> Drop | None:
    """Whether a command may be executed, from its estimated age and the bound on that
    estimate's error (:meth:`ClockEstimator.uncertainty_ns`): None to execute it.

    The true age lies within ``age_ns +- uncertainty_ns``. The command is fresh only if it is
    fresh at worst, ``age_ns + uncertainty_ns <= budget_ns``, so that no skew of the offset
    passes a late command off as fresh. A true age is never negative: an estimate below
    ``-uncertainty_ns`` means the clocks are not what the estimator believes (a clock
    stepped, a peer stamping wrongly), and freshness cannot be judged at all.
    """
    if age_ns < -uncertainty_ns:
        return Drop.NEGATIVE_AGE
    if age_ns + uncertainty_ns > budget_ns:
        return Drop.STALE
    return None


@dataclass(frozen=True)
class SequenceCount:
    """How much of the peer's sequence space arrived, at one moment."""

    epoch: int | None
    """The peer's epoch (None before anything authentic arrived)."""
    expected: int
    """Highest sequence number received plus one: what the peer had sent by then."""
    authentic: int
    """Authenticated datagrams received of that epoch (duplicates excluded)."""
    reordered: int
    """Of those, the ones that came after a later one."""


def link_quality(before: SequenceCount | None, now: SequenceCount) -> tuple[float, float] | None:
    """Loss and reordering ratios of what the peer sent between two counts, from sequence
    numbers (RFC 3550 section 6.4.1 counts loss the same way); None when nothing was sent.

    A new peer epoch (the peer restarted) starts the count again from zero."""
    if before is None or before.epoch != now.epoch:
        before = SequenceCount(now.epoch, 0, 0, 0)
    expected = now.expected - before.expected
    received = now.authentic - before.authentic
    if expected <= 0:
        return None
    loss = min(1.0, max(0.0, 1.0 - received / expected))
    reordering = (now.reordered - before.reordered) / received if received > 0 else 0.0
    return loss, min(1.0, max(0.0, reordering))


class LinkSession:
    """Pure state of one end of the link: sealing, opening, replay, freshness, clock.

    ``freshness_ns`` is the age beyond which a COMMAND is dropped instead of executed late,
    judged at worst over the clock offset's uncertainty (:func:`judge_freshness`); it needs
    the clock offset, so commands are refused until a heartbeat exchange completed.
    """

    def __init__(
        self,
        keys: ProcedureKeys,
        role: str,
        freshness_ns: int = 150_000_000,
        epoch: int | None = None,
    ) -> None:
        if role not in ("console", "robot"):
            raise ValueError(f"role must be 'console' or 'robot', got {role!r}")
        if freshness_ns <= 0:
            raise ValueError("freshness budget must be positive")
        self.keys = keys
        self.role = role
        self.freshness_ns = freshness_ns
        send_dir = Direction.CONSOLE_TO_ROBOT if role == "console" else Direction.ROBOT_TO_CONSOLE
        recv_dir = Direction(1 - send_dir)
        self._send_aead = ChaCha20Poly1305(keys.key_for(send_dir))
        self._recv_aead = ChaCha20Poly1305(keys.key_for(recv_dir))
        self.epoch = secrets.randbits(32) if epoch is None else epoch
        self._next_sequence = 0
        self._peer_epoch: int | None = None
        self._peer_epoch_last_ns = 0
        self._window = ReplayWindow()
        self.clock = ClockEstimator()
        self.jitter = JitterEstimator()
        self.drops: Counter[str] = Counter()
        self.received: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        self.reordered = 0
        self.authentic = 0
        """Authenticated datagrams of the peer's current epoch (late, stale or not)."""
        self.reordered_seen = 0
        """Authenticated datagrams of the current epoch that came after a later one."""

    def seal(self, kind: Kind, payload: bytes, now_ns: int) -> bytes:
        """Encrypt and frame one datagram."""
        sequence = self._next_sequence
        self._next_sequence += 1
        header = _HEADER.pack(LINK_VERSION, kind, 0, self.keys.key_id, self.epoch, sequence, now_ns)
        nonce = struct.pack(">IQ", self.epoch, sequence)
        self.sent[kind.name.lower()] += 1
        return header + self._send_aead.encrypt(nonce, payload, header)

    def open(self, data: bytes, now_ns: int, arrived_ns: int | None = None) -> Datagram | Dropped:
        """Authenticate and check one received datagram; never raises on bad input.

        ``now_ns`` is the processing time, used for freshness; ``arrived_ns`` the kernel's
        receive timestamp when available, used for clock and latency measurements so that
        a busy receiver does not pass its own delays off as the network's.
        """
        result = self._open(data, now_ns, now_ns if arrived_ns is None else arrived_ns)
        if isinstance(result, Dropped):
            self.drops[result.reason] += 1
        else:
            self.received[result.kind.name.lower()] += 1
        return result

    def _open(self, data: bytes, now_ns: int, arrived_ns: int) -> Datagram | Dropped:
        if len(data) < HEADER_SIZE + TAG_SIZE:
            return Dropped(Drop.MALFORMED)
        version, raw_kind, _reserved, key_id, epoch, sequence, sent_ns = _HEADER.unpack_from(data)
        if version != LINK_VERSION or raw_kind not in Kind._value2member_map_:
            return Dropped(Drop.MALFORMED)
        kind = Kind(raw_kind)
        if key_id != self.keys.key_id:
            return Dropped(Drop.UNKNOWN_KEY, kind)
        new_epoch = epoch != self._peer_epoch
        if not new_epoch and not self._window.check(sequence):
            return Dropped(Drop.REPLAY, kind)
        nonce = struct.pack(">IQ", epoch, sequence)
        try:
            payload = self._recv_aead.decrypt(nonce, data[HEADER_SIZE:], data[:HEADER_SIZE])
        except InvalidTag:
            return Dropped(Drop.AUTH_FAILED, kind)
        if new_epoch:
            # A restarted peer picks a new epoch; datagrams replayed from an earlier epoch
            # carry older timestamps than what that epoch already delivered.
            if self._peer_epoch is not None and sent_ns <= self._peer_epoch_last_ns:
                return Dropped(Drop.OLD_EPOCH, kind)
            self._peer_epoch = epoch
            self._window = ReplayWindow()
            self.authentic = 0
            self.reordered_seen = 0
        self.authentic += 1
        reordered = sequence < self._window.highest
        if reordered:
            self.reordered_seen += 1
        if reordered and kind in (Kind.COMMAND, Kind.TELEMETRY, Kind.STATUS):
            self._window.accept(sequence)
            return Dropped(Drop.REORDERED, kind)
        latency_ns: int | None = None
        network_ns: int | None = None
        if self.clock.synchronised:
            sent_local_ns = sent_ns - self.clock.offset_ns
            latency_ns = now_ns - sent_local_ns
            network_ns = arrived_ns - sent_local_ns
        if kind is Kind.COMMAND:
            uncertainty_ns = self.clock.uncertainty_ns(now_ns)
            if latency_ns is None or uncertainty_ns is None:
                self._window.accept(sequence)
                return Dropped(Drop.UNSYNCHRONISED, kind)
            refused = judge_freshness(latency_ns, uncertainty_ns, self.freshness_ns)
            if refused is not None:
                self._window.accept(sequence)
                return Dropped(refused, kind, latency_ns, uncertainty_ns)
            self.jitter.add(network_ns if network_ns is not None else latency_ns)
        self._window.accept(sequence)
        self._peer_epoch_last_ns = max(self._peer_epoch_last_ns, sent_ns)
        if reordered:
            self.reordered += 1
        return Datagram(
            kind, sequence, sent_ns, now_ns, latency_ns, payload, reordered, arrived_ns, network_ns
        )

    def heartbeat_reply_payload(self, heartbeat: Datagram) -> bytes:
        """Payload answering a heartbeat: its sequence, its send time and our receive time."""
        return _HEARTBEAT_REPLY.pack(heartbeat.sequence, heartbeat.sent_ns, heartbeat.arrived_ns)

    def on_heartbeat_reply(self, reply: Datagram) -> ClockSample | None:
        """Feed a heartbeat reply to the clock estimator."""
        if len(reply.payload) != _HEARTBEAT_REPLY.size:
            self.drops[Drop.MALFORMED] += 1
            return None
        _seq, t1, t2 = _HEARTBEAT_REPLY.unpack(reply.payload)
        if t1 > reply.arrived_ns:
            self.drops[Drop.MALFORMED] += 1
            return None
        try:
            return self.clock.add(t1, t2, reply.sent_ns, reply.arrived_ns)
        except ValueError:
            self.drops[Drop.MALFORMED] += 1
            return None

    def sequence_count(self) -> SequenceCount:
        """What arrived of the peer's current epoch, for :func:`link_quality`."""
        return SequenceCount(
            self._peer_epoch, self._window.highest + 1, self.authentic, self.reordered_seen
        )

    def stats(self) -> dict[str, object]:
        """Counters and estimates, for status pages and reports."""
        rtt = self.clock.rtt_ns
        best = self.clock.best()
        return {
            "sent": dict(self.sent),
            "received": dict(self.received),
            "drops": dict(self.drops),
            "reordered_accepted": self.reordered,
            "rtt_ms": None if rtt is None else rtt / 1e6,
            "offset_ms": self.clock.offset_ns / 1e6,
            "offset_rtt_ms": None if best is None else best.rtt_ns / 1e6,
            "jitter_ms": self.jitter.jitter_ns / 1e6,
        }


# --- asyncio endpoint ---------------------------------------------------------------------

Handler = Callable[[Datagram], None]
DropHook = Callable[[Dropped], None]
ClockHook = Callable[[ClockSample], None]

_LOGGED_ALARMS = frozenset({Drop.AUTH_FAILED, Drop.UNKNOWN_KEY, Drop.MALFORMED, Drop.NEGATIVE_AGE})
"""Drops that raise the endpoint's log alarm: someone else talking on the link, or a clock
that cannot be trusted."""


_SO_TIMESTAMPNS = 35
"""Linux SO_TIMESTAMPNS / SCM_TIMESTAMPNS (not exported by the socket module)."""
_TIMESPEC = struct.Struct("@qq")
_ANCILLARY_SIZE = 64


def open_udp_socket(
    local: tuple[str, int] | None = None, remote: tuple[str, int] | None = None
) -> tuple[socket.socket, bool]:
    """A non-blocking UDP socket bound to ``local`` or connected to ``remote`` (the kernel
    then picks the source address); True when it gives kernel receive timestamps."""
    address = local or remote
    if address is None:
        raise ValueError("a UDP socket needs a local or a remote address")
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    if local is not None:
        sock.bind(local)
    if remote is not None:
        sock.connect(remote)
    if sys.platform.startswith("linux"):
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            return sock, True
        except OSError:
            logger.info("kernel receive timestamps unavailable; using process time")
    return sock, False


def drain_udp_socket(
    sock: socket.socket,
    on_datagram: Callable[[bytes, tuple[str, int], int | None], None],
    limit: int = 256,
) -> None:
    """Read what is waiting, with the kernel's wall-clock arrival time in ns when given.

    Bounded by ``limit`` so that a flood cannot starve the rest of the event loop.
    """
    for _attempt in range(limit):
        try:
            data, ancillary, _flags, addr = sock.recvmsg(65535, _ANCILLARY_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            # ICMP errors (peer down) surface here; whoever sends keeps trying.
            logger.debug("UDP socket error: %s", exc)
            continue
        arrived_ns = None
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                seconds, nanos = _TIMESPEC.unpack(value[: _TIMESPEC.size])
                arrived_ns = seconds * 1_000_000_000 + nanos
        on_datagram(data, (str(addr[0]), int(addr[1])), arrived_ns)


class LinkEndpoint:
    """One end of the link on a UDP socket: heartbeats, replies, and delivery to a handler.

    The peer address is learnt from authenticated datagrams when not configured, so the
    robot side works behind NAT or an impairment proxy without knowing the console's port.
    Datagrams are read with ``recvmsg`` to get the kernel's receive timestamps.

    ``on_dropped`` hears of every datagram dropped, ``on_clock`` of every heartbeat exchange
    the clock estimator took in: the hooks the safety logic judges the link by.
    """

    def __init__(
        self,
        session: LinkSession,
        handler: Handler,
        sock: socket.socket,
        remote: tuple[str, int] | None = None,
        heartbeat_interval: float = 0.01,
        clock_ns: Callable[[], int] = time.time_ns,
        on_dropped: DropHook | None = None,
        on_clock: ClockHook | None = None,
    ) -> None:
        self.session = session
        self.handler = handler
        self.on_dropped = on_dropped
        self.on_clock = on_clock
        self.sock = sock
        self.remote = remote
        self.heartbeat_interval = heartbeat_interval
        self.clock_ns = clock_ns
        self.kernel_timestamps = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._alarm_at = 0.0
        self._closed = False

    @classmethod
    async def start(
        cls,
        session: LinkSession,
        handler: Handler,
        local: tuple[str, int] = ("127.0.0.1", 0),
        remote: tuple[str, int] | None = None,
        heartbeat_interval: float = 0.01,
        on_dropped: DropHook | None = None,
        on_clock: ClockHook | None = None,
    ) -> LinkEndpoint:
        """Bind a UDP socket and start the heartbeats."""
        loop = asyncio.get_running_loop()
        sock, kernel_timestamps = open_udp_socket(local)
        endpoint = cls(
            session,
            handler,
            sock,
            remote,
            heartbeat_interval,
            on_dropped=on_dropped,
            on_clock=on_clock,
        )
        endpoint.kernel_timestamps = kernel_timestamps
        endpoint._loop = loop
        loop.add_reader(sock.fileno(), endpoint._on_readable)
        endpoint._heartbeat_task = loop.create_task(endpoint._heartbeats())
        return endpoint

    @property
    def local_address(self) -> tuple[str, int]:
        """The bound UDP address."""
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    def send(self, kind: Kind, payload: bytes) -> bool:
        """Seal and send one datagram; False when no peer is known or the socket is full."""
        if self._closed or self.remote is None:
            return False
        try:
            self.sock.sendto(self.session.seal(kind, payload, self.clock_ns()), self.remote)
        except OSError:
            # A full socket buffer or an unreachable peer: the datagram is lost, as on a WAN.
            self.session.drops[Drop.SEND_FAILED] += 1
            return False
        return True

    def _on_readable(self) -> None:
        drain_udp_socket(self.sock, self.datagram_received)

    def datagram_received(
        self, data: bytes, addr: tuple[str, int], arrived_ns: int | None = None
    ) -> None:
        """Process one datagram from ``addr``."""
        result = self.session.open(data, self.clock_ns(), arrived_ns)
        if isinstance(result, Dropped):
            if result.reason in _LOGGED_ALARMS:
                self._alarm(result.reason, addr)
            if self.on_dropped is not None:
                self._call(self.on_dropped, result, "drop hook")
            return
        self.remote = (str(addr[0]), int(addr[1]))
        if result.kind is Kind.HEARTBEAT:
            self.send(Kind.HEARTBEAT_REPLY, self.session.heartbeat_reply_payload(result))
            return
        if result.kind is Kind.HEARTBEAT_REPLY:
            sample = self.session.on_heartbeat_reply(result)
            if sample is not None and self.on_clock is not None:
                self._call(self.on_clock, sample, "clock hook")
            return
        try:
            self.handler(result)
        except Exception:
            # A handler bug must not take the link down; the datagram is counted as lost.
            logger.exception("link handler failed on a %s datagram", result.kind.name)
            self.session.drops[Drop.HANDLER_ERROR] += 1

    @staticmethod
    def _call(hook: Callable[[_T], None], value: _T, what: str) -> None:
        # Like the handler, a hook's bug must not take the link down.
        try:
            hook(value)
        except Exception:
            logger.exception("link %s failed", what)

    def _alarm(self, reason: str, addr: object) -> None:
        # Forged traffic can arrive at line rate; one log line a second is enough to alert.
        now = time.monotonic()
        if now - self._alarm_at >= 1.0:
            self._alarm_at = now
            logger.warning(
                "link alarm: dropping %s datagrams from %s (totals %s)",
                reason,
                addr,
                dict(self.session.drops),
            )

    async def _heartbeats(self) -> None:
        while True:
            self.send(Kind.HEARTBEAT, b"")
            await asyncio.sleep(self.heartbeat_interval)

    def close(self) -> None:
        """Stop heartbeats and close the socket."""
        if self._closed:
            return
        self._closed = True
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self.sock.fileno())
        self.sock.close()
