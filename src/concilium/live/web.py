"""HTTP and websocket adapter of the live service: pages under ``/live``, JSON under
``/api/v1/live``, the session websocket ``/live/{session_id}/ws`` and the Janus API proxy
``/janus``.

Every route declares its action with ``gate`` and asks the policy about the very session it
touches (:func:`concilium.live.service.session_target`). The websocket authenticates with the
session cookie and is authorised by the same policy. The proxy lets browsers reach the Janus
API (and only the API, never the Admin API) through Concilium's own origin, so the strict
content security policy holds and Janus stays on loopback.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from concilium.config import Settings
from concilium.imaging.dicomweb import archive_of
from concilium.live import protocol, service, sources
from concilium.live.actions import LiveAction
from concilium.live.credentials import RoomCredential
from concilium.live.hls import HlsBroadcasts
from concilium.live.media import LiveMedia
from concilium.live.ptz import DirectorLockHeld, NotDirector, PtzError
from concilium.live.runtime import LiveRuntime, Member, SessionRoom, media_lifespan
from concilium.live.sessions import LiveSessions, MediaOutputs
from concilium.live.tables import LiveMessage, LiveSession, LiveSource, LiveStroke
from concilium.platform import accounts, audit, patients, sharing
from concilium.platform.accounts import principal_for
from concilium.platform.authn import authenticate
from concilium.platform.errors import (
    ConciliumError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from concilium.platform.policy import Action, Decision, PlatformAction, Principal, Target, decide
from concilium.platform.tables import Site, User
from concilium.web.context import SESSION_COOKIE, Ctx, gate, record_refusal, runtime_of
from concilium.web.pages import redirect_to, render_page, run_form_action

__all__ = ["JANUS_PATH", "api_router", "install_media_server", "live_runtime", "router"]

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)
"""Pages, the session websocket and the Janus proxy."""
api_router = APIRouter(prefix="/api/v1/live", tags=["live"])
"""The JSON API of live sessions (described in the OpenAPI document)."""

JANUS_PATH = "/janus"
"""Where browsers reach the Janus API through Concilium."""
KIND_LABELS = {
    "supervision": "Supervision",
    "broadcast": "Broadcast",
    "conference": "Conference",
}
_JANUS_TAIL = re.compile(r"^(\d{1,20})(/\d{1,20})?$")
_BROWSER_VIDEOROOM_REQUESTS = frozenset(
    {"join", "configure", "publish", "unpublish", "start", "pause", "leave", "switch", "update"}
)
"""VideoRoom requests a browser needs; the proxy refuses the others (list, create, ...)."""
_BROWSER_STREAMING_REQUESTS = frozenset({"watch", "switch"})
"""Streaming requests naming a mountpoint (``id``); ``start``, ``pause`` and ``configure``
act on the handle's own mountpoint and pass with the VideoRoom ones."""


class MediaUnavailable(ConciliumError):
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


def _media(request: Request | WebSocket) -> LiveMedia:
    media = live_runtime(request.app).media
    if media is None:
        raise MediaUnavailable("the media server is not running; ask an engineer")
    return media


# --- authorisation helpers -----------------------------------------------------------------


def authorized_session(ctx: Ctx, session_id: int, action: Action) -> tuple[LiveSession, Decision]:
    """The session, if the caller may perform ``action`` on it (404 and 403 alike audited)."""
    live = ctx.db.get(LiveSession, session_id)
    if live is None:
        record_refusal(ctx.db, ctx.actor, action, Target("live_session", str(session_id)), "none")
        raise NotFound(f"live session {session_id} not found")
    target = service.session_target(ctx.db, live, action, ctx.now)
    return live, ctx.authorize(action, target)


def _end_transaction(ctx: Ctx) -> None:
    """End the request's transaction before awaiting the media plane or a camera.

    On SQLite every transaction holds the write lock from its start, and an async handler
    that awaited while holding it would stall every other request of the event loop. Nothing
    was written yet; committing (not rolling back) keeps the loaded objects usable without
    a reload that would open a new transaction.
    """
    ctx.db.commit()


def _may(ctx: Ctx, live: LiveSession, action: Action) -> bool:
    return decide(
        ctx.principal, action, service.session_target(ctx.db, live, action, ctx.now)
    ).allowed


