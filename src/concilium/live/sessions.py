"""Live sessions going live, on program and ending, with everything each step brings.

Architecture "Data flows" 2. :mod:`concilium.live.lifecycle` changes a session's state and
keeps the audit trail; :class:`LiveSessions` does that and everything that goes with it in
the process: the fed sources (IP cameras, cine loops) start when a session goes live, a
broadcast's HLS output follows its program, and when a session ends its media room is
destroyed on Janus (every credential revoked), its websockets are told, its feeders and its
HLS stop, and a recorded session's files are post-processed into the library in the
background. The HTTP adapter and telesurgery (which opens a session for a procedure's video)
go through it alike.

Its parts are passed in, made once per process: nothing is looked up on an application.
The database is touched from worker threads: on SQLite a transaction may wait for the write
lock when it begins, which must never happen on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from concilium.imaging import Archive
from concilium.live import lifecycle, lookup, program, recording, source_registry
from concilium.live.endpoints import Network
from concilium.live.feeders import SourceFeeds
from concilium.live.hls import HlsBroadcasts
from concilium.live.runtime import LiveRuntime
from concilium.live.sources import SourcePlan, authorize_cine, plan_sources
from concilium.live.tables import LiveSession, LiveSource
from concilium.platform import audit, patients
from concilium.platform.encryption import SecretBox
from concilium.platform.errors import ConciliumError
from concilium.platform.policy import Principal

__all__ = ["LiveSessions", "MediaOutputs", "publish_session_recordings"]

log = logging.getLogger(__name__)


@dataclass
class MediaOutputs:
    """The HLS output of the broadcasts and the recordings being post-processed."""

    hls: HlsBroadcasts
    """One packager per broadcast on air."""
    tasks: set[asyncio.Task[list[int]]] = field(default_factory=set)
    """Post-processing of ended sessions' recordings, still running."""

    async def close(self, timeout: float = 60.0) -> None:
        """Packagers stop (with the server, before Janus); recordings finish processing."""
        await self.hls.close()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=timeout)


