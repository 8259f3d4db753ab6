"""MLLP, the Minimal Lower Layer Protocol that carries HL7 v2 over TCP (HL7 v2.5.1
Implementation Guide, appendix C, "MLLP release 2" framing).

A message travels as ``<VT> message <FS><CR>`` (0x0B, 0x1C, 0x0D) and the receiver answers
each one in the same framing. :class:`MllpDecoder` turns received bytes into framing events
and is pure; :class:`MllpServer` is a thin asyncio adapter that gives each complete frame
to an application handler ``async (raw, peer) -> ack`` and frames the answer back, one
connection per task. The server protects itself: a frame above the size limit is
discarded and answered with AR when its MSH can be read (the connection is closed
otherwise), bytes outside frames are skipped, a frame cut short by a new start block is
dropped, and a connection idle for too long is closed, none of which touches the other
connections or the listener. :class:`MllpConnection` and :func:`send_message` send
outbound messages and wait for the acknowledgment.

Logs name peers and sizes, never message content.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from types import TracebackType

from concilium.reading.hl7v2 import Message, parse_message, peek_header
from concilium.reading.hl7v2_ack import build_ack
from concilium.reading.hl7v2_errors import ErrorCode, HL7Error, failure_trace

logger = logging.getLogger(__name__)

START_BLOCK = b"\x0b"
"""<VT>, opens a frame."""
END_BLOCK = b"\x1c"
"""<FS>, closes a frame, followed by <CR>."""
CARRIAGE_RETURN = b"\x0d"
"""<CR>, last byte of a frame."""

_HEAD_BYTES = 4096  # enough to hold the MSH of an oversized frame
_READ_BYTES = 65536


def frame(payload: bytes) -> bytes:
    """Wrap a message in an MLLP frame."""
    return START_BLOCK + payload + END_BLOCK + CARRIAGE_RETURN


@dataclass(frozen=True)
class FrameReceived:
    """A complete frame; ``payload`` is the message without the framing bytes."""

    payload: bytes
    """The HL7 message."""


@dataclass(frozen=True)
class FrameTooLarge:
    """A frame above the size limit, discarded up to its end block."""

    head: bytes
    """The first bytes of the frame, enough to read its MSH."""
    size: int
    """Size of the whole payload."""


@dataclass(frozen=True)
class JunkSkipped:
    """Bytes received outside any frame (other than line ends between frames)."""

    size: int
    """How many bytes were skipped."""


@dataclass(frozen=True)
class FrameAbandoned:
    """A frame interrupted by a new start block before its end block."""

    size: int
    """How many bytes of the frame were dropped."""


MllpEvent = FrameReceived | FrameTooLarge | JunkSkipped | FrameAbandoned
"""What :meth:`MllpDecoder.feed` reports."""


class _State(Enum):
    OUTSIDE = "outside"
    INSIDE = "inside"
    DISCARDING = "discarding"
    AFTER_END = "after end block"


class MllpDecoder:
    """Incremental MLLP deframer: feed it received bytes, get framing events back."""

    def __init__(self, max_message_bytes: int) -> None:
        if max_message_bytes < 1:
            raise ValueError(f"max_message_bytes must be positive, got {max_message_bytes}")
        self.max_message_bytes = max_message_bytes
        """Largest payload accepted; larger frames become :class:`FrameTooLarge`."""
        self._state = _State.OUTSIDE
        self._buffer = bytearray()
        self._head = bytearray()
        self._size = 0

    @property
    def in_frame(self) -> bool:
        """True while a frame has begun and not ended."""
        return self._state in (_State.INSIDE, _State.DISCARDING)

    @property
    def pending_bytes(self) -> int:
        """Size of the frame begun and not ended."""
        return self._size if self.in_frame else 0

    def feed(self, data: bytes) -> list[MllpEvent]:
        """Consume received bytes; returns the events they complete, in order."""
        events: list[MllpEvent] = []
        position = 0
        while position < len(data):
            if self._state is _State.OUTSIDE:
                position = self._outside(data, position, events)
            elif self._state is _State.AFTER_END:
                if data[position : position + 1] == CARRIAGE_RETURN:
                    position += 1
                self._state = _State.OUTSIDE
            else:
                position = self._inside(data, position, events)
        return events

    def _outside(self, data: bytes, position: int, events: list[MllpEvent]) -> int:
        start = data.find(START_BLOCK, position)
        junk = data[position : start if start >= 0 else len(data)]
        if junk.strip(b"\r\n\t "):
            events.append(JunkSkipped(len(junk)))
        if start < 0:
            return len(data)
        self._begin()
        return start + 1

    def _inside(self, data: bytes, position: int, events: list[MllpEvent]) -> int:
        end = data.find(END_BLOCK, position)
        if self._state is _State.INSIDE:
            restart = data.find(START_BLOCK, position)
            if restart >= 0 and (end < 0 or restart < end):
                events.append(FrameAbandoned(self._size + restart - position))
                self._begin()
                return restart + 1
        stop = end if end >= 0 else len(data)
        self._take(data[position:stop])
        if end < 0:
            return len(data)
        if self._state is _State.INSIDE:
            events.append(FrameReceived(bytes(self._buffer)))
        else:
            events.append(FrameTooLarge(bytes(self._head), self._size))
        self._buffer.clear()
        self._head.clear()
        self._state = _State.AFTER_END
        return end + 1

    def _begin(self) -> None:
        self._state = _State.INSIDE
        self._buffer.clear()
        self._head.clear()
        self._size = 0

    def _take(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._state is _State.INSIDE and self._size > self.max_message_bytes:
            self._state = _State.DISCARDING
            self._head += self._buffer[:_HEAD_BYTES]
            self._buffer.clear()
        if self._state is _State.INSIDE:
            self._buffer += chunk
        elif len(self._head) < _HEAD_BYTES:
            self._head += chunk[: _HEAD_BYTES - len(self._head)]


@dataclass(frozen=True)
class PeerInfo:
    """The remote end of an MLLP connection."""

    host: str
    """IP address of the peer."""
    port: int
    """TCP port of the peer."""

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


Handler = Callable[[bytes, PeerInfo], Awaitable[bytes]]
"""Application callback: the raw message and its peer in, the raw acknowledgment out."""


@dataclass(frozen=True)
class MllpServerSettings:
    """Limits of an MLLP listener."""

    max_message_bytes: int = 4 * 1024 * 1024
    """Largest inbound message accepted; orders and ADT are far smaller."""
    idle_timeout_s: float = 300.0
    """A connection that sends nothing for this long is closed."""
    max_connections: int = 64
    """Connections served at once; further ones are closed on arrival."""

    def __post_init__(self) -> None:
        if self.max_message_bytes < 1:
            raise ValueError(f"max_message_bytes must be positive, got {self.max_message_bytes}")
        if not self.idle_timeout_s > 0:
            raise ValueError(f"idle_timeout_s must be positive, got {self.idle_timeout_s}")
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be positive, got {self.max_connections}")


@dataclass
class MllpServer:
    """An asyncio MLLP listener handing each message to ``handler`` and framing its answer."""

    handler: Handler
    """Called once per complete frame; its result is sent back framed (nothing if empty)."""
    host: str = "127.0.0.1"
    """Address to listen on."""
    port: int = 2575
    """TCP port; 0 picks a free one, read it back from :attr:`bound_port`."""
    settings: MllpServerSettings = field(default_factory=MllpServerSettings)
    """Size, idle and connection limits."""
    ssl_context: ssl.SSLContext | None = None
    """TLS for the listener, when the network between the sites requires it."""
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    """Time source of the acknowledgments the server writes itself."""
    _server: asyncio.Server | None = field(default=None, init=False, repr=False)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set, init=False, repr=False)

    async def start(self) -> None:
        """Start listening."""
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, ssl=self.ssl_context
        )
        logger.info("MLLP listening on %s:%d", self.host, self.bound_port)

    @property
    def bound_port(self) -> int:
        """The port actually listened on."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the MLLP server is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def active_connections(self) -> int:
        """Connections being served now."""
        return len(self._writers)

    async def close(self) -> None:
        """Stop listening and close the connections."""
        if self._server is not None:
            self._server.close()
            await asyncio.gather(*(_close(writer) for writer in list(self._writers)))
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> MllpServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        address = writer.get_extra_info("peername") or ("?", 0)
        peer = PeerInfo(str(address[0]), int(address[1]))
        if len(self._writers) >= self.settings.max_connections:
            logger.warning("MLLP connection from %s refused: %d open", peer, len(self._writers))
            await _close(writer)
            return
        self._writers.add(writer)
        logger.info("MLLP connection from %s", peer)
        try:
            await self._converse(reader, writer, peer)
        except (ConnectionError, ssl.SSLError) as exc:
            logger.info("MLLP connection from %s lost: %s", peer, type(exc).__name__)
        finally:
            self._writers.discard(writer)
            await _close(writer)

    async def _converse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: PeerInfo
    ) -> None:
        decoder = MllpDecoder(self.settings.max_message_bytes)
        while True:
            try:
                data = await asyncio.wait_for(
                    reader.read(_READ_BYTES), timeout=self.settings.idle_timeout_s
                )
            except TimeoutError:
                logger.info("MLLP connection from %s idle, closing", peer)
                return
            if not data:
                if decoder.in_frame:
                    logger.warning(
                        "MLLP connection from %s closed inside a frame (%d bytes dropped)",
                        peer,
                        decoder.pending_bytes,
                    )
                return
            for event in decoder.feed(data):
                reply = await self._answer(event, peer)
                if reply is None:
                    return
                if reply:
                    writer.write(frame(reply))
                    await writer.drain()

    async def _answer(self, event: MllpEvent, peer: PeerInfo) -> bytes | None:
        """The bytes to send back for an event; None closes the connection."""
        if isinstance(event, JunkSkipped):
            logger.warning("MLLP: %d bytes outside any frame from %s skipped", event.size, peer)
            return b""
        if isinstance(event, FrameAbandoned):
            logger.warning(
                "MLLP: frame without end block from %s dropped (%d bytes)", peer, event.size
            )
            return b""
        if isinstance(event, FrameTooLarge):
            return self._refuse_oversized(event, peer)
        try:
            return await self.handler(event.payload, peer)
        except Exception as exc:
            logger.error("MLLP handler failed on a message from %s: %s", peer, failure_trace(exc))
            header = peek_header(event.payload)
            if header is None:
                return b""
            error = HL7Error(
                ErrorCode.APPLICATION_INTERNAL_ERROR,
                f"the receiving application failed ({type(exc).__name__}); send again later",
            )
            return build_ack(header, now=self.clock(), errors=[error])

    def _refuse_oversized(self, event: FrameTooLarge, peer: PeerInfo) -> bytes | None:
        limit = self.settings.max_message_bytes
        logger.warning(
            "MLLP: %d-byte message from %s above the %d-byte limit", event.size, peer, limit
        )
        header = peek_header(event.head)
        if header is None:
            return None
        error = HL7Error(
            ErrorCode.APPLICATION_INTERNAL_ERROR,
            f"message of {event.size} bytes refused: the limit is {limit} bytes",
        )
        return build_ack(header, now=self.clock(), errors=[error])


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with suppress(ConnectionError, ssl.SSLError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), timeout=5)


