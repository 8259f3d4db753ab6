"""VISCA over IP codec: known byte vectors from the specification's layout, round trips."""

from __future__ import annotations

import pytest

from concilium.live.visca import (
    Ack,
    Completion,
    ControlError,
    ControlReset,
    Direction,
    ErrorCode,
    Home,
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
    parse_reply,
    peek_sequence,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# Header: payload type, payload length, sequence number (big-endian), then the payload.
def test_header_of_a_visca_command() -> None:
    message = Message(PayloadType.VISCA_COMMAND, 1, h("81 01 04 07 02 FF"))
    assert message.pack() == h("01 00 00 06 00 00 00 01 81 01 04 07 02 FF")


def test_header_of_an_inquiry_with_a_large_sequence_number() -> None:
    message = Message(PayloadType.VISCA_INQUIRY, 0xFFFFFFFF, h("81 09 06 12 FF"))
    assert message.pack() == h("01 10 00 05 FF FF FF FF 81 09 06 12 FF")


def test_control_reset_and_its_reply() -> None:
    reset = Message(PayloadType.CONTROL_COMMAND, 0, ControlReset().payload())
    assert reset.pack() == h("02 00 00 01 00 00 00 00 01")
    reply = Message.parse(h("02 01 00 01 00 00 00 00 01"))
    assert reply == Message(PayloadType.CONTROL_REPLY, 0, b"\x01")
    assert ControlError(1).payload() == h("0F 01")


@pytest.mark.parametrize(
    ("direction", "expected"),
    [
        (Direction.UP, "81 01 06 01 0C 0A 03 01 FF"),
        (Direction.DOWN, "81 01 06 01 0C 0A 03 02 FF"),
        (Direction.LEFT, "81 01 06 01 0C 0A 01 03 FF"),
        (Direction.RIGHT, "81 01 06 01 0C 0A 02 03 FF"),
        (Direction.UP_LEFT, "81 01 06 01 0C 0A 01 01 FF"),
        (Direction.UP_RIGHT, "81 01 06 01 0C 0A 02 01 FF"),
        (Direction.DOWN_LEFT, "81 01 06 01 0C 0A 01 02 FF"),
        (Direction.DOWN_RIGHT, "81 01 06 01 0C 0A 02 02 FF"),
        (Direction.STOP, "81 01 06 01 0C 0A 03 03 FF"),
    ],
)
def test_pan_tilt_drive_bytes(direction: Direction, expected: str) -> None:
    command = PanTiltDrive(direction, pan_speed=0x0C, tilt_speed=0x0A)
    assert command.payload() == h(expected)
    assert parse_command(h(expected)) == (1, command)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (PanTiltDrive(Direction.RIGHT, 0x18, 0x17), "81 01 06 01 18 17 02 03 FF"),
        (PanTiltAbsolute(0x1234, -1, 0x18, 0x17), "81 01 06 02 18 17 01 02 03 04 0F 0F 0F 0F FF"),
        (PanTiltAbsolute(-2448, 1296, 1, 1), "81 01 06 02 01 01 0F 06 07 00 00 05 01 00 FF"),
        (Home(), "81 01 06 04 FF"),
        (Zoom(ZoomAction.STOP), "81 01 04 07 00 FF"),
        (Zoom(ZoomAction.TELE), "81 01 04 07 02 FF"),
        (Zoom(ZoomAction.WIDE), "81 01 04 07 03 FF"),
        (Zoom(ZoomAction.TELE, 7), "81 01 04 07 27 FF"),
        (Zoom(ZoomAction.WIDE, 0), "81 01 04 07 30 FF"),
        (ZoomDirect(0x4000), "81 01 04 47 04 00 00 00 FF"),
        (ZoomDirect(0x1A2B), "81 01 04 47 01 0A 02 0B FF"),
        (Preset(PresetAction.RESET, 3), "81 01 04 3F 00 03 FF"),
        (Preset(PresetAction.SET, 1), "81 01 04 3F 01 01 FF"),
        (Preset(PresetAction.RECALL, 1), "81 01 04 3F 02 01 FF"),
        (Preset(PresetAction.RECALL, 127), "81 01 04 3F 02 7F FF"),
        (PanTiltPositionInquiry(), "81 09 06 12 FF"),
        (ZoomPositionInquiry(), "81 09 04 47 FF"),
    ],
)
def test_command_bytes_and_round_trip(command: object, expected: str) -> None:
    assert command.payload() == h(expected)  # type: ignore[attr-defined]
    assert parse_command(h(expected)) == (1, command)


def test_other_camera_addresses_change_the_first_byte() -> None:
    assert Home().payload(address=3) == h("83 01 06 04 FF")
    assert parse_command(h("83 01 06 04 FF")) == (3, Home())
    assert Ack(2).payload(address=3) == h("B0 42 FF")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Ack(1), "90 41 FF"),
        (Ack(2), "90 42 FF"),
        (Completion(1), "90 51 FF"),
        (Completion(0, h("00 00 01 02")), "90 50 00 00 01 02 FF"),
        (ReplyError(ErrorCode.SYNTAX_ERROR), "90 60 02 FF"),
        (ReplyError(ErrorCode.COMMAND_BUFFER_FULL), "90 60 03 FF"),
        (ReplyError(ErrorCode.COMMAND_CANCELLED, 1), "90 61 04 FF"),
        (ReplyError(ErrorCode.NO_SOCKET, 2), "90 62 05 FF"),
        (ReplyError(ErrorCode.NOT_EXECUTABLE, 1), "90 61 41 FF"),
    ],
)
def test_reply_bytes_and_round_trip(reply: object, expected: str) -> None:
    assert reply.payload() == h(expected)  # type: ignore[attr-defined]
    assert parse_reply(h(expected)) == (1, reply)


