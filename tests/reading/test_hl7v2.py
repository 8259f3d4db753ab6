"""Parsing and validating HL7 v2 messages: MSH checks, character sets, escape sequences."""

from __future__ import annotations

import pytest

from concilium.reading.hl7v2 import check_message_type, parse_message, peek_header
from concilium.reading.hl7v2_encoding import (
    DEFAULT_ENCODING,
    EncodingCharacters,
    compose_field,
    escape,
    unescape,
)
from concilium.reading.hl7v2_errors import ErrorCode, ErrorLocation, HL7Error


def msh(
    *,
    message_type: str = "ADT^A01^ADT_A01",
    control_id: str = "MSG0001",
    processing_id: str = "P",
    version: str = "2.5.1",
    charset: str = "",
) -> str:
    fields = [
        "MSH",
        "^~\\&",
        "HIS",
        "CHU-NORD",
        "CONCILIUM",
        "GHT",
        "20250314093000",
        "",
        message_type,
        control_id,
        processing_id,
        version,
        "",
        "",
        "",
        "",
        "",
        charset,
    ]
    return "|".join(fields)


def message(*segments: str, **header: str) -> bytes:
    return "\r".join([msh(**header), *segments]).encode("utf-8") + b"\r"


def refused(raw: bytes) -> HL7Error:
    with pytest.raises(HL7Error) as caught:
        parse_message(raw)
    return caught.value


def test_a_valid_message_exposes_its_header_and_segments() -> None:
    parsed = parse_message(message("EVN|A01|20250314093000", "PID|1||123^^^CHU&1.2.250&ISO^PI"))

    header = parsed.header
    assert str(header.message_type) == "ADT^A01^ADT_A01"
    assert header.control_id == "MSG0001"
    assert header.version == "2.5.1"
    assert str(header.sending_application) == "HIS"
    assert str(header.receiving_facility) == "GHT"
    assert [s.id for s in parsed.segments] == ["MSH", "EVN", "PID"]
    pid = parsed.require("PID")
    assert pid.get(3) == "123"
    assert pid.get(3, 4, 2) == "1.2.250"
    assert pid.get(3, 5) == "PI"
    assert pid.get(30) == ""


@pytest.mark.parametrize("version", ["2.3", "2.3.1", "2.4", "2.5", "2.5.1"])
def test_every_supported_version_is_accepted(version: str) -> None:
    assert parse_message(message(version=version)).header.version == version


@pytest.mark.parametrize(
    ("raw", "code", "location"),
    [
        (b"", ErrorCode.SEGMENT_SEQUENCE_ERROR, "MSH"),
        (b"PID|1||123\r", ErrorCode.SEGMENT_SEQUENCE_ERROR, "MSH"),
        (message(version="2.6"), ErrorCode.UNSUPPORTED_VERSION_ID, "MSH-12"),
        (message(version=""), ErrorCode.REQUIRED_FIELD_MISSING, "MSH-12"),
        (message(processing_id="X"), ErrorCode.UNSUPPORTED_PROCESSING_ID, "MSH-11"),
        (message(processing_id=""), ErrorCode.REQUIRED_FIELD_MISSING, "MSH-11"),
        (message(control_id=""), ErrorCode.REQUIRED_FIELD_MISSING, "MSH-10"),
        (message(message_type=""), ErrorCode.REQUIRED_FIELD_MISSING, "MSH-9"),
        (message(message_type="ADT"), ErrorCode.REQUIRED_FIELD_MISSING, "MSH-9.2"),
        (message(message_type="ADT^A1"), ErrorCode.DATA_TYPE_ERROR, "MSH-9.2"),
        (message(charset="EBCDIC"), ErrorCode.TABLE_VALUE_NOT_FOUND, "MSH-18"),
        (b"MSH|^~\\&\r", ErrorCode.REQUIRED_FIELD_MISSING, "MSH-9"),
        (b"MSH|^~|HIS\r", ErrorCode.DATA_TYPE_ERROR, "MSH-2"),
        (b"MSH|^^\\&|HIS\r", ErrorCode.DATA_TYPE_ERROR, "MSH-2"),
        (b"MSHA^~\\&AHIS\r", ErrorCode.DATA_TYPE_ERROR, "MSH-2"),
        (message("pid|1"), ErrorCode.SEGMENT_SEQUENCE_ERROR, "???"),
        (message(msh()), ErrorCode.SEGMENT_SEQUENCE_ERROR, "MSH[2]"),
    ],
)
def test_a_bad_header_is_refused_with_the_table_0357_code_and_its_location(
    raw: bytes, code: ErrorCode, location: str
) -> None:
    error = refused(raw)

    assert error.code == code
    assert str(error.location) == location
    assert error.text


def test_msh7_must_be_an_hl7_date_time() -> None:
    raw = message().replace(b"20250314093000", b"14/03/2025")

    assert str(refused(raw).location) == "MSH-7"


def test_an_ack_without_trigger_event_is_accepted() -> None:
    parsed = parse_message(message("MSA|AA|X", message_type="ACK"))

    assert parsed.header.message_type.code == "ACK"


def test_errors_refusing_the_message_are_rejections_and_others_are_content_errors() -> None:
    assert refused(message(version="2.7")).rejects
    assert refused(message(processing_id="Q")).rejects
    assert not refused(message(control_id="")).rejects


