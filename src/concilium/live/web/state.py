"""What this process holds for live sessions (:class:`LiveProcess`, made once by the
process assembly), as the web adapter reaches it: the live runtime (Janus control plane,
websocket rooms, director locks), the HLS outputs, the source feeders and the sessions
service built on them."""

from __future__ import annotations

from fastapi import FastAPI, Request, WebSocket

from concilium.live import feeders
from concilium.live.media import LiveMedia
from concilium.live.process import LiveProcess
from concilium.live.runtime import LiveRuntime
from concilium.live.sessions import LiveSessions, MediaOutputs
from concilium.platform.errors import ConciliumError
from concilium.platform.i18n import N_, _
from concilium.web.context import process_of


class MediaUnavailable(ConciliumError):
    """The media server is not running (503)."""

    status = 503
    title = N_("Service unavailable")


def live_runtime(app: FastAPI) -> LiveRuntime:
    """The live state of this process."""
    return process_of(app, LiveProcess).live


def media_of(request: Request | WebSocket) -> LiveMedia:
    """The Janus control plane of this process; 503 while no Janus runs."""
    media = live_runtime(request.app).media
    if media is None:
        raise MediaUnavailable(_("The media server is not running; ask an engineer."))
    return media


def media_outputs(app: FastAPI) -> MediaOutputs:
    """The HLS outputs and recordings in post-processing of this process."""
    return process_of(app, LiveProcess).outputs


def source_feeds(app: FastAPI) -> feeders.SourceFeeds:
    """The source feeders of this process."""
    return process_of(app, LiveProcess).sources


def live_sessions(request: Request) -> LiveSessions:
    """The sessions service of this process."""
    return process_of(request.app, LiveProcess).sessions
