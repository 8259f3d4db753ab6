"""The cameras' director: the PTZ pad's moves as VISCA commands, then a simulated VISCA
camera driven only by the director holding control, every command audited."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import select

from concilium.live import direction, lifecycle
from concilium.live.camera_simulator import SimulatedCamera
from concilium.live.ptz import DirectorLock, NotDirector, PtzClient
from concilium.live.visca import Direction, PanTiltDrive, Preset, PresetAction
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.errors import InvalidInput
from concilium.platform.tables import AuditEvent


def people(world):
    """A Metz specialist, who organises, and a Briey learner."""
    return (
        world.user("metz-cardio", (world.metz, "specialist")),
        world.user("briey-student", (world.briey, "learner")),
    )


def test_ptz_pad_moves_become_visca_commands():
    assert direction.ptz_command("up", speed=5) == PanTiltDrive(Direction.UP, 5, 5)
    assert direction.ptz_command("preset_recall", preset=3) == Preset(PresetAction.RECALL, 3)
    assert direction.ptz_command("home").payload() == bytes.fromhex("81010604ff")
    assert direction.ptz_command("zoom_in").payload() == bytes.fromhex("8101040702ff")
    for bad in (
        {"move": "spin"},
        {"move": "up", "speed": 0},
        {"move": "preset_set", "preset": 200},
    ):
        with pytest.raises(InvalidInput):
            direction.ptz_command(**bad)


@pytest.mark.anyio
async def test_only_the_director_holding_control_moves_the_camera_and_it_is_audited(world):
    doctor, viewer = await asyncio.to_thread(people, world)  # the database, off the loop
    now = world.runtime.now()
    director = audit.Actor(doctor.id, doctor.username)
    other = audit.Actor(viewer.id, viewer.username)
    lock = DirectorLock("1")
    async with SimulatedCamera() as camera, PtzClient("127.0.0.1", camera.port) as client:
        with transaction(world.runtime.sessions) as db:
            await asyncio.to_thread(db.connection)  # begun off the loop, as the server does
            live = lifecycle.create_session(
                db,
                director,
                kind="supervision",
                title="PTZ",
                site_id=world.metz.id,
                scheduled_at=now,
                now=now,
            )
            direction.take_control(db, director, live, lock, 100.0)
            with pytest.raises(NotDirector):
                await direction.drive_camera(
                    db, other, live, lock, client, direction.ptz_command("left"), 101.0
                )
            record = await direction.drive_camera(
                db, director, live, lock, client, PanTiltDrive(Direction.RIGHT, 0x18, 0x17), 101.0
            )
            assert record.ok
            await asyncio.sleep(0.2)
            stop = direction.ptz_command("stop")
            await direction.drive_camera(db, director, live, lock, client, stop, 101.5)
        assert camera.state.pan > 0
    with world.runtime.read_sessions() as db:
        rows = db.execute(
            select(AuditEvent.action, AuditEvent.detail).where(AuditEvent.action.like("live.%"))
        ).all()
    ptz = [json.loads(detail) for action, detail in rows if action == "live.ptz"]
    assert [p["outcome"] for p in ptz] == ["completed", "completed"]
    assert "RIGHT" in ptz[0]["command"]
    assert "live.direct.take" in [action for action, _ in rows]
