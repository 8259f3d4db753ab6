"""The JSON API of live sessions under ``/api/v1/live`` (described in the OpenAPI
document): schedule, invite, move or call off, go live and end, join and leave, the feeds
and the program, the cameras and their director, the fed sources' state.

Every route declares its action with ``gate`` and asks the policy about the very session it
touches; going live, the program and the end go through the sessions service
(:class:`concilium.live.sessions.LiveSessions`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, Field
from starlette.concurrency import run_in_threadpool

from concilium.live import direction, invitations, joining, lifecycle
from concilium.live.actions import LiveAction
from concilium.live.credentials import RoomCredential
from concilium.live.ptz import DirectorLockHeld, NotDirector, PtzError
from concilium.live.tables import LiveSession
from concilium.live.web.access import (
    authorized_session,
    create_session,
    end_transaction,
    may,
    visible_sessions,
)
from concilium.live.web.janus_proxy import JANUS_PATH
from concilium.live.web.state import live_runtime, live_sessions, media_of, source_feeds
from concilium.platform.errors import Conflict
from concilium.platform.i18n import _
from concilium.web.context import Ctx, gate

router = APIRouter(prefix="/api/v1/live", tags=["live"])
"""The JSON API of live sessions (described in the OpenAPI document)."""


class SessionIn(BaseModel):
    kind: str = Field(pattern="^(supervision|broadcast|conference)$")
    title: str = Field(max_length=200)
    site_id: int
    scheduled_at: AwareDatetime
    patient_id: int | None = None
    record: bool = False


class SessionOut(BaseModel):
    id: int
    kind: str
    title: str
    site_id: int
    scheduled_at: datetime
    status: str
    patient_id: int | None
    record: bool
    room: int | None
    program_feed: int | None = None

    @classmethod
    def of(cls, live: LiveSession, program_feed: int | None = None) -> SessionOut:
        return cls(
            id=live.id,
            kind=live.kind,
            title=live.title,
            site_id=live.site_id,
            scheduled_at=live.scheduled_at,
            status=live.status,
            patient_id=live.patient_id,
            record=live.record,
            room=live.janus_room_id,
            program_feed=program_feed,
        )


class JoinOut(BaseModel):
    room: int
    token: str
    expires_at: float
    role: str
    may_publish: bool
    simulcast: bool
    api_url: str
    display: str


class FeedOut(BaseModel):
    id: int
    display: str


class ProgramIn(BaseModel):
    feed: int | None


class PtzIn(BaseModel):
    camera_id: int
    move: str = Field(max_length=20)
    speed: int = Field(default=8, ge=1, le=23)
    preset: int = Field(default=0, ge=0, le=127)


class PtzOut(BaseModel):
    command: str
    outcome: str
    attempts: int


class ControlOut(BaseModel):
    director: str | None
    until: float | None


@router.get("/sessions")
def api_list(ctx: Annotated[Ctx, gate(LiveAction.LIVE_READ)]) -> list[SessionOut]:
    return [SessionOut.of(s) for s in visible_sessions(ctx)]


@router.post("/sessions", status_code=201)
def api_create(body: SessionIn, ctx: Annotated[Ctx, gate(LiveAction.LIVE_MANAGE)]) -> SessionOut:
    live = create_session(
        ctx,
        kind=body.kind,
        title=body.title,
        site_id=body.site_id,
        scheduled_at=body.scheduled_at,
        patient_id=body.patient_id,
        record=body.record,
    )
    return SessionOut.of(live)


@router.get("/sessions/{session_id}")
def api_read(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_READ)]
) -> SessionOut:
    live, _decision = authorized_session(ctx, session_id, LiveAction.LIVE_READ)
    return SessionOut.of(live, live_runtime(request.app).room(live.id).program_feed)


class InvitationIn(BaseModel):
    user_id: int
    role: str = Field(pattern="^(director|moderator|presenter|participant|viewer)$")


class InvitationOut(BaseModel):
    user_id: int
    role: str


@router.post("/sessions/{session_id}/invitations", status_code=201)
def api_invite(
    session_id: int, body: InvitationIn, ctx: Annotated[Ctx, gate(LiveAction.LIVE_MANAGE)]
) -> InvitationOut:
    """Invite a person of any site in a role (again: change their role)."""
    live, _decision = authorized_session(ctx, session_id, LiveAction.LIVE_MANAGE)
    invited = invitations.invite(
        ctx.db, ctx.actor, live, user_id=body.user_id, role=body.role, now=ctx.now
    )
    ctx.commit()
    return InvitationOut(user_id=invited.user_id, role=invited.role)


@router.post("/sessions/{session_id}/start")
async def api_start(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_MANAGE)]
) -> SessionOut:
    """Go live; refused (409) when the patient shown has not consented to teaching."""
    live, _decision = await run_in_threadpool(
        authorized_session, ctx, session_id, LiveAction.LIVE_MANAGE
    )
    await live_sessions(request).start(ctx.db, ctx.actor, live, ctx.now)
    return SessionOut.of(live)


@router.post("/sessions/{session_id}/end")
async def api_end(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_MANAGE)]
) -> SessionOut:
    live, _decision = await run_in_threadpool(
        authorized_session, ctx, session_id, LiveAction.LIVE_MANAGE
    )
    await live_sessions(request).end(ctx.db, ctx.actor, live, ctx.now)
    return SessionOut.of(live)


class RescheduleIn(BaseModel):
    scheduled_at: AwareDatetime
    title: str | None = Field(default=None, max_length=200)


@router.post("/sessions/{session_id}/reschedule")
def api_reschedule(
    session_id: int, body: RescheduleIn, ctx: Annotated[Ctx, gate(LiveAction.LIVE_MANAGE)]
) -> SessionOut:
    """Move a scheduled session to a time to come (and retitle it): its invitees are sent
    the updated invitation. A time already past is refused (422), a session that has
    started too (409)."""
    live, _decision = authorized_session(ctx, session_id, LiveAction.LIVE_MANAGE)
    lifecycle.reschedule(
        ctx.db, ctx.actor, live, scheduled_at=body.scheduled_at, now=ctx.now, title=body.title
    )
    ctx.commit()
    return SessionOut.of(live)


@router.post("/sessions/{session_id}/cancel")
async def api_cancel(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_MANAGE)]
) -> SessionOut:
    """Call off a session that has not gone live (409 otherwise): its invitees are sent
    the cancellation."""
    live, _decision = await run_in_threadpool(
        authorized_session, ctx, session_id, LiveAction.LIVE_MANAGE
    )
    lifecycle.check_cancellable(live)
    await live_sessions(request).end(ctx.db, ctx.actor, live, ctx.now)
    return SessionOut.of(live)


@router.post("/sessions/{session_id}/join")
async def api_join(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_JOIN)]
) -> JoinOut:
    live, _decision = await run_in_threadpool(
        authorized_session, ctx, session_id, LiveAction.LIVE_JOIN
    )
    may_publish = await run_in_threadpool(may, ctx, live, LiveAction.LIVE_PUBLISH)
    media = media_of(request)
    end_transaction(ctx)
    grant = await joining.join(ctx.db, media, ctx.actor, live, ctx.now, may_publish=may_publish)
    ctx.commit()
    credential: RoomCredential = grant.credential
    publishing = live_runtime(request.app).publishing_tokens
    publishing.intersection_update(media.book.credentials)  # forget revoked credentials
    if grant.may_publish:
        publishing.add(credential.token)
    return JoinOut(
        room=credential.room_id,
        token=credential.token,
        expires_at=credential.expires_at,
        role=grant.role,
        may_publish=grant.may_publish,
        simulcast=grant.simulcast,
        api_url=JANUS_PATH,
        display=ctx.user.full_name,
    )


@router.post("/sessions/{session_id}/leave", status_code=204)
async def api_leave(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_JOIN)]
) -> Response:
    live, _decision = await run_in_threadpool(
        authorized_session, ctx, session_id, LiveAction.LIVE_JOIN
    )
    end_transaction(ctx)
    await joining.leave(ctx.db, live_runtime(request.app).media, ctx.actor, live, ctx.now)
    ctx.commit()
    return Response(status_code=204)


@router.get("/sessions/{session_id}/feeds")
async def api_feeds(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_JOIN)]
) -> list[FeedOut]:
    """Publishers in the session's room right now (VideoRoom ``listparticipants``)."""
    live, _decision = await run_in_threadpool(
        authorized_session, ctx, session_id, LiveAction.LIVE_JOIN
    )
    end_transaction(ctx)
    if live.janus_room_id is None:
        return []
    media = media_of(request)
    if live.janus_room_id not in media.registry.rooms:
        return []
    data = await media.videoroom.handle.request(
        {"request": "listparticipants", "room": live.janus_room_id}
    )
    return [
        FeedOut(id=int(p["id"]), display=str(p.get("display", "")))
        for p in data.get("participants", [])
        if p.get("publisher")
    ]


