"""Control of PTZ cameras over VISCA over IP, and who may control them.

:class:`PtzClient` is the controller side of the Sony VISCA over IP specification (see
:mod:`concilium.live.visca`): it numbers its datagrams, waits for the ACK and the Completion
carrying the same sequence number, and retransmits the same datagram (same sequence number)
when no reply came back in time. Once a command is acknowledged it is never resent, because
the camera is already executing it. Every exchange returns a :class:`CommandRecord` that says
exactly what was sent, by whom, and how the camera answered, ready for the audit trail.

:class:`DirectorLock` decides who may move the cameras of a live session: one director at a
time, for a bounded lease. It is pure (time is passed in) so the rule can be tested and
replayed without a network.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from concilium.live.visca import (
    VISCA_PORT,
    Ack,
    Command,
    Completion,
    ControlReset,
    ErrorCode,
    Inquiry,
    Message,
    PanTiltPositionInquiry,
    PayloadType,
    ReplyError,
    ViscaParseError,
    ZoomPositionInquiry,
    parse_reply,
)
from concilium.platform.i18n import N_, _

__all__ = [
    "CommandRecord",
    "DirectorLock",
    "DirectorLockHeld",
    "LockEvent",
    "NotDirector",
    "PtzClient",
    "PtzError",
    "directed_send",
]

log = logging.getLogger(__name__)

Outcome = Literal["completed", "error", "timeout"]
LockAction = Literal["take", "renew", "release", "expire", "refuse"]


class PtzError(Exception):
    """A camera exchange did not complete; carries the record of what happened."""

    def __init__(self, record: CommandRecord) -> None:
        if record.error is not None:
            reason = _(_REFUSALS.get(record.error, N_("the camera refused it")))
        else:
            reason = _("no answer from the camera (timeout)")
        shown = _("The camera did not carry out the move: %(reason)s.") % {"reason": reason}
        super().__init__(shown)
        self.record = record


_REFUSALS = {
    ErrorCode.SYNTAX_ERROR: N_("the camera does not understand this command"),
    ErrorCode.COMMAND_BUFFER_FULL: N_("the camera is busy with other commands"),
    ErrorCode.COMMAND_CANCELLED: N_("the command was cancelled"),
    ErrorCode.NO_SOCKET: N_("the camera is busy with other commands"),
    ErrorCode.NOT_EXECUTABLE: N_("the camera cannot do this now"),
}
"""A VISCA refusal (``z0 6y EE FF``), as the director reads it."""


@dataclass(frozen=True)
class CommandRecord:
    """What was sent to a camera and how it answered (one audit entry)."""

    camera: str
    """``host:port`` of the camera."""
    director: str | None
    """User who ordered the move, if any."""
    command: str
    """Readable form of the command, e.g. ``PanTiltDrive(direction=<Direction.UP ...>)``."""
    payload_type: PayloadType
    """Header payload type sent."""
    sequence: int
    """Sequence number used (the same for every retransmission)."""
    payload: bytes
    """VISCA payload sent."""
    sent_at: float
    """Wall-clock time of the first transmission (seconds since the epoch)."""
    attempts: int
    """How many times the datagram was transmitted."""
    outcome: Outcome
    """``completed``, ``error`` (the camera refused) or ``timeout``."""
    error: ErrorCode | None = None
    """Error code of a refusal."""
    reply_data: bytes = b""
    """Data of an inquiry's completion."""
    duration: float = 0.0
    """Seconds from first transmission to the final answer."""

    @property
    def ok(self) -> bool:
        """Whether the camera completed the command."""
        return self.outcome == "completed"

    def raise_for_outcome(self) -> CommandRecord:
        """Return self if completed, else raise :class:`PtzError`."""
        if not self.ok:
            raise PtzError(self)
        return self


class _ReplyProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[Message] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            message = Message.parse(data)
        except ViscaParseError as exc:
            log.warning("ignoring malformed datagram from camera %s: %s", addr, exc)
            return
        self.replies.put_nowait(message)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable when the camera is off: the retry timer handles it.
        log.debug("PTZ socket error: %s", exc)


