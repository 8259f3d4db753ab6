"""The PTZ controller drives simulated cameras reliably; one director at a time."""

from __future__ import annotations

import asyncio
import socket

import pytest

from concilium.live.camera_simulator import SimulatedCamera
from concilium.live.ptz import (
    CommandRecord,
    DirectorLock,
    DirectorLockHeld,
    NotDirector,
    PtzClient,
    PtzError,
    directed_send,
)
from concilium.live.visca import (
    Direction,
    ErrorCode,
    Home,
    PanTiltAbsolute,
    PanTiltDrive,
    PayloadType,
    Preset,
    PresetAction,
    ZoomDirect,
)
from concilium.platform import i18n
from concilium.services import LOCALE_FOLDERS

pytestmark = pytest.mark.anyio


async def test_move_completes_and_is_recorded_for_audit() -> None:
    audit: list[CommandRecord] = []
    async with (
        SimulatedCamera() as camera,
        PtzClient(
            "127.0.0.1", camera.port, wall_clock=lambda: 1000.0, on_record=audit.append
        ) as ptz,
    ):
        record = await ptz.send(PanTiltAbsolute(500, -100), director="dr.ines")
        assert await ptz.pan_tilt_position() == (500, -100)
    assert record.ok and record.attempts == 1
    assert record.director == "dr.ines"
    assert record.camera == f"127.0.0.1:{camera.port}"
    assert record.payload_type is PayloadType.VISCA_COMMAND
    assert record.payload == PanTiltAbsolute(500, -100).payload()
    assert record.sent_at == 1000.0
    assert "PanTiltAbsolute(pan=500, tilt=-100" in record.command
    assert audit[0] is record and len(audit) == 2
    assert [r.sequence for r in ptz.history] == [1, 2]


async def test_lost_reply_is_retried_with_the_same_sequence_number() -> None:
    async with (
        SimulatedCamera() as camera,
        PtzClient("127.0.0.1", camera.port, timeout=0.2, retries=2) as ptz,
    ):
        camera.lose_next = 1
        record = await ptz.send(ZoomDirect(0x2000))
    assert record.ok and record.attempts == 2
    assert camera.state.zoom == 0x2000
    assert len(camera.logic.received) == 1  # the lost datagram never reached the logic
    assert camera.logic.received[0][4:8] == record.sequence.to_bytes(4, "big")


async def test_camera_that_never_answers_gives_a_timeout_record() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        async with PtzClient("127.0.0.1", port, timeout=0.05, retries=2) as ptz:
            record = await ptz.send(Home())
        received = 0
        silent.setblocking(False)
        while True:
            try:
                silent.recv(64)
            except BlockingIOError:
                break
            received += 1
    assert record.outcome == "timeout" and record.attempts == 3
    assert received == 3
    with i18n.using_locale("en"), pytest.raises(PtzError, match="timeout"):
        record.raise_for_outcome()
    i18n.load_catalogues(LOCALE_FOLDERS)
    with i18n.using_locale("fr"), pytest.raises(PtzError, match="pas de réponse de la caméra"):
        record.raise_for_outcome()


async def test_refused_command_is_recorded_with_the_camera_error() -> None:
    async with SimulatedCamera() as camera, PtzClient("127.0.0.1", camera.port) as ptz:
        record = await ptz.send(Preset(PresetAction.RECALL, 42))
    assert record.outcome == "error"
    assert record.error is ErrorCode.NOT_EXECUTABLE
    assert record.attempts == 1


async def test_control_reset_restarts_the_sequence() -> None:
    async with SimulatedCamera() as camera, PtzClient("127.0.0.1", camera.port) as ptz:
        await ptz.send(Home())
        reset = await ptz.reset_sequence()
        after = await ptz.send(Home())
    assert reset.ok and reset.payload_type is PayloadType.CONTROL_COMMAND
    assert after.sequence == 1


async def test_concurrent_commands_are_serialised_per_camera() -> None:
    async with SimulatedCamera() as camera, PtzClient("127.0.0.1", camera.port) as ptz:
        records = await asyncio.gather(*(ptz.send(ZoomDirect(z)) for z in (100, 200, 300)))
    assert all(r.ok for r in records)
    assert sorted(r.sequence for r in records) == [1, 2, 3]
    assert camera.state.zoom == 300


def test_bad_client_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="port"):
        PtzClient("127.0.0.1", 0)
    with pytest.raises(ValueError, match="retries"):
        PtzClient("127.0.0.1", retries=11)
    with pytest.raises(ValueError, match="timeouts"):
        PtzClient("127.0.0.1", timeout=0)


# DirectorLock: pure rules, time passed in.


def test_free_lock_goes_to_the_first_director_and_refuses_the_second() -> None:
    lock = DirectorLock("session-1", lease=60)
    taken = lock.take("dr.ines", now=0)
    assert taken.action == "take" and taken.holder == "dr.ines" and taken.until == 60
    with pytest.raises(DirectorLockHeld) as held:
        lock.take("dr.omar", now=10)
    assert held.value.holder == "dr.ines" and held.value.until == 60
    assert lock.current(10) == "dr.ines"
    assert [e.action for e in lock.events] == ["take", "refuse"]


def test_holder_renews_by_taking_again() -> None:
    lock = DirectorLock("session-1", lease=60)
    lock.take("dr.ines", now=0)
    renewed = lock.take("dr.ines", now=50)
    assert renewed.action == "renew" and renewed.until == 110
    with pytest.raises(DirectorLockHeld):
        lock.take("dr.omar", now=100)


def test_lease_expires_and_the_next_director_takes_over() -> None:
    lock = DirectorLock("session-1", lease=60)
    lock.take("dr.ines", now=0)
    assert lock.current(59.9) == "dr.ines"
    assert lock.current(60) is None
    taken = lock.take("dr.omar", now=61)
    assert taken.action == "take" and taken.holder == "dr.omar"
    assert [(e.action, e.director) for e in lock.events] == [
        ("take", "dr.ines"),
        ("expire", "dr.ines"),
        ("take", "dr.omar"),
    ]


def test_only_the_holder_may_release() -> None:
    lock = DirectorLock("session-1")
    lock.take("dr.ines", now=0)
    with pytest.raises(NotDirector):
        lock.release("dr.omar", now=1)
    assert lock.release("dr.ines", now=2).holder is None
    assert lock.take("dr.omar", now=3).holder == "dr.omar"
    with pytest.raises(NotDirector):
        lock.release("dr.ines", now=4)


def test_bad_lock_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="session_id"):
        DirectorLock("")
    with pytest.raises(ValueError, match="lease"):
        DirectorLock("s", lease=0)
    with pytest.raises(ValueError, match="director"):
        DirectorLock("s").take("", now=0)
    with pytest.raises(ValueError, match="lease"):
        DirectorLock("s").take("a", now=0, lease=-5)


async def test_only_the_director_moves_the_camera() -> None:
    lock = DirectorLock("session-1", lease=60)
    lock.take("dr.ines", now=0)
    async with SimulatedCamera() as camera, PtzClient("127.0.0.1", camera.port) as ptz:
        with pytest.raises(NotDirector):
            await directed_send(lock, ptz, PanTiltDrive(Direction.LEFT), director="dr.omar", now=5)
        assert camera.logic.received == []
        record = await directed_send(
            lock, ptz, PanTiltDrive(Direction.STOP), director="dr.ines", now=5
        )
        with pytest.raises(NotDirector):
            await directed_send(lock, ptz, Home(), director="dr.ines", now=61)
    assert record.ok and record.director == "dr.ines"
    assert len(ptz.history) == 1
