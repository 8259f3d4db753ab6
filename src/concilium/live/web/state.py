"""What this application holds for live sessions, made on first use and kept on
``app.state``: the live runtime (Janus control plane, websocket rooms, director locks), the
HLS outputs, the source feeders and the sessions service built on them; and the lifespan hook
that runs Janus with ``concilium serve``.

Each accessor is one small function: the process assembly may make these parts once and
hand them over instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, WebSocket

from concilium.config import Settings
from concilium.imaging.dicomweb import archive_of
from concilium.live import sources
from concilium.live.hls import HlsBroadcasts
from concilium.live.media import LiveMedia
from concilium.live.runtime import LiveRuntime, media_lifespan
from concilium.live.sessions import LiveSessions, MediaOutputs
from concilium.platform.errors import ConciliumError
from concilium.web.context import runtime_of


class MediaUnavailable(ConciliumError):
    """The media server is not running (503)."""

    status = 503
    title = "Service unavailable"


def live_runtime(app: FastAPI) -> LiveRuntime:
    """The live state of this application, created on first use."""
    live: LiveRuntime | None = getattr(app.state, "live", None)
    if live is None:
        live = LiveRuntime()
        app.state.live = live
    return live


def install_media_server(app: FastAPI, settings: Settings) -> None:
    """Run Janus for the life of ``app`` (the ``concilium serve`` hook)."""
    inner = app.router.lifespan_context
    live = live_runtime(app)

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        async with (
            media_lifespan(settings, live),
            sources_lifespan(application),
            outputs_lifespan(application),
            inner(application) as state,
        ):
            yield state

    app.router.lifespan_context = lifespan


def media_of(request: Request | WebSocket) -> LiveMedia:
    """The Janus control plane of this application; 503 while no Janus runs."""
    media = live_runtime(request.app).media
    if media is None:
        raise MediaUnavailable("the media server is not running; ask an engineer")
    return media


def media_outputs(app: FastAPI) -> MediaOutputs:
    """The HLS outputs of this application, created on first use."""
    found: MediaOutputs | None = getattr(app.state, "live_outputs", None)
    if found is None:
        hls = HlsBroadcasts(app.state.runtime.settings.data_dir)
        # Janus forgets its forwarders when it restarts: each program is forwarded again.
        live_runtime(app).on_media_restart.append(lambda media: hls.restore(media.videoroom))
        found = MediaOutputs(hls)
        app.state.live_outputs = found
    return found


@asynccontextmanager
async def outputs_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Packagers stop with the server (before Janus); recordings finish processing."""
    try:
        yield
    finally:
        await media_outputs(app).close()


def source_feeds(app: FastAPI) -> sources.SourceFeeds:
    """The source feeders of this application, created on first use."""
    found: sources.SourceFeeds | None = getattr(app.state, "live_sources", None)
    if found is None:
        found = sources.SourceFeeds()
        app.state.live_sources = found
    return found


@asynccontextmanager
async def sources_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Feeders stop with the server, before Janus."""
    try:
        yield
    finally:
        await source_feeds(app).close()


def live_sessions(request: Request) -> LiveSessions:
    """The sessions service of this application, on the parts it holds (each made once)."""
    runtime = runtime_of(request)
    return LiveSessions(
        live=live_runtime(request.app),
        outputs=media_outputs(request.app),
        feeds=source_feeds(request.app),
        archive=archive_of(request),
        database=runtime.sessions,
        data_dir=runtime.settings.data_dir,
        clock=runtime.now,
    )
