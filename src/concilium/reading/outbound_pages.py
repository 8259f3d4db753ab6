"""The administration page of the outbound HL7 queue: per destination, each message's
state, tries, next try and last error, with buttons to send it again now or cancel it,
and each message shown raw.

Access goes through the policy as for the senders (``pages.py``): a site's administrators
see and act on its queue (``hl7.sender.manage``; retry and cancel audited); the raw
message holds patient data, so it is opened only under ``hl7.message.read`` (never the
platform administrator) and each opening is audited. Another site's message looks absent.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from concilium.platform import accounts, audit
from concilium.platform.errors import ConciliumError, Forbidden, NotFound
from concilium.platform.i18n import _
from concilium.platform.policy import Target
from concilium.reading import outbound_store, senders
from concilium.reading.actions import ReadingAction
from concilium.reading.outbound_store import OutboundState
from concilium.reading.pages import segments_of
from concilium.reading.tables import HL7Sender, OutboundMessage
from concilium.web.context import Ctx, gate
from concilium.web.forms import redirect_to
from concilium.web.rendering import render_page

router = APIRouter(include_in_schema=False)

QUEUE = "/admin/reading/hl7/outbound"
PAGE_SIZE = 100
"""Messages per page of the queue."""
_RETRYABLE = (
    OutboundState.QUEUED,
    OutboundState.FAILED,
    OutboundState.CANCELLED,
    OutboundState.NO_DESTINATION,
)
_CANCELLABLE = (OutboundState.QUEUED, OutboundState.FAILED, OutboundState.NO_DESTINATION)


def _target(site_id: int | None, message: OutboundMessage | None = None) -> Target:
    return Target(
        kind="hl7_outbound",
        id=str(message.id) if message else "",
        site_ids=frozenset({site_id} if site_id else set()),
        patient_id=message.patient_id if message else None,
    )


@router.get(QUEUE)
def queue_page(
    request: Request,
    ctx: Annotated[Ctx, gate(ReadingAction.HL7_SENDER_MANAGE)],
    state: Annotated[str, Query(max_length=16)] = "",
    page: Annotated[int, Query(ge=1, le=10000)] = 1,
) -> Response:
    """The queue of the sites this person administers, grouped by destination."""
    return _queue_view(request, ctx, state, page)


def _queue_view(
    request: Request, ctx: Ctx, state: str, page: int, error: str = "", status: int = 200
) -> Response:
    ctx.authorize(
        ReadingAction.HL7_SENDER_MANAGE,
        Target(kind="site", site_ids=frozenset(ctx.principal.roles)),
    )
    managed = ctx.visible_sites(ReadingAction.HL7_SENDER_MANAGE)
    state = state if state in set(OutboundState) else ""
    rows = outbound_store.list_queue(
        ctx.db, managed, state=state, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
    )
    destinations = {s.id: s for s in senders.list_senders(ctx.db, managed)}
    groups: dict[int | None, list[OutboundMessage]] = {}
    for message in rows[:PAGE_SIZE]:
        groups.setdefault(message.destination_id, []).append(message)
    readable = ctx.visible_sites(ReadingAction.HL7_MESSAGE_READ)
    return render_page(
        request,
        "reading/hl7_outbound.html",
        ctx,
        status,
        groups=list(groups.items()),
        destinations=destinations,
        names={s.id: s.name for s in accounts.list_sites(ctx.db)},
        states=[s.value for s in OutboundState],
        state=state,
        page=page,
        more=len(rows) > PAGE_SIZE,
        retryable={s.value for s in _RETRYABLE},
        cancellable={s.value for s in _CANCELLABLE},
        may_read=readable is None or bool(readable),
        error=error,
        now=ctx.runtime.now(),
    )


def _managed(ctx: Ctx, message_id: int) -> OutboundMessage:
    message = ctx.db.get(OutboundMessage, message_id)
    if message is None:
        raise NotFound(_("no such HL7 message"))
    try:
        ctx.authorize(ReadingAction.HL7_SENDER_MANAGE, _target(message.site_id, message))
    except Forbidden:
        raise NotFound(_("no such HL7 message")) from None
    return message


def _act(request: Request, ctx: Ctx, message_id: int, retry: bool) -> Response:
    message = _managed(ctx, message_id)
    now = ctx.runtime.now()
    try:
        if retry:
            outbound_store.retry_now(ctx.db, ctx.actor, message, now)
        else:
            outbound_store.cancel(ctx.db, ctx.actor, message, now)
    except ConciliumError as exc:
        ctx.db.rollback()
        return _queue_view(request, ctx, "", 1, exc.detail, exc.status)
    ctx.commit()
    return redirect_to(QUEUE)


@router.post(QUEUE + "/{outbound_id}/retry")
def retry_message(
    request: Request,
    outbound_id: int,
    ctx: Annotated[Ctx, gate(ReadingAction.HL7_SENDER_MANAGE)],
) -> Response:
    """Send a message not delivered again at once (audited)."""
    return _act(request, ctx, outbound_id, retry=True)


@router.post(QUEUE + "/{outbound_id}/cancel")
def cancel_message(
    request: Request,
    outbound_id: int,
    ctx: Annotated[Ctx, gate(ReadingAction.HL7_SENDER_MANAGE)],
) -> Response:
    """Give up a message not delivered (audited)."""
    return _act(request, ctx, outbound_id, retry=False)


@router.get(QUEUE + "/{outbound_id}")
def message_page(
    request: Request,
    outbound_id: int,
    ctx: Annotated[Ctx, gate(ReadingAction.HL7_MESSAGE_READ)],
) -> Response:
    """One queued message raw (the opening is audited)."""
    message = ctx.db.get(OutboundMessage, outbound_id)
    if message is None:
        raise NotFound(_("no such HL7 message"))
    try:
        decision = ctx.authorize(ReadingAction.HL7_MESSAGE_READ, _target(message.site_id, message))
    except Forbidden:
        raise NotFound(_("no such HL7 message")) from None
    audit.record(
        ctx.db,
        ctx.actor,
        str(ReadingAction.HL7_MESSAGE_READ),
        ctx.outcome(decision),
        object_kind="hl7_outbound",
        object_id=message.id,
        patient_id=message.patient_id,
        site_id=message.site_id,
    )
    ctx.commit()
    destination = ctx.db.get(HL7Sender, message.destination_id or 0)
    return render_page(
        request,
        "reading/hl7_outbound_message.html",
        ctx,
        message=message,
        destination=destination,
        names={s.id: s.name for s in accounts.list_sites(ctx.db)},
        segments=segments_of(message.raw),
    )
