"""OpenIGTLink wire format: header v1/v2, CRC-64, and the TRANSFORM, POSITION, STATUS and
STRING messages (OpenIGTLink protocol v2 "Header" and message specs, v3 "Extended header and
metadata").

Everything here is a small pure function of bytes, except :func:`read_message`, which frames
messages off an asyncio TCP stream.
"""

from __future__ import annotations

import asyncio
import math
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar

HEADER_SIZE = 58
"""Size of the fixed OpenIGTLink header (v2 "Header")."""

EXTENDED_HEADER_SIZE = 12
"""Size of the v3 extended header that opens the body when the header version is 2."""

DEFAULT_MAX_BODY_SIZE = 1 << 20
"""Largest body accepted from a peer; a larger announced size means the stream is not sane."""

_HEADER = struct.Struct(">H12s20sIIQQ")
_EXTENDED_HEADER = struct.Struct(">HHII")
_METADATA_ENTRY = struct.Struct(">HHI")
_TRANSFORM = struct.Struct(">12f")
_STATUS_HEAD = struct.Struct(">Hq20s")
_STRING_HEAD = struct.Struct(">HH")

CRC64_POLYNOMIAL = 0x42F0E1EBA9EA3693
"""ECMA-182 polynomial, as used by OpenIGTLink (non-reflected, zero init, no final xor)."""

IANA_US_ASCII = 3
"""MIBenum of US-ASCII, the default STRING encoding."""

IANA_UTF_8 = 106
"""MIBenum of UTF-8."""


def _make_crc64_table() -> tuple[int, ...]:
    table = []
    mask = (1 << 64) - 1
    for byte in range(256):
        crc = byte << 56
        for _ in range(8):
            crc = ((crc << 1) ^ CRC64_POLYNOMIAL) if crc & (1 << 63) else (crc << 1)
            crc &= mask
        table.append(crc)
    return tuple(table)


_CRC64_TABLE = _make_crc64_table()


def crc64(data: bytes, crc: int = 0) -> int:
    """CRC-64/ECMA-182 of ``data`` as carried in the header's CRC field."""
    table = _CRC64_TABLE
    mask = 0xFFFFFFFFFFFFFFFF
    for byte in data:
        crc = table[((crc >> 56) ^ byte) & 0xFF] ^ ((crc << 8) & mask)
    return crc


class StatusCode(IntEnum):
    """STATUS message codes (OpenIGTLink v2 "STATUS", field C)."""

    INVALID = 0
    OK = 1
    UNKNOWN_ERROR = 2
    PANIC = 3
    NOT_FOUND = 4
    ACCESS_DENIED = 5
    BUSY = 6
    TIME_OUT = 7
    OVERFLOW = 8
    CHECKSUM_ERROR = 9
    CONFIGURATION_ERROR = 10
    RESOURCE_ERROR = 11
    UNKNOWN_INSTRUCTION = 12
    NOT_READY = 13
    MANUAL_MODE = 14
    DISABLED = 15
    NOT_PRESENT = 16
    UNKNOWN_VERSION = 17
    HARDWARE_FAILURE = 18
    SHUTDOWN = 19


# --- errors -------------------------------------------------------------------------------


class OpenIGTLinkError(ValueError):
    """A byte sequence that is not a valid OpenIGTLink message."""

    status_code: StatusCode = StatusCode.INVALID

    def __init__(self, message: str, header: Header | None = None) -> None:
        super().__init__(message)
        self.header = header
        """The parsed header, when it could be read (to answer the right device)."""


class HeaderError(OpenIGTLinkError):
    """The 58-byte header itself is unreadable (version, names, or announced size)."""


class CrcMismatchError(OpenIGTLinkError):
    """The body does not match the header's CRC-64."""

    status_code = StatusCode.CHECKSUM_ERROR


class SizeError(OpenIGTLinkError):
    """A size field or a body length disagrees with the message type's layout."""


