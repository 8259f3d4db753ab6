"""The live pages under ``/live``: the list and the scheduling form, a session's page
(invitations, sources, cameras, moving or calling it off, going live and ending), and the
consoles (join, director, moderator, watch).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from concilium.live import direction, invitations, joining, lifecycle, source_registry
from concilium.live.actions import LiveAction
from concilium.live.tables import LiveSession
from concilium.live.web.access import (
    authorized_session,
    create_session,
    may,
    organiser_sites,
    visible_sessions,
)
from concilium.live.web.state import live_runtime, live_sessions, source_feeds
from concilium.platform import accounts, patients
from concilium.platform.errors import ConciliumError, InvalidInput
from concilium.platform.i18n import N_, _
from concilium.platform.tables import Site, User
from concilium.web.context import Ctx, gate
from concilium.web.forms import redirect_to, run_form_action
from concilium.web.rendering import reader_zone, render_page

router = APIRouter(include_in_schema=False)

KIND_LABELS = {
    "supervision": N_("Supervision"),
    "broadcast": N_("Broadcast"),
    "conference": N_("Conference"),
}
"""How each kind of session is named on the pages (translated where shown)."""
STATUS_LABELS = {
    "scheduled": N_("scheduled"),
    "live": N_("live"),
    "ended": N_("ended"),
}
"""How each state of a session is named on the pages."""
ROLE_LABELS = {
    "director": N_("director"),
    "moderator": N_("moderator"),
    "presenter": N_("presenter"),
    "participant": N_("participant"),
    "viewer": N_("viewer"),
}
"""How each role in a session is named on the pages."""
SOURCE_KIND_LABELS = {
    "camera": N_("camera"),
    "capture": N_("capture device"),
    "screen": N_("screen"),
    "ip_camera": N_("IP camera"),
    "dicom_cine": N_("DICOM cine loop"),
}
"""How each kind of source is named on the pages."""
MEDIA_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "media-src 'self' blob:; worker-src 'self' blob:; frame-ancestors 'none'; "
    "form-action 'self'"
)
"""The usual content security policy plus ``blob:`` media and workers: hls.js feeds the
video element through Media Source Extensions, whose object URLs are ``blob:``."""
Line = Annotated[str, Form(max_length=500)]


FORM_TIME = "%Y-%m-%dT%H:%M"
"""How a ``datetime-local`` field writes a wall-clock time (HTML, 2.3.5.5)."""


def local_to_utc(text: str, where: ZoneInfo) -> datetime:
    """The instant a wall-clock time typed in zone ``where`` names, in UTC.

    A time the clocks skip when they go forward (02:30 on the last Sunday of March in
    Paris) names no instant and is refused; a time they pass twice when they go back (02:30
    on the last Sunday of October) is taken at its first passing, summer time.
    """
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInput(
            _("Write the start as a date and a time, e.g. 2030-05-01 08:30.")
        ) from exc
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    local = value.replace(tzinfo=where, fold=0)
    instant = local.astimezone(UTC)
    if instant.astimezone(where).replace(tzinfo=None) != value:
        skipped = _(
            "%(time)s does not exist in %(zone)s: the clocks go forward then. Choose another time."
        )
        raise InvalidInput(skipped % {"time": value.strftime("%H:%M"), "zone": where.key})
    return instant


def _list_view(
    request: Request,
    ctx: Ctx,
    error: str = "",
    form: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    sites = {s.id: s.name for s in accounts.list_sites(ctx.db)}
    where = reader_zone(ctx)
    return render_page(
        request,
        "live/list.html",
        ctx,
        status,
        sessions=visible_sessions(ctx),
        sites=sites,
        organiser_sites=organiser_sites(ctx),
        kinds=KIND_LABELS,
        statuses=STATUS_LABELS,
        error=error,
        form=form or {},
        default_time=ctx.now.astimezone(where).strftime(FORM_TIME),
        zone_name=where.key,
    )


@router.get("/live")
def live_list(request: Request, ctx: Annotated[Ctx, gate(LiveAction.LIVE_READ)]) -> Response:
    # A list shows only what decide grants, one session at a time (``_visible``).
    return _list_view(request, ctx)


@router.post("/live")
def live_create(
    request: Request,
    ctx: Annotated[Ctx, gate(LiveAction.LIVE_MANAGE)],
    kind: Annotated[str, Form(max_length=16)],
    title: Annotated[str, Form(max_length=200)],
    site_id: Annotated[int, Form()],
    scheduled_at: Annotated[str, Form(max_length=25)],
    patient_id: Annotated[str, Form(max_length=12)] = "",
    record: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    form = {
        "kind": kind,
        "title": title,
        "site_id": site_id,
        "scheduled_at": scheduled_at,
        "patient_id": patient_id,
        "record": record,
    }
    try:
        live = create_session(
            ctx,
            kind=kind,
            title=title,
            site_id=site_id,
            scheduled_at=local_to_utc(scheduled_at, reader_zone(ctx)),
            patient_id=int(patient_id) if patient_id.strip().isdigit() else None,
            record=bool(record),
        )
    except ConciliumError as exc:
        ctx.db.rollback()
        if exc.status in {401, 403}:
            raise
        return _list_view(request, ctx, exc.detail, form, exc.status)
    return redirect_to(f"/live/{live.id}")


def _session_view(
    request: Request,
    ctx: Ctx,
    live: LiveSession,
    error: str = "",
    status: int = 200,
    move_at: str | None = None,
) -> Response:
    """The session page; ``move_at`` is the start typed in the moving form, kept when the
    move was refused (else the form shows the current start in the reader's zone)."""
    people = {
        p.user_id: ctx.db.get(User, p.user_id) for p in invitations.participants(ctx.db, live)
    }
    where = reader_zone(ctx)
    if move_at is None:
        move_at = live.scheduled_at.astimezone(where).strftime(FORM_TIME)
    return render_page(
        request,
        "live/session.html",
        ctx,
        status,
        live=live,
        kinds=KIND_LABELS,
        statuses=STATUS_LABELS,
        site=ctx.db.get(Site, live.site_id),
        invited=[(p, people.get(p.user_id)) for p in invitations.participants(ctx.db, live)],
        roles={r: ROLE_LABELS.get(r, r) for r in invitations.SESSION_ROLES},
        sources=source_registry.sources(ctx.db, live),
        cameras=direction.cameras(ctx.db, live),
        source_kinds={k: SOURCE_KIND_LABELS.get(k, k) for k in source_registry.SOURCE_KINDS},
        my_role=invitations.role_of(ctx.db, live, ctx.user.id),
        can_manage=may(ctx, live, LiveAction.LIVE_MANAGE),
        can_join=may(ctx, live, LiveAction.LIVE_JOIN),
        can_direct=may(ctx, live, LiveAction.LIVE_DIRECT),
        can_moderate=may(ctx, live, LiveAction.LIVE_MODERATE),
        consent=(
            patients.has_consent(ctx.db, live.patient_id, "teaching")
            if live.patient_id is not None
            else None
        ),
        error=error,
        move_at=move_at,
        zone_name=where.key,
    )


@router.get("/live/{session_id}")
def live_session(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_READ)]
) -> Response:
    live, _decision = authorized_session(ctx, session_id, LiveAction.LIVE_READ)
    return _session_view(request, ctx, live)