def _visible(ctx: Ctx) -> list[LiveSession]:
    sites = ctx.visible_sites(LiveAction.LIVE_READ) or frozenset()
    invited = sharing.shared_resource_ids(
        ctx.db, service.RESOURCE_KIND, ctx.user.id, frozenset(), ctx.now
    )
    found = service.list_sessions(ctx.db, sites, invited)
    return [s for s in found if _may(ctx, s, LiveAction.LIVE_READ)]


def _organiser_sites(ctx: Ctx) -> list[tuple[int, str]]:
    allowed = ctx.visible_sites(LiveAction.LIVE_MANAGE) or frozenset()
    return [(s.id, s.name) for s in accounts.list_sites(ctx.db) if s.id in allowed]


def _parse_when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInput("the time is written YYYY-MM-DDTHH:MM (UTC)") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _create(
    ctx: Ctx,
    *,
    kind: str,
    title: str,
    site_id: int,
    scheduled_at: datetime,
    patient_id: int | None,
    record: bool,
) -> LiveSession:
    ctx.authorize(LiveAction.LIVE_MANAGE, Target("live_session", site_ids=frozenset({site_id})))
    if patient_id is not None:
        # Showing a patient to others needs the right to see that patient oneself.
        patient = patients.get_patient(ctx.db, patient_id)
        ctx.authorize(
            PlatformAction.PATIENT_READ, patients.patient_target(ctx.db, patient, ctx.now)
        )
    live = service.create_session(
        ctx.db,
        ctx.actor,
        kind=kind,
        title=title,
        site_id=site_id,
        scheduled_at=scheduled_at,
        now=ctx.now,
        patient_id=patient_id,
        record=record,
    )
    ctx.commit()
    return live


# --- JSON API ------------------------------------------------------------------------------


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


@api_router.get("/sessions")
def api_list(ctx: Annotated[Ctx, gate(LiveAction.LIVE_READ)]) -> list[SessionOut]:
    return [SessionOut.of(s) for s in _visible(ctx)]


@api_router.post("/sessions", status_code=201)
def api_create(body: SessionIn, ctx: Annotated[Ctx, gate(LiveAction.LIVE_MANAGE)]) -> SessionOut:
    live = _create(
        ctx,
        kind=body.kind,
        title=body.title,
        site_id=body.site_id,
        scheduled_at=body.scheduled_at,
        patient_id=body.patient_id,
        record=body.record,
    )
    return SessionOut.of(live)


@api_router.get("/sessions/{session_id}")
def api_read(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_READ)]
) -> SessionOut:
    live, _ = authorized_session(ctx, session_id, LiveAction.LIVE_READ)
    return SessionOut.of(live, live_runtime(request.app).room(live.id).program_feed)


class InvitationIn(BaseModel):
    user_id: int
    role: str = Field(pattern="^(director|moderator|presenter|participant|viewer)$")


class InvitationOut(BaseModel):
    user_id: int
    role: str


@api_router.post("/sessions/{session_id}/invitations", status_code=201)
def api_invite(
    session_id: int, body: InvitationIn, ctx: Annotated[Ctx, gate(LiveAction.LIVE_MANAGE)]
) -> InvitationOut:
    """Invite a person of any site in a role (again: change their role)."""
    live, _ = authorized_session(ctx, session_id, LiveAction.LIVE_MANAGE)
    invited = service.invite(
        ctx.db, ctx.actor, live, user_id=body.user_id, role=body.role, now=ctx.now
    )
    ctx.commit()
    return InvitationOut(user_id=invited.user_id, role=invited.role)


@api_router.post("/sessions/{session_id}/start")
async def api_start(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_MANAGE)]
) -> SessionOut:
    """Go live; refused (409) when the patient shown has not consented to teaching."""
    live, _ = await run_in_threadpool(authorized_session, ctx, session_id, LiveAction.LIVE_MANAGE)
    await live_sessions(request).start(ctx.db, ctx.actor, live, ctx.now)
    return SessionOut.of(live)


