"""A member's calendar feed: making and revoking its address on the "my boards" page, and
the feed itself (``/boards/calendar/<secret>.ics``), which a calendar client reads with no
session: the secret in the address is the credential (:mod:`concilium.boards.calendar_feed`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from concilium.boards import calendar_feed
from concilium.boards.actions import BoardAction
from concilium.boards.pages import mine_view
from concilium.platform import calendar_ics
from concilium.platform.errors import NotFound
from concilium.platform.tables import User
from concilium.web.context import Ctx, client_ip, gate, runtime_of
from concilium.web.forms import redirect_to

router = APIRouter(include_in_schema=False)

FEED_ROUTE = calendar_feed.FEED_PATH + "{secret}.ics"
"""The feed's route, served to anyone holding a secret (``public_paths``)."""


def _me(ctx: Ctx) -> User:
    user = ctx.db.get(User, ctx.user.id)
    assert user is not None
    return user


@router.post("/boards/calendar")
def feed_create(request: Request, ctx: Annotated[Ctx, gate(BoardAction.BOARD_READ)]) -> Response:
    """A new address for the member's calendar feed, shown once; the old one stops."""
    issued = calendar_feed.issue(ctx.db, ctx.runtime.settings, ctx.actor, _me(ctx), ctx.now)
    ctx.commit()
    return mine_view(request, ctx, issued.url)


@router.post("/boards/calendar/revoke")
def feed_revoke(request: Request, ctx: Annotated[Ctx, gate(BoardAction.BOARD_READ)]) -> Response:
    """Stop the member's calendar feed address."""
    calendar_feed.revoke(ctx.db, ctx.actor, _me(ctx), ctx.now)
    ctx.commit()
    return redirect_to("/boards#h-calendar")


@router.get(FEED_ROUTE)
def feed(request: Request, secret: str) -> Response:
    """The member's coming meetings of every board, as a calendar to subscribe to."""
    runtime = runtime_of(request)
    now = runtime.now()
    with runtime.sessions() as db:
        try:
            user = calendar_feed.holder(db, secret[:200], client_ip(request), now)
        except NotFound:
            db.commit()  # the refusal stays in the audit trail
            raise
        content = calendar_feed.feed_for(db, runtime.settings, user, now)
        db.commit()
    return Response(
        content,
        media_type=calendar_ics.content_type(None),
        headers={"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"},
    )
