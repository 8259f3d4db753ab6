"""Parsing and validating HL7 v2 messages (HL7 v2.5.1 chapter 2: §2.5 message construction,
§2.15.9 MSH message header).

:func:`parse_message` is the one entry point for inbound bytes. The segment splitting is
python-hl7's; on top of it this module checks what the receiving application must check
before it processes a message (§2.9.2): the delimiters (MSH-1, MSH-2), the message type
(MSH-9), the control ID (MSH-10), the processing ID (MSH-11, table 0103), the version
(MSH-12: 2.3, 2.3.1, 2.4, 2.5 or 2.5.1) and the character set (MSH-18, table 0211). Whatever
is wrong raises :class:`~concilium.reading.hl7v2_errors.HL7Error` with its table 0357 code
and location, ready for an ACK, and nothing else ever escapes :func:`parse_message`.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import hl7  # type: ignore[import-untyped]

from concilium.reading.hl7v2_charsets import (
    CODECS,
    LATIN_1,
    UTF_8,
    declared_charset,
    decode_message,
    normalise,
)
from concilium.reading.hl7v2_datatypes import HierarchicDesignator, parse_datetime
from concilium.reading.hl7v2_encoding import (
    DEFAULT_ENCODING,
    Component,
    EncodingCharacters,
    FieldValue,
    Repetition,
    Segment,
    compose_field,
    compose_segment,
)
from concilium.reading.hl7v2_errors import ErrorCode, ErrorLocation, HL7Error, failure_trace

logger = logging.getLogger(__name__)

SUPPORTED_VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1")
"""Values of MSH-12 accepted (table 0104)."""

PROCESSING_IDS = {"P": "Production", "D": "Debugging", "T": "Training"}
"""HL7 table 0103, processing ID (MSH-11)."""

_SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{2}$")
_CODE = re.compile(r"^[A-Z0-9]{3}$")


@dataclass(frozen=True)
class MessageType:
    """MSH-9: message code (table 0076), trigger event (table 0003), structure (table 0354)."""

    code: str
    """Message code, e.g. ``ADT``, ``ORM``, ``OMI``, ``ORU``, ``ACK``."""
    trigger: str = ""
    """Trigger event, e.g. ``A01``, ``O23``; may be empty only in an ACK."""
    structure: str = ""
    """Message structure, e.g. ``ADT_A01``; optional (absent before v2.3.1)."""

    def __str__(self) -> str:
        return "^".join(part for part in (self.code, self.trigger, self.structure) if part)


@dataclass(frozen=True)
class MessageHeader:
    """The MSH segment of a message (§2.15.9)."""

    message_type: MessageType
    """MSH-9."""
    control_id: str
    """MSH-10, echoed in MSA-2 of the acknowledgment."""
    processing_id: str = "P"
    """MSH-11 (table 0103): P production, D debugging, T training."""
    version: str = "2.5.1"
    """MSH-12 (table 0104)."""
    sending_application: HierarchicDesignator | None = None
    """MSH-3."""
    sending_facility: HierarchicDesignator | None = None
    """MSH-4."""
    receiving_application: HierarchicDesignator | None = None
    """MSH-5."""
    receiving_facility: HierarchicDesignator | None = None
    """MSH-6."""
    date_time: str = ""
    """MSH-7 as sent (DTM); read it with :func:`~.hl7v2_datatypes.parse_datetime`."""
    charset: str = "ASCII"
    """Table 0211 code of the character set the message was read in (MSH-18 or detected)."""
    encoding: EncodingCharacters = DEFAULT_ENCODING
    """MSH-1 and MSH-2."""

    def compose(self) -> str:
        """This header as an MSH segment."""
        enc = self.encoding

        def hd(value: HierarchicDesignator | None) -> str:
            return value.compose(enc) if value else ""

        mt = self.message_type
        fields = [
            enc.msh2,
            hd(self.sending_application),
            hd(self.sending_facility),
            hd(self.receiving_application),
            hd(self.receiving_facility),
            compose_field(self.date_time, encoding=enc),
            "",
            compose_field(mt.code, mt.trigger, mt.structure, encoding=enc),
            compose_field(self.control_id, encoding=enc),
            compose_field(self.processing_id, encoding=enc),
            compose_field(self.version, encoding=enc),
            *([""] * 5),
            compose_field(self.charset, encoding=enc),
        ]
        return compose_segment("MSH", fields, enc)


class Message:
    """A parsed and header-validated HL7 v2 message."""

    def __init__(self, header: MessageHeader, segments: Sequence[Segment]) -> None:
        self.header = header
        """The validated MSH."""
        self.segments = tuple(segments)
        """Every segment in order, MSH first."""

    def __repr__(self) -> str:
        ids = "|".join(segment.id for segment in self.segments)
        return f"<Message {self.header.message_type} {self.header.control_id!r} {ids}>"

    def segment(self, segment_id: str) -> Segment | None:
        """The first segment with this ID, if any."""
        return next((s for s in self.segments if s.id == segment_id), None)

    def all(self, segment_id: str) -> tuple[Segment, ...]:
        """Every segment with this ID, in order."""
        return tuple(s for s in self.segments if s.id == segment_id)

    def require(self, segment_id: str) -> Segment:
        """The first segment with this ID, or :class:`HL7Error` 100 if the message has none."""
        found = self.segment(segment_id)
        if found is None:
            raise HL7Error(
                ErrorCode.SEGMENT_SEQUENCE_ERROR,
                f"the message has no {segment_id} segment, which "
                f"{self.header.message_type} requires",
                ErrorLocation(segment_id),
            )
        return found


def new_control_id() -> str:
    """A fresh message control ID (MSH-10), 20 characters as v2.5.1 allows."""
    return uuid.uuid4().hex[:20].upper()


def parse_message(raw: bytes, *, fallback_charset: str = LATIN_1) -> Message:
    """Parse and validate one HL7 v2 message; raises only :class:`HL7Error`.

    ``fallback_charset`` is the table 0211 set of a message without MSH-18 that is neither
    ASCII nor UTF-8 (see :mod:`~concilium.reading.hl7v2_charsets`).
    """
    try:
        return _parse(raw, fallback_charset)
    except HL7Error:
        raise
    except Exception as exc:
        # The guarantee of this function is that callers need to handle one error type;
        # the cause is logged by class only, the message may hold patient data.
        logger.warning("unexpected failure parsing an HL7 message: %s", failure_trace(exc))
        raise HL7Error(
            ErrorCode.APPLICATION_INTERNAL_ERROR, "the message could not be parsed"
        ) from exc


def check_message_type(message: Message, supported: Mapping[str, Collection[str]]) -> None:
    """Refuse a message whose MSH-9 the receiver does not handle (§2.9.2.1).

    ``supported`` maps message codes to trigger events, e.g. ``{"ADT": {"A01", "A08"}}``;
    raises :class:`HL7Error` 200 (message type) or 201 (event code).
    """
    message_type = message.header.message_type
    if message_type.code not in supported:
        raise HL7Error(
            ErrorCode.UNSUPPORTED_MESSAGE_TYPE,
            f"message type {message_type.code} is not accepted here; accepted: "
            f"{', '.join(sorted(supported))}",
            ErrorLocation("MSH", 1, 9, component=1),
        )
    triggers = supported[message_type.code]
    if message_type.trigger not in triggers:
        raise HL7Error(
            ErrorCode.UNSUPPORTED_EVENT_CODE,
            f"event {message_type.code}^{message_type.trigger} is not accepted here; "
            f"accepted: {', '.join(sorted(triggers))}",
            ErrorLocation("MSH", 1, 9, component=2),
        )


def peek_header(raw: bytes) -> MessageHeader | None:
    """Read what can be read of the MSH of a message that may be invalid, never raising.

    Used to address an acknowledgment to a message :func:`parse_message` refused; values
    are as sent and unvalidated. None when the bytes do not begin with an MSH.
    """
    try:
        start = raw.lstrip()
        if not start.startswith(b"MSH") or len(start) < 8:
            return None
        line = re.split(rb"[\r\n]", start, maxsplit=1)[0]
        try:
            charset = normalise(declared_charset(line) or UTF_8)
            text = line.decode(CODECS[charset])
        except (HL7Error, UnicodeDecodeError):
            text, charset = line.decode("latin-1"), LATIN_1
        encoding = _encoding_characters(text)
        segment = _segments(text, encoding, "ascii")[0]
        return _header(segment, encoding, charset)
    except Exception:
        return None


def _parse(raw: bytes, fallback_charset: str) -> Message:
    start = raw.lstrip()
    if not start:
        raise HL7Error(
            ErrorCode.SEGMENT_SEQUENCE_ERROR, "the message is empty", ErrorLocation("MSH")
        )
    if not start.startswith(b"MSH"):
        raise HL7Error(
            ErrorCode.SEGMENT_SEQUENCE_ERROR,
            "a message must begin with an MSH segment (batches are not accepted)",
            ErrorLocation("MSH"),
        )
    text, charset = decode_message(start, fallback=fallback_charset)
    text = text.replace("\r\n", "\r").replace("\n", "\r")
    encoding = _encoding_characters(text)
    segments = _segments(text, encoding, CODECS[charset])
    for segment in segments[1:]:
        if segment.id == "MSH":
            raise HL7Error(
                ErrorCode.SEGMENT_SEQUENCE_ERROR,
                "a second MSH segment: send one message per frame",
                segment.location(),
            )
    header = _header(segments[0], encoding, charset)
    _validate(header, segments[0])
    return Message(header, segments)


def _encoding_characters(text: str) -> EncodingCharacters:
    first = text.split("\r", 1)[0]
    if len(first) < 4:
        raise HL7Error(
            ErrorCode.REQUIRED_FIELD_MISSING,
            "MSH-1 (field separator) is missing",
            ErrorLocation("MSH", 1, 1),
        )
    separator = first[3]
    end = first.find(separator, 4)
    msh2 = first[4:] if end < 0 else first[4:end]
    try:
        encoding = EncodingCharacters.from_msh(separator, msh2)
    except ValueError as exc:
        raise HL7Error(
            ErrorCode.DATA_TYPE_ERROR,
            f"MSH-1/MSH-2 do not hold valid delimiters: {exc}",
            ErrorLocation("MSH", 1, 2),
        ) from None
    if end < 0:
        raise HL7Error(
            ErrorCode.REQUIRED_FIELD_MISSING,
            "the MSH segment ends after MSH-2; MSH-9 (message type) is required",
            ErrorLocation("MSH", 1, 9),
        )
    return encoding


def _segments(text: str, encoding: EncodingCharacters, codec: str) -> list[Segment]:
    lines = [line for line in text.split("\r") if line.strip()]
    tree = hl7.parse("\r".join(lines))
    counts: dict[str, int] = {}
    segments: list[Segment] = []
    for index, node in enumerate(tree):
        fields = [_field(item) for item in ([node] if isinstance(node, str) else node)]
        segment_id = "".join(fields[0][0][0]) if fields else ""
        if not _SEGMENT_ID.match(segment_id):
            raise HL7Error(
                ErrorCode.SEGMENT_SEQUENCE_ERROR,
                f"segment {index + 1} does not begin with a segment ID (three capitals/digits)",
                ErrorLocation(re.sub(r"[^A-Z0-9]", "", segment_id)[:3] or "???", 1),
            )
        counts[segment_id] = counts.get(segment_id, 0) + 1
        segments.append(
            Segment(
                segment_id,
                fields[1:],
                sequence=counts[segment_id],
                encoding=encoding,
                codec=codec,
            )
        )
    return segments


def _field(item: Any) -> FieldValue:
    """python-hl7 nests str, Repetition and Component unevenly; make it a regular tree."""
    if isinstance(item, str):
        return (((item,),),)
    repetitions: list[Repetition] = []
    for repetition in item:
        if isinstance(repetition, str):
            repetitions.append(((repetition,),))
            continue
        components: list[Component] = []
        for component in repetition:
            if isinstance(component, str):
                components.append((component,))
            else:
                components.append(tuple(str(sub) for sub in component))
        repetitions.append(tuple(components))
    return tuple(repetitions)


def _header(msh: Segment, encoding: EncodingCharacters, charset: str) -> MessageHeader:
    return MessageHeader(
        message_type=MessageType(msh.get(9, 1).strip(), msh.get(9, 2).strip(), msh.get(9, 3)),
        control_id=msh.get(10).strip(),
        processing_id=msh.get(11).strip(),
        version=msh.get(12).strip(),
        sending_application=HierarchicDesignator.read(msh, 3),
        sending_facility=HierarchicDesignator.read(msh, 4),
        receiving_application=HierarchicDesignator.read(msh, 5),
        receiving_facility=HierarchicDesignator.read(msh, 6),
        date_time=msh.get(7).strip(),
        charset=charset,
        encoding=encoding,
    )


def _validate(header: MessageHeader, msh: Segment) -> None:
    message_type = header.message_type
    msh.require(9, 1, name="message code")
    if not _CODE.match(message_type.code):
        raise HL7Error(
            ErrorCode.DATA_TYPE_ERROR,
            "MSH-9.1 (message code) must be three capitals or digits",
            msh.location(9, 1),
        )
    if message_type.code != "ACK" or message_type.trigger:
        msh.require(9, 2, name="trigger event")
        if not _CODE.match(message_type.trigger):
            raise HL7Error(
                ErrorCode.DATA_TYPE_ERROR,
                "MSH-9.2 (trigger event) must be three capitals or digits",
                msh.location(9, 2),
            )
    msh.require(10, name="message control ID")
    msh.require(11, name="processing ID")
    if header.processing_id not in PROCESSING_IDS:
        raise HL7Error(
            ErrorCode.UNSUPPORTED_PROCESSING_ID,
            f"processing ID {header.processing_id[:10]!r} is not one of P, D, T (table 0103)",
            msh.location(11),
        )
    msh.require(12, name="version ID")
    if header.version not in SUPPORTED_VERSIONS:
        raise HL7Error(
            ErrorCode.UNSUPPORTED_VERSION_ID,
            f"version {header.version[:10]!r} is not supported; supported: "
            f"{', '.join(SUPPORTED_VERSIONS)}",
            msh.location(12),
        )
    if header.date_time:
        try:
            parse_datetime(header.date_time, UTC)
        except ValueError:
            raise HL7Error(
                ErrorCode.DATA_TYPE_ERROR,
                "MSH-7 (date/time of message) is not an HL7 date/time",
                msh.location(7),
            ) from None
    if msh.get(18):
        normalise(msh.get(18))
