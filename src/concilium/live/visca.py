"""VISCA over IP: message header and the camera payloads Concilium uses.

Implements the Sony "VISCA over IP" communication specification (as published in the
technical manuals of the SRG and BRC camera series): every UDP datagram (port 52381) is an
8-byte header followed by a VISCA payload of 1 to 16 bytes.

Header (big-endian):

====  ======  ============================================================
byte  size    field
====  ======  ============================================================
0     2       payload type: 0x0100 VISCA command, 0x0110 VISCA inquiry,
              0x0111 VISCA reply, 0x0120 VISCA device setting command,
              0x0200 control command, 0x0201 control reply
2     2       payload length (1..16)
4     4       sequence number, echoed by the camera in its replies
====  ======  ============================================================

VISCA payloads (classic VISCA command list, camera address 1 = ``0x81``, replies from
``0x90``; ``FF`` terminates every packet):

* Pan-tiltDrive ``8x 01 06 01 VV WW 0p 0q FF`` (VV pan speed 01-18, WW tilt speed 01-17,
  p/q direction codes), AbsolutePosition ``8x 01 06 02 VV WW 0Y 0Y 0Y 0Y 0Z 0Z 0Z 0Z FF``,
  Home ``8x 01 06 04 FF``;
* Zoom Stop/Tele/Wide ``8x 01 04 07 00|02|03|2p|3p FF``, Zoom Direct
  ``8x 01 04 47 0p 0q 0r 0s FF``;
* Memory Reset/Set/Recall ``8x 01 04 3F 00|01|02 pp FF``;
* inquiries Pan-tiltPosInq ``8x 09 06 12 FF`` and ZoomPosInq ``8x 09 04 47 FF``;
* replies ACK ``z0 4y FF``, Completion ``z0 5y FF`` (inquiries: ``z0 50 data FF``),
  errors ``z0 6y EE FF`` (02 syntax error, 03 command buffer full, 04 command cancelled,
  05 no socket, 41 command not executable).

Control payloads: ``01`` RESET of the sequence number (reply ``01``); errors ``0F 01``
(abnormality in the sequence number) and ``0F 02`` (abnormality in the message).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum, IntEnum

__all__ = [
    "HEADER_SIZE",
    "MAX_PAYLOAD",
    "VISCA_PORT",
    "Ack",
    "Command",
    "Completion",
    "ControlError",
    "ControlReset",
    "Direction",
    "ErrorCode",
    "Home",
    "Inquiry",
    "Message",
    "PanTiltAbsolute",
    "PanTiltDrive",
    "PanTiltPositionInquiry",
    "PayloadType",
    "Preset",
    "PresetAction",
    "Reply",
    "ReplyError",
    "ViscaParseError",
    "Zoom",
    "ZoomAction",
    "ZoomDirect",
    "ZoomPositionInquiry",
    "parse_command",
    "parse_reply",
]

VISCA_PORT = 52381
"""UDP port of VISCA over IP on the camera."""
HEADER_SIZE = 8
"""Size of the VISCA over IP header."""
MAX_PAYLOAD = 16
"""Largest payload a VISCA over IP message may carry."""
TERMINATOR = 0xFF

PAN_SPEED_RANGE = range(0x01, 0x19)
"""Pan speeds 01h (slowest) to 18h (fastest)."""
TILT_SPEED_RANGE = range(0x01, 0x18)
"""Tilt speeds 01h to 17h."""
POSITION_RANGE = range(-0x8000, 0x8000)
"""Pan and tilt positions are signed 16-bit values sent as four nibbles."""
ZOOM_RANGE = range(0x0000, 0x4001)
"""Zoom positions from 0000h (wide end) to 4000h (optical tele end)."""
ZOOM_SPEED_RANGE = range(0, 8)
"""Variable zoom speeds 0 (slow) to 7 (fast)."""
PRESET_RANGE = range(0, 128)
"""Preset (memory) numbers, one byte 00h-7Fh."""
ADDRESS_RANGE = range(1, 8)
"""Camera addresses; VISCA over IP cameras always answer as address 1."""

_HEADER = struct.Struct(">HHI")


class ViscaParseError(Exception):
    """Bytes that are not a valid VISCA over IP message or VISCA payload."""


class PayloadType(IntEnum):
    """Payload type field of the VISCA over IP header."""

    VISCA_COMMAND = 0x0100
    VISCA_INQUIRY = 0x0110
    VISCA_REPLY = 0x0111
    VISCA_DEVICE_SETTING = 0x0120
    CONTROL_COMMAND = 0x0200
    CONTROL_REPLY = 0x0201


def _check(name: str, value: int, allowed: range) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise ValueError(
            f"{name} must be an integer in {allowed.start:#x}..{allowed.stop - 1:#x}, got {value!r}"
        )


@dataclass(frozen=True)
class Message:
    """One VISCA over IP datagram: header fields plus the raw payload."""

    payload_type: PayloadType
    """What the payload is (command, inquiry, reply, control)."""
    sequence: int
    """Sequence number, 0..2**32-1, echoed in replies."""
    payload: bytes
    """VISCA or control payload, 1..16 bytes."""

    def __post_init__(self) -> None:
        if not isinstance(self.payload_type, PayloadType):
            raise ValueError(f"payload_type must be a PayloadType, got {self.payload_type!r}")
        _check("sequence", self.sequence, range(0, 2**32))
        if not 1 <= len(self.payload) <= MAX_PAYLOAD:
            raise ValueError(f"payload must be 1..{MAX_PAYLOAD} bytes, got {len(self.payload)}")

    def pack(self) -> bytes:
        """Serialise the header and payload."""
        return _HEADER.pack(self.payload_type, len(self.payload), self.sequence) + self.payload

    @classmethod
    def parse(cls, data: bytes) -> Message:
        """Parse one datagram; raises :class:`ViscaParseError` on any inconsistency."""
        if len(data) < HEADER_SIZE + 1:
            raise ViscaParseError(f"datagram of {len(data)} bytes is shorter than header + 1")
        raw_type, length, sequence = _HEADER.unpack_from(data)
        try:
            payload_type = PayloadType(raw_type)
        except ValueError:
            raise ViscaParseError(f"unknown payload type {raw_type:#06x}") from None
        if not 1 <= length <= MAX_PAYLOAD:
            raise ViscaParseError(f"payload length {length} is outside 1..{MAX_PAYLOAD}")
        payload = data[HEADER_SIZE:]
        if len(payload) != length:
            raise ViscaParseError(
                f"header announces {length} payload bytes but {len(payload)} follow"
            )
        return cls(payload_type, sequence, bytes(payload))


def peek_sequence(data: bytes) -> int | None:
    """Sequence number of a datagram whose header is readable, even if the rest is not."""
    if len(data) < HEADER_SIZE:
        return None
    sequence: int = _HEADER.unpack_from(data)[2]
    return sequence


class Direction(Enum):
    """Pan-tiltDrive directions with their ``0p 0q`` codes."""

    UP = (0x03, 0x01)
    DOWN = (0x03, 0x02)
    LEFT = (0x01, 0x03)
    RIGHT = (0x02, 0x03)
    UP_LEFT = (0x01, 0x01)
    UP_RIGHT = (0x02, 0x01)
    DOWN_LEFT = (0x01, 0x02)
    DOWN_RIGHT = (0x02, 0x02)
    STOP = (0x03, 0x03)

    @property
    def pan_sign(self) -> int:
        """-1 left, +1 right, 0 no pan."""
        return {0x01: -1, 0x02: 1, 0x03: 0}[self.value[0]]

    @property
    def tilt_sign(self) -> int:
        """+1 up, -1 down, 0 no tilt."""
        return {0x01: 1, 0x02: -1, 0x03: 0}[self.value[1]]


class ZoomAction(Enum):
    """Zoom commands of ``8x 01 04 07 ..``."""

    STOP = "stop"
    TELE = "tele"
    WIDE = "wide"


class PresetAction(IntEnum):
    """Memory (preset) commands of ``8x 01 04 3F ..``."""

    RESET = 0x00
    SET = 0x01
    RECALL = 0x02


def _head(address: int) -> int:
    _check("address", address, ADDRESS_RANGE)
    return 0x80 | address


def _nibbles(value: int, count: int) -> bytes:
    unsigned = value & ((1 << (4 * count)) - 1)
    return bytes((unsigned >> (4 * i)) & 0x0F for i in reversed(range(count)))


def _from_nibbles(data: bytes, *, signed: bool) -> int:
    if any(b > 0x0F for b in data):
        raise ViscaParseError(f"expected nibbles 00h-0Fh, got {data.hex(' ')}")
    value = 0
    for b in data:
        value = (value << 4) | b
    bits = 4 * len(data)
    if signed and value >= 1 << (bits - 1):
        value -= 1 << bits
    return value


@dataclass(frozen=True)
class PanTiltDrive:
    """Pan-tiltDrive: start moving in a direction, or stop."""

    direction: Direction
    """Where to move; STOP halts both axes."""
    pan_speed: int = 0x0C
    """Pan speed 01h-18h."""
    tilt_speed: int = 0x0A
    """Tilt speed 01h-17h."""

    def __post_init__(self) -> None:
        if not isinstance(self.direction, Direction):
            raise ValueError(f"direction must be a Direction, got {self.direction!r}")
        _check("pan_speed", self.pan_speed, PAN_SPEED_RANGE)
        _check("tilt_speed", self.tilt_speed, TILT_SPEED_RANGE)

    def payload(self, address: int = 1) -> bytes:
        """VISCA bytes ``8x 01 06 01 VV WW 0p 0q FF``."""
        p, q = self.direction.value
        return bytes(
            (_head(address), 0x01, 0x06, 0x01, self.pan_speed, self.tilt_speed, p, q, 0xFF)
        )


@dataclass(frozen=True)
class PanTiltAbsolute:
    """Pan-tiltDrive AbsolutePosition."""

    pan: int
    """Pan position, signed 16-bit (negative = left)."""
    tilt: int
    """Tilt position, signed 16-bit (negative = down)."""
    pan_speed: int = 0x18
    """Pan speed 01h-18h."""
    tilt_speed: int = 0x17
    """Tilt speed 01h-17h."""

    def __post_init__(self) -> None:
        _check("pan", self.pan, POSITION_RANGE)
        _check("tilt", self.tilt, POSITION_RANGE)
        _check("pan_speed", self.pan_speed, PAN_SPEED_RANGE)
        _check("tilt_speed", self.tilt_speed, TILT_SPEED_RANGE)

    def payload(self, address: int = 1) -> bytes:
        """VISCA bytes ``8x 01 06 02 VV WW 0Y 0Y 0Y 0Y 0Z 0Z 0Z 0Z FF``."""
        return (
            bytes((_head(address), 0x01, 0x06, 0x02, self.pan_speed, self.tilt_speed))
            + _nibbles(self.pan, 4)
            + _nibbles(self.tilt, 4)
            + b"\xff"
        )


@dataclass(frozen=True)
class Home:
    """Pan-tiltDrive Home: back to pan 0, tilt 0."""

    def payload(self, address: int = 1) -> bytes:
        """VISCA bytes ``8x 01 06 04 FF``."""
        return bytes((_head(address), 0x01, 0x06, 0x04, 0xFF))


@dataclass(frozen=True)
class Zoom:
    """CAM_Zoom Stop, Tele or Wide, at standard or variable speed."""

    action: ZoomAction
    """Stop, zoom in (tele) or zoom out (wide)."""
    speed: int | None = None
    """Variable speed 0-7; None for the standard speed. Not allowed with STOP."""

    def __post_init__(self) -> None:
        if not isinstance(self.action, ZoomAction):
            raise ValueError(f"action must be a ZoomAction, got {self.action!r}")
        if self.speed is not None:
            if self.action is ZoomAction.STOP:
                raise ValueError("zoom STOP takes no speed")
            _check("speed", self.speed, ZOOM_SPEED_RANGE)

    def payload(self, address: int = 1) -> bytes:
        """VISCA bytes ``8x 01 04 07 00|02|03|2p|3p FF``."""
        if self.action is ZoomAction.STOP:
            code = 0x00
        elif self.speed is None:
            code = 0x02 if self.action is ZoomAction.TELE else 0x03
        else:
            code = (0x20 if self.action is ZoomAction.TELE else 0x30) | self.speed
        return bytes((_head(address), 0x01, 0x04, 0x07, code, 0xFF))


@dataclass(frozen=True)
class ZoomDirect:
    """CAM_Zoom Direct: go to a zoom position."""

    position: int
    """Zoom position 0000h (wide) to 4000h (tele)."""

    def __post_init__(self) -> None:
        _check("position", self.position, ZOOM_RANGE)

    def payload(self, address: int = 1) -> bytes:
        """VISCA bytes ``8x 01 04 47 0p 0q 0r 0s FF``."""
        return bytes((_head(address), 0x01, 0x04, 0x47)) + _nibbles(self.position, 4) + b"\xff"


@dataclass(frozen=True)
class Preset:
    """CAM_Memory Reset, Set or Recall of a preset position."""

    action: PresetAction
    """What to do with the preset."""
    number: int
    """Preset number 0-127."""

    def __post_init__(self) -> None:
        if not isinstance(self.action, PresetAction):
            raise ValueError(f"action must be a PresetAction, got {self.action!r}")
        _check("number", self.number, PRESET_RANGE)

    def payload(self, address: int = 1) -> bytes:
        """VISCA bytes ``8x 01 04 3F 0a pp FF``."""
        return bytes((_head(address), 0x01, 0x04, 0x3F, self.action, self.number, 0xFF))


@dataclass(frozen=True)
class PanTiltPositionInquiry:
    """Pan-tiltPosInq; answered by ``y0 50 0w 0w 0w 0w 0z 0z 0z 0z FF``."""

    def payload(self, address: int = 1) -> bytes:
        """VISCA bytes ``8x 09 06 12 FF``."""
        return bytes((_head(address), 0x09, 0x06, 0x12, 0xFF))

    @staticmethod
    def decode(data: bytes) -> tuple[int, int]:
        """(pan, tilt) from the data of the completion reply."""
        if len(data) != 8:
            raise ViscaParseError(f"pan-tilt position needs 8 data bytes, got {len(data)}")
        return _from_nibbles(data[:4], signed=True), _from_nibbles(data[4:], signed=True)

    @staticmethod
    def encode(pan: int, tilt: int) -> bytes:
        """Reply data for a position."""
        return _nibbles(pan, 4) + _nibbles(tilt, 4)


@dataclass(frozen=True)
class ZoomPositionInquiry:
    """CAM_ZoomPosInq; answered by ``y0 50 0p 0q 0r 0s FF``."""

    def payload(self, address: int = 1) -> bytes:
        """VISCA bytes ``8x 09 04 47 FF``."""
        return bytes((_head(address), 0x09, 0x04, 0x47, 0xFF))

    @staticmethod
    def decode(data: bytes) -> int:
        """Zoom position from the data of the completion reply."""
        if len(data) != 4:
            raise ViscaParseError(f"zoom position needs 4 data bytes, got {len(data)}")
        return _from_nibbles(data, signed=False)

    @staticmethod
    def encode(position: int) -> bytes:
        """Reply data for a zoom position."""
        return _nibbles(position, 4)


Command = PanTiltDrive | PanTiltAbsolute | Home | Zoom | ZoomDirect | Preset
"""VISCA commands (payload type 0x0100)."""
Inquiry = PanTiltPositionInquiry | ZoomPositionInquiry
"""VISCA inquiries (payload type 0x0110)."""

_DIRECTIONS = {d.value: d for d in Direction}


def _frame(payload: bytes) -> tuple[int, bytes]:
    """Check the VISCA framing of a controller packet; return (address, body)."""
    if len(payload) < 3:
        raise ViscaParseError(f"VISCA packet of {len(payload)} bytes is too short")
    if payload[-1] != TERMINATOR or TERMINATOR in payload[:-1]:
        raise ViscaParseError("VISCA packet must end with its only FFh byte")
    head = payload[0]
    if head & 0xF8 != 0x80 or head & 0x07 == 0:
        raise ViscaParseError(f"header byte {head:#04x} is not a controller-to-camera 8xh")
    return head & 0x07, payload[1:-1]


def parse_command(payload: bytes) -> tuple[int, Command | Inquiry]:
    """Decode a controller packet into (camera address, command or inquiry).

    Raises :class:`ViscaParseError` for bytes that are not one of the supported packets, and
    for values out of range (which a camera answers with a syntax error too).
    """
    address, body = _frame(payload)
    try:
        return address, _decode_body(body)
    except ValueError as exc:
        raise ViscaParseError(str(exc)) from exc


def _decode_body(body: bytes) -> Command | Inquiry:
    match tuple(body[:3]):
        case (0x01, 0x06, 0x01) if len(body) == 7:
            direction = _DIRECTIONS.get((body[5], body[6]))
            if direction is None:
                raise ViscaParseError(f"unknown drive direction {body[5:7].hex(' ')}")
            return PanTiltDrive(direction, body[3], body[4])
        case (0x01, 0x06, 0x02) if len(body) == 13:
            pan = _from_nibbles(body[5:9], signed=True)
            tilt = _from_nibbles(body[9:13], signed=True)
            return PanTiltAbsolute(pan, tilt, body[3], body[4])
        case (0x01, 0x06, 0x04) if len(body) == 3:
            return Home()
        case (0x01, 0x04, 0x07) if len(body) == 4:
            code = body[3]
            if code == 0x00:
                return Zoom(ZoomAction.STOP)
            if code in (0x02, 0x03):
                return Zoom(ZoomAction.TELE if code == 0x02 else ZoomAction.WIDE)
            if code & 0xF0 in (0x20, 0x30) and code & 0x0F <= 7:
                action = ZoomAction.TELE if code & 0xF0 == 0x20 else ZoomAction.WIDE
                return Zoom(action, code & 0x0F)
            raise ViscaParseError(f"unknown zoom code {code:#04x}")
        case (0x01, 0x04, 0x47) if len(body) == 7:
            return ZoomDirect(_from_nibbles(body[3:7], signed=False))
        case (0x01, 0x04, 0x3F) if len(body) == 5:
            try:
                memory = PresetAction(body[3])
            except ValueError:
                raise ViscaParseError(f"unknown memory action {body[3]:#04x}") from None
            return Preset(memory, body[4])
        case (0x09, 0x06, 0x12) if len(body) == 3:
            return PanTiltPositionInquiry()
        case (0x09, 0x04, 0x47) if len(body) == 3:
            return ZoomPositionInquiry()
    raise ViscaParseError(f"unsupported VISCA packet body {body.hex(' ')}")


class ErrorCode(IntEnum):
    """Error codes of the ``z0 6y EE FF`` reply."""

    SYNTAX_ERROR = 0x02
    COMMAND_BUFFER_FULL = 0x03
    COMMAND_CANCELLED = 0x04
    NO_SOCKET = 0x05
    NOT_EXECUTABLE = 0x41


def _reply_head(address: int) -> int:
    _check("address", address, ADDRESS_RANGE)
    return 0x80 | (address << 4)


def _check_socket(socket: int) -> None:
    _check("socket", socket, range(0, 3))


@dataclass(frozen=True)
class Ack:
    """ACK ``z0 4y FF``: the command was accepted into socket y."""

    socket: int = 1
    """Command buffer (socket) number 1 or 2."""

    def __post_init__(self) -> None:
        _check_socket(self.socket)

    def payload(self, address: int = 1) -> bytes:
        """VISCA reply bytes."""
        return bytes((_reply_head(address), 0x40 | self.socket, 0xFF))


@dataclass(frozen=True)
class Completion:
    """Completion ``z0 5y FF``; for inquiries ``z0 50 data FF``."""

    socket: int = 1
    """Socket the command ran in (0 for inquiries)."""
    data: bytes = b""
    """Inquiry answer, empty for commands."""

    def __post_init__(self) -> None:
        _check_socket(self.socket)
        if len(self.data) > MAX_PAYLOAD - 3 or TERMINATOR in self.data:
            raise ValueError("completion data must be at most 13 bytes without FFh")

    def payload(self, address: int = 1) -> bytes:
        """VISCA reply bytes."""
        return bytes((_reply_head(address), 0x50 | self.socket)) + self.data + b"\xff"


@dataclass(frozen=True)
class ReplyError:
    """Error reply ``z0 6y EE FF``."""

    code: ErrorCode
    """What went wrong."""
    socket: int = 0
    """Socket concerned (0 when none, e.g. syntax error)."""

    def __post_init__(self) -> None:
        if not isinstance(self.code, ErrorCode):
            raise ValueError(f"code must be an ErrorCode, got {self.code!r}")
        _check_socket(self.socket)

    def payload(self, address: int = 1) -> bytes:
        """VISCA reply bytes."""
        return bytes((_reply_head(address), 0x60 | self.socket, self.code, 0xFF))


Reply = Ack | Completion | ReplyError
"""Camera replies (payload type 0x0111)."""


def parse_reply(payload: bytes) -> tuple[int, Reply]:
    """Decode a camera reply into (camera address, reply)."""
    if (
        not 3 <= len(payload) <= MAX_PAYLOAD
        or payload[-1] != TERMINATOR
        or TERMINATOR in payload[:-1]
    ):
        raise ViscaParseError(f"malformed VISCA reply {payload.hex(' ')}")
    head, kind = payload[0], payload[1]
    if head & 0x8F != 0x80 or not 1 <= (head >> 4) & 0x07 <= 7:
        raise ViscaParseError(f"reply header {head:#04x} is not a camera-to-controller z0h")
    address = (head >> 4) & 0x07
    socket = kind & 0x0F
    if socket > 2:
        raise ViscaParseError(f"socket {socket} is out of range")
    data = payload[2:-1]
    if kind & 0xF0 == 0x40 and not data:
        return address, Ack(socket)
    if kind & 0xF0 == 0x50:
        return address, Completion(socket, bytes(data))
    if kind & 0xF0 == 0x60 and len(data) == 1:
        try:
            return address, ReplyError(ErrorCode(data[0]), socket)
        except ValueError:
            raise ViscaParseError(f"unknown error code {data[0]:#04x}") from None
    raise ViscaParseError(f"unknown reply {payload.hex(' ')}")


@dataclass(frozen=True)
class ControlReset:
    """Control command RESET (``01``): both sides restart sequence numbers at 0."""

    def payload(self) -> bytes:
        """Control payload bytes."""
        return b"\x01"


@dataclass(frozen=True)
class ControlError:
    """Control reply error ``0F 01`` (sequence number) or ``0F 02`` (message)."""

    code: int
    """1 = abnormality in the sequence number, 2 = abnormality in the message."""

    def __post_init__(self) -> None:
        _check("code", self.code, range(1, 3))

    def payload(self) -> bytes:
        """Control payload bytes."""
        return bytes((0x0F, self.code))