class UnknownTypeError(OpenIGTLinkError):
    """The type name is not one this implementation handles."""

    status_code = StatusCode.UNKNOWN_INSTRUCTION


class FramingError(OpenIGTLinkError):
    """The stream cannot be resynchronised (the announced body size cannot be trusted)."""


# --- contents -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Transform:
    """TRANSFORM body: a rigid transform as a 3x3 rotation and a translation (v2 "TRANSFORM")."""

    rotation: tuple[float, float, float, float, float, float, float, float, float] = (
        1.0,
        0.0,
        0.0,
        0.0,
        1.0,
        0.0,
        0.0,
        0.0,
        1.0,
    )
    """Rotation matrix, row-major (R11, R12, R13, R21, ...)."""
    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Translation in millimetres (TX, TY, TZ)."""

    type_name: ClassVar[str] = "TRANSFORM"

    @classmethod
    def from_matrix(cls, matrix: object) -> Transform:
        """Build from a 4x4 homogeneous matrix (any nested sequence or numpy array)."""
        rows = [[float(v) for v in row] for row in matrix]  # type: ignore[attr-defined]
        if len(rows) < 3 or any(len(r) != 4 for r in rows[:3]):
            raise ValueError("transform matrix must be 4x4 (or 3x4)")
        r = rows
        rotation = (r[0][0], r[0][1], r[0][2], r[1][0], r[1][1], r[1][2], r[2][0], r[2][1], r[2][2])
        return cls(rotation=rotation, translation=(r[0][3], r[1][3], r[2][3]))

    def as_matrix(self) -> list[list[float]]:
        """The 4x4 homogeneous matrix."""
        r, t = self.rotation, self.translation
        return [
            [r[0], r[1], r[2], t[0]],
            [r[3], r[4], r[5], t[1]],
            [r[6], r[7], r[8], t[2]],
            [0.0, 0.0, 0.0, 1.0],
        ]


@dataclass(frozen=True)
class Position:
    """POSITION body: a position and an orientation quaternion (v2 "POSITION")."""

    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Position in millimetres (X, Y, Z)."""
    quaternion: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    """Orientation quaternion (OX, OY, OZ, W)."""

    type_name: ClassVar[str] = "POSITION"


@dataclass(frozen=True)
class Status:
    """STATUS body: a status code, a subcode, an error name and a message (v2 "STATUS")."""

    code: int = StatusCode.OK
    """Status code (see :class:`StatusCode`)."""
    subcode: int = 0
    """Device-specific subcode (signed 64-bit)."""
    error_name: str = ""
    """Short error name, at most 20 ASCII characters."""
    message: str = ""
    """Human-readable status message."""

    type_name: ClassVar[str] = "STATUS"


@dataclass(frozen=True)
class String:
    """STRING body: a text with its IANA character set (v2 "STRING")."""

    text: str = ""
    """The text."""
    encoding: int = IANA_US_ASCII
    """IANA MIBenum of the character set (3: US-ASCII, 106: UTF-8)."""

    type_name: ClassVar[str] = "STRING"


Content = Transform | Position | Status | String


@dataclass(frozen=True)
class Header:
    """The fixed 58-byte header (v2 "Header")."""

    version: int
    """Header version: 1 (protocol v1/v2) or 2 (protocol v3, with extended header)."""
    type_name: str
    """Message type name, at most 12 ASCII characters."""
    device_name: str
    """Device name, at most 20 ASCII characters."""
    timestamp: float
    """Seconds since the Unix epoch (0 when the sender gave none)."""
    body_size: int
    """Size of the body that follows, in bytes."""
    crc: int
    """CRC-64 of the body."""


