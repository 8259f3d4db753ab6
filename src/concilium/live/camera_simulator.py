"""A PTZ camera speaking VISCA over IP, for tests, demos and training rooms.

Behaves as the Sony VISCA over IP specification describes a camera (see
:mod:`concilium.live.visca`): each command datagram gets an ACK then a Completion carrying the
same sequence number, inquiries get a Completion with data, a malformed VISCA packet gets the
syntax error ``90 60 02 FF``, an unknown payload type gets the control error ``0F 02``, and a
command the camera cannot carry out (recall of an empty preset, a position beyond the
mechanical limits) gets ``90 61 41 FF``. A retransmitted datagram (same sequence number and
bytes as the previous one) is answered again without being executed twice.

Movements are simulated in time: a drive moves the head at a speed proportional to its VISCA
speed until STOP, clamped at the limits. Several simulators run side by side on different
ports; none of them ever lets an exception escape the datagram handler.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from concilium.live.visca import (
    HEADER_SIZE,
    Ack,
    Command,
    Completion,
    ControlError,
    Direction,
    ErrorCode,
    Home,
    Inquiry,
    Message,
    PanTiltAbsolute,
    PanTiltDrive,
    PanTiltPositionInquiry,
    PayloadType,
    Preset,
    PresetAction,
    ReplyError,
    ViscaParseError,
    Zoom,
    ZoomAction,
    ZoomDirect,
    ZoomPositionInquiry,
    parse_command,
    peek_sequence,
)

__all__ = ["CameraSimulator", "CameraState", "SimulatedCamera"]

log = logging.getLogger(__name__)

PAN_LIMITS = (-2448, 2448)
"""Mechanical pan range of the simulated head (about +/-170 degrees)."""
TILT_LIMITS = (-432, 1296)
"""Mechanical tilt range of the simulated head (about -30 to +90 degrees)."""
ZOOM_LIMITS = (0x0000, 0x4000)
"""Optical zoom range."""
UNITS_PER_SPEED_STEP = 40.0
"""Position units per second for each step of VISCA pan/tilt speed."""
ZOOM_UNITS_PER_SPEED_STEP = 800.0
"""Zoom units per second for each step of variable zoom speed (standard speed = 3)."""


def _clamp(value: float, limits: tuple[int, int]) -> float:
    return min(max(value, limits[0]), limits[1])


@dataclass
class CameraState:
    """Position and memory of the simulated camera."""

    pan: float = 0.0
    """Current pan position."""
    tilt: float = 0.0
    """Current tilt position."""
    zoom: float = 0.0
    """Current zoom position."""
    presets: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    """Stored presets: number -> (pan, tilt, zoom)."""
    drive: Direction = Direction.STOP
    """Current pan-tilt drive."""
    pan_speed: int = 1
    """Speed of the current drive."""
    tilt_speed: int = 1
    """Speed of the current drive."""
    zoom_velocity: float = 0.0
    """Current zoom velocity in units per second (positive = tele)."""
    updated_at: float = 0.0
    """Clock time the positions were last integrated."""

    def settle(self, now: float) -> None:
        """Advance the positions of the ongoing movements up to ``now``."""
        elapsed = max(0.0, now - self.updated_at)
        self.updated_at = now
        self.pan = _clamp(
            self.pan + self.drive.pan_sign * self.pan_speed * UNITS_PER_SPEED_STEP * elapsed,
            PAN_LIMITS,
        )
        self.tilt = _clamp(
            self.tilt + self.drive.tilt_sign * self.tilt_speed * UNITS_PER_SPEED_STEP * elapsed,
            TILT_LIMITS,
        )
        self.zoom = _clamp(self.zoom + self.zoom_velocity * elapsed, ZOOM_LIMITS)

    def position(self) -> tuple[int, int, int]:
        """(pan, tilt, zoom) rounded to the units VISCA reports."""
        return round(self.pan), round(self.tilt), round(self.zoom)


class CameraSimulator:
    """The protocol logic of the simulated camera, independent of the socket.

    :meth:`handle` maps one received datagram to the datagrams to send back.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.state = CameraState(updated_at=clock())
        self.received: list[bytes] = []
        """Every datagram received, in order (for inspection in tests)."""
        self.executed: list[Command] = []
        """Every command carried out, in order."""
        self._last: tuple[bytes, list[bytes]] | None = None

    def handle(self, data: bytes) -> list[bytes]:
        """Datagrams answering ``data``; never raises."""
        self.received.append(bytes(data))
        if self._last is not None and self._last[0] == data:
            return list(self._last[1])
        try:
            replies = self._handle(data)
        except Exception:
            # A bug in the simulator must not take the camera off the network.
            log.exception("camera simulator failed on %s", data.hex(" "))
            replies = [self._reply(peek_sequence(data) or 0, ReplyError(ErrorCode.SYNTAX_ERROR))]
        self._last = (bytes(data), replies)
        return replies

    @staticmethod
    def _reply(sequence: int, reply: Ack | Completion | ReplyError) -> bytes:
        return Message(PayloadType.VISCA_REPLY, sequence, reply.payload()).pack()

    def _handle(self, data: bytes) -> list[bytes]:
        try:
            message = Message.parse(data)
        except ViscaParseError:
            sequence = peek_sequence(data) or 0
            known = {int(t) for t in PayloadType}
            if len(data) >= HEADER_SIZE and int.from_bytes(data[:2], "big") not in known:
                # The spec answers an unknown message type on the control channel.
                error = ControlError(2).payload()
                return [Message(PayloadType.CONTROL_REPLY, sequence, error).pack()]
            return [self._reply(sequence, ReplyError(ErrorCode.SYNTAX_ERROR))]
        sequence = message.sequence
        if message.payload_type is PayloadType.CONTROL_COMMAND:
            if message.payload == b"\x01":
                return [Message(PayloadType.CONTROL_REPLY, sequence, b"\x01").pack()]
            return [Message(PayloadType.CONTROL_REPLY, sequence, ControlError(2).payload()).pack()]
        if message.payload_type not in (PayloadType.VISCA_COMMAND, PayloadType.VISCA_INQUIRY):
            return [self._reply(sequence, ReplyError(ErrorCode.SYNTAX_ERROR))]
        try:
            _, packet = parse_command(message.payload)
        except ViscaParseError:
            return [self._reply(sequence, ReplyError(ErrorCode.SYNTAX_ERROR))]
        is_inquiry = isinstance(packet, PanTiltPositionInquiry | ZoomPositionInquiry)
        if is_inquiry != (message.payload_type is PayloadType.VISCA_INQUIRY):
            return [self._reply(sequence, ReplyError(ErrorCode.SYNTAX_ERROR))]
        self.state.settle(self.clock())
        if isinstance(packet, PanTiltPositionInquiry | ZoomPositionInquiry):
            return [self._reply(sequence, Completion(0, self._answer(packet)))]
        if not self._execute(packet):
            return [self._reply(sequence, ReplyError(ErrorCode.NOT_EXECUTABLE, 1))]
        self.executed.append(packet)
        return [self._reply(sequence, Ack(1)), self._reply(sequence, Completion(1))]

    def _answer(self, inquiry: Inquiry) -> bytes:
        pan, tilt, zoom = self.state.position()
        if isinstance(inquiry, PanTiltPositionInquiry):
            return PanTiltPositionInquiry.encode(pan, tilt)
        return ZoomPositionInquiry.encode(zoom)

    def _execute(self, command: Command) -> bool:
        """Apply a command to the state; False if the camera cannot carry it out."""
        state = self.state
        if isinstance(command, PanTiltDrive):
            state.drive = command.direction
            state.pan_speed = command.pan_speed
            state.tilt_speed = command.tilt_speed
        elif isinstance(command, PanTiltAbsolute):
            if not (
                PAN_LIMITS[0] <= command.pan <= PAN_LIMITS[1]
                and TILT_LIMITS[0] <= command.tilt <= TILT_LIMITS[1]
            ):
                return False
            state.drive = Direction.STOP
            state.pan, state.tilt = float(command.pan), float(command.tilt)
        elif isinstance(command, Home):
            state.drive = Direction.STOP
            state.pan = state.tilt = 0.0
        elif isinstance(command, Zoom):
            if command.action is ZoomAction.STOP:
                state.zoom_velocity = 0.0
            else:
                speed = 3 if command.speed is None else command.speed
                sign = 1 if command.action is ZoomAction.TELE else -1
                state.zoom_velocity = sign * (speed + 1) * ZOOM_UNITS_PER_SPEED_STEP
        elif isinstance(command, ZoomDirect):
            state.zoom_velocity = 0.0
            state.zoom = float(command.position)
        elif isinstance(command, Preset):
            return self._preset(command)
        return True

    def _preset(self, command: Preset) -> bool:
        state = self.state
        if command.action is PresetAction.SET:
            state.presets[command.number] = state.position()
        elif command.action is PresetAction.RESET:
            state.presets.pop(command.number, None)
        else:
            stored = state.presets.get(command.number)
            if stored is None:
                return False
            state.drive = Direction.STOP
            state.zoom_velocity = 0.0
            state.pan, state.tilt, state.zoom = (float(v) for v in stored)
        return True


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, camera: SimulatedCamera) -> None:
        self.camera = camera
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self.camera.lose_next > 0:
            self.camera.lose_next -= 1
            return
        for reply in self.camera.logic.handle(data):
            if self.transport is not None:
                self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("camera simulator socket error: %s", exc)


