"""The media plane as the rest of Concilium sees it: rooms, mountpoints and credentials.

:class:`LiveMedia` is the public face of :mod:`concilium.live` towards the platform: it keeps
the registry of rooms and credentials, drives Janus through one control session using
Concilium's own service token, and rebuilds Janus's state after a restart
(:meth:`LiveMedia.reconnect`, registered as a :class:`MediaServer` restart hook).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx

from concilium.live.credentials import (
    CredentialBook,
    RoomCredential,
    issue_credential,
    restore_credentials,
    revoke_credential,
    sweep_credentials,
)
from concilium.live.janus_client import (
    STREAMING,
    VIDEOROOM,
    JanusAdmin,
    JanusError,
    JanusSession,
)
from concilium.live.janus_config import JanusConfig
from concilium.live.recording_sources import (
    NotedPublisher,
    note_publishers,
    noted_publishers,
    source_kind,
)
from concilium.live.rooms import (
    MountpointSpec,
    RoomRegistry,
    RoomSpec,
    StreamingAdmin,
    VideoRoomAdmin,
    restore_rooms,
)

__all__ = ["LiveMedia"]

log = logging.getLogger(__name__)


class LiveMedia:
    """Control plane of one Janus instance."""

    def __init__(
        self,
        config: JanusConfig,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
        registry: RoomRegistry | None = None,
        book: CredentialBook | None = None,
    ) -> None:
        self.config = config
        self.http = http
        self.clock = clock
        self.registry = registry or RoomRegistry()
        self.book = book or CredentialBook()
        self.admin = JanusAdmin(http, config.admin_url, config.admin_secret)
        self._session: JanusSession | None = None
        self._videoroom: VideoRoomAdmin | None = None
        self._streaming: StreamingAdmin | None = None

    @property
    def videoroom(self) -> VideoRoomAdmin:
        """VideoRoom control requests; :meth:`connect` first."""
        if self._videoroom is None:
            raise RuntimeError("LiveMedia is not connected to Janus")
        return self._videoroom

    @property
    def streaming(self) -> StreamingAdmin:
        """Streaming control requests; :meth:`connect` first."""
        if self._streaming is None:
            raise RuntimeError("LiveMedia is not connected to Janus")
        return self._streaming

    async def connect(self) -> None:
        """Open the control session with a fresh service token (all plugins)."""
        service_token = secrets.token_urlsafe(32)
        await self.admin.add_token(service_token)
        session = JanusSession(
            self.http,
            self.config.api_url,
            service_token,
            keepalive_interval=max(1.0, self.config.session_timeout / 3),
            poll_events=False,
        )
        await session.create()
        self._session = session
        self._videoroom = VideoRoomAdmin(
            await session.attach(VIDEOROOM),
            self.config.plugin_admin_key,
            self.config.recordings_folder,
        )
        self._streaming = StreamingAdmin(
            await session.attach(STREAMING), self.config.plugin_admin_key
        )

    async def close(self) -> None:
        """Close the control session."""
        if self._session is not None:
            with contextlib.suppress(JanusError):
                await self._session.close()
        self._session = self._videoroom = self._streaming = None

    async def reconnect(self) -> list[int]:
        """Rebuild Janus's state after a restart; return the ids of the rooms re-created.

        The old session, the service token, the user tokens, the rooms and the mountpoints
        all died with the old process.
        """
        await self.close()
        await self.connect()
        restored = await restore_credentials(self.book, self.admin, self.clock())
        rooms = await restore_rooms(self.registry, self.videoroom, self.streaming)
        log.info("Janus state restored: %d room(s), %d token(s)", len(rooms), restored)
        return rooms

    async def create_room(self, spec: RoomSpec) -> None:
        """Register and create a room that only credential holders may join."""
        self.registry.add_room(spec)
        try:
            await self.videoroom.create(spec, allowed=[])
        except BaseException:
            self.registry.remove_room(spec.room_id)
            raise

    async def destroy_room(self, room_id: int) -> None:
        """Destroy a room and revoke every credential minted for it."""
        spec = self.registry.rooms.get(room_id)
        if spec is None:
            raise KeyError(f"room {room_id} is not registered")
        await self.note_publishers(spec)
        for credential in [c for c in self.book.credentials.values() if c.room_id == room_id]:
            await self.revoke(credential.token)
        await self.videoroom.destroy(spec)
        self.registry.remove_room(room_id)

    async def list_rooms(self) -> list[dict[str, Any]]:
        """Rooms Janus has right now, as Janus describes them."""
        return await self.videoroom.list_rooms()

    async def create_mountpoint(self, spec: MountpointSpec) -> dict[str, Any]:
        """Register and create a Streaming mountpoint for an IP camera."""
        self.registry.add_mountpoint(spec)
        try:
            return await self.streaming.create(spec)
        except BaseException:
            self.registry.remove_mountpoint(spec.mountpoint_id)
            raise

    async def destroy_mountpoint(self, mountpoint_id: int) -> None:
        """Destroy a mountpoint."""
        spec = self.registry.mountpoints.get(mountpoint_id)
        if spec is None:
            raise KeyError(f"mountpoint {mountpoint_id} is not registered")
        await self.streaming.destroy(spec)
        self.registry.remove_mountpoint(mountpoint_id)

    async def issue(self, user_id: str, room_id: int, ttl: float = 600.0) -> RoomCredential:
        """Mint a credential letting ``user_id`` into ``room_id`` for ``ttl`` seconds."""
        return await issue_credential(
            self.book,
            self.registry,
            self.admin,
            self.videoroom,
            user_id=user_id,
            room_id=room_id,
            now=self.clock(),
            ttl=ttl,
        )

    async def revoke(self, token: str) -> RoomCredential | None:
        """Revoke one credential now."""
        return await revoke_credential(self.book, self.registry, self.admin, self.videoroom, token)

    async def sweep_forever(self, interval: float = 5.0) -> None:
        """Revoke lapsed credentials every ``interval`` seconds until cancelled."""
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        while True:
            try:
                await self.sweep()
            except JanusError as exc:
                # Janus restarting: the credentials stay booked and the next round retries.
                log.warning("credential sweep failed: %s", exc)
            await asyncio.sleep(interval)

    async def note_publishers(self, spec: RoomSpec) -> None:
        """Note beside a recorded room's files the name each of its publishers publishes
        under (the account's, set by the server) and what it sends (the description of its
        video, from a fixed set: a browser cannot pass for someone else), for the library to
        name the person and the source."""
        if not spec.record:
            return
        rec_dir = self.videoroom.rec_dir(spec.room_id)
        try:
            publishers = await self.videoroom.publishers(spec.room_id)
        except JanusError as exc:
            log.warning("publishers of room %s not noted: %s", spec.room_id, exc)
            return
        known = await asyncio.to_thread(noted_publishers, rec_dir)
        fresh: dict[int, NotedPublisher] = {}
        for feed, name in publishers.items():
            if feed in known or not name:
                continue
            try:
                streams = await self.videoroom.publisher_streams(spec, feed)
            except JanusError as exc:  # its media is not up yet: the next sweep notes it
                log.info("feed %s of room %s not noted yet: %s", feed, spec.room_id, exc)
                continue
            # Its picture says what it is; a feed without one, its sound.
            videos = [s for s in streams if s.kind == "video"]
            said = next(iter(videos or streams), None)
            if said is not None:
                fresh[feed] = NotedPublisher(name, source_kind(said.description))
        await asyncio.to_thread(note_publishers, rec_dir, fresh)

    async def sweep(self) -> list[RoomCredential]:
        """Revoke every credential that has lapsed, and note who publishes in each recorded
        room; meant to run every few seconds."""
        for spec in list(self.registry.rooms.values()):
            await self.note_publishers(spec)
        return await sweep_credentials(
            self.book, self.registry, self.admin, self.videoroom, self.clock()
        )
