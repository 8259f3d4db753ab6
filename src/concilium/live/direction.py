"""The PTZ cameras of a live session and their director: the director lock, the pad's moves
as VISCA commands (:mod:`concilium.live.visca`), each command audited.

:func:`ptz_command` is a pure function of the pad's move; the camera is driven over VISCA
over IP by :class:`concilium.live.ptz.PtzClient`, only by the director holding the lock.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.live.endpoints import Network, check_device_host, device_address
from concilium.live.invitations import RESOURCE_KIND
from concilium.live.ptz import CommandRecord, DirectorLock, PtzClient, directed_send
from concilium.live.tables import LiveCamera, LiveSession
from concilium.live.visca import (
    Command,
    Direction,
    Home,
    PanTiltDrive,
    Preset,
    PresetAction,
    Zoom,
    ZoomAction,
)
from concilium.platform import audit
from concilium.platform.errors import InvalidInput, NotFound
from concilium.platform.i18n import _

__all__ = [
    "add_camera",
    "camera_address",
    "cameras",
    "drive_camera",
    "get_camera",
    "ptz_command",
    "release_control",
    "take_control",
]

_DIRECTIONS = {
    "up": Direction.UP,
    "down": Direction.DOWN,
    "left": Direction.LEFT,
    "right": Direction.RIGHT,
    "stop": Direction.STOP,
}


def ptz_command(move: str, *, speed: int = 8, preset: int = 0) -> Command:
    """The VISCA command for a director's move on the PTZ pad."""
    if not 1 <= speed <= 0x17:
        raise InvalidInput(_("The speed is from 1 to 23."))
    if move in _DIRECTIONS:
        return PanTiltDrive(_DIRECTIONS[move], pan_speed=speed, tilt_speed=speed)
    if move == "home":
        return Home()
    if move in ("zoom_in", "zoom_out", "zoom_stop"):
        action = {"zoom_in": ZoomAction.TELE, "zoom_out": ZoomAction.WIDE}.get(
            move, ZoomAction.STOP
        )
        return Zoom(action)
    if move in ("preset_set", "preset_recall"):
        if not 0 <= preset <= 127:
            raise InvalidInput(_("A preset is numbered from 0 to 127."))
        kind = PresetAction.SET if move == "preset_set" else PresetAction.RECALL
        return Preset(kind, preset)
    raise InvalidInput(_("This camera cannot make that move."))


def add_camera(
    db: Session,
    actor: audit.Actor,
    live: LiveSession,
    *,
    name: str,
    host: str,
    port: int,
    visca_address: int = 1,
    networks: Sequence[Network] = (),
) -> LiveCamera:
    """Register a PTZ camera reachable over VISCA over IP, on one of the device
    ``networks`` the server may reach (:func:`endpoints.check_device_host`)."""
    name, host = name.strip(), host.strip()
    if not 1 <= len(name) <= 100 or not re.match(r"^[A-Za-z0-9.:-]{1,255}$", host):
        raise InvalidInput(_("Give the camera a name and a host name or address."))
    if not 1 <= port <= 65535 or not 1 <= visca_address <= 7:
        raise InvalidInput(_("The port is from 1 to 65535 and the VISCA address from 1 to 7."))
    host = check_device_host(host, networks)
    camera = LiveCamera(
        session_id=live.id, name=name, host=host, port=port, visca_address=visca_address
    )
    db.add(camera)
    db.flush()
    audit.record(
        db,
        actor,
        "live.camera.add",
        "success",
        object_kind=RESOURCE_KIND,
        object_id=live.id,
        detail={"camera": camera.id, "host": host, "port": port},
    )
    return camera


def camera_address(camera: LiveCamera, networks: Sequence[Network]) -> tuple[str, int]:
    """Where the server sends the camera's VISCA commands: the address its host stands for,
    checked again against the device ``networks`` (the setting, or what its name resolves
    to, may have changed)."""
    return device_address(camera.host, networks), camera.port


def cameras(db: Session, live: LiveSession) -> list[LiveCamera]:
    return list(
        db.execute(
            select(LiveCamera).where(LiveCamera.session_id == live.id).order_by(LiveCamera.id)
        ).scalars()
    )


def get_camera(db: Session, live: LiveSession, camera_id: int) -> LiveCamera:
    camera = db.get(LiveCamera, camera_id)
    if camera is None or camera.session_id != live.id:
        raise NotFound(_("No such camera in this session."))
    return camera


def take_control(
    db: Session, actor: audit.Actor, live: LiveSession, lock: DirectorLock, now: float
) -> float:
    """Take (or renew) the director lock; returns the end of the lease."""
    lock.take(actor.username, now)
    audit.record(
        db, actor, "live.direct.take", "success", object_kind=RESOURCE_KIND, object_id=live.id
    )
    return lock.until


def release_control(
    db: Session, actor: audit.Actor, live: LiveSession, lock: DirectorLock, now: float
) -> None:
    lock.release(actor.username, now)
    audit.record(
        db, actor, "live.direct.release", "success", object_kind=RESOURCE_KIND, object_id=live.id
    )


async def drive_camera(
    db: Session,
    actor: audit.Actor,
    live: LiveSession,
    lock: DirectorLock,
    client: PtzClient,
    command: Command,
    now: float,
) -> CommandRecord:
    """Send a PTZ command on behalf of the director holding the lock; audited either way.

    The caller holds no transaction: the camera answers first, the audit entry follows."""
    record = await directed_send(lock, client, command, director=actor.username, now=now)
    await asyncio.to_thread(  # off the loop, as in join
        audit.record,
        db,
        actor,
        "live.ptz",
        "success" if record.ok else "failure",
        object_kind=RESOURCE_KIND,
        object_id=live.id,
        detail={
            "camera": record.camera,
            "command": record.command,
            "outcome": record.outcome,
            "attempts": record.attempts,
        },
    )
    return record