@dataclass(frozen=True)
class Message:
    """A complete OpenIGTLink message."""

    device_name: str
    """Device name, at most 20 ASCII characters."""
    content: Content
    """The typed body content."""
    timestamp: float = 0.0
    """Seconds since the Unix epoch (0 for none)."""
    header_version: int = 1
    """1 for protocol v2 framing, 2 for protocol v3 framing with extended header and metadata."""
    message_id: int = 0
    """Message ID from the v3 extended header."""
    metadata: dict[str, str] = field(default_factory=dict)
    """v3 metadata key/value pairs (header version 2 only)."""

    @property
    def type_name(self) -> str:
        """The OpenIGTLink type name of the content."""
        return self.content.type_name


# --- content codecs -----------------------------------------------------------------------


def _finite(values: tuple[float, ...], what: str) -> None:
    if not all(math.isfinite(v) for v in values):
        raise SizeError(f"{what} contains a non-finite number")


def pack_content(content: Content) -> bytes:
    """Serialise a body content (without extended header or metadata)."""
    if isinstance(content, Transform):
        r, t = content.rotation, content.translation
        # The wire order is column-major: R11 R21 R31 R12 R22 R32 R13 R23 R33 TX TY TZ.
        return _TRANSFORM.pack(r[0], r[3], r[6], r[1], r[4], r[7], r[2], r[5], r[8], *t)
    if isinstance(content, Position):
        return struct.pack(">7f", *content.position, *content.quaternion)
    if isinstance(content, Status):
        name = content.error_name.encode("ascii")
        if len(name) > 20:
            raise ValueError("STATUS error name is longer than 20 bytes")
        return (
            _STATUS_HEAD.pack(content.code, content.subcode, name)
            + content.message.encode("utf-8")
            + b"\0"
        )
    encoded = content.text.encode("utf-8" if content.encoding == IANA_UTF_8 else "ascii")
    if len(encoded) > 0xFFFF:
        raise ValueError("STRING text is longer than 65535 bytes")
    return _STRING_HEAD.pack(content.encoding, len(encoded)) + encoded


def unpack_content(type_name: str, data: bytes, header: Header | None = None) -> Content:
    """Parse a body content of the given type; raises :class:`SizeError` on a bad layout."""
    size = len(data)
    if type_name == "TRANSFORM":
        if size != _TRANSFORM.size:
            raise SizeError(f"TRANSFORM body is {size} bytes, expected 48", header)
        v = _TRANSFORM.unpack(data)
        _finite(v, "TRANSFORM")
        return Transform(
            rotation=(v[0], v[3], v[6], v[1], v[4], v[7], v[2], v[5], v[8]),
            translation=(v[9], v[10], v[11]),
        )
    if type_name == "POSITION":
        # v2 "POSITION" allows position only, 3 quaternion elements, or the full quaternion.
        if size == 12:
            x, y, z = struct.unpack(">3f", data)
            _finite((x, y, z), "POSITION")
            return Position(position=(x, y, z))
        if size == 24:
            x, y, z, ox, oy, oz = struct.unpack(">6f", data)
            _finite((x, y, z, ox, oy, oz), "POSITION")
            w = math.sqrt(max(0.0, 1.0 - ox * ox - oy * oy - oz * oz))
            return Position(position=(x, y, z), quaternion=(ox, oy, oz, w))
        if size == 28:
            v7 = struct.unpack(">7f", data)
            _finite(v7, "POSITION")
            return Position(position=(v7[0], v7[1], v7[2]), quaternion=(v7[3], v7[4], v7[5], v7[6]))
        raise SizeError(f"POSITION body is {size} bytes, expected 12, 24 or 28", header)
    if type_name == "STATUS":
        if size < _STATUS_HEAD.size:
            raise SizeError(f"STATUS body is {size} bytes, expected at least 30", header)
        code, subcode, raw_name = _STATUS_HEAD.unpack_from(data)
        raw_text = data[_STATUS_HEAD.size :].split(b"\0", 1)[0]
        return Status(
            code=code,
            subcode=subcode,
            error_name=raw_name.split(b"\0", 1)[0].decode("ascii", "replace"),
            message=raw_text.decode("utf-8", "replace"),
        )
    if type_name == "STRING":
        if size < _STRING_HEAD.size:
            raise SizeError(f"STRING body is {size} bytes, expected at least 4", header)
        encoding, length = _STRING_HEAD.unpack_from(data)
        if _STRING_HEAD.size + length != size:
            raise SizeError(
                f"STRING announces {length} bytes of text but carries {size - 4}", header
            )
        raw = data[_STRING_HEAD.size :]
        codec = "utf-8" if encoding == IANA_UTF_8 else "ascii"
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError as exc:
            raise SizeError(f"STRING text is not valid {codec}", header) from exc
        return String(text=text, encoding=encoding)
    raise UnknownTypeError(f"unknown message type {type_name!r}", header)


