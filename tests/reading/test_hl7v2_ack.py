"""Original-mode acknowledgments: MSA and ERR as HL7 v2.5.1 §2.9.2 and §2.15 define them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from concilium.reading.hl7v2 import parse_message, peek_header
from concilium.reading.hl7v2_ack import AcknowledgmentCode, acknowledgment_code_for, build_ack
from concilium.reading.hl7v2_errors import ErrorCode, ErrorLocation, HL7Error

NOW = datetime(2025, 3, 14, 8, 30, tzinfo=UTC)


def received(version: str = "2.5.1", charset: str = "") -> bytes:
    return (
        f"MSH|^~\\&|HIS|CHU-NORD|CONCILIUM|GHT|20250314093000||ORM^O01^ORM_O01|CTRL42|P|"
        f"{version}||||||{charset}\rPID|1||123\r"
    ).encode()


def missing_pid3() -> HL7Error:
    return HL7Error(
        ErrorCode.REQUIRED_FIELD_MISSING,
        "PID-3 (patient identifier list) is required",
        ErrorLocation("PID", 1, 3),
    )


def test_an_accepted_message_gets_aa_addressed_back_to_its_sender() -> None:
    header = parse_message(received()).header

    ack = parse_message(build_ack(header, now=NOW, control_id="ACK1"))

    msh, msa = ack.require("MSH"), ack.require("MSA")
    assert str(ack.header.message_type) == "ACK^O01^ACK"
    assert (msh.get(3), msh.get(4), msh.get(5), msh.get(6)) == (
        "CONCILIUM",
        "GHT",
        "HIS",
        "CHU-NORD",
    )
    assert ack.header.control_id == "ACK1"
    assert ack.header.version == "2.5.1"
    assert ack.header.processing_id == "P"
    assert (msa.get(1), msa.get(2)) == ("AA", "CTRL42")
    assert ack.segment("ERR") is None


def test_a_content_error_gets_ae_with_err_location_code_severity_and_text() -> None:
    header = parse_message(received()).header

    ack = parse_message(build_ack(header, now=NOW, errors=[missing_pid3()]))

    msa, err = ack.require("MSA"), ack.require("ERR")
    assert msa.get(1) == "AE"
    assert msa.get(2) == "CTRL42"
    assert [err.get(2, c) for c in (1, 2, 3)] == ["PID", "1", "3"]
    assert [err.get(3, c) for c in (1, 2, 3)] == ["101", "Required field missing", "HL70357"]
    assert err.get(4) == "E"
    assert err.get(8) == "PID-3 (patient identifier list) is required"


def test_a_component_location_fills_the_repetition_of_erl() -> None:
    header = parse_message(received()).header
    error = HL7Error(ErrorCode.DATA_TYPE_ERROR, "bad", ErrorLocation("MSH", 1, 9, component=2))

    err = parse_message(build_ack(header, now=NOW, errors=[error])).require("ERR")

    assert [err.get(2, c) for c in range(1, 6)] == ["MSH", "1", "9", "1", "2"]


def test_an_unsupported_version_is_rejected_in_an_ack_of_a_supported_version() -> None:
    raw = received(version="2.8")
    with pytest.raises(HL7Error) as caught:
        parse_message(raw)
    header = peek_header(raw)
    assert header is not None

    ack = parse_message(build_ack(header, now=NOW, errors=[caught.value]))

    assert ack.require("MSA").get(1) == "AR"
    assert ack.require("MSA").get(2) == "CTRL42"
    assert ack.require("ERR").get(3) == "203"
    assert ack.header.version == "2.5.1"


@pytest.mark.parametrize("version", ["2.3", "2.3.1", "2.4"])
def test_before_v25_errors_go_in_err1_msa3_and_msa6(version: str) -> None:
    header = parse_message(received(version=version)).header
    second = HL7Error(ErrorCode.TABLE_VALUE_NOT_FOUND, "ORC-1 unknown", ErrorLocation("ORC", 1, 1))

    ack = parse_message(build_ack(header, now=NOW, errors=[missing_pid3(), second]))

    assert ack.header.version == version
    msa, err = ack.require("MSA"), ack.require("ERR")
    assert msa.get(1) == "AE"
    assert msa.get(3) == "PID-3 (patient identifier list) is required"
    assert msa.get(6) == "101"
    assert len(ack.all("ERR")) == 1
    assert err.repetitions(1) == 2
    assert [err.get(1, c, repetition=1) for c in (1, 2, 3)] == ["PID", "1", "3"]
    assert err.get(1, 4, 1, repetition=1) == "101"
    assert err.get(1, 4, 3, repetition=1) == "HL70357"
    assert err.get(1, 4, 1, repetition=2) == "103"


def test_the_msh9_of_a_v23_ack_has_no_message_structure() -> None:
    header = parse_message(received(version="2.3")).header

    ack = parse_message(build_ack(header, now=NOW))

    assert str(ack.header.message_type) == "ACK^O01"


def test_the_ack_is_written_in_the_character_set_of_the_message() -> None:
    header = parse_message(received(charset="8859/1")).header
    error = HL7Error(ErrorCode.APPLICATION_INTERNAL_ERROR, "base indisponible, réessayez")

    raw = build_ack(header, now=NOW, errors=[error])

    assert "réessayez".encode("iso8859-1") in raw
    ack = parse_message(raw)
    assert ack.header.charset == "8859/1"
    assert ack.require("MSA").get(1) == "AR"
    assert ack.require("ERR").get(8) == "base indisponible, réessayez"


def test_delimiters_in_the_error_text_are_escaped() -> None:
    header = parse_message(received()).header
    error = HL7Error(ErrorCode.DATA_TYPE_ERROR, "value a|b^c is\nwrong", ErrorLocation("OBR"))

    err = parse_message(build_ack(header, now=NOW, errors=[error])).require("ERR")

    assert err.get(8) == "value a|b^c is wrong"


def test_acknowledgment_codes_follow_the_error_kinds() -> None:
    internal = HL7Error(ErrorCode.APPLICATION_INTERNAL_ERROR, "down")

    assert acknowledgment_code_for([]) == AcknowledgmentCode.ACCEPT
    assert acknowledgment_code_for([missing_pid3()]) == AcknowledgmentCode.ERROR
    assert acknowledgment_code_for([missing_pid3(), internal]) == AcknowledgmentCode.REJECT
