"""The meeting room's websocket ``/boards/meetings/{meeting}/ws``: the synchronised image
view, the presenter role and who is in the room.

The socket identifies its person by the session cookie
(:func:`concilium.platform.authn.authenticate`) and asks the policy, at connection and again
for every message, whether they may be at the meeting (:data:`BoardAction.CASE_READ` on the
meeting, as its page); whoever may run it (:data:`BoardAction.MEETING_RUN`) may also hand the
presenter role over. A refusal is audited. Messages, in JSON:

- sent by a browser: ``{"type": "view", "view": {...}, "sent_at": ms}`` (the presenter's
  view, :func:`concilium.boards.view_sync.parse_view`), ``{"type": "hand_over", "to": id}``,
  ``{"type": "opened", "study": uid}`` (its viewer opened a study: an audited view of the
  case with its patient);
- sent to it: ``hello`` (who it is, whether it runs the meeting, the room's view as it
  stands: a latecomer lands there), ``view``, ``presenter``, ``attendance`` (who is in the
  room changed: the page reads it again) and ``error`` (the message refused, for that
  socket only: a view from someone who is not the presenter changes nothing for anyone).

Being connected is being in the room: the first socket of a person opens a stretch of
presence awaiting the facilitator's validation, the last one closed ends it
(:func:`concilium.boards.attendance.joined_room`, :func:`~concilium.boards.attendance.left_room`).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, WebSocket
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from concilium.boards import attendance, case_store, registry, room, view_sync
from concilium.boards.actions import BoardAction
from concilium.boards.process import BoardsProcess, Listener, RoomHub
from concilium.boards.tables import BoardMeeting
from concilium.config import Settings
from concilium.platform import audit
from concilium.platform.accounts import principal_for
from concilium.platform.authn import authenticate
from concilium.platform.errors import (
    ConciliumError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from concilium.platform.i18n import _
from concilium.platform.policy import decide
from concilium.platform.tables import User
from concilium.web.context import SESSION_COOKIE, process_of, record_refusal, runtime_of

__all__ = ["Peer", "authorize_peer", "parse_message", "router"]

router = APIRouter(include_in_schema=False)

MAX_FRAME = 8192
"""A view message is a few hundred bytes."""


class ProtocolError(ValueError):
    """A frame that is not one of the room's messages."""


class _Revoked(Exception):
    """The person behind a connected socket may no longer be at the meeting."""


@dataclass(frozen=True)
class Peer:
    """Who is on the other end of a room socket, as the policy sees them now."""

    user_id: int
    full_name: str
    meeting_id: int
    runs_meeting: bool
    actor: audit.Actor


def authorize_peer(
    db: Session, settings: Settings, cookie: str, meeting_id: int, now: datetime, ip: str
) -> Peer:
    """Authenticate by the session cookie and authorise by the policy, as ``gate`` does for
    a request; a refusal is audited (committed) and raised."""
    try:
        identity = authenticate(db, settings, now, bearer=None, cookie=cookie)
    except Unauthenticated:
        meeting = db.get(BoardMeeting, meeting_id)
        anonymous = audit.Actor(None, "", ip=ip)
        if meeting is not None:
            board = registry.get_board(db, meeting.board_id)
            target = attendance.meeting_target(db, board)
            record_refusal(db, anonymous, BoardAction.CASE_READ, target, "not authenticated")
        raise Forbidden(_("sign in first")) from None
    user = identity.user
    principal = principal_for(db, user, now)
    actor = audit.Actor(user.id, user.username, role=principal.primary_role(), ip=ip)
    meeting = db.get(BoardMeeting, meeting_id)
    if meeting is None:
        raise NotFound(_("No such meeting."))
    board = registry.get_board(db, meeting.board_id)
    target = attendance.meeting_target(db, board)
    decision = decide(principal, BoardAction.CASE_READ, target)
    if not decision.allowed:
        record_refusal(db, actor, BoardAction.CASE_READ, target, decision.reason)
        raise Forbidden(_("You do not have access to this."))
    runs = decide(principal, BoardAction.MEETING_RUN, attendance.run_target(db, board)).allowed
    return Peer(user.id, user.full_name, meeting.id, runs, actor)


