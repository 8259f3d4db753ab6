"""Live sessions going live, on program and ending through the sessions service, with every
side effect: fed sources, the program kept and fanned out, the Janus room torn down, the
sockets told, the feeders and HLS stopped, a recording's post-processing launched."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from concilium.imaging import Archive
from concilium.live import joining, lifecycle, lookup, program, source_registry
from concilium.live.endpoints import networks_of
from concilium.live.feeders import SourceFeeds
from concilium.live.hls import HlsBroadcasts
from concilium.live.media import LiveMedia
from concilium.live.runtime import LiveRuntime, Member
from concilium.live.sessions import LiveSessions, MediaOutputs
from concilium.live.sources import SourceState, mountpoint_id
from concilium.platform import audit, i18n, patients
from concilium.platform.db import transaction
from concilium.platform.errors import Conflict
from concilium.platform.tables import AuditEvent

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


class Socket:
    """A connected websocket of the session: what it was sent."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def send_text(self, data: str) -> None:
        self.events.append(json.loads(data))


def sessions_service(world: Any, media: LiveMedia | None, tmp_path: Path) -> LiveSessions:
    rt = world.runtime
    return LiveSessions(
        live=LiveRuntime(media=media),
        outputs=MediaOutputs(HlsBroadcasts(rt.settings.data_dir)),
        feeds=SourceFeeds(),
        archive=Archive(tmp_path / "images", rt.sessions, rt.bus),
        database=rt.sessions,
        data_dir=rt.settings.data_dir,
        clock=rt.now,
        device_networks=networks_of(["127.0.0.1/32"]),
    )


def scheduled(world: Any, **kind: Any) -> tuple[audit.Actor, int]:
    """A Metz session with an IP camera nobody answers for, organised by its coordinator."""
    coord = world.user("metz-coord", (world.metz, "coordinator"))
    actor = audit.Actor(coord.id, coord.username)
    now = world.runtime.now()
    with transaction(world.runtime.sessions) as db:
        live = lifecycle.create_session(
            db, actor, title="Valve repair", site_id=world.metz.id, scheduled_at=now, now=now,
            **kind,
        )  # fmt: skip
        source_registry.add_source(
            db,
            actor,
            live,
            name="Lamp camera",
            kind="ip_camera",
            reference="rtsp://127.0.0.1:9/x",
            networks=networks_of(["127.0.0.1/32"]),
        )
        return actor, live.id


async def test_without_a_media_server_the_session_goes_live_and_its_sources_say_why_not(
    world: Any, tmp_path: Path
) -> None:
    sessions = sessions_service(world, None, tmp_path)
    actor, session_id = await asyncio.to_thread(scheduled, world, kind="supervision")
    db = world.runtime.sessions()
    try:
        live = await asyncio.to_thread(lookup.get_session, db, session_id)
        await sessions.start(db, actor, live, world.runtime.now())
        assert live.status == "live"
        (state,) = sessions.feeds.statuses(session_id).values()
        assert (state.name, state.state) == ("Lamp camera", SourceState.REFUSED)
        socket = Socket()
        sessions.live.room(session_id).members.append(Member(socket, actor.user_id or 0, False))

        await sessions.end(db, actor, live, world.runtime.now())
        assert live.status == "ended"
        assert socket.events == [{"type": "ended"}]
        assert sessions.feeds.statuses(session_id) == {}
        assert not sessions.outputs.tasks  # not recorded: nothing to process
        with pytest.raises(Conflict):
            await sessions.end(db, actor, live, world.runtime.now())
    finally:
        await asyncio.to_thread(db.close)


async def test_a_broadcast_without_teaching_consent_stays_scheduled_and_the_refusal_is_kept(
    world: Any, tmp_path: Path
) -> None:
    sessions = sessions_service(world, None, tmp_path)

    def showing_a_patient() -> tuple[audit.Actor, int]:
        actor, session_id = scheduled(world, kind="broadcast")
        with transaction(world.runtime.sessions) as db:
            patient = patients.create_patient(
                db, actor, world.metz.id, "MTZ-9", patients.Demographics("Martin", "Paul")
            )
            lookup.get_session(db, session_id).patient_id = patient.id
        return actor, session_id

    actor, session_id = await asyncio.to_thread(showing_a_patient)
    db = world.runtime.sessions()
    try:
        live = await asyncio.to_thread(lookup.get_session, db, session_id)
        with i18n.using_locale("en"), pytest.raises(Conflict, match="not consented to teaching"):
            await sessions.start(db, actor, live, world.runtime.now())
        assert sessions.feeds.statuses(session_id) == {}
    finally:
        await asyncio.to_thread(db.close)

    def kept() -> tuple[str, list[str]]:
        with world.runtime.sessions() as db:
            status = lookup.get_session(db, session_id).status
            outcomes = db.execute(
                select(AuditEvent.outcome).where(AuditEvent.action == "live.start")
            ).scalars()
            return status, list(outcomes)

    assert await asyncio.to_thread(kept) == ("scheduled", ["refused"])


async def test_a_recorded_broadcast_on_janus_from_going_live_to_its_end(
    world: Any, live_media: LiveMedia, tmp_path: Path
) -> None:
    sessions = sessions_service(world, live_media, tmp_path)
    actor, session_id = await asyncio.to_thread(scheduled, world, kind="broadcast", record=True)
    db = world.runtime.sessions()
    try:
        live = await asyncio.to_thread(lookup.get_session, db, session_id)
        now = world.runtime.now()
        await sessions.start(db, actor, live, now)
        # The camera is fed for real: its feeder runs (and retries: nobody answers).
        (source_id,) = sessions.feeds.statuses(session_id)
        assert sessions.feeds.statuses(session_id)[source_id].state != SourceState.REFUSED

        # People join: the room is made on Janus, credentials minted, sockets connected.
        room_id = await joining.ensure_room(live_media, live)
        credential = await live_media.issue(str(actor.user_id), room_id)
        socket = Socket()
        sessions.live.room(session_id).members.append(Member(socket, actor.user_id or 0, False))

        # A feed nobody publishes: viewers are told, the switch is kept, the HLS output
        # does not follow (and WebRTC viewers carry on).
        await sessions.switch_program(db, actor, live, 4242, now + timedelta(seconds=5))
        assert socket.events == [{"type": "program", "feed": 4242}]
        assert sessions.live.room(session_id).program_feed == 4242
        switches = await asyncio.to_thread(program.switches, db, live)
        assert switches == [(now + timedelta(seconds=5), 4242)]
        assert session_id not in sessions.outputs.hls

        await sessions.end(db, actor, live, now + timedelta(minutes=1))
        # Its recordings are processed in the background (none here: nobody published).
        (processing,) = sessions.outputs.tasks
        assert socket.events[-1] == {"type": "ended"}
        assert room_id not in live_media.registry.rooms
        assert not await live_media.videoroom.exists(room_id)
        assert credential.token not in live_media.book.credentials
        assert sessions.feeds.statuses(session_id) == {}
        assert mountpoint_id(source_id) not in live_media.registry.mountpoints
        assert await processing == []
        await asyncio.sleep(0)  # its done callback runs
        assert not sessions.outputs.tasks
    finally:
        await asyncio.to_thread(db.close)