class MllpError(Exception):
    """An outbound message whose acknowledgment could not be obtained."""


class MllpTimeout(MllpError):
    """No acknowledgment, or no connection, within the time allowed."""


class MllpConnection:
    """An outbound MLLP connection: send a message, wait for its acknowledgment."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        max_ack_bytes: int = 1024 * 1024,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = MllpDecoder(max_ack_bytes)
        self._pending: list[FrameReceived] = []

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        max_ack_bytes: int = 1024 * 1024,
    ) -> MllpConnection:
        """Connect; raises :class:`MllpTimeout` or :class:`MllpError` on failure."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=ssl_context), timeout=timeout
            )
        except TimeoutError:
            raise MllpTimeout(f"no MLLP connection to {host}:{port} within {timeout}s") from None
        except OSError as exc:
            raise MllpError(f"MLLP connection to {host}:{port} failed: {exc}") from exc
        return cls(reader, writer, max_ack_bytes=max_ack_bytes)

    async def send(self, message: bytes, *, timeout: float = 30.0) -> Message:
        """Send one message and return its acknowledgment, parsed.

        Raises :class:`MllpTimeout` when none comes in time and :class:`MllpError` when the
        connection ends first, the answer is not HL7, or its MSA-2 is not the message's
        control ID. What the acknowledgment says (AA, AE, AR) is for the caller to read.
        """
        return (await self.exchange(message, timeout=timeout))[1]

    async def exchange(self, message: bytes, *, timeout: float = 30.0) -> tuple[bytes, Message]:
        """As :meth:`send`, with the acknowledgment's bytes as they came (unframed)."""
        header = peek_header(message)
        if header is None or not header.control_id:
            raise ValueError("an outbound message must begin with an MSH holding MSH-10")
        try:
            self._writer.write(frame(message))
            await self._writer.drain()
            payload = await asyncio.wait_for(self._next_frame(), timeout=timeout)
        except TimeoutError:
            raise MllpTimeout(f"no acknowledgment within {timeout}s") from None
        except (ConnectionError, ssl.SSLError) as exc:
            raise MllpError(f"connection lost before the acknowledgment: {exc}") from exc
        try:
            ack = parse_message(payload)
        except HL7Error as exc:
            raise MllpError(f"the acknowledgment is not valid HL7: {exc}") from exc
        msa = ack.segment("MSA")
        if msa is None or msa.get(2) != header.control_id:
            raise MllpError("the answer does not acknowledge this message (MSA-2)")
        return payload, ack

    async def _next_frame(self) -> bytes:
        while not self._pending:
            data = await self._reader.read(_READ_BYTES)
            if not data:
                raise MllpError("the peer closed the connection before acknowledging")
            for event in self._decoder.feed(data):
                if isinstance(event, FrameTooLarge):
                    raise MllpError(f"acknowledgment of {event.size} bytes above the limit")
                if isinstance(event, FrameReceived):
                    self._pending.append(event)
        return self._pending.pop(0).payload

    async def close(self) -> None:
        """Close the connection."""
        await _close(self._writer)

    async def __aenter__(self) -> MllpConnection:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


async def send_message(
    host: str,
    port: int,
    message: bytes,
    *,
    timeout: float = 30.0,
    connect_timeout: float = 10.0,
    ssl_context: ssl.SSLContext | None = None,
) -> Message:
    """Open a connection, send one message, return its parsed acknowledgment, close."""
    connection = await MllpConnection.open(
        host, port, timeout=connect_timeout, ssl_context=ssl_context
    )
    async with connection:
        return await connection.send(message, timeout=timeout)
