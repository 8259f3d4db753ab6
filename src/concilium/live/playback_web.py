"""HTTP adapter of what the audience plays: the HLS files of a running broadcast
(``/live/{session_id}/hls/...``) and the recording library (``/live/library``).

Both are plain files served under the session's own rule (``live.read`` on the session,
:func:`concilium.live.web._load`): a viewer who may watch the session may fetch its HLS
files and, afterwards, its recordings. This router is matched before the session pages, so
``/live/library`` is never taken for a session id.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from concilium.live import recording
from concilium.live import web as live_web
from concilium.live.hls import hls_headers, hls_root, resolve_hls_file
from concilium.live.tables import LiveRecording, LiveSession
from concilium.platform import audit
from concilium.platform.errors import NotFound
from concilium.platform.policy import Action
from concilium.web.context import Ctx, gate
from concilium.web.pages import render_page

__all__ = ["HLS_JS", "router"]

router = APIRouter(include_in_schema=False)

HLS_JS = Path(__file__).resolve().parents[3] / "frontend" / "node_modules" / "hls.js" / "dist"
"""hls.js as installed by ``npm ci`` in ``frontend/`` (for browsers without native HLS)."""


@router.get("/live/assets/hls.min.js")
def hls_library(ctx: Annotated[Ctx, gate(Action.LIVE_READ)]) -> Response:
    """hls.js, served from the installed package (not a copy in the repository)."""
    path = HLS_JS / "hls.min.js"
    if not path.is_file():
        raise NotFound("hls.js is not installed; run the frontend set-up")
    return FileResponse(
        path, media_type="text/javascript", headers={"cache-control": "public, max-age=3600"}
    )


def _hls_file(ctx: Ctx, session_id: int, name: str) -> bytes:
    live_web._load(ctx, session_id, Action.LIVE_READ)
    path = resolve_hls_file(hls_root(ctx.runtime.settings.data_dir), session_id, name)
    try:
        # Read at once (a segment is a second of video): the packager may delete it next.
        return path.read_bytes() if path is not None else b""
    except FileNotFoundError:
        return b""


@router.get("/live/{session_id}/hls/{name:path}")
async def live_hls_file(
    session_id: int, name: str, ctx: Annotated[Ctx, gate(Action.LIVE_READ)]
) -> Response:
    """A playlist or segment of the session's HLS output, for those who may watch it."""
    # The loop's own executor, not the request thread pool: with a crowd of viewers every
    # thread of that pool may be waiting in ``gate`` for the SQLite write lock this very
    # request holds, and a handler queued behind them would never release it.
    content = await asyncio.to_thread(_hls_file, ctx, session_id, name)
    if not content:
        raise NotFound("no such HLS file (is the broadcast on air?)")
    content_type, cache_control = hls_headers(name)
    return Response(content, media_type=content_type, headers={"cache-control": cache_control})


def _readable(ctx: Ctx, found: LiveRecording) -> LiveSession:
    live, _ = live_web._load(ctx, found.session_id, Action.LIVE_READ)
    return live


@router.get("/live/library")
def live_library(request: Request, ctx: Annotated[Ctx, gate(Action.LIVE_READ)]) -> Response:
    """Recordings of the sessions the caller may see, newest first."""
    sessions = {s.id: s for s in live_web._visible(ctx)}
    found = recording.session_recordings(ctx.db, sessions)
    return render_page(
        request,
        "live/library.html",
        ctx,
        recordings=[(r, sessions[r.session_id]) for r in found],
        kinds=live_web.KIND_LABELS,
    )


@router.get("/live/library/{recording_id}")
def live_library_item(
    request: Request, recording_id: int, ctx: Annotated[Ctx, gate(Action.LIVE_READ)]
) -> Response:
    """One recording with its chapters."""
    found = recording.get_recording(ctx.db, recording_id)
    live = _readable(ctx, found)
    return render_page(
        request,
        "live/library_item.html",
        ctx,
        item=found,
        live=live,
        kinds=live_web.KIND_LABELS,
    )


@router.get("/live/library/{recording_id}/media")
def live_library_media(recording_id: int, ctx: Annotated[Ctx, gate(Action.LIVE_READ)]) -> Response:
    """The recording's file (byte ranges honoured, so the player can seek)."""
    found = recording.get_recording(ctx.db, recording_id)
    live = _readable(ctx, found)
    path = ctx.runtime.settings.data_dir / found.path
    if not path.is_file():
        raise NotFound("the recording's file is missing")
    first = ctx.request.headers.get("range", "bytes=0-").replace(" ", "").startswith("bytes=0-")
    if live.patient_id is not None and first:
        # A patient's images leave the server: one audit entry per playback (seeks send
        # ranged requests and are the same playback).
        audit.record(
            ctx.db,
            ctx.actor,
            "live.recording.play",
            ctx.outcome(ctx.decisions[-1]),
            object_kind="live_recording",
            object_id=found.id,
            patient_id=live.patient_id,
        )
        ctx.commit()
    return FileResponse(
        path, media_type=found.media_type, headers={"cache-control": "private, max-age=3600"}
    )
