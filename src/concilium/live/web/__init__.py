"""HTTP and websocket adapter of the live service: pages under ``/live``
(:mod:`~concilium.live.web.pages`), JSON under ``/api/v1/live``
(:mod:`~concilium.live.web.api`), the session websocket ``/live/{session_id}/ws``
(:mod:`~concilium.live.web.session_socket`) and the Janus API proxy ``/janus``
(:mod:`~concilium.live.web.janus_proxy`).

Every route declares its action with ``gate`` and asks the policy about the very session it
touches (:func:`concilium.live.invitations.session_target`); the websocket is authorised by the
same policy. What the application holds for live sessions is in
:mod:`~concilium.live.web.state`.
"""

from __future__ import annotations

from fastapi import APIRouter

from concilium.live.web import api, janus_proxy, pages, session_socket
from concilium.live.web.janus_proxy import JANUS_PATH
from concilium.live.web.state import live_runtime, live_sessions

__all__ = [
    "JANUS_PATH",
    "api_router",
    "live_runtime",
    "live_sessions",
    "router",
]

router = APIRouter(include_in_schema=False)
"""Pages, the session websocket and the Janus proxy."""
for _part in (janus_proxy.router, session_socket.router, pages.router):
    router.include_router(_part)
api_router = api.router
"""The JSON API of live sessions (described in the OpenAPI document)."""