@api_router.post("/sessions/{session_id}/end")
async def api_end(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_MANAGE)]
) -> SessionOut:
    live, _ = await run_in_threadpool(authorized_session, ctx, session_id, LiveAction.LIVE_MANAGE)
    await live_sessions(request).end(ctx.db, ctx.actor, live, ctx.now)
    return SessionOut.of(live)


@api_router.post("/sessions/{session_id}/join")
async def api_join(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_JOIN)]
) -> JoinOut:
    live, _ = await run_in_threadpool(authorized_session, ctx, session_id, LiveAction.LIVE_JOIN)
    media = _media(request)
    _end_transaction(ctx)
    grant = await service.join(ctx.db, media, ctx.actor, live, ctx.now)
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


@api_router.post("/sessions/{session_id}/leave", status_code=204)
async def api_leave(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_JOIN)]
) -> Response:
    live, _ = await run_in_threadpool(authorized_session, ctx, session_id, LiveAction.LIVE_JOIN)
    _end_transaction(ctx)
    await service.leave(ctx.db, live_runtime(request.app).media, ctx.actor, live, ctx.now)
    ctx.commit()
    return Response(status_code=204)


@api_router.get("/sessions/{session_id}/feeds")
async def api_feeds(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_JOIN)]
) -> list[FeedOut]:
    """Publishers in the session's room right now (VideoRoom ``listparticipants``)."""
    live, _ = await run_in_threadpool(authorized_session, ctx, session_id, LiveAction.LIVE_JOIN)
    _end_transaction(ctx)
    if live.janus_room_id is None:
        return []
    media = _media(request)
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


@api_router.post("/sessions/{session_id}/program")
async def api_program(
    request: Request,
    session_id: int,
    body: ProgramIn,
    ctx: Annotated[Ctx, gate(LiveAction.LIVE_DIRECT)],
) -> SessionOut:
    """Put a feed on program: every viewer switches to it."""
    live, _ = await run_in_threadpool(authorized_session, ctx, session_id, LiveAction.LIVE_DIRECT)
    await live_sessions(request).switch_program(ctx.db, ctx.actor, live, body.feed, ctx.now)
    return SessionOut.of(live, body.feed)


def _control_out(request: Request, live: LiveSession, now: float) -> ControlOut:
    lock = live_runtime(request.app).lock(live.id)
    holder = lock.current(now)
    return ControlOut(director=holder, until=lock.until if holder else None)


@api_router.post("/sessions/{session_id}/control")
def api_take_control(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_DIRECT)]
) -> ControlOut:
    """Take (or renew) control of the cameras."""
    live, _ = authorized_session(ctx, session_id, LiveAction.LIVE_DIRECT)
    now = ctx.now.timestamp()
    try:
        service.take_control(ctx.db, ctx.actor, live, live_runtime(request.app).lock(live.id), now)
    except DirectorLockHeld as exc:
        raise Conflict(f"the cameras are directed by {exc.holder}") from exc
    ctx.commit()
    return _control_out(request, live, now)


@api_router.delete("/sessions/{session_id}/control")
def api_release_control(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_DIRECT)]
) -> ControlOut:
    live, _ = authorized_session(ctx, session_id, LiveAction.LIVE_DIRECT)
    now = ctx.now.timestamp()
    try:
        service.release_control(
            ctx.db, ctx.actor, live, live_runtime(request.app).lock(live.id), now
        )
    except NotDirector as exc:
        raise Conflict("you do not direct the cameras") from exc
    ctx.commit()
    return _control_out(request, live, now)


@api_router.post("/sessions/{session_id}/ptz")
async def api_ptz(
    request: Request,
    session_id: int,
    body: PtzIn,
    ctx: Annotated[Ctx, gate(LiveAction.LIVE_DIRECT)],
) -> PtzOut:
    """Move a camera: only the director holding control, every command audited."""
    live, _ = await run_in_threadpool(authorized_session, ctx, session_id, LiveAction.LIVE_DIRECT)
    camera = service.get_camera(ctx.db, live, body.camera_id)
    command = service.ptz_command(body.move, speed=body.speed, preset=body.preset)
    host, port = camera.host, camera.port
    _end_transaction(ctx)
    live_state = live_runtime(request.app)
    client = await live_state.camera(body.camera_id, host, port)
    try:
        record = await service.drive_camera(
            ctx.db, ctx.actor, live, live_state.lock(live.id), client, command, ctx.now.timestamp()
        )
    except NotDirector as exc:
        raise Conflict("take control of the cameras first") from exc
    ctx.commit()
    if not record.ok:
        raise Conflict(str(PtzError(record)))
    return PtzOut(command=record.command, outcome=record.outcome, attempts=record.attempts)


