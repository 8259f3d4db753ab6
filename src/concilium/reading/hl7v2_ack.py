"""Original-mode acknowledgments: the ACK message (HL7 v2.5.1 §2.9.2, §2.14.1 ACK,
§2.15.8 MSA, §2.15.5 ERR).

The receiver answers every message with an ACK addressed back to the sender: MSH-3/4 of
the ACK are MSH-5/6 of the message and the other way round, MSA-2 echoes MSH-10, and
MSA-1 says AA (accepted), AE (error in the content) or AR (rejected: unsupported type,
event, processing ID or version, or the receiver failed for reasons of its own).

Each error becomes one ERR segment. From v2.5 on ERR carries the location in ERR-2 (ERL),
the table 0357 code in ERR-3, the severity in ERR-4 and a text for people in ERR-8; an
ACK in v2.3 to v2.4 carries the same in ERR-1 (ELD), MSA-3 and MSA-6, as those versions
define. The ACK is written in the version of the message when it is supported.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from enum import StrEnum

from concilium.reading.hl7v2 import (
    PROCESSING_IDS,
    SUPPORTED_VERSIONS,
    Message,
    MessageHeader,
    MessageType,
    new_control_id,
    parse_message,
    peek_header,
)
from concilium.reading.hl7v2_charsets import CODECS, encode_message
from concilium.reading.hl7v2_datatypes import format_datetime
from concilium.reading.hl7v2_encoding import (
    DEFAULT_ENCODING,
    EncodingCharacters,
    compose_field,
    compose_segment,
)
from concilium.reading.hl7v2_errors import ErrorCode, ErrorLocation, HL7Error, failure_trace

logger = logging.getLogger(__name__)

ACK_VERSION = "2.5.1"
"""Version of an ACK to a message whose own version is not supported."""

_ERL_FROM = "2.5"


class AcknowledgmentCode(StrEnum):
    """HL7 table 0008, acknowledgment code (MSA-1), original mode."""

    ACCEPT = "AA"
    ERROR = "AE"
    REJECT = "AR"


def acknowledgment_code_for(errors: Sequence[HL7Error]) -> AcknowledgmentCode:
    """AA without errors, AR when one refuses the whole message, AE otherwise (§2.9.2)."""
    if not errors:
        return AcknowledgmentCode.ACCEPT
    if any(error.rejects for error in errors):
        return AcknowledgmentCode.REJECT
    return AcknowledgmentCode.ERROR


UNKNOWN_SENDER = MessageHeader(MessageType(""), control_id="", version=ACK_VERSION)
"""Header answered when not even the MSH of a message could be read: MSA-2 stays empty."""

Process = Callable[[Message], Awaitable[None]]
"""Application processing of an accepted message; raises :class:`HL7Error` to refuse it."""


async def respond(raw: bytes, process: Process, *, now: datetime) -> bytes:
    """Accept or refuse one inbound message and write the ACK that says so (§2.9.2).

    The message is parsed, then given to ``process``; an :class:`HL7Error` from either
    becomes an AE or AR with its ERR, any other failure of ``process`` an AR with error 207
    (logged by class only), success an AA. Never raises.
    """
    try:
        message = parse_message(raw)
    except HL7Error as error:
        return build_ack(peek_header(raw) or UNKNOWN_SENDER, now=now, errors=[error])
    try:
        await process(message)
    except HL7Error as error:
        return build_ack(message.header, now=now, errors=[error])
    except Exception as exc:
        logger.error("processing of %s failed: %s", message.header.message_type, failure_trace(exc))
        failure = HL7Error(
            ErrorCode.APPLICATION_INTERNAL_ERROR,
            f"the receiving application failed ({type(exc).__name__}); send again later",
        )
        return build_ack(message.header, now=now, errors=[failure])
    return build_ack(message.header, now=now)


def build_ack(
    received: MessageHeader,
    *,
    now: datetime,
    errors: Sequence[HL7Error] = (),
    code: AcknowledgmentCode | None = None,
    control_id: str | None = None,
) -> bytes:
    """The ACK answering a message, encoded in the message's character set.

    ``received`` is the header of the message, from :func:`~.hl7v2.parse_message` or, for a
    message it refused, :func:`~.hl7v2.peek_header`. ``code`` defaults to
    :func:`acknowledgment_code_for` the errors. ``now`` (aware) goes in MSH-7.
    """
    segments = compose_ack(received, now=now, errors=errors, code=code, control_id=control_id)
    charset = received.charset if received.charset in CODECS else "ASCII"
    return encode_message("\r".join(segments) + "\r", charset, errors="replace")


def compose_ack(
    received: MessageHeader,
    *,
    now: datetime,
    errors: Sequence[HL7Error] = (),
    code: AcknowledgmentCode | None = None,
    control_id: str | None = None,
) -> list[str]:
    """The segments of the ACK :func:`build_ack` encodes."""
    enc = DEFAULT_ENCODING
    code = code or acknowledgment_code_for(errors)
    version = received.version if received.version in SUPPORTED_VERSIONS else ACK_VERSION
    # A refused message may carry anything in its MSH: echo only what is well formed, so
    # that the ACK itself is valid.
    trigger = received.message_type.trigger
    trigger = trigger if re.fullmatch(r"[A-Z0-9]{3}", trigger) else ""
    processing_id = received.processing_id if received.processing_id in PROCESSING_IDS else "P"
    # MSH-9.3 (message structure) exists from v2.3.1 on.
    structure = "ACK" if version != "2.3" and trigger else ""
    header = MessageHeader(
        message_type=MessageType("ACK", trigger, structure),
        control_id=control_id or new_control_id(),
        processing_id=processing_id,
        version=version,
        sending_application=received.receiving_application,
        sending_facility=received.receiving_facility,
        receiving_application=received.sending_application,
        receiving_facility=received.sending_facility,
        date_time=format_datetime(now),
        charset=received.charset if received.charset in CODECS else "ASCII",
        encoding=enc,
    )
    modern = _version_tuple(version) >= _version_tuple(_ERL_FROM)
    first = errors[0] if errors else None
    msa = [
        compose_field(code.value, encoding=enc),
        compose_field(received.control_id, encoding=enc),
        _one_line(first.text, enc) if first else "",
    ]
    if first is not None and not modern:
        # MSA-4 expected sequence number, MSA-5 delayed ack type (unused), MSA-6 error.
        msa += ["", "", _coded_error(first.code, enc)]
    segments = [header.compose(), compose_segment("MSA", msa, enc)]
    if modern:
        segments += [_err(error, enc) for error in errors]
    elif errors:
        # Before v2.5 an ACK has at most one ERR, whose ERR-1 repeats.
        eld = enc.repetition.join(_eld(error, enc) for error in errors)
        segments.append(compose_segment("ERR", [eld], enc))
    return segments


def _eld(error: HL7Error, enc: EncodingCharacters) -> str:
    location = error.location
    return compose_field(
        location.segment_id if location else "",
        str(location.sequence) if location else "",
        str(location.field) if location and location.field else "",
        (str(int(error.code)), error.code.text, "HL70357"),
        encoding=enc,
    )


def _err(error: HL7Error, enc: EncodingCharacters) -> str:
    location = error.location
    return compose_segment(
        "ERR",
        [
            "",
            _erl(location, enc) if location else "",
            compose_field(str(int(error.code)), error.code.text, "HL70357", encoding=enc),
            compose_field(error.severity.value, encoding=enc),
            "",
            "",
            "",
            _one_line(error.text, enc),
        ],
        enc,
    )


def _erl(location: ErrorLocation, enc: EncodingCharacters) -> str:
    numbers = (
        location.sequence,
        location.field,
        location.repetition if location.repetition else (1 if location.component else None),
        location.component,
        location.subcomponent,
    )
    return compose_field(
        location.segment_id, *("" if n is None else str(n) for n in numbers), encoding=enc
    )


def _coded_error(code: ErrorCode, enc: EncodingCharacters) -> str:
    return compose_field(str(int(code)), code.text, "HL70357", encoding=enc)


def _one_line(text: str, enc: EncodingCharacters) -> str:
    return compose_field(" ".join(text.split()), encoding=enc)


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))