@router.post("/sessions/{session_id}/program")
async def api_program(
    request: Request,
    session_id: int,
    body: ProgramIn,
    ctx: Annotated[Ctx, gate(LiveAction.LIVE_DIRECT)],
) -> SessionOut:
    """Put a feed on program: every viewer switches to it."""
    live, _decision = await run_in_threadpool(
        authorized_session, ctx, session_id, LiveAction.LIVE_DIRECT
    )
    await live_sessions(request).switch_program(ctx.db, ctx.actor, live, body.feed, ctx.now)
    return SessionOut.of(live, body.feed)


def _control_out(request: Request, live: LiveSession, now: float) -> ControlOut:
    lock = live_runtime(request.app).lock(live.id)
    holder = lock.current(now)
    return ControlOut(director=holder, until=lock.until if holder else None)


@router.post("/sessions/{session_id}/control")
def api_take_control(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_DIRECT)]
) -> ControlOut:
    """Take (or renew) control of the cameras."""
    live, _decision = authorized_session(ctx, session_id, LiveAction.LIVE_DIRECT)
    now = ctx.now.timestamp()
    try:
        direction.take_control(
            ctx.db, ctx.actor, live, live_runtime(request.app).lock(live.id), now
        )
    except DirectorLockHeld as exc:
        held = _("the cameras are directed by %(holder)s") % {"holder": exc.holder}
        raise Conflict(held) from exc
    ctx.commit()
    return _control_out(request, live, now)