def _session_action(request: Request, ctx: Ctx, live: LiveSession, run: Any) -> Response:
    return run_form_action(
        ctx,
        run,
        lambda exc: _session_view(request, ctx, live, exc.detail, exc.status),
        f"/live/{live.id}",
    )


async def _session_step(
    request: Request, ctx: Ctx, live: LiveSession, run: Callable[[], Awaitable[object]]
) -> Response:
    """As :func:`_session_action`, for a step that awaits the media plane: a user error
    shows the session page again with the message; success goes back to it."""
    try:
        await run()
    except ConciliumError as exc:
        await run_in_threadpool(ctx.db.rollback)
        if exc.status in {401, 403, 404}:
            raise
        return await run_in_threadpool(_session_view, request, ctx, live, exc.detail, exc.status)
    return redirect_to(f"/live/{live.id}")


@router.post("/live/{session_id}/invite")
def live_invite(
    request: Request,
    session_id: int,
    ctx: Annotated[Ctx, gate(LiveAction.LIVE_MANAGE)],
    username: Annotated[str, Form(max_length=64)],
    role: Annotated[str, Form(max_length=16)],
) -> Response:
    live, _decision = authorized_session(ctx, session_id, LiveAction.LIVE_MANAGE)

    def run() -> None:
        invitee = accounts.user_by_username(ctx.db, username)
        if invitee is None or invitee.disabled:
            raise InvalidInput(_("No active account is named %(name)s.") % {"name": username})
        invitations.invite(ctx.db, ctx.actor, live, user_id=invitee.id, role=role, now=ctx.now)
        ctx.commit()

    return _session_action(request, ctx, live, run)


@router.post("/live/{session_id}/start")
async def live_start(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_MANAGE)]
) -> Response:
    live, _decision = await run_in_threadpool(
        authorized_session, ctx, session_id, LiveAction.LIVE_MANAGE
    )
    sessions = live_sessions(request)
    return await _session_step(
        request, ctx, live, lambda: sessions.start(ctx.db, ctx.actor, live, ctx.now)
    )


@router.post("/live/{session_id}/end")
async def live_end(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_MANAGE)]
) -> Response:
    live, _decision = await run_in_threadpool(
        authorized_session, ctx, session_id, LiveAction.LIVE_MANAGE
    )
    sessions = live_sessions(request)
    return await _session_step(
        request, ctx, live, lambda: sessions.end(ctx.db, ctx.actor, live, ctx.now)
    )