def test_position_inquiry_answers_decode_signed_values() -> None:
    data = PanTiltPositionInquiry.encode(-2448, 1296)
    assert data == h("0F 06 07 00 00 05 01 00")
    assert PanTiltPositionInquiry.decode(data) == (-2448, 1296)
    assert ZoomPositionInquiry.decode(h("04 00 00 00")) == 0x4000
    with pytest.raises(ViscaParseError):
        ZoomPositionInquiry.decode(h("04 00 00"))
    with pytest.raises(ViscaParseError, match="nibbles"):
        PanTiltPositionInquiry.decode(h("10 00 00 00 00 00 00 00"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (h("01 00 00 06 00 00"), "shorter than header"),
        (h("01 00 00 06 00 00 00 01"), "shorter than header"),
        (h("03 00 00 01 00 00 00 01 01"), "unknown payload type 0x0300"),
        (h("01 00 00 00 00 00 00 01 81"), "payload length 0"),
        (h("01 00 00 11 00 00 00 01") + bytes(17), "payload length 17"),
        (h("01 00 00 06 00 00 00 01 81 01 04 07 FF"), "announces 6 payload bytes but 5"),
    ],
)
def test_malformed_datagrams_raise_parse_errors(data: bytes, message: str) -> None:
    with pytest.raises(ViscaParseError, match=message):
        Message.parse(data)


def test_sequence_is_readable_from_a_damaged_datagram() -> None:
    assert peek_sequence(h("01 00 00 09 00 00 01 02 81")) == 0x0102
    assert peek_sequence(h("01 00")) is None


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (h("81 01"), "too short"),
        (h("81 01 06 04"), "FFh"),
        (h("81 01 FF 06 04 FF"), "FFh"),
        (h("90 01 06 04 FF"), "controller-to-camera"),
        (h("80 01 06 04 FF"), "controller-to-camera"),
        (h("81 01 06 01 0C 0A 04 04 FF"), "direction"),
        (h("81 01 06 01 00 0A 03 01 FF"), "pan_speed"),
        (h("81 01 06 01 0C 18 03 01 FF"), "tilt_speed"),
        (h("81 01 04 07 28 FF"), "zoom code"),
        (h("81 01 04 47 04 00 00 01 FF"), "position"),
        (h("81 01 04 47 14 00 00 00 FF"), "nibbles"),
        (h("81 01 04 3F 03 01 FF"), "memory action"),
        (h("81 01 04 3F 02 80 FF"), "number"),
        (h("81 01 06 04 00 FF"), "unsupported"),
        (h("81 09 06 13 FF"), "unsupported"),
    ],
)
def test_bad_command_payloads_raise_parse_errors(payload: bytes, message: str) -> None:
    with pytest.raises(ViscaParseError, match=message):
        parse_command(payload)


@pytest.mark.parametrize(
    "payload",
    [h("90 41"), h("81 41 FF"), h("90 43 FF"), h("90 61 42 FF"), h("90 71 FF"), h("90 41 00 FF")],
)
def test_bad_replies_raise_parse_errors(payload: bytes) -> None:
    with pytest.raises(ViscaParseError):
        parse_reply(payload)


def test_a_completion_longer_than_a_visca_payload_is_a_parse_error() -> None:
    # Found by fuzz/visca_parse.py: 26 bytes made a Completion whose own check raised a bare
    # ValueError out of the parser.
    payload = h("90 51 01 03 04") + b"\xe6" * 20 + h("FF")
    with pytest.raises(ViscaParseError, match="malformed VISCA reply"):
        parse_reply(payload)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (
            lambda: PanTiltDrive(Direction.UP, pan_speed=0),
            "pan_speed must be an integer in 0x1..0x18",
        ),
        (lambda: PanTiltDrive(Direction.UP, tilt_speed=0x18), "tilt_speed"),
        (lambda: PanTiltDrive("up"), "direction must be a Direction"),  # type: ignore[arg-type]
        (lambda: PanTiltAbsolute(0x8000, 0), "pan"),
        (lambda: PanTiltAbsolute(0, -0x8001), "tilt"),
        (lambda: PanTiltAbsolute(True, 0), "pan"),
        (lambda: Zoom(ZoomAction.STOP, 3), "STOP takes no speed"),
        (lambda: Zoom(ZoomAction.TELE, 8), "speed"),
        (lambda: ZoomDirect(0x4001), "position"),
        (lambda: ZoomDirect(-1), "position"),
        (lambda: Preset(PresetAction.SET, 128), "number"),
        (lambda: Preset(5, 1), "PresetAction"),  # type: ignore[arg-type]
        (lambda: Home().payload(address=8), "address"),
        (lambda: Message(PayloadType.VISCA_COMMAND, 2**32, b"\x01"), "sequence"),
        (lambda: Message(PayloadType.VISCA_COMMAND, 0, bytes(17)), "payload must be 1..16"),
        (lambda: Message(PayloadType.VISCA_COMMAND, 0, b""), "payload must be 1..16"),
        (lambda: Completion(0, b"\xff"), "without FFh"),
        (lambda: Ack(3), "socket"),
        (lambda: ControlError(3), "code"),
    ],
)
def test_bad_arguments_are_refused_at_construction(factory: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        factory()  # type: ignore[operator]