@router.delete("/sessions/{session_id}/control")
def api_release_control(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_DIRECT)]
) -> ControlOut:
    live, _decision = authorized_session(ctx, session_id, LiveAction.LIVE_DIRECT)
    now = ctx.now.timestamp()
    try:
        direction.release_control(
            ctx.db, ctx.actor, live, live_runtime(request.app).lock(live.id), now
        )
    except NotDirector as exc:
        raise Conflict(_("you do not direct the cameras")) from exc
    ctx.commit()
    return _control_out(request, live, now)


@router.post("/sessions/{session_id}/ptz")
async def api_ptz(
    request: Request,
    session_id: int,
    body: PtzIn,
    ctx: Annotated[Ctx, gate(LiveAction.LIVE_DIRECT)],
) -> PtzOut:
    """Move a camera: only the director holding control, every command audited."""
    live, _decision = await run_in_threadpool(
        authorized_session, ctx, session_id, LiveAction.LIVE_DIRECT
    )
    camera = direction.get_camera(ctx.db, live, body.camera_id)
    command = direction.ptz_command(body.move, speed=body.speed, preset=body.preset)
    host, port = direction.camera_address(camera, live_sessions(request).device_networks)
    end_transaction(ctx)
    live_state = live_runtime(request.app)
    client = await live_state.camera(body.camera_id, host, port)
    try:
        record = await direction.drive_camera(
            ctx.db, ctx.actor, live, live_state.lock(live.id), client, command, ctx.now.timestamp()
        )
    except NotDirector as exc:
        raise Conflict(_("take control of the cameras first")) from exc
    ctx.commit()
    if not record.ok:
        outcome = (
            _("the camera did not answer in time")
            if record.outcome == "timeout"
            else _("the camera refused the command (%(error)s)")
            % {"error": record.error.name if record.error is not None else record.outcome}
        )
        # The technical record (command, camera address) goes to the audit, not the reader.
        raise Conflict(outcome) from PtzError(record)
    return PtzOut(command=record.command, outcome=record.outcome, attempts=record.attempts)


class SourceStateOut(BaseModel):
    id: int
    name: str
    kind: str
    state: str
    detail: str
    mountpoint: int | None
    codec: str
    frame_rate: float | None


@router.get("/sessions/{session_id}/sources")
def api_source_states(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_JOIN)]
) -> list[SourceStateOut]:
    """The fed sources of a live session, their state and the mountpoint to watch."""
    live, _decision = authorized_session(ctx, session_id, LiveAction.LIVE_JOIN)
    states = source_feeds(request.app).statuses(live.id)
    return [
        SourceStateOut(
            id=s.source_id,
            name=s.name,
            kind=s.kind,
            state=str(s.state),
            detail=s.detail,
            mountpoint=s.mountpoint_id,
            codec=s.codec,
            frame_rate=s.frame_rate,
        )
        for s in states.values()
    ]


class SourceIn(BaseModel):
    name: str = Field(max_length=100)
    kind: str = Field(max_length=16)
    reference: str = Field(default="", max_length=500)


class SourceOut(BaseModel):
    id: int
    name: str
    kind: str
    reference: str
    """An IP camera's URL with its password masked, or a cine loop's UIDs."""


@router.post("/sessions/{session_id}/sources", status_code=201)
async def api_add_source(
    request: Request,
    session_id: int,
    body: SourceIn,
    ctx: Annotated[Ctx, gate(LiveAction.LIVE_DIRECT)],
) -> SourceOut:
    """Name a source the director may put on program; a cine loop is authorised for the
    caller (who must be able to read its study), a camera URL must be one the server may
    call. Fed at once if the session is live."""
    live, _decision = await run_in_threadpool(
        authorized_session, ctx, session_id, LiveAction.LIVE_DIRECT
    )
    source = await live_sessions(request).add_source(
        ctx.db,
        ctx.principal,
        ctx.actor,
        live,
        name=body.name,
        kind=body.kind,
        reference=body.reference,
        now=ctx.now,
    )
    return SourceOut(id=source.id, name=source.name, kind=source.kind, reference=source.reference)
