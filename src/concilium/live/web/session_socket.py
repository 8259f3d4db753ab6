"""The session websocket ``/live/{session_id}/ws``: chat, questions and telestration of
one session, fanned out to its members.

The socket identifies its person by the session cookie
(:func:`concilium.platform.authn.authenticate`) and asks the policy what they may do there
(``live.read`` to connect; ``live.chat``, ``live.moderate``, ``live.draw`` for what they
send), at connection and again for every message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from concilium.config import Settings
from concilium.live import chat, invitations, lookup, protocol, telestration
from concilium.live.actions import LiveAction
from concilium.live.runtime import Member, SessionRoom
from concilium.live.tables import LiveMessage, LiveSession, LiveStroke
from concilium.live.web.state import live_runtime
from concilium.platform import audit
from concilium.platform.accounts import principal_for
from concilium.platform.authn import authenticate
from concilium.platform.errors import ConciliumError, Conflict, Forbidden, NotFound, Unauthenticated
from concilium.platform.i18n import _
from concilium.platform.policy import Action, Principal, Target, decide
from concilium.platform.tables import User
from concilium.web.context import SESSION_COOKIE, record_refusal, runtime_of

router = APIRouter(include_in_schema=False)


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
    target = Target(invitations.RESOURCE_KIND, str(session_id))
    try:
        identity = authenticate(db, settings, now, bearer=None, cookie=cookie)
    except Unauthenticated:
        anonymous = audit.Actor(None, "", ip=ip)
        record_refusal(db, anonymous, LiveAction.LIVE_READ, target, "not authenticated")
        raise Forbidden(_("sign in first")) from None
    user = identity.user
    principal: Principal = principal_for(db, user, now)
    actor = audit.Actor(user.id, user.username, role=principal.primary_role(), ip=ip)
    live = lookup.find_session(db, session_id)
    if live is None:
        record_refusal(db, actor, LiveAction.LIVE_READ, target, "no such session")
        raise NotFound(_("live session %(id)s not found") % {"id": session_id})

    def allowed(action: Action) -> bool:
        return decide(principal, action, invitations.session_target(db, live, action, now)).allowed

    if not allowed(LiveAction.LIVE_READ):
        record_refusal(db, actor, LiveAction.LIVE_READ, target, "live.read not permitted")
        raise Forbidden(_("you are not invited to this session"))
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
    live = lookup.get_session(db, peer.session_id)
    names = _names(db, live)
    member = Member(socket=_NullSocket(), user_id=peer.user_id, moderator=peer.may_moderate)
    return {
        "type": "hello",
        "me": peer.user_id,
        "may_chat": peer.may_chat,
        "may_moderate": peer.may_moderate,
        "may_draw": peer.may_draw,
        "chat": [_message_event(m, names) for m in chat.chat_history(db, live)],
        "questions": [
            _message_event(q, names)
            for q in chat.questions(db, live)
            if question_visible(q.status, q.user_id, member)
        ],
        "strokes": [_stroke_event(s) for s in telestration.strokes(db, live)],
    }


class _Revoked(Exception):
    """The person behind a connected socket may no longer be there."""


class _NullSocket:
    async def send_text(self, data: str) -> None:
        return None


def _names(db: Session, live: LiveSession) -> dict[int, str]:
    ids = {p.user_id for p in invitations.participants(db, live)}
    ids |= {m.user_id for m in chat.chat_history(db, live)}
    ids |= {q.user_id for q in chat.questions(db, live)}
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
    live = lookup.get_session(db, peer.session_id)
    if live.status == "ended":
        raise Conflict(_("this session has ended"))
    names = {peer.user_id: peer.full_name}
    everyone: Audience = None
    if isinstance(message, protocol.Chat):
        if not peer.may_chat:
            raise Forbidden(_("viewers do not chat; ask a question instead"))
        line = chat.post_chat(db, peer.user_id, live, message.body, now)
        return [(_message_event(line, names), everyone)]
    if isinstance(message, protocol.Question):
        question = chat.submit_question(db, peer.user_id, live, message.body, now)
        return [(_message_event(question, names), (question.user_id, question.status, ""))]
    if isinstance(message, protocol.Moderate):
        if not peer.may_moderate:
            raise Forbidden(_("only moderators moderate questions"))
        before = chat.get_question(db, live, message.question_id).status
        question = chat.moderate(
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
        raise Forbidden(_("only presenters and the director draw on the picture"))
    if isinstance(message, protocol.Stroke):
        stroke = telestration.add_stroke(
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
    telestration.clear_strokes(db, peer.user_id, live, now)
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
        # A close reason holds at most 123 bytes (RFC 6455 5.5): French takes two for "é".
        reason = exc.detail.encode()[:123].decode(errors="ignore")
        await websocket.close(code=1008, reason=reason)
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