def test_check_message_type_refuses_unknown_types_and_events() -> None:
    parsed = parse_message(message(message_type="ADT^A02^ADT_A02"))

    with pytest.raises(HL7Error) as event:
        check_message_type(parsed, {"ADT": {"A01", "A08"}})
    with pytest.raises(HL7Error) as kind:
        check_message_type(parsed, {"ORM": {"O01"}})

    assert event.value.code == ErrorCode.UNSUPPORTED_EVENT_CODE
    assert str(event.value.location) == "MSH-9.2"
    assert kind.value.code == ErrorCode.UNSUPPORTED_MESSAGE_TYPE
    check_message_type(parsed, {"ADT": {"A02"}})


def test_missing_segment_is_a_segment_sequence_error() -> None:
    parsed = parse_message(message("EVN|A01"))

    with pytest.raises(HL7Error) as caught:
        parsed.require("PID")

    assert caught.value.code == ErrorCode.SEGMENT_SEQUENCE_ERROR
    assert caught.value.location == ErrorLocation("PID")


# Character sets (MSH-18, table 0211)

NAME = "Hélène^Lefèvre-Ça"


def test_utf8_declared_in_msh18_keeps_french_accents() -> None:
    raw = message(f"PID|1||123||{NAME}", charset="UNICODE UTF-8")

    parsed = parse_message(raw)

    assert parsed.header.charset == "UNICODE UTF-8"
    assert parsed.require("PID").get(5, 2) == "Lefèvre-Ça"


def test_latin1_declared_in_msh18_keeps_french_accents() -> None:
    text = "\r".join([msh(charset="8859/1"), f"PID|1||123||{NAME}"])

    parsed = parse_message(text.encode("iso8859-1"))

    assert parsed.header.charset == "8859/1"
    assert parsed.require("PID").get(5, 1) == "Hélène"


def test_undeclared_utf8_is_read_as_utf8_and_undeclared_latin1_as_the_fallback() -> None:
    text = "\r".join([msh(), f"PID|1||123||{NAME}"])

    as_utf8 = parse_message(text.encode("utf-8"))
    as_latin1 = parse_message(text.encode("iso8859-1"))

    assert as_utf8.header.charset == "UNICODE UTF-8"
    assert as_latin1.header.charset == "8859/1"
    assert as_utf8.require("PID").get(5, 2) == as_latin1.require("PID").get(5, 2) == "Lefèvre-Ça"


def test_bytes_invalid_in_the_declared_charset_are_a_data_type_error_on_msh18() -> None:
    text = "\r".join([msh(charset="ASCII"), f"PID|1||123||{NAME}"])

    error = refused(text.encode("utf-8"))

    assert error.code == ErrorCode.DATA_TYPE_ERROR
    assert str(error.location) == "MSH-18"


# Escape sequences (§2.7)


@pytest.mark.parametrize(
    ("sent", "meaning"),
    [
        ("A\\F\\B", "A|B"),
        ("A\\S\\B", "A^B"),
        ("A\\T\\B", "A&B"),
        ("A\\R\\B", "A~B"),
        ("C:\\E\\temp", "C:\\temp"),
        ("line 1\\.br\\line 2", "line 1\nline 2"),
        ("\\H\\bold\\N\\", "bold"),
        ("\\XC3A9\\", "é"),
        ("unterminated \\F", "unterminated \\F"),
        ("unknown \\Q\\ kept", "unknown \\Q\\ kept"),
    ],
)
def test_escape_sequences_are_read_back_as_text(sent: str, meaning: str) -> None:
    assert unescape(sent, DEFAULT_ENCODING, "utf-8") == meaning


def test_escaped_values_in_a_message_keep_their_delimiters() -> None:
    parsed = parse_message(message("OBX|1|TX|||Taille 3\\S\\4 cm \\T\\ stable\\.br\\Fin"))

    assert parsed.require("OBX").get(5) == "Taille 3^4 cm & stable\nFin"


def test_escape_is_the_inverse_of_unescape() -> None:
    text = "a|b^c&d~e\\f\nligne é\x07"

    assert unescape(escape(text), DEFAULT_ENCODING, "utf-8") == text
    assert "|" not in escape(text) and "^" not in escape(text)


def test_non_default_delimiters_are_honoured() -> None:
    enc = EncodingCharacters("#", "$", "*", "!", "%")
    raw = b"MSH#$*!%#HIS##CONCILIUM##20250314##ADT$A01#1#P#2.5.1\rPID#1##123$$$CHU%1.2%ISO\r"

    parsed = parse_message(raw)

    assert parsed.header.encoding == enc
    assert parsed.require("PID").get(3, 4, 2) == "1.2"
    assert compose_field("a$b", "c", encoding=enc) == "a!S!b$c"


def test_the_hl7_null_reads_as_empty() -> None:
    assert parse_message(message('PID|1||123||""')).require("PID").get(5) == ""


def test_segment_repr_shows_no_values() -> None:
    parsed = parse_message(message(f"PID|1||123||{NAME}"))

    assert "Lef" not in repr(parsed.require("PID")) and "Lef" not in repr(parsed)


# peek_header: addressing an ACK to a message that was refused


def test_peek_header_reads_the_msh_of_a_refused_message() -> None:
    raw = message(version="2.9", charset="8859/1")

    header = peek_header(raw)

    assert header is not None
    assert header.control_id == "MSG0001"
    assert header.version == "2.9"
    assert header.charset == "8859/1"
    assert str(header.sending_application) == "HIS"


@pytest.mark.parametrize("raw", [b"", b"garbage", b"PID|1", b"MSH|"])
def test_peek_header_gives_none_without_an_msh(raw: bytes) -> None:
    assert peek_header(raw) is None