# --- Janus API proxy -----------------------------------------------------------------------


def credential_for(media: LiveMedia | None, user_id: int, token: str) -> RoomCredential:
    """The caller's own, unexpired media credential named by ``token``; refused otherwise."""
    credential = media.book.credentials.get(token) if media is not None and token else None
    if (
        media is None
        or credential is None
        or credential.user_id != str(user_id)
        or credential.expired(media.clock())
    ):
        raise Forbidden("no media credential of yours; join the session again")
    return credential


def check_janus_request(
    body: dict[str, Any],
    credential: RoomCredential,
    *,
    may_publish: bool,
    mountpoints: frozenset[int] = frozenset(),
) -> None:
    """Only what a browser in its own room needs goes through; only those whose role in the
    session sends media may join as a publisher (a viewer's credential receives only).
    Streaming requests may name only ``mountpoints``, the fed sources of that session."""
    if body.get("janus") != "message":
        return
    request = body.get("body")
    if not isinstance(request, dict):
        raise Forbidden("plugin message without a body")
    if request.get("request") in _BROWSER_STREAMING_REQUESTS:
        if request.get("id") not in mountpoints:
            raise Forbidden("this source is not one of your session's")
        return
    if request.get("request") not in _BROWSER_VIDEOROOM_REQUESTS:
        raise Forbidden("this media request is not available to browsers")
    if "room" in request and request["room"] != credential.room_id:
        raise Forbidden("your media credential is for another room")
    publishing = request.get("request") == "publish" or (
        request.get("request") == "join" and request.get("ptype") != "subscriber"
    )
    if publishing and not may_publish:
        raise Forbidden("your role in this session receives media only")


@router.api_route(JANUS_PATH, methods=["POST"])
@router.api_route(JANUS_PATH + "/{tail:path}", methods=["GET", "POST"])
async def janus_proxy(
    request: Request, ctx: Annotated[Ctx, gate(LiveAction.LIVE_JOIN)], tail: str = ""
) -> Response:
    """Forward a Janus API request carrying one of the caller's own media credentials."""
    # The long poll may last 30 s.
    _end_transaction(ctx)
    if tail and not _JANUS_TAIL.match(tail):
        raise NotFound("no such media path")
    body: dict[str, Any] = {}
    if request.method == "POST":
        try:
            parsed = json.loads(await request.body() or b"{}")
        except ValueError:
            parsed = None
        # Without a readable token there is nothing to check the caller against.
        body = parsed if isinstance(parsed, dict) else {}
        token = str(body.get("token", ""))
    else:
        token = request.query_params.get("token", "")
    credential = credential_for(live_runtime(request.app).media, ctx.user.id, token)
    may_publish = credential.token in live_runtime(request.app).publishing_tokens
    check_janus_request(
        body,
        credential,
        may_publish=may_publish,
        mountpoints=source_feeds(request.app).mountpoints(credential.room_id),
    )
    url = live_runtime(request.app).api_url + (f"/{tail}" if tail else "")
    http = live_runtime(request.app).proxy_client()
    if request.method == "POST":
        answer = await http.post(url, json=body)
    else:
        params = {"token": token, "maxev": request.query_params.get("maxev", "1")}
        answer = await http.get(url, params=params)
    return Response(answer.content, answer.status_code, media_type="application/json")


# --- websocket -----------------------------------------------------------------------------


def _message_event(message: LiveMessage, names: dict[int, str]) -> dict[str, Any]:
    return {
        "type": message.kind,
        "id": message.id,
        "author": names.get(message.user_id, "?"),
        "author_id": message.user_id,
        "body": message.body,
        "status": message.status,
        "answer": message.answer,
        "merged_into": message.merged_into_id,
        "at": message.created_at.isoformat(),
    }