def parse_message(frame: str | bytes) -> dict[str, Any]:
    """One message of a browser, checked: its type and its fields."""
    if len(frame) > MAX_FRAME:
        raise ProtocolError("message too long")
    try:
        data = json.loads(frame)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("not JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("not an object")
    kind = data.get("type")
    if kind == "view":
        sent_at = data.get("sent_at", 0)
        if isinstance(sent_at, bool) or not isinstance(sent_at, int | float):
            raise ProtocolError("sent_at: a number")
        try:
            view = view_sync.parse_view(data.get("view"))
        except view_sync.ViewError as exc:
            raise ProtocolError(str(exc)) from None
        return {"type": "view", "view": view, "sent_at": sent_at}
    if kind == "hand_over":
        to = data.get("to")
        if isinstance(to, bool) or not isinstance(to, int):
            raise ProtocolError("to: a person's id")
        return {"type": "hand_over", "to": to}
    if kind == "opened":
        study = data.get("study")
        if not isinstance(study, str) or not 0 < len(study) <= view_sync.MAX_UID:
            raise ProtocolError("study: a UID")
        return {"type": "opened", "study": study}
    raise ProtocolError("unknown message type")


def _is_view(frame: str | bytes) -> bool:
    try:
        data = json.loads(frame)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and data.get("type") == "view"


class Inbox:
    """What a socket received and is not handled yet. A view is a state, not an event:
    views waiting behind one make it stale, and only the latest of a run of views is handled
    (the others' order is kept), so that a presenter scrolling faster than the room's views
    are written never builds a backlog the followers would see late."""

    def __init__(self) -> None:
        self._frames: deque[str | bytes | None] = deque()
        self._arrived = asyncio.Event()

    def put(self, frame: str | bytes | None) -> None:
        """``None``: the socket closed."""
        self._frames.append(frame)
        self._arrived.set()

    async def next(self) -> str | bytes | None:
        while not self._frames:
            self._arrived.clear()
            await self._arrived.wait()
        frame = self._frames.popleft()
        if frame is not None and _is_view(frame):
            while self._frames and self._frames[0] is not None and _is_view(self._frames[0]):
                frame = self._frames.popleft()
        return frame


def _names(db: Session, ids: set[int]) -> dict[str, str]:
    return {str(u.id): u.full_name for u in (db.get(User, i) for i in ids) if u is not None}


def _presenter_event(db: Session, state: view_sync.RoomView) -> dict[str, Any]:
    ids = {state.presenter_id} if state.presenter_id is not None else set()
    return {
        "type": "presenter",
        "presenter": state.presenter_id,
        "name": _names(db, ids).get(str(state.presenter_id), ""),
        "version": state.version,
    }


def _apply(
    db: Session, peer: Peer, message: dict[str, Any], now: datetime
) -> dict[str, Any] | None:
    """Run one message; the event every other socket is told, if any."""
    meeting = case_store.get_meeting(db, peer.meeting_id)
    kind = message["type"]
    if kind == "opened":
        case = attendance.under_discussion(db, meeting)
        if case is None or message["study"] not in room.showable_studies(db, meeting):
            raise InvalidInput(_("Show a study of the case under discussion."))
        case_store.record_view(db, peer.actor, case, "success", f"study {message['study']}")
        return None
    state = room.load(db, meeting, lock=True)
    if kind == "hand_over":
        try:
            state = view_sync.hand_over(
                state,
                peer.user_id,
                message["to"],
                runs_meeting=peer.runs_meeting,
                present=attendance.present_ids(db, meeting),
            )
        except view_sync.HandOverRefused:
            raise Forbidden(
                _("Only the presenter or the facilitator hands over, to someone in the room.")
            ) from None
        room.save(db, meeting, state, now)
        return _presenter_event(db, state)
    view: view_sync.View = message["view"]
    try:
        state = view_sync.drive(state, peer.user_id, view)
    except view_sync.NotPresenter:
        raise Forbidden(_("Only the presenter drives the view.")) from None
    room.check_showable(db, meeting, view.study)
    room.save(db, meeting, state, now)
    return {
        "type": "view",
        "by": peer.user_id,
        "version": state.version,
        "view": view.to_json(),
        "sent_at": message["sent_at"],
    }


def _same_origin(websocket: WebSocket) -> bool:
    """Browsers send Origin on websockets; another site's page must not ride the cookie."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    host = websocket.headers.get("host", "")
    return re.sub(r"^[a-z]+://", "", origin.lower()) == host.lower()


def _close_reason(text: str) -> str:
    # A close reason holds at most 123 bytes (RFC 6455 5.5): French takes two for "é".
    return text.encode()[:123].decode(errors="ignore")


@router.websocket("/boards/meetings/{meeting_id}/ws")
async def room_socket(websocket: WebSocket, meeting_id: int) -> None:
    """The meeting's synchronised view, presenter role and presence."""
    runtime = runtime_of(websocket)  # type: ignore[arg-type]
    hub: RoomHub = process_of(websocket.app, BoardsProcess).rooms
    ip = websocket.client.host if websocket.client else ""
    if not _same_origin(websocket):
        await websocket.close(code=1008, reason="cross-origin")
        return
    cookie = websocket.cookies.get(SESSION_COOKIE, "")
    listener_token = secrets.token_hex(8)

    def opening() -> tuple[Peer, dict[str, Any]]:
        with runtime.sessions() as db:
            now = runtime.now()
            peer = authorize_peer(db, runtime.settings, cookie, meeting_id, now, ip)
            meeting = case_store.get_meeting(db, meeting_id)
            state = room.load(db, meeting)
            hello = {
                "type": "hello",
                "me": peer.user_id,
                "runs_meeting": peer.runs_meeting,
                "room": state.to_json(),
                "presenter_name": _presenter_event(db, state)["name"],
            }
            db.commit()
            return peer, hello

    try:
        peer, hello = await run_in_threadpool(opening)
    except ConciliumError as exc:
        await websocket.close(code=1008, reason=_close_reason(exc.detail))
        return
    await websocket.accept()
    listener = Listener(peer.user_id, listener_token)
    hub.attach(meeting_id, listener)
    first = hub.sockets_of(meeting_id, peer.user_id) == 1

    def presence(joined: bool) -> bool:
        with runtime.sessions() as db:
            meeting = case_store.get_meeting(db, meeting_id)
            change = attendance.joined_room if joined else attendance.left_room
            row = change(db, peer.actor, meeting, runtime.now())
            db.commit()
            return row is not None

    async def send_all() -> None:
        while True:
            event = await listener.queue.get()
            if event is None:
                await websocket.close(code=1013, reason="too slow")
                return
            await websocket.send_json(event)

    if first and await run_in_threadpool(presence, True):
        hub.publish(meeting_id, {"type": "attendance"})
    await websocket.send_json(hello)
    inbox = Inbox()

    async def read_all() -> None:
        try:
            while True:
                received = await websocket.receive()
                if received["type"] == "websocket.disconnect":
                    break
                inbox.put(received.get("text") or received.get("bytes") or "")
        finally:
            inbox.put(None)

    sender = asyncio.create_task(send_all())
    reader = asyncio.create_task(read_all())
    try:
        while True:
            frame = await inbox.next()
            if frame is None:
                break
            try:
                message = parse_message(frame)

                def work(message: dict[str, Any] = message) -> dict[str, Any] | None:
                    with runtime.sessions() as db:
                        now = runtime.now()
                        try:
                            current = authorize_peer(
                                db, runtime.settings, cookie, meeting_id, now, ip
                            )
                        except ConciliumError as exc:
                            raise _Revoked(exc.detail) from exc
                        event = _apply(db, current, message, now)
                        db.commit()
                        return event

                event = await run_in_threadpool(work)
            except _Revoked as exc:
                # No longer signed in or a member: told, then disconnected.
                await websocket.send_json({"type": "error", "detail": str(exc)})
                await websocket.close(code=1008, reason=_close_reason(str(exc)))
                break
            except (ProtocolError, ConciliumError) as exc:
                detail = exc.detail if isinstance(exc, ConciliumError) else str(exc)
                await listener.queue.put({"type": "error", "detail": detail})
                continue
            if event is not None:
                origin = listener_token if event["type"] == "view" else ""
                hub.publish(meeting_id, event, origin)
    finally:
        hub.detach(meeting_id, listener)
        sender.cancel()
        reader.cancel()
        if hub.sockets_of(meeting_id, peer.user_id) == 0 and await run_in_threadpool(
            presence, False
        ):
            hub.publish(meeting_id, {"type": "attendance"})
