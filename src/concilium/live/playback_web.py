"""HTTP adapter of what the audience plays: the HLS files of a running broadcast
(``/live/{session_id}/hls/{expires}/{signature}/...``) and the recording library
(``/live/library``).

Both follow the session's own rule (``live.read`` on the session,
:func:`concilium.live.web.access.authorized_session`): a viewer who may watch the session is
granted a signed HLS address (``/api/v1/live/sessions/{id}/hls``, audited) under which its
files are served without further database work, and, afterwards, may play its recordings.
This router is matched before the session pages, so ``/live/library`` is never taken for a
session id.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, Response

from concilium.live import recording, recording_sources, recording_timeline
from concilium.live.actions import LiveAction
from concilium.live.hls_files import HlsSigner, hls_headers, hls_root, resolve_hls_file
from concilium.live.process import LiveProcess
from concilium.live.tables import LiveRecording, LiveSession
from concilium.live.web.access import authorized_session, visible_sessions
from concilium.live.web.pages import KIND_LABELS
from concilium.platform import audit
from concilium.platform.errors import Forbidden, NotFound
from concilium.platform.i18n import _
from concilium.web.context import Ctx, gate, process_of, runtime_of
from concilium.web.problems import problem
from concilium.web.rendering import render_page

__all__ = ["CAPABILITY_PATHS", "HLS_JS", "api_router", "hls_signer", "router"]

router = APIRouter(include_in_schema=False)
api_router = APIRouter()
"""The JSON endpoint: the HLS address grant, documented in the OpenAPI description."""

HLS_JS = Path(__file__).resolve().parents[3] / "frontend" / "node_modules" / "hls.js" / "dist"
"""hls.js as installed by ``npm ci`` in ``frontend/`` (for browsers without native HLS)."""


@router.get("/live/assets/hls.min.js")
def hls_library(ctx: Annotated[Ctx, gate(LiveAction.LIVE_READ)]) -> Response:
    """hls.js, served from the installed package (not a copy in the repository)."""
    path = HLS_JS / "hls.min.js"
    if not path.is_file():
        raise NotFound(_("The web player is not installed: ask an engineer."))
    return FileResponse(
        path, media_type="text/javascript", headers={"cache-control": "public, max-age=3600"}
    )


CAPABILITY_PATHS = frozenset({"/live/{session_id}/hls/{expires}/{signature}/{name:path}"})
"""Routes authenticated by a signed capability in the path instead of a session (see
:class:`concilium.live.hls_files.HlsSigner`): no cookie, no database, so any cache may serve
them."""


def hls_signer(app: FastAPI) -> HlsSigner:
    """The process's HLS signer, keyed from the installation's secret key."""
    return process_of(app, LiveProcess).hls_signer


@api_router.get("/api/v1/live/sessions/{session_id}/hls")
def live_hls_access(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_READ)]
) -> dict[str, object]:
    """The address of the session's HLS master playlist, for those who may watch it.

    The address carries a signed capability valid for a few hours; the watch page asks
    again before it lapses. Each grant is one audit entry (the files fetched under it are
    not audited one by one: they are checked by signature alone).
    """
    live, decision = authorized_session(ctx, session_id, LiveAction.LIVE_READ)
    now = ctx.now.timestamp()
    capability = hls_signer(request.app).grant(live.id, now)
    audit.record(
        ctx.db,
        ctx.actor,
        "live.hls.grant",
        ctx.outcome(decision),
        object_kind="live_session",
        object_id=live.id,
        patient_id=live.patient_id,
        detail={"expires": capability.expires},
    )
    ctx.commit()
    lifetime = capability.expires - now
    return {
        "playlist": capability.master,
        "expires_at": datetime.fromtimestamp(capability.expires, UTC).isoformat(),
        # Renew with a margin: a phone asleep for a while still finds a valid address.
        "renew_in": round(max(30.0, lifetime - max(60.0, lifetime / 8))),
    }


@router.get("/live/{session_id}/hls/{expires}/{signature}/{name:path}")
async def live_hls_file(
    request: Request, session_id: int, expires: str, signature: str, name: str
) -> Response:
    """A playlist or segment of the session's HLS output, to whoever holds a valid capability.

    Deliberately without ``gate``: the signature was issued after the policy allowed the
    holder, and checking it needs neither the database nor a session, so the crowd of a
    broadcast costs an HMAC per request and a cache in front can serve the same paths.
    """
    now = runtime_of(request).now().timestamp()
    if not hls_signer(request.app).verify(session_id, expires, signature, now):
        return problem(
            403,
            Forbidden.title,
            "this HLS address is not valid or has expired; reload the watch page",
            request,
        )
    path = resolve_hls_file(hls_root(runtime_of(request).settings.data_dir), session_id, name)
    try:
        # Read at once, on the loop (a second of video, from the page cache: cheaper than a
        # thread hop); the packager may delete the file next.
        content = path.read_bytes() if path is not None else b""
    except FileNotFoundError:
        content = b""
    if not content:
        return problem(404, NotFound.title, "no such HLS file (is the broadcast on air?)", request)
    content_type, cache_control = hls_headers(name)
    return Response(content, media_type=content_type, headers={"cache-control": cache_control})


def _readable(ctx: Ctx, found: LiveRecording) -> LiveSession:
    live, _ = authorized_session(ctx, found.session_id, LiveAction.LIVE_READ)
    return live


@router.get("/live/library")
def live_library(request: Request, ctx: Annotated[Ctx, gate(LiveAction.LIVE_READ)]) -> Response:
    """Recordings of the sessions the caller may see, newest first."""
    sessions = {s.id: s for s in visible_sessions(ctx)}
    found = recording.session_recordings(ctx.db, sessions)
    return render_page(
        request,
        "live/library.html",
        ctx,
        recordings=[(r, sessions[r.session_id]) for r in found],
        kinds=KIND_LABELS,
        describe=_describer(found),
    )


def _describer(rows: list[LiveRecording]) -> Callable[[int, str, str], tuple[str, str]]:
    """:func:`recording_sources.describe` for the templates, naming each feed's person."""
    names = {r.feed: r.source for r in rows}

    def describe(feed: int, media_type: str, video_codec: str) -> tuple[str, str]:
        return recording_sources.describe(feed, media_type, video_codec, names.get(feed, ""))

    return describe


@router.get("/live/library/{recording_id}")
def live_library_item(
    request: Request, recording_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_READ)]
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
        kinds=KIND_LABELS,
        describe=_describer([found]),
        chapter_text=recording_timeline.chapter_text,
    )


@router.get("/live/library/{recording_id}/media")
def live_library_media(
    recording_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_READ)]
) -> Response:
    """The recording's file (byte ranges honoured, so the player can seek)."""
    found = recording.get_recording(ctx.db, recording_id)
    live = _readable(ctx, found)
    path = ctx.runtime.settings.data_dir / found.path
    if not path.is_file():
        raise NotFound(_("The recording's file is missing: ask an engineer."))
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
