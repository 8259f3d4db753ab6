"""The simulated camera answers like a VISCA over IP camera and never stops serving."""

from __future__ import annotations

import asyncio
import socket

import pytest

from concilium.live.camera_simulator import CameraSimulator, SimulatedCamera
from concilium.live.visca import (
    Direction,
    Message,
    PanTiltAbsolute,
    PanTiltDrive,
    PanTiltPositionInquiry,
    PayloadType,
    Preset,
    PresetAction,
    Zoom,
    ZoomAction,
    ZoomDirect,
    ZoomPositionInquiry,
)

pytestmark = pytest.mark.anyio


def h(text: str) -> bytes:
    return bytes.fromhex(text)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def command(sequence: int, payload: bytes) -> bytes:
    return Message(PayloadType.VISCA_COMMAND, sequence, payload).pack()


def inquiry(sequence: int, payload: bytes) -> bytes:
    return Message(PayloadType.VISCA_INQUIRY, sequence, payload).pack()


async def exchange(port: int, datagram: bytes, replies: int) -> list[bytes]:
    """Send one datagram from a fresh socket and collect ``replies`` answers."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect(("127.0.0.1", port))
        await loop.sock_sendall(sock, datagram)
        return [await asyncio.wait_for(loop.sock_recv(sock, 64), timeout=2) for _ in range(replies)]


async def test_command_gets_ack_then_completion_with_its_sequence_number() -> None:
    async with SimulatedCamera() as camera:
        replies = await exchange(camera.port, command(7, h("81 01 04 47 04 00 00 00 FF")), 2)
    assert replies == [
        h("01 11 00 03 00 00 00 07 90 41 FF"),
        h("01 11 00 03 00 00 00 07 90 51 FF"),
    ]
    assert camera.state.zoom == 0x4000


async def test_inquiry_reports_the_position_the_camera_moved_to() -> None:
    async with SimulatedCamera() as camera:
        await exchange(camera.port, command(1, PanTiltAbsolute(-300, 200).payload()), 2)
        (reply,) = await exchange(camera.port, inquiry(2, PanTiltPositionInquiry().payload()), 1)
    assert reply == h("01 11 00 0B 00 00 00 02 90 50 0F 0E 0D 04 00 00 0C 08 FF")
    assert PanTiltPositionInquiry.decode(reply[10:-1]) == (-300, 200)


async def test_malformed_datagram_gets_syntax_error_and_camera_keeps_serving() -> None:
    async with SimulatedCamera() as camera:
        (bad_payload,) = await exchange(camera.port, command(5, h("81 01 99 99 FF")), 1)
        (garbage,) = await exchange(camera.port, b"\x00\x01\x02", 1)
        (unknown_type,) = await exchange(camera.port, h("07 00 00 01 00 00 00 09 01"), 1)
        (short,) = await exchange(camera.port, h("01 00 00 08 00 00 00 0A 81 01 FF"), 1)
        replies = await exchange(camera.port, command(11, Preset(PresetAction.SET, 2).payload()), 2)
    assert bad_payload == h("01 11 00 04 00 00 00 05 90 60 02 FF")
    assert garbage == h("01 11 00 04 00 00 00 00 90 60 02 FF")
    assert unknown_type == h("02 01 00 02 00 00 00 09 0F 02")
    assert short == h("01 11 00 04 00 00 00 0A 90 60 02 FF")
    assert replies[1] == h("01 11 00 03 00 00 00 0B 90 51 FF")
    assert 2 in camera.state.presets


async def test_inquiry_sent_as_a_command_is_a_syntax_error() -> None:
    sim = CameraSimulator()
    (reply,) = sim.handle(command(3, ZoomPositionInquiry().payload()))
    assert reply[8:] == h("90 60 02 FF")


def test_recalling_an_empty_preset_is_not_executable() -> None:
    sim = CameraSimulator()
    (reply,) = sim.handle(command(4, Preset(PresetAction.RECALL, 9).payload()))
    assert reply[8:] == h("90 61 41 FF")
    assert sim.executed == []


def test_position_beyond_the_mechanical_limits_is_not_executable() -> None:
    sim = CameraSimulator()
    (reply,) = sim.handle(command(4, PanTiltAbsolute(3000, 0).payload()))
    assert reply[8:] == h("90 61 41 FF")
    assert sim.state.pan == 0


def test_presets_store_and_recall_pan_tilt_zoom() -> None:
    sim = CameraSimulator()
    sim.handle(command(1, PanTiltAbsolute(100, -50).payload()))
    sim.handle(command(2, ZoomDirect(0x2000).payload()))
    sim.handle(command(3, Preset(PresetAction.SET, 1).payload()))
    sim.handle(command(4, PanTiltAbsolute(0, 0).payload()))
    sim.handle(command(5, ZoomDirect(0).payload()))
    sim.handle(command(6, Preset(PresetAction.RECALL, 1).payload()))
    assert sim.state.position() == (100, -50, 0x2000)
    sim.handle(command(7, Preset(PresetAction.RESET, 1).payload()))
    (reply,) = sim.handle(command(8, Preset(PresetAction.RECALL, 1).payload()))
    assert reply[8:] == h("90 61 41 FF")


def test_drive_moves_the_head_over_time_until_stop() -> None:
    clock = Clock()
    sim = CameraSimulator(clock=clock)
    sim.handle(command(1, PanTiltDrive(Direction.UP_RIGHT, 0x10, 0x08).payload()))
    clock.now = 2.0
    sim.handle(command(2, PanTiltDrive(Direction.STOP).payload()))
    clock.now = 5.0
    (reply,) = sim.handle(inquiry(3, PanTiltPositionInquiry().payload()))
    assert PanTiltPositionInquiry.decode(reply[10:-1]) == (2 * 0x10 * 40, 2 * 0x08 * 40)


def test_zoom_tele_stops_at_the_optical_end() -> None:
    clock = Clock()
    sim = CameraSimulator(clock=clock)
    sim.handle(command(1, Zoom(ZoomAction.TELE, 7).payload()))
    clock.now = 60.0
    (reply,) = sim.handle(inquiry(2, ZoomPositionInquiry().payload()))
    assert ZoomPositionInquiry.decode(reply[10:-1]) == 0x4000


def test_retransmitted_datagram_is_answered_again_but_executed_once() -> None:
    sim = CameraSimulator()
    datagram = command(1, Preset(PresetAction.SET, 4).payload())
    first = sim.handle(datagram)
    again = sim.handle(datagram)
    assert first == again and len(first) == 2
    assert len(sim.executed) == 1


def test_control_reset_is_acknowledged() -> None:
    sim = CameraSimulator()
    assert sim.handle(h("02 00 00 01 00 00 00 00 01")) == [h("02 01 00 01 00 00 00 00 01")]
    assert sim.handle(h("02 00 00 01 00 00 00 01 05")) == [h("02 01 00 02 00 00 00 01 0F 02")]


async def test_several_cameras_run_side_by_side_with_their_own_state() -> None:
    async with SimulatedCamera() as one, SimulatedCamera() as two:
        assert one.port != two.port
        await exchange(one.port, command(1, ZoomDirect(0x1000).payload()), 2)
        await exchange(two.port, command(1, ZoomDirect(0x3000).payload()), 2)
    assert (one.state.zoom, two.state.zoom) == (0x1000, 0x3000)


def test_a_failure_inside_the_simulator_is_answered_not_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = CameraSimulator()

    def broken(_command: object) -> bool:
        raise RuntimeError("boom")

    monkeypatch.setattr(sim, "_execute", broken)
    (reply,) = sim.handle(command(6, ZoomDirect(1).payload()))
    assert reply == h("01 11 00 04 00 00 00 06 90 60 02 FF")


def test_random_datagrams_are_always_answered_and_never_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import random

    rng = random.Random(52381)
    sim = CameraSimulator()
    for _ in range(3000):
        size = rng.randint(0, 30)
        data = bytes(rng.randrange(256) for _ in range(size))
        if rng.random() < 0.5 and size >= 9:
            # Valid header around a random payload: exercises the VISCA payload parser.
            data = Message(PayloadType.VISCA_COMMAND, 1, data[8:][:16]).pack()
        replies = sim.handle(data)
        assert replies, data.hex(" ")
        for reply in replies:
            Message.parse(reply)
    # Every refusal came from the parser, none from the safety net around a crash.
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