# --- header and whole messages ------------------------------------------------------------


def _timestamp_fields(timestamp: float) -> tuple[int, int]:
    if timestamp <= 0:
        return 0, 0
    ns = round(timestamp * 1e9)
    seconds, nanos = divmod(ns, 1_000_000_000)
    # The fraction is a 32-bit binary fraction of a second (v2 "Timestamp"). Rounded up, so
    # that reading it back (rounded down to the nanosecond) gives the same nanoseconds: a
    # message relayed keeps its timestamp instead of losing a nanosecond at each hop.
    return seconds & 0xFFFFFFFF, -(-(nanos << 32) // 1_000_000_000)


def _fixed_ascii(value: str, size: int, what: str) -> bytes:
    encoded = value.encode("ascii")
    if len(encoded) > size:
        raise ValueError(f"{what} {value!r} is longer than {size} bytes")
    return encoded


def _decode_name(raw: bytes, what: str) -> str:
    try:
        return raw.split(b"\0", 1)[0].decode("ascii")
    except UnicodeDecodeError as exc:
        raise HeaderError(f"{what} is not ASCII") from exc


def pack_header(header: Header) -> bytes:
    """Serialise the fixed header."""
    seconds, fraction = _timestamp_fields(header.timestamp)
    return _HEADER.pack(
        header.version,
        _fixed_ascii(header.type_name, 12, "type name"),
        _fixed_ascii(header.device_name, 20, "device name"),
        seconds,
        fraction,
        header.body_size,
        header.crc,
    )


def unpack_header(data: bytes, max_body_size: int = DEFAULT_MAX_BODY_SIZE) -> Header:
    """Parse the fixed header; raises :class:`HeaderError` or :class:`FramingError`."""
    if len(data) != HEADER_SIZE:
        raise HeaderError(f"header is {len(data)} bytes, expected {HEADER_SIZE}")
    version, raw_type, raw_device, seconds, fraction, body_size, crc = _HEADER.unpack(data)
    if body_size > max_body_size:
        raise FramingError(f"announced body size {body_size} exceeds {max_body_size}")
    header = Header(
        version=version,
        type_name=_decode_name(raw_type, "type name"),
        device_name=_decode_name(raw_device, "device name"),
        timestamp=seconds + ((fraction * 1_000_000_000) >> 32) / 1e9,
        body_size=body_size,
        crc=crc,
    )
    if version not in (1, 2):
        raise HeaderError(f"unsupported header version {version}", header)
    return header


def pack(message: Message) -> bytes:
    """Serialise a whole message: header, extended header and metadata when version 2."""
    content = pack_content(message.content)
    if message.header_version == 1:
        body = content
    elif message.header_version == 2:
        index = struct.pack(">H", len(message.metadata))
        values = b""
        for key, value in message.metadata.items():
            k = key.encode("utf-8")
            v = value.encode("utf-8")
            index += _METADATA_ENTRY.pack(len(k), IANA_UTF_8, len(v))
            values += k + v
        body = (
            _EXTENDED_HEADER.pack(EXTENDED_HEADER_SIZE, len(index), len(values), message.message_id)
            + content
            + index
            + values
        )
    else:
        raise ValueError(f"unsupported header version {message.header_version}")
    header = Header(
        version=message.header_version,
        type_name=message.type_name,
        device_name=message.device_name,
        timestamp=message.timestamp,
        body_size=len(body),
        crc=crc64(body),
    )
    return pack_header(header) + body


def _unpack_metadata(data: bytes, index_size: int, header: Header) -> dict[str, str]:
    if index_size < 2:
        raise SizeError("metadata header is shorter than its count field", header)
    (count,) = struct.unpack_from(">H", data)
    if 2 + count * _METADATA_ENTRY.size != index_size:
        raise SizeError(f"metadata header announces {count} entries in {index_size} bytes", header)
    offset = index_size
    metadata: dict[str, str] = {}
    for i in range(count):
        key_size, encoding, value_size = _METADATA_ENTRY.unpack_from(data, 2 + i * 8)
        end = offset + key_size + value_size
        if end > len(data):
            raise SizeError("metadata entry runs past the body", header)
        key = data[offset : offset + key_size].decode("utf-8", "replace")
        codec = "ascii" if encoding == IANA_US_ASCII else "utf-8"
        metadata[key] = data[offset + key_size : end].decode(codec, "replace")
        offset = end
    if offset != len(data):
        raise SizeError("metadata body size disagrees with its entries", header)
    return metadata


def unpack_body(header: Header, body: bytes) -> Message:
    """Check the CRC, type and sizes of a body and build the message."""
    if len(body) != header.body_size:
        raise SizeError(f"body is {len(body)} bytes, header announces {header.body_size}", header)
    if crc64(body) != header.crc:
        raise CrcMismatchError("body CRC-64 does not match the header", header)
    message_id = 0
    metadata: dict[str, str] = {}
    content_bytes = body
    if header.version == 2:
        if len(body) < EXTENDED_HEADER_SIZE:
            raise SizeError("body is shorter than the extended header", header)
        ext_size, index_size, values_size, message_id = _EXTENDED_HEADER.unpack_from(body)
        if ext_size < EXTENDED_HEADER_SIZE or ext_size + index_size + values_size > len(body):
            raise SizeError("extended header sizes exceed the body", header)
        content_end = len(body) - index_size - values_size
        content_bytes = body[ext_size:content_end]
        if index_size:
            metadata = _unpack_metadata(body[content_end:], index_size, header)
    content = unpack_content(header.type_name, content_bytes, header)
    return Message(
        device_name=header.device_name,
        content=content,
        timestamp=header.timestamp,
        header_version=header.version,
        message_id=message_id,
        metadata=metadata,
    )


def unpack(data: bytes, max_body_size: int = DEFAULT_MAX_BODY_SIZE) -> Message:
    """Parse one complete message from exactly its bytes."""
    header = unpack_header(data[:HEADER_SIZE], max_body_size)
    return unpack_body(header, data[HEADER_SIZE:])


async def read_message(
    reader: asyncio.StreamReader, max_body_size: int = DEFAULT_MAX_BODY_SIZE
) -> Message:
    """Read one message off a TCP stream.

    Raises :class:`asyncio.IncompleteReadError` at end of stream, :class:`FramingError` or
    :class:`HeaderError` when the stream can no longer be trusted (close it), and any other
    :class:`OpenIGTLinkError` for a bad message whose bytes were consumed whole, so the
    stream stays aligned and the caller can answer with a STATUS and go on.
    """
    raw_header = await reader.readexactly(HEADER_SIZE)
    header = unpack_header(raw_header, max_body_size)
    body = await reader.readexactly(header.body_size)
    return unpack_body(header, body)


def status_message(
    device_name: str, code: StatusCode, error_name: str, text: str, timestamp: float = 0.0
) -> Message:
    """Build a STATUS message (error names are cut to the 20 bytes the field holds)."""
    return Message(
        device_name=device_name[:20],
        content=Status(code=code, error_name=error_name[:20], message=text),
        timestamp=timestamp,
    )