@router.post("/live/{session_id}/reschedule")
def live_reschedule(
    request: Request,
    session_id: int,
    ctx: Annotated[Ctx, gate(LiveAction.LIVE_MANAGE)],
    scheduled_at: Annotated[str, Form(max_length=25)],
) -> Response:
    """Move a scheduled session to another start, typed in the reader's zone; its invitees
    are sent the updated invitation."""
    live, _decision = authorized_session(ctx, session_id, LiveAction.LIVE_MANAGE)

    def run() -> None:
        at = local_to_utc(scheduled_at, reader_zone(ctx))
        lifecycle.reschedule(ctx.db, ctx.actor, live, scheduled_at=at, now=ctx.now)
        ctx.commit()

    return run_form_action(
        ctx,
        run,
        lambda exc: _session_view(request, ctx, live, exc.detail, exc.status, scheduled_at),
        f"/live/{live.id}",
    )


@router.post("/live/{session_id}/cancel")
async def live_cancel(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_MANAGE)]
) -> Response:
    """Call off a session that has not gone live; its invitees are sent the cancellation."""
    live, _decision = await run_in_threadpool(
        authorized_session, ctx, session_id, LiveAction.LIVE_MANAGE
    )
    sessions = live_sessions(request)

    async def run() -> None:
        lifecycle.check_cancellable(live)
        await sessions.end(ctx.db, ctx.actor, live, ctx.now)

    return await _session_step(request, ctx, live, run)


@router.post("/live/{session_id}/sources")
async def live_add_source(
    request: Request,
    session_id: int,
    ctx: Annotated[Ctx, gate(LiveAction.LIVE_DIRECT)],
    name: Annotated[str, Form(max_length=100)],
    kind: Annotated[str, Form(max_length=16)],
    reference: Line = "",
) -> Response:
    live, _decision = await run_in_threadpool(
        authorized_session, ctx, session_id, LiveAction.LIVE_DIRECT
    )
    sessions = live_sessions(request)

    async def run() -> None:
        await sessions.add_source(
            ctx.db,
            ctx.principal,
            ctx.actor,
            live,
            name=name,
            kind=kind,
            reference=reference,
            now=ctx.now,
        )

    return await _session_step(request, ctx, live, run)


@router.post("/live/{session_id}/cameras")
def live_add_camera(
    request: Request,
    session_id: int,
    ctx: Annotated[Ctx, gate(LiveAction.LIVE_DIRECT)],
    name: Annotated[str, Form(max_length=100)],
    host: Annotated[str, Form(max_length=255)],
    port: Annotated[int, Form()],
    visca_address: Annotated[int, Form()] = 1,
) -> Response:
    live, _decision = authorized_session(ctx, session_id, LiveAction.LIVE_DIRECT)

    def run() -> None:
        direction.add_camera(
            ctx.db,
            ctx.actor,
            live,
            name=name,
            host=host,
            port=port,
            visca_address=visca_address,
            networks=live_sessions(request).device_networks,
        )
        ctx.commit()

    return _session_action(request, ctx, live, run)


def _console(request: Request, ctx: Ctx, live: LiveSession, name: str, **values: Any) -> Response:
    return render_page(
        request,
        f"live/{name}.html",
        ctx,
        live=live,
        kinds=KIND_LABELS,
        roles=ROLE_LABELS,
        my_role=invitations.role_of(ctx.db, live, ctx.user.id) or invitations.DEFAULT_ROLE,
        **values,
    )


@router.get("/live/{session_id}/join")
def live_join_page(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_JOIN)]
) -> Response:
    live, _decision = authorized_session(ctx, session_id, LiveAction.LIVE_JOIN)
    return _console(request, ctx, live, "join", sources=source_registry.sources(ctx.db, live))


@router.get("/live/{session_id}/director")
def live_director_page(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_DIRECT)]
) -> Response:
    live, _decision = authorized_session(ctx, session_id, LiveAction.LIVE_DIRECT)
    return _console(
        request,
        ctx,
        live,
        "director",
        sources=source_registry.sources(ctx.db, live),
        source_states=source_feeds(request.app).statuses(live.id),
        cameras=direction.cameras(ctx.db, live),
    )


@router.get("/live/{session_id}/moderator")
def live_moderator_page(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_MODERATE)]
) -> Response:
    live, _decision = authorized_session(ctx, session_id, LiveAction.LIVE_MODERATE)
    return _console(request, ctx, live, "moderator")


@router.get("/live/{session_id}/watch")
def live_watch_page(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_READ)]
) -> Response:
    live, _decision = authorized_session(ctx, session_id, LiveAction.LIVE_READ)
    runtime = live_runtime(request.app)
    over_hls = joining.watches_over_hls(
        live.kind,
        invitations.role_of(ctx.db, live, ctx.user.id) or invitations.DEFAULT_ROLE,
        runtime.webrtc_receivers(live.janus_room_id, ctx.now.timestamp()),
        request.app.state.runtime.settings.live_webrtc_viewers,
    )
    return with_media_policy(_console(request, ctx, live, "watch", over_hls=over_hls))


def with_media_policy(response: Response) -> Response:
    """A page that may play HLS through hls.js keeps :data:`MEDIA_POLICY`."""
    response.headers["content-security-policy"] = MEDIA_POLICY
    return response