def question_visible(status: str, author_id: int, member: Member) -> bool:
    """Moderators see every question; others see approved and answered ones, and their own."""
    return member.moderator or author_id == member.user_id or status in ("approved", "answered")


@dataclass(frozen=True)
class Peer:
    """Who is on the other end of a session websocket, and what the policy lets them do
    there (asked again for every message)."""

    user_id: int
    username: str
    full_name: str
    session_id: int
    may_chat: bool
    may_moderate: bool
    may_draw: bool


def _socket_actor(peer: Peer, ip: str) -> audit.Actor:
    return audit.Actor(peer.user_id, peer.username, ip=ip)


def authorize_peer(
    db: Session, settings: Settings, cookie: str, session_id: int, now: datetime, ip: str
) -> Peer:
    """Authenticate by the session cookie and authorise by the policy, as ``gate`` does for
    a request; run at connection and again for every message, so signing out, an expired
    session or a withdrawn invitation stops a connected socket too."""
    target = Target(service.RESOURCE_KIND, str(session_id))
    try:
        identity = authenticate(db, settings, now, bearer=None, cookie=cookie)
    except Unauthenticated:
        anonymous = audit.Actor(None, "", ip=ip)
        record_refusal(db, anonymous, LiveAction.LIVE_READ, target, "not authenticated")
        raise Forbidden("sign in first") from None
    user = identity.user
    principal: Principal = principal_for(db, user, now)
    actor = audit.Actor(user.id, user.username, role=principal.primary_role(), ip=ip)
    live = service.find_session(db, session_id)
    if live is None:
        record_refusal(db, actor, LiveAction.LIVE_READ, target, "no such session")
        raise NotFound(f"live session {session_id} not found")

    def allowed(action: Action) -> bool:
        return decide(principal, action, service.session_target(db, live, action, now)).allowed

    if not allowed(LiveAction.LIVE_READ):
        record_refusal(db, actor, LiveAction.LIVE_READ, target, "live.read not permitted")
        raise Forbidden("you are not invited to this session")
    return Peer(
        user_id=user.id,
        username=user.username,
        full_name=user.full_name,
        session_id=live.id,
        may_chat=allowed(LiveAction.LIVE_CHAT),
        may_moderate=allowed(LiveAction.LIVE_MODERATE),
        may_draw=allowed(LiveAction.LIVE_DRAW),
    )


def _hello(db: Session, peer: Peer) -> dict[str, Any]:
    """What a newcomer needs: its rights, the chat so far, the questions it may see and the
    drawings since the last clear."""
    live = service.get_session(db, peer.session_id)
    names = _names(db, live)
    member = Member(socket=_NullSocket(), user_id=peer.user_id, moderator=peer.may_moderate)
    return {
        "type": "hello",
        "me": peer.user_id,
        "may_chat": peer.may_chat,
        "may_moderate": peer.may_moderate,
        "may_draw": peer.may_draw,
        "chat": [_message_event(m, names) for m in service.chat_history(db, live)],
        "questions": [
            _message_event(q, names)
            for q in service.questions(db, live)
            if question_visible(q.status, q.user_id, member)
        ],
        "strokes": [_stroke_event(s) for s in service.strokes(db, live)],
    }


class _Revoked(Exception):
    """The person behind a connected socket may no longer be there."""


class _NullSocket:
    async def send_text(self, data: str) -> None:
        return None


def _names(db: Session, live: LiveSession) -> dict[int, str]:
    ids = {p.user_id for p in service.participants(db, live)}
    ids |= {m.user_id for m in service.chat_history(db, live)}
    ids |= {q.user_id for q in service.questions(db, live)}
    return {u.id: u.full_name for u in (db.get(User, i) for i in ids) if u is not None}


def _stroke_event(stroke: LiveStroke) -> dict[str, Any]:
    return {
        "type": "stroke",
        "id": stroke.id,
        "author_id": stroke.user_id,
        "points": stroke.points,
        "color": stroke.color,
        "width": stroke.width,
        "source_id": stroke.source_id,
    }


Audience = tuple[int, str, str] | None
"""Who sees an event: everyone (None), or for a question its (author, status, previous
status), from which :func:`question_visible` decides per member."""