class PtzClient:
    """VISCA over IP controller for one camera."""

    def __init__(
        self,
        host: str,
        port: int = VISCA_PORT,
        *,
        timeout: float = 0.5,
        retries: int = 2,
        completion_timeout: float = 10.0,
        wall_clock: Callable[[], float] = time.time,
        on_record: Callable[[CommandRecord], None] | None = None,
    ) -> None:
        if not 1 <= port <= 65535:
            raise ValueError(f"port must be in 1..65535, got {port}")
        if timeout <= 0 or completion_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if not 0 <= retries <= 10:
            raise ValueError(f"retries must be in 0..10, got {retries}")
        self.host = host
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.completion_timeout = completion_timeout
        self.wall_clock = wall_clock
        self.on_record = on_record
        self.history: list[CommandRecord] = []
        """Every exchange with this camera, oldest first."""
        self._sequence = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _ReplyProtocol | None = None
        self._lock = asyncio.Lock()

    @property
    def camera(self) -> str:
        """``host:port`` of the camera."""
        return f"{self.host}:{self.port}"

    async def connect(self) -> None:
        """Open the UDP socket towards the camera."""
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            _ReplyProtocol, remote_addr=(self.host, self.port)
        )
        self._transport, self._protocol = transport, protocol

    def close(self) -> None:
        """Close the socket."""
        if self._transport is not None:
            self._transport.close()
        self._transport = self._protocol = None

    async def __aenter__(self) -> PtzClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def _next_sequence(self) -> int:
        self._sequence = (self._sequence + 1) % 2**32
        return self._sequence

    async def _receive(self, sequence: int, timeout: float) -> Message | None:
        """Next reply carrying ``sequence``; stale replies to earlier requests are skipped."""
        assert self._protocol is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (remaining := deadline - loop.time()) > 0:
            try:
                message = await asyncio.wait_for(self._protocol.replies.get(), remaining)
            except TimeoutError:
                return None
            if message.sequence == sequence:
                return message
        return None

    async def _exchange(
        self,
        payload_type: PayloadType,
        payload: bytes,
        description: str,
        director: str | None,
    ) -> CommandRecord:
        if self._transport is None:
            raise RuntimeError("PtzClient is not connected")
        async with self._lock:
            sequence = self._next_sequence()
            datagram = Message(payload_type, sequence, payload).pack()
            sent_at = self.wall_clock()
            started = time.monotonic()
            attempts = 0
            outcome: Outcome = "timeout"
            error: ErrorCode | None = None
            data = b""
            acknowledged = False
            while attempts <= self.retries and not acknowledged:
                attempts += 1
                self._transport.sendto(datagram)
                reply = await self._receive(sequence, self.timeout)
                while reply is not None:
                    if reply.payload_type is PayloadType.CONTROL_REPLY:
                        # 01 acknowledges RESET; 0F 0n reports a sequence or message fault.
                        outcome = "completed" if reply.payload == b"\x01" else "error"
                        acknowledged = True
                        break
                    try:
                        _, answer = parse_reply(reply.payload)
                    except ViscaParseError as exc:
                        log.warning("camera %s sent a bad reply: %s", self.camera, exc)
                        reply = await self._receive(sequence, self.timeout)
                        continue
                    if isinstance(answer, Ack):
                        acknowledged = True
                        reply = await self._receive(sequence, self.completion_timeout)
                        continue
                    acknowledged = True
                    if isinstance(answer, Completion):
                        outcome, data = "completed", answer.data
                    elif isinstance(answer, ReplyError):
                        outcome, error = "error", answer.code
                    break
            record = CommandRecord(
                camera=self.camera,
                director=director,
                command=description,
                payload_type=payload_type,
                sequence=sequence,
                payload=payload,
                sent_at=sent_at,
                attempts=attempts,
                outcome=outcome,
                error=error,
                reply_data=data,
                duration=time.monotonic() - started,
            )
        self.history.append(record)
        if self.on_record is not None:
            self.on_record(record)
        return record

    async def send(self, command: Command, *, director: str | None = None) -> CommandRecord:
        """Send a VISCA command and wait for its completion (or refusal, or timeout)."""
        return await self._exchange(
            PayloadType.VISCA_COMMAND, command.payload(), repr(command), director
        )

    async def inquire(self, inquiry: Inquiry) -> CommandRecord:
        """Send a VISCA inquiry; the answer is in ``reply_data``."""
        return await self._exchange(
            PayloadType.VISCA_INQUIRY, inquiry.payload(), repr(inquiry), None
        )

    async def pan_tilt_position(self) -> tuple[int, int]:
        """Current (pan, tilt) of the head."""
        record = (await self.inquire(PanTiltPositionInquiry())).raise_for_outcome()
        return PanTiltPositionInquiry.decode(record.reply_data)

    async def zoom_position(self) -> int:
        """Current zoom position."""
        record = (await self.inquire(ZoomPositionInquiry())).raise_for_outcome()
        return ZoomPositionInquiry.decode(record.reply_data)

    async def reset_sequence(self) -> CommandRecord:
        """Control command RESET, sent before the first command so both sides agree on 0."""
        record = await self._exchange(
            PayloadType.CONTROL_COMMAND, ControlReset().payload(), "ControlReset()", None
        )
        if record.ok:
            # Both sides count from 0 again; the next command carries 1.
            self._sequence = 0
        return record


