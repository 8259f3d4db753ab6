"""The Janus API proxy ``/janus``: browsers reach the Janus API (and only the API, never
the Admin API) through Concilium's own origin, so the strict content security policy holds
and Janus stays on loopback.

The caller is identified as for any request (``gate``, through
:func:`concilium.platform.authn.authenticate`); only requests carrying one of the caller's
own unexpired media credentials go through, and of those only what a browser in its own room
needs.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from concilium.live.actions import LiveAction
from concilium.live.credentials import RoomCredential
from concilium.live.media import LiveMedia
from concilium.live.web.access import end_transaction
from concilium.live.web.state import live_runtime, source_feeds
from concilium.platform.errors import Forbidden, NotFound
from concilium.platform.i18n import _
from concilium.web.context import Ctx, gate

router = APIRouter(include_in_schema=False)

JANUS_PATH = "/janus"
"""Where browsers reach the Janus API through Concilium."""
_JANUS_TAIL = re.compile(r"^(\d{1,20})(/\d{1,20})?$")
_BROWSER_VIDEOROOM_REQUESTS = frozenset(
    {"join", "configure", "publish", "unpublish", "start", "pause", "leave", "switch", "update"}
)
"""VideoRoom requests a browser needs; the proxy refuses the others (list, create, ...)."""
_BROWSER_STREAMING_REQUESTS = frozenset({"watch", "switch"})
"""Streaming requests naming a mountpoint (``id``); ``start``, ``pause`` and ``configure``
act on the handle's own mountpoint and pass with the VideoRoom ones."""


def credential_for(media: LiveMedia | None, user_id: int, token: str) -> RoomCredential:
    """The caller's own, unexpired media credential named by ``token``; refused otherwise."""
    credential = media.book.credentials.get(token) if media is not None and token else None
    if (
        media is None
        or credential is None
        or credential.user_id != str(user_id)
        or credential.expired(media.clock())
    ):
        raise Forbidden(_("no media credential of yours; join the session again"))
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
        raise Forbidden(_("plugin message without a body"))
    if request.get("request") in _BROWSER_STREAMING_REQUESTS:
        if request.get("id") not in mountpoints:
            raise Forbidden(_("this source is not one of your session's"))
        return
    if request.get("request") not in _BROWSER_VIDEOROOM_REQUESTS:
        raise Forbidden(_("this media request is not available to browsers"))
    if "room" in request and request["room"] != credential.room_id:
        raise Forbidden(_("your media credential is for another room"))
    publishing = request.get("request") == "publish" or (
        request.get("request") == "join" and request.get("ptype") != "subscriber"
    )
    if publishing and not may_publish:
        raise Forbidden(_("your role in this session receives media only"))


def with_account_display(body: dict[str, Any], display: str) -> dict[str, Any]:
    """``body`` with the name others see set by the server: a VideoRoom request joining as a
    publisher, or naming a ``display`` (``join``, ``configure``, ``publish``), carries the
    account's own name, whatever the browser wrote."""
    request = body.get("body") if body.get("janus") == "message" else None
    if not isinstance(request, dict):
        return body
    joins_as_publisher = request.get("request") == "join" and request.get("ptype") != "subscriber"
    if joins_as_publisher or "display" in request:
        body = {**body, "body": {**request, "display": display}}
    return body


@router.api_route(JANUS_PATH, methods=["POST"])
@router.api_route(JANUS_PATH + "/{tail:path}", methods=["GET", "POST"])
async def janus_proxy(
    request: Request, ctx: Annotated[Ctx, gate(LiveAction.LIVE_JOIN)], tail: str = ""
) -> Response:
    """Forward a Janus API request carrying one of the caller's own media credentials."""
    # The long poll may last 30 s.
    end_transaction(ctx)
    if tail and not _JANUS_TAIL.match(tail):
        raise NotFound(_("no such media path"))
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
    body = with_account_display(body, ctx.user.full_name)
    url = live_runtime(request.app).api_url + (f"/{tail}" if tail else "")
    http = live_runtime(request.app).proxy_client()
    if request.method == "POST":
        answer = await http.post(url, json=body)
    else:
        params = {"token": token, "maxev": request.query_params.get("maxev", "1")}
        answer = await http.get(url, params=params)
    return Response(answer.content, answer.status_code, media_type="application/json")