class SimulatedCamera:
    """A :class:`CameraSimulator` listening on a UDP port (loopback by default)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {port}")
        self.host = host
        self.requested_port = port
        self.logic = CameraSimulator(clock=clock)
        self.lose_next = 0
        """Datagrams to drop silently, as if lost on the network (fault injection)."""
        self._transport: asyncio.DatagramTransport | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """Port bound by :meth:`start` (kept after :meth:`close`)."""
        if self._port is None:
            raise RuntimeError("camera simulator is not started")
        return self._port

    @property
    def state(self) -> CameraState:
        """Current state of the simulated head."""
        return self.logic.state

    async def start(self) -> None:
        """Bind the UDP socket and start answering."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self.host, self.requested_port)
        )
        self._transport = transport
        self._port = transport.get_extra_info("sockname")[1]

    def close(self) -> None:
        """Stop answering and release the port."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def __aenter__(self) -> SimulatedCamera:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


async def _serve(ports: list[int]) -> None:
    cameras = [SimulatedCamera(port=p) for p in ports]
    for camera in cameras:
        await camera.start()
        log.info("simulated VISCA camera on 127.0.0.1:%d", camera.port)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    """Run simulated cameras: ``python -m concilium.live.camera_simulator 52381 52382``."""
    args = sys.argv[1:] if argv is None else argv
    try:
        ports = [int(a) for a in args] or [52381]
    except ValueError:
        raise SystemExit("usage: python -m concilium.live.camera_simulator [PORT ...]") from None
    logging.basicConfig(level=logging.INFO)
    asyncio.run(_serve(ports))


if __name__ == "__main__":
    main()