@dataclass(frozen=True)
class LiveSessions:
    """Start, direct the program of and end live sessions, with their side effects."""

    live: LiveRuntime
    """The media control plane (``live.media``, None while no Janus runs) and the
    websockets of each session."""
    outputs: MediaOutputs
    feeds: SourceFeeds
    """The feeders of IP cameras and cine loops."""
    archive: Archive
    """Where the cine loops a session shows are found."""
    database: sessionmaker[Session]
    """Sessions for the work done after a request (recordings reaching the library)."""
    data_dir: Path
    clock: Callable[[], datetime]
    box: SecretBox | None = None
    """Seals and opens the credentials of IP cameras (the installation's key)."""
    device_networks: Sequence[Network] = ()
    """Where the server may connect for a session's cameras (``live_device_networks``)."""

    async def add_source(
        self,
        db: Session,
        principal: Principal,
        actor: audit.Actor,
        live: LiveSession,
        *,
        name: str,
        kind: str,
        reference: str,
        now: datetime,
    ) -> LiveSource:
        """Add a source to ``live`` as the person ``principal`` (audited as ``actor``),
        committed, and feed it at once if the session is live.

        A cine loop is authorised for this very person (:func:`sources.authorize_cine`);
        a refusal stays in the audit trail and nothing else is written. An IP camera's URL
        must be one the server may call, and its credentials are sealed.
        """

        def add() -> LiveSource:
            grant = None
            if kind == "dicom_cine":
                try:
                    grant, _ = authorize_cine(
                        self.archive, db, principal, actor, live, reference, now
                    )
                except ConciliumError:
                    db.commit()  # only the refusal's audit entries were written
                    raise
            try:
                source = source_registry.add_source(
                    db,
                    actor,
                    live,
                    name=name,
                    kind=kind,
                    reference=reference,
                    networks=self.device_networks,
                    box=self.box,
                    cine=grant,
                )
            except ConciliumError:
                db.rollback()
                raise
            db.commit()
            return source

        source = await asyncio.to_thread(add)
        if live.status == "live":  # it is fed at once
            await self.feed_sources(db, live, now, [source])
        return source

    async def start(
        self, db: Session, actor: audit.Actor, live: LiveSession, now: datetime
    ) -> LiveSession:
        """Take ``live`` live (committed), then start its fed sources.

        Raises:
            Conflict: the session is not scheduled, or it would broadcast or record a
                patient who has not consented to teaching (the refusal stays in the
                audit trail).
        """
        await asyncio.to_thread(_go_live, db, actor, live, now)
        await self.feed_sources(db, live, now)
        return live

    async def feed_sources(
        self,
        db: Session,
        live: LiveSession,
        now: datetime,
        chosen: Sequence[LiveSource] | None = None,
    ) -> None:
        """Feed the IP cameras and cine loops of a live session (or only the ``chosen``
        ones, added while it is live) into their mountpoints.

        Cine loops are authorised again for the person who added each, each retrieval
        audited and committed; the feeders then run on the event loop until the session ends.
        """
        room_id = live.janus_room_id
        if room_id is None:
            return

        def plan() -> list[SourcePlan]:
            fed = source_registry.sources(db, live) if chosen is None else list(chosen)
            plans = plan_sources(
                db, self.archive, live, fed, now, box=self.box, networks=self.device_networks
            )
            db.commit()
            return plans

        plans = await asyncio.to_thread(plan)
        if plans:
            self.feeds.launch(self.live.media, live.id, room_id, plans)

    async def switch_program(
        self, db: Session, actor: audit.Actor, live: LiveSession, feed: int | None, now: datetime
    ) -> None:
        """Put ``feed`` on program (committed): every viewer's page switches to it, and a
        broadcast's HLS output follows."""
        room = self.live.room(live.id)
        room.program_feed = feed

        def keep() -> None:
            program.record_switch(db, actor, live, feed, now)
            db.commit()

        await asyncio.to_thread(keep)
        await room.broadcast({"type": "program", "feed": feed})
        await self._program_to_hls(live, feed)

    async def _program_to_hls(self, live: LiveSession, feed: int | None) -> None:
        """A broadcast's HLS output follows the program; WebRTC viewers carry on if it fails."""
        media = self.live.media
        if live.kind != "broadcast" or live.status != "live" or media is None:
            return
        spec = media.registry.rooms.get(live.janus_room_id or 0)
        if spec is None:
            return
        try:
            await self.outputs.hls.show(live.id, media.videoroom, spec, feed)
        except (ConciliumError, OSError, RuntimeError, ValueError) as exc:
            log.warning("HLS of session %s not following feed %s: %s", live.id, feed, exc)

    async def end(
        self, db: Session, actor: audit.Actor, live: LiveSession, now: datetime
    ) -> LiveSession:
        """End ``live`` (a scheduled one is cancelled the same way), committed; then
        everyone is sent out of its media room, its credentials revoked and its sockets
        told, its feeders and HLS output stop, and its recordings, if it was recorded, go
        to the library in the background.

        Raises:
            Conflict: the session has already ended (nothing is changed).
        """
        await asyncio.to_thread(_close, db, actor, live, now)
        media = self.live.media
        if media is not None and live.janus_room_id in media.registry.rooms:
            await media.destroy_room(live.janus_room_id)
        await self.live.room(live.id).broadcast({"type": "ended"})
        await self.feeds.stop(live.id)
        await self.outputs.hls.stop(live.id)
        if live.record and live.janus_room_id is not None and media is not None:
            rec_dir = media.videoroom.rec_dir(live.janus_room_id)
            task = asyncio.create_task(
                publish_session_recordings(
                    self.database, self.data_dir, self.clock, live.id, rec_dir
                )
            )
            self.outputs.tasks.add(task)
            task.add_done_callback(self.outputs.tasks.discard)
        return live


def _go_live(db: Session, actor: audit.Actor, live: LiveSession, now: datetime) -> None:
    consent = live.patient_id is not None and patients.has_consent(db, live.patient_id, "teaching")
    try:
        lifecycle.start(db, actor, live, now, teaching_consent=consent)
    except ConciliumError:
        db.commit()  # the refusal itself stays in the audit trail
        raise
    db.commit()


def _close(db: Session, actor: audit.Actor, live: LiveSession, now: datetime) -> None:
    try:
        lifecycle.end(db, actor, live, now)
    except ConciliumError:
        db.rollback()
        raise
    db.commit()


async def publish_session_recordings(
    database: sessionmaker[Session],
    data_dir: Path,
    clock: Callable[[], datetime],
    session_id: int,
    rec_dir: Path,
) -> list[int]:
    """Post-process a session's ``.mjr`` files and keep them in the library; their ids."""
    out_dir = recording.recordings_root(data_dir) / str(session_id)
    try:
        processed = await recording.postprocess_room(rec_dir, out_dir)
    except FileNotFoundError as exc:
        log.error("recordings of session %s not processed: %s", session_id, exc)
        return []

    def save() -> list[int]:
        with database() as db:
            live = lookup.get_session(db, session_id)
            rows = recording.publish_recordings(db, live, processed, data_dir, clock())
            db.commit()
            return [r.id for r in rows]

    return await asyncio.to_thread(save)