@dataclass(frozen=True)
class LockEvent:
    """One decision of a :class:`DirectorLock` (for the audit trail)."""

    at: float
    """Time of the decision."""
    action: LockAction
    """What happened."""
    director: str
    """Who asked (for ``expire``: who lost the lock)."""
    holder: str | None
    """Who holds the lock after the decision."""
    until: float | None
    """End of the lease after the decision."""


class DirectorLockHeld(Exception):
    """Someone else directs the cameras."""

    def __init__(self, holder: str, until: float) -> None:
        super().__init__(f"cameras are directed by {holder} until {until:.0f}")
        self.holder = holder
        self.until = until


class NotDirector(Exception):
    """The caller does not hold the director lock."""


@dataclass
class DirectorLock:
    """Who directs the cameras of one live session: one director at a time, for a lease.

    Rules: a free or lapsed lock goes to whoever takes it; the holder renews by taking again;
    anyone else is refused until the holder releases it or the lease lapses; only the holder
    may release. Every decision is appended to ``events``.
    """

    session_id: str
    """Live session whose cameras this lock guards."""
    lease: float = 120.0
    """Default lease in seconds; a director who stops acting loses control after it."""
    holder: str | None = None
    """Current director, if any (check with :meth:`current` to account for expiry)."""
    until: float = 0.0
    """End of the current lease."""
    events: list[LockEvent] = field(default_factory=list)
    """Every decision, oldest first."""

    def __post_init__(self) -> None:
        if not self.session_id:
            raise ValueError("session_id must not be empty")
        if self.lease <= 0:
            raise ValueError(f"lease must be positive, got {self.lease}")

    def _log(self, at: float, action: LockAction, who: str) -> LockEvent:
        event = LockEvent(at, action, who, self.holder, self.until if self.holder else None)
        self.events.append(event)
        log.info("director lock %s: %s by %s", self.session_id, action, who)
        return event

    def current(self, now: float) -> str | None:
        """Director at ``now``; a lapsed lease is expired (and logged) here."""
        if self.holder is not None and now >= self.until:
            lost = self.holder
            self.holder = None
            self._log(now, "expire", lost)
        return self.holder

    def take(self, director: str, now: float, lease: float | None = None) -> LockEvent:
        """Take or renew control; raises :class:`DirectorLockHeld` if someone else has it."""
        if not director:
            raise ValueError("director must not be empty")
        duration = self.lease if lease is None else lease
        if duration <= 0:
            raise ValueError(f"lease must be positive, got {duration}")
        holder = self.current(now)
        if holder is not None and holder != director:
            self._log(now, "refuse", director)
            raise DirectorLockHeld(holder, self.until)
        self.holder = director
        self.until = now + duration
        return self._log(now, "renew" if holder == director else "take", director)

    def release(self, director: str, now: float) -> LockEvent:
        """Give control back; raises :class:`NotDirector` if ``director`` does not hold it."""
        if self.current(now) != director:
            raise NotDirector(f"{director} does not direct session {self.session_id}")
        self.holder = None
        self.until = 0.0
        return self._log(now, "release", director)

    def check(self, director: str, now: float) -> None:
        """Raise :class:`NotDirector` unless ``director`` holds the lock at ``now``."""
        if self.current(now) != director:
            raise NotDirector(f"{director} does not direct session {self.session_id}")


async def directed_send(
    lock: DirectorLock,
    client: PtzClient,
    command: Command,
    *,
    director: str,
    now: float,
) -> CommandRecord:
    """Send ``command`` on behalf of ``director`` if they hold ``lock`` at ``now``."""
    lock.check(director, now)
    return await client.send(command, director=director)