def _apply(
    db: Session, peer: Peer, message: protocol.ClientMessage, now: datetime, ip: str
) -> list[tuple[dict[str, Any], Audience]]:
    """Run one client message against the domain; the events to fan out, with who sees them."""
    live = service.get_session(db, peer.session_id)
    if live.status == "ended":
        raise Conflict("this session has ended")
    names = {peer.user_id: peer.full_name}
    everyone: Audience = None
    if isinstance(message, protocol.Chat):
        if not peer.may_chat:
            raise Forbidden("viewers do not chat; ask a question instead")
        chat = service.post_chat(db, peer.user_id, live, message.body, now)
        return [(_message_event(chat, names), everyone)]
    if isinstance(message, protocol.Question):
        question = service.submit_question(db, peer.user_id, live, message.body, now)
        return [(_message_event(question, names), (question.user_id, question.status, ""))]
    if isinstance(message, protocol.Moderate):
        if not peer.may_moderate:
            raise Forbidden("only moderators moderate questions")
        before = service.get_question(db, live, message.question_id).status
        question = service.moderate(
            db,
            _socket_actor(peer, ip),
            live,
            message.question_id,
            message.action,
            now,
            answer=message.answer,
            into=message.into,
        )
        author = db.get(User, question.user_id)
        names[question.user_id] = author.full_name if author else "?"
        return [(_message_event(question, names), (question.user_id, question.status, before))]
    if not peer.may_draw:
        raise Forbidden("only presenters and the director draw on the picture")
    if isinstance(message, protocol.Stroke):
        stroke = service.add_stroke(
            db,
            peer.user_id,
            live,
            points=message.points,
            color=message.color,
            width=message.width,
            source_id=message.source_id,
            now=now,
        )
        return [(_stroke_event(stroke), everyone)]
    service.clear_strokes(db, peer.user_id, live, now)
    return [({"type": "clear", "by": peer.user_id}, everyone)]


def _audience(rule: Audience) -> Callable[[Member], bool]:
    if rule is None:
        return lambda member: True
    author, status, before = rule

    def visible(member: Member) -> bool:
        # Those who saw an approved question are told when it is rejected or merged.
        return question_visible(status, author, member) or before == "approved"

    return visible


