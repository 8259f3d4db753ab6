"""Outgoing mail for administrators: what the outbox holds, where each message stands, and
trying a message again now or cancelling it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from concilium.platform import outbox
from concilium.platform.i18n import N_
from concilium.platform.policy import PlatformAction, Target
from concilium.platform.tables import OutboxMail
from concilium.portal.process import PlatformProcess
from concilium.web.context import Ctx, gate, process_of
from concilium.web.forms import redirect_to
from concilium.web.rendering import render_page

router = APIRouter(include_in_schema=False)

PER_PAGE = 50

STATE_LABELS = {
    outbox.MailState.PENDING: N_("Waiting"),
    outbox.MailState.SENDING: N_("Sending"),
    outbox.MailState.SENT: N_("Sent"),
    outbox.MailState.FAILED: N_("Failed"),
    outbox.MailState.CANCELLED: N_("Cancelled"),
}
CAUSE_LABELS = {
    outbox.Cause.QUEUED: N_("Queued"),
    outbox.Cause.CLAIMED: N_("Try started"),
    outbox.Cause.LEASE_EXPIRED: N_("Its process stopped while sending"),
    outbox.Cause.ACCEPTED: N_("Accepted by the relay"),
    outbox.Cause.ACCEPTED_AGAIN: N_("Accepted by the relay once more"),
    outbox.Cause.TRY_FAILED: N_("Try failed"),
    outbox.Cause.UNREADABLE: N_("Its content cannot be read"),
    outbox.Cause.RETRY: N_("Retry asked"),
    outbox.Cause.CANCEL: N_("Cancelled"),
}


def _managed(ctx: Ctx) -> frozenset[int] | None:
    """Sites whose messages this administrator sees (None: every message)."""
    ctx.authorize(
        PlatformAction.OUTBOX_MANAGE,
        Target(kind="mail", site_ids=frozenset(ctx.principal.roles)),
    )
    return ctx.visible_sites(PlatformAction.OUTBOX_MANAGE)


def _mail_target(mail: OutboxMail) -> Target:
    sites = frozenset({mail.site_id}) if mail.site_id is not None else frozenset()
    return Target(kind="mail", id=str(mail.id), site_ids=sites)


@router.get("/admin/outbox")
def outbox_page(
    request: Request,
    ctx: Annotated[Ctx, gate(PlatformAction.OUTBOX_MANAGE)],
    state: Annotated[str, Query(pattern="^(|pending|sending|sent|failed|cancelled)$")] = "",
    page: Annotated[int, Query(ge=1, le=10000)] = 1,
) -> Response:
    sites = _managed(ctx)
    found = outbox.list_mail(ctx.db, sites, state, PER_PAGE + 1, (page - 1) * PER_PAGE)
    return render_page(
        request,
        "portal/outbox.html",
        ctx,
        mails=found[:PER_PAGE],
        counts=outbox.count_by_state(ctx.db, sites),
        state=state,
        page=page,
        more=len(found) > PER_PAGE,
        enabled=bool(ctx.runtime.settings.smtp_host),
        waiting=outbox.WAITING,
        state_labels=STATE_LABELS,
        cause_labels=CAUSE_LABELS,
    )


def _acted(request: Request, state: str) -> Response:
    try:
        dispatcher = process_of(request.app, PlatformProcess).mail
    except (AttributeError, LookupError):
        dispatcher = None  # an application without a serving assembly
    if dispatcher is not None:
        dispatcher.wake()
    return redirect_to(f"/admin/outbox?state={state}" if state else "/admin/outbox")


@router.post("/admin/outbox/{mail_id}/retry")
def outbox_retry(
    request: Request,
    mail_id: int,
    ctx: Annotated[Ctx, gate(PlatformAction.OUTBOX_MANAGE)],
    state: Annotated[str, Query(pattern="^(|pending|sending|sent|failed|cancelled)$")] = "",
) -> Response:
    mail = outbox.get_mail(ctx.db, mail_id)
    ctx.authorize(PlatformAction.OUTBOX_MANAGE, _mail_target(mail))
    outbox.retry_now(ctx.db, ctx.actor, mail, ctx.now)
    ctx.commit()
    return _acted(request, state)


@router.post("/admin/outbox/{mail_id}/cancel")
def outbox_cancel(
    request: Request,
    mail_id: int,
    ctx: Annotated[Ctx, gate(PlatformAction.OUTBOX_MANAGE)],
    state: Annotated[str, Query(pattern="^(|pending|sending|sent|failed|cancelled)$")] = "",
) -> Response:
    mail = outbox.get_mail(ctx.db, mail_id)
    ctx.authorize(PlatformAction.OUTBOX_MANAGE, _mail_target(mail))
    outbox.cancel(ctx.db, ctx.actor, mail, ctx.now)
    ctx.commit()
    return _acted(request, state)
