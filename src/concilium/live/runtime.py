"""What a running Concilium process holds for live sessions: the media plane, the
websocket rooms, the director locks and the PTZ connections.

All of it is in this process's memory: rooms and credentials are re-created on Janus from it
after a media server restart, and sessions re-create their room at the next join after a
Concilium restart. Several Concilium processes would each need their own Janus (or a shared
control plane); that is the "at scale" column of the architecture, not done yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from concilium.config import Settings
from concilium.live.janus_config import JanusConfig
from concilium.live.media import LiveMedia
from concilium.live.media_server import MediaServer, MediaServerError
from concilium.live.ptz import DirectorLock, PtzClient

__all__ = ["LiveRuntime", "MediaRestartHook", "SessionRoom", "Subscriber", "media_lifespan"]

log = logging.getLogger(__name__)

MediaRestartHook = Callable[[LiveMedia], Awaitable[None]]


class Subscriber(Protocol):
    """One websocket of a session room (a Starlette ``WebSocket`` in production)."""

    async def send_text(self, data: str) -> None: ...


@dataclass
class Member:
    """A connected client and what it may see."""

    socket: Subscriber
    user_id: int
    moderator: bool


@dataclass
class SessionRoom:
    """The websockets of one live session, for fan-out."""

    members: list[Member] = field(default_factory=list)
    program_feed: int | None = None
    """Janus feed id the director put on program (what viewers watch)."""

    async def send(self, member: Member, event: dict[str, Any]) -> bool:
        """Send to one member; False when its connection is gone."""
        try:
            await member.socket.send_text(json.dumps(event))
        except Exception:  # a closed or broken socket must never stop the fan-out
            return False
        return True

    async def broadcast(
        self, event: dict[str, Any], visible: Callable[[Member], bool] = lambda m: True
    ) -> None:
        """Send to every member allowed to see it; members whose socket fails are dropped."""
        targets = [m for m in list(self.members) if visible(m)]
        results = await asyncio.gather(*(self.send(m, event) for m in targets))
        for member, ok in zip(targets, results, strict=True):
            if not ok and member in self.members:
                self.members.remove(member)


@dataclass
class LiveRuntime:
    """Live state of one Concilium process."""

    media: LiveMedia | None = None
    """The Janus control plane, when the media server runs."""
    api_url: str = ""
    """Where the Janus API answers (loopback), for the browser proxy."""
    rooms: dict[int, SessionRoom] = field(default_factory=dict)
    locks: dict[int, DirectorLock] = field(default_factory=dict)
    ptz: dict[int, PtzClient] = field(default_factory=dict)
    http: httpx.AsyncClient | None = None
    publishing_tokens: set[str] = field(default_factory=set)
    """Media credentials minted for a role that sends media (the proxy lets only these join
    a room as a publisher)."""
    on_media_restart: list[MediaRestartHook] = field(default_factory=list)
    """Run after Janus restarted and its rooms, mountpoints and tokens are back (e.g. the
    HLS outputs forward their program again), with the reconnected control plane."""

    def webrtc_receivers(self, room_id: int | None, now: float) -> int | None:
        """People holding a valid credential to receive ``room_id`` (publishers' credentials
        aside); None when no media server runs."""
        if self.media is None:
            return None
        return sum(
            1
            for credential in self.media.book.valid(now)
            if credential.room_id == room_id and credential.token not in self.publishing_tokens
        )

    def room(self, session_id: int) -> SessionRoom:
        return self.rooms.setdefault(session_id, SessionRoom())

    def lock(self, session_id: int) -> DirectorLock:
        return self.locks.setdefault(session_id, DirectorLock(str(session_id)))

    async def camera(self, camera_id: int, host: str, port: int) -> PtzClient:
        """The connected PTZ client of a camera (one per camera, sequence numbers shared)."""
        client = self.ptz.get(camera_id)
        if client is None or (client.host, client.port) != (host, port):
            if client is not None:
                client.close()
            client = PtzClient(host, port, timeout=0.3, retries=2, completion_timeout=3.0)
            await client.connect()
            self.ptz[camera_id] = client
        return client

    def proxy_client(self) -> httpx.AsyncClient:
        if self.http is None:
            # Janus holds an event long poll for up to 30 s before answering empty.
            self.http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=40.0))
        return self.http

    async def close(self) -> None:
        for client in self.ptz.values():
            client.close()
        self.ptz.clear()
        if self.http is not None:
            await self.http.aclose()
            self.http = None


@asynccontextmanager
async def media_lifespan(settings: Settings, live: LiveRuntime) -> AsyncIterator[None]:
    """Start Janus and its control plane for the life of the server.

    A media server that cannot start is logged and the rest of Concilium serves on: live
    pages then answer that the media server is unavailable.
    """
    config = JanusConfig(
        settings.data_dir,
        http_port=settings.live_janus_http_port,
        admin_port=settings.live_janus_admin_port,
    )
    server = MediaServer(config)
    http = httpx.AsyncClient(timeout=5.0)
    sweeper: asyncio.Task[None] | None = None
    try:
        await server.start()
        media = LiveMedia(config, http)
        await media.connect()

        async def restore() -> None:
            await media.reconnect()
            for hook in list(live.on_media_restart):
                try:
                    await hook(media)
                except Exception:  # one output failing must not keep the others down
                    log.exception("live restart hook %r failed", hook)

        server.on_restart.append(restore)
        live.media, live.api_url = media, config.api_url
        sweeper = asyncio.create_task(media.sweep_forever(), name="live-credential-sweep")
        log.info("live media server running", extra={"janus_api": config.api_url})
    except (MediaServerError, OSError, httpx.HTTPError) as exc:
        log.error("live media server not started: %s", exc)
    try:
        yield
    finally:
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        if live.media is not None:
            await live.media.close()
            live.media = None
        await server.stop()
        await http.aclose()
        await live.close()