def _same_origin(websocket: WebSocket) -> bool:
    """Browsers send Origin on websockets; another site's page must not ride the cookie."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    host = websocket.headers.get("host", "")
    return re.sub(r"^[a-z]+://", "", origin.lower()) == host.lower()


@router.websocket("/live/{session_id}/ws")
async def live_socket(websocket: WebSocket, session_id: int) -> None:
    """Chat, questions and telestration of one session, fanned out to its members."""
    runtime = runtime_of(websocket)  # type: ignore[arg-type]
    ip = websocket.client.host if websocket.client else ""
    if not _same_origin(websocket):
        await websocket.close(code=1008, reason="cross-origin")
        return

    cookie = websocket.cookies.get(SESSION_COOKIE, "")

    def opening() -> tuple[Peer, dict[str, Any]]:
        with runtime.sessions() as db:
            peer = authorize_peer(db, runtime.settings, cookie, session_id, runtime.now(), ip)
            hello = _hello(db, peer)
            db.commit()
            return peer, hello

    try:
        peer, hello = await run_in_threadpool(opening)
    except ConciliumError as exc:
        await websocket.close(code=1008, reason=exc.detail[:100])
        return
    await websocket.accept()
    room: SessionRoom = live_runtime(websocket.app).room(session_id)
    member = Member(socket=websocket, user_id=peer.user_id, moderator=peer.may_moderate)
    hello["program_feed"] = room.program_feed
    await room.send(member, hello)
    room.members.append(member)
    try:
        while True:
            received = await websocket.receive()
            if received["type"] == "websocket.disconnect":
                break
            # Binary frames are parsed like text ones (and refused if they are not JSON).
            frame: str | bytes = received.get("text") or received.get("bytes") or ""
            try:
                message = protocol.parse_client_message(frame)

                def work(message: protocol.ClientMessage = message) -> Any:
                    with runtime.sessions() as db:
                        now = runtime.now()
                        try:
                            current = authorize_peer(
                                db, runtime.settings, cookie, session_id, now, ip
                            )
                        except ConciliumError as exc:
                            raise _Revoked(exc.detail) from exc
                        events = _apply(db, current, message, now, ip)
                        db.commit()
                        return events

                events = await run_in_threadpool(work)
            except _Revoked as exc:
                # No longer signed in or invited: told, then disconnected.
                await room.send(member, {"type": "error", "detail": str(exc)})
                await websocket.close(code=1008, reason=str(exc)[:100])
                break
            except (protocol.ProtocolError, ConciliumError) as exc:
                detail = exc.detail if isinstance(exc, ConciliumError) else str(exc)
                await room.send(member, {"type": "error", "detail": detail})
                continue
            for event, rule in events:
                await room.broadcast(event, _audience(rule))
    except WebSocketDisconnect:
        pass
    finally:
        if member in room.members:
            room.members.remove(member)


# --- pages ---------------------------------------------------------------------------------

Line = Annotated[str, Form(max_length=500)]


def _list_view(
    request: Request,
    ctx: Ctx,
    error: str = "",
    form: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    sites = {s.id: s.name for s in accounts.list_sites(ctx.db)}
    return render_page(
        request,
        "live/list.html",
        ctx,
        status,
        sessions=_visible(ctx),
        sites=sites,
        organiser_sites=_organiser_sites(ctx),
        kinds=KIND_LABELS,
        error=error,
        form=form or {},
        default_time=ctx.now.strftime("%Y-%m-%dT%H:%M"),
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
    form = {"kind": kind, "title": title, "site_id": site_id, "patient_id": patient_id}
    try:
        live = _create(
            ctx,
            kind=kind,
            title=title,
            site_id=site_id,
            scheduled_at=_parse_when(scheduled_at),
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
    request: Request, ctx: Ctx, live: LiveSession, error: str = "", status: int = 200
) -> Response:
    people = {p.user_id: ctx.db.get(User, p.user_id) for p in service.participants(ctx.db, live)}
    return render_page(
        request,
        "live/session.html",
        ctx,
        status,
        live=live,
        kinds=KIND_LABELS,
        site=ctx.db.get(Site, live.site_id),
        invited=[(p, people.get(p.user_id)) for p in service.participants(ctx.db, live)],
        roles=service.SESSION_ROLES,
        sources=service.sources(ctx.db, live),
        cameras=service.cameras(ctx.db, live),
        source_kinds=service.SOURCE_KINDS,
        my_role=service.role_of(ctx.db, live, ctx.user.id),
        can_manage=_may(ctx, live, LiveAction.LIVE_MANAGE),
        can_join=_may(ctx, live, LiveAction.LIVE_JOIN),
        can_direct=_may(ctx, live, LiveAction.LIVE_DIRECT),
        can_moderate=_may(ctx, live, LiveAction.LIVE_MODERATE),
        consent=(
            patients.has_consent(ctx.db, live.patient_id, "teaching")
            if live.patient_id is not None
            else None
        ),
        error=error,
    )


@router.get("/live/{session_id}")
def live_session(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_READ)]
) -> Response:
    live, _ = authorized_session(ctx, session_id, LiveAction.LIVE_READ)
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
    live, _ = authorized_session(ctx, session_id, LiveAction.LIVE_MANAGE)

    def run() -> None:
        invitee = accounts.user_by_username(ctx.db, username)
        if invitee is None or invitee.disabled:
            raise InvalidInput(f"no active account named {username!r}")
        service.invite(ctx.db, ctx.actor, live, user_id=invitee.id, role=role, now=ctx.now)
        ctx.commit()

    return _session_action(request, ctx, live, run)


@router.post("/live/{session_id}/start")
async def live_start(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_MANAGE)]
) -> Response:
    live, _ = await run_in_threadpool(authorized_session, ctx, session_id, LiveAction.LIVE_MANAGE)
    sessions = live_sessions(request)
    return await _session_step(
        request, ctx, live, lambda: sessions.start(ctx.db, ctx.actor, live, ctx.now)
    )


@router.post("/live/{session_id}/end")
async def live_end(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_MANAGE)]
) -> Response:
    live, _ = await run_in_threadpool(authorized_session, ctx, session_id, LiveAction.LIVE_MANAGE)
    sessions = live_sessions(request)
    return await _session_step(
        request, ctx, live, lambda: sessions.end(ctx.db, ctx.actor, live, ctx.now)
    )


@router.post("/live/{session_id}/sources")
async def live_add_source(
    request: Request,
    session_id: int,
    ctx: Annotated[Ctx, gate(LiveAction.LIVE_DIRECT)],
    name: Annotated[str, Form(max_length=100)],
    kind: Annotated[str, Form(max_length=16)],
    reference: Line = "",
) -> Response:
    live, _ = await run_in_threadpool(authorized_session, ctx, session_id, LiveAction.LIVE_DIRECT)

    def add() -> LiveSource:
        source = service.add_source(
            ctx.db, ctx.actor, live, name=name, kind=kind, reference=reference
        )
        ctx.commit()
        return source

    async def run() -> None:
        source = await run_in_threadpool(add)
        if live.status == "live":  # it is fed at once
            await live_sessions(request).feed_sources(ctx.db, live, ctx.now, [source])

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
    live, _ = authorized_session(ctx, session_id, LiveAction.LIVE_DIRECT)

    def run() -> None:
        service.add_camera(
            ctx.db, ctx.actor, live, name=name, host=host, port=port, visca_address=visca_address
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
        my_role=service.role_of(ctx.db, live, ctx.user.id) or "participant",
        **values,
    )


@router.get("/live/{session_id}/join")
def live_join_page(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_JOIN)]
) -> Response:
    live, _ = authorized_session(ctx, session_id, LiveAction.LIVE_JOIN)
    return _console(request, ctx, live, "join", sources=service.sources(ctx.db, live))


@router.get("/live/{session_id}/director")
def live_director_page(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_DIRECT)]
) -> Response:
    live, _ = authorized_session(ctx, session_id, LiveAction.LIVE_DIRECT)
    return _console(
        request,
        ctx,
        live,
        "director",
        sources=service.sources(ctx.db, live),
        source_states=source_feeds(request.app).statuses(live.id),
        cameras=service.cameras(ctx.db, live),
    )


@router.get("/live/{session_id}/moderator")
def live_moderator_page(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_MODERATE)]
) -> Response:
    live, _ = authorized_session(ctx, session_id, LiveAction.LIVE_MODERATE)
    return _console(request, ctx, live, "moderator")


@router.get("/live/{session_id}/watch")
def live_watch_page(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_READ)]
) -> Response:
    live, _ = authorized_session(ctx, session_id, LiveAction.LIVE_READ)
    runtime = live_runtime(request.app)
    over_hls = service.watches_over_hls(
        live.kind,
        service.role_of(ctx.db, live, ctx.user.id) or "participant",
        runtime.webrtc_receivers(live.janus_room_id, ctx.now.timestamp()),
        request.app.state.runtime.settings.live_webrtc_viewers,
    )
    return with_media_policy(_console(request, ctx, live, "watch", over_hls=over_hls))


# --- HLS and recordings (concilium.live.hls, concilium.live.recording) ---------------------

MEDIA_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "media-src 'self' blob:; worker-src 'self' blob:; frame-ancestors 'none'; "
    "form-action 'self'"
)
"""The usual content security policy plus ``blob:`` media and workers: hls.js feeds the
video element through Media Source Extensions, whose object URLs are ``blob:``."""


def with_media_policy(response: Response) -> Response:
    """A page that may play HLS through hls.js keeps :data:`MEDIA_POLICY`."""
    response.headers["content-security-policy"] = MEDIA_POLICY
    return response


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


# --- fed sources: IP cameras and cine loops (concilium.live.sources) -----------------------


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


class SourceStateOut(BaseModel):
    id: int
    name: str
    kind: str
    state: str
    detail: str
    mountpoint: int | None
    codec: str
    frame_rate: float | None


@api_router.get("/sessions/{session_id}/sources")
def api_source_states(
    request: Request, session_id: int, ctx: Annotated[Ctx, gate(LiveAction.LIVE_JOIN)]
) -> list[SourceStateOut]:
    """The fed sources of a live session, their state and the mountpoint to watch."""
    live, _ = authorized_session(ctx, session_id, LiveAction.LIVE_JOIN)
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
