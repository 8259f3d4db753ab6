"""The service's administration pages: the HL7 senders of each site, and the log of the
messages received and sent, with each message shown raw beside its acknowledgment.

Access goes through the policy: a site's administrators manage its senders and review its
messages; a message is opened only by an administrator of its site, and each opening is
audited (a message holds patient data). Messages of unregistered senders belong to no site:
the senders page lists their headers only (application, facility, address, type), so that
an administrator can register the sender, never their content.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from concilium.platform import accounts, audit
from concilium.platform.errors import Forbidden, InvalidInput, NotFound
from concilium.platform.i18n import _
from concilium.platform.policy import Target
from concilium.reading import message_log, senders
from concilium.reading.actions import ReadingAction
from concilium.reading.tables import HL7Message, HL7Sender
from concilium.web.context import Ctx, gate
from concilium.web.forms import redirect_to, run_form_action
from concilium.web.rendering import render_page

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
"""Messages per page of the log."""
_SENDERS = "/admin/reading/hl7"
_MESSAGES = "/admin/reading/hl7/messages"


def _own_sites(ctx: Ctx) -> Target:
    return Target(kind="site", site_ids=frozenset(ctx.principal.roles))


def _site_target(site_id: int | None) -> Target:
    return Target(kind="hl7_sender", site_ids=frozenset({site_id} if site_id else set()))


def _managed_sites(ctx: Ctx) -> list[tuple[int, str]]:
    managed = ctx.visible_sites(ReadingAction.HL7_SENDER_MANAGE)
    return [
        (s.id, s.name) for s in accounts.list_sites(ctx.db) if managed is None or s.id in managed
    ]


@router.get(_SENDERS)
def senders_page(
    request: Request, ctx: Annotated[Ctx, gate(ReadingAction.HL7_SENDER_MANAGE)]
) -> Response:
    return _senders_view(request, ctx, "", {})


def _senders_view(
    request: Request, ctx: Ctx, error: str, form: dict[str, Any], status: int = 200
) -> Response:
    ctx.authorize(ReadingAction.HL7_SENDER_MANAGE, _own_sites(ctx))
    sites = _managed_sites(ctx)
    managed = ctx.visible_sites(ReadingAction.HL7_SENDER_MANAGE)
    settings = ctx.runtime.settings
    readable = ctx.visible_sites(ReadingAction.HL7_MESSAGE_READ)
    return render_page(
        request,
        "reading/hl7_senders.html",
        ctx,
        status,
        senders=senders.list_senders(ctx.db, managed),
        names=dict(sites),
        sites=sites,
        listener={"host": settings.hl7_host, "port": settings.hl7_port},
        # Only an administrator of every site sees what unknown systems tried to send.
        unregistered=message_log.refused_unregistered(ctx.db) if managed is None else [],
        may_read_messages=readable is None or bool(readable),
        error=error,
        form=form,
        modes=[m.value for m in senders.ImagesAvailable],
    )


@router.post(_SENDERS)
def senders_add(
    request: Request,
    ctx: Annotated[Ctx, gate(ReadingAction.HL7_SENDER_MANAGE)],
    application: Annotated[str, Form(max_length=64)],
    facility: Annotated[str, Form(max_length=64)],
    site_id: Annotated[int, Form()],
    description: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Register a hospital system (MSH-3, MSH-4) as a sender of a site (audited)."""
    form = {
        "application": application,
        "facility": facility,
        "site_id": site_id,
        "description": description,
    }
    ctx.authorize(ReadingAction.HL7_SENDER_MANAGE, _site_target(site_id))

    def run() -> None:
        accounts.get_site(ctx.db, site_id)
        senders.add_sender(
            ctx.db,
            ctx.actor,
            site_id=site_id,
            application=application,
            facility=facility,
            description=description,
        )
        ctx.commit()

    return run_form_action(
        ctx, run, lambda exc: _senders_view(request, ctx, exc.detail, form, exc.status), _SENDERS
    )


def _managed_sender(ctx: Ctx, sender_id: int) -> HL7Sender:
    """The sender, if this person manages its site; another site's sender looks absent."""
    sender = ctx.db.get(HL7Sender, sender_id)
    if sender is None:
        raise NotFound(_("no such HL7 sender"))
    try:
        ctx.authorize(ReadingAction.HL7_SENDER_MANAGE, _site_target(sender.site_id))
    except Forbidden:
        raise NotFound(_("no such HL7 sender")) from None
    return sender


@router.post(_SENDERS + "/senders/{sender_id}/remove")
def senders_remove(
    sender_id: int, ctx: Annotated[Ctx, gate(ReadingAction.HL7_SENDER_MANAGE)]
) -> Response:
    """Forget a sender: its messages are refused from now on (audited)."""
    sender = _managed_sender(ctx, sender_id)
    senders.remove_sender(ctx.db, ctx.actor, sender)
    ctx.commit()
    return redirect_to(_SENDERS)


@router.post(_SENDERS + "/senders/{sender_id}/destination")
def senders_destination(
    request: Request,
    sender_id: int,
    ctx: Annotated[Ctx, gate(ReadingAction.HL7_SENDER_MANAGE)],
    results_host: Annotated[str, Form(max_length=255)] = "",
    results_port: Annotated[str, Form(max_length=5)] = "",
    images_available: Annotated[str, Form(max_length=8)] = "none",
) -> Response:
    """Where a sender receives results and how it hears of available images (audited)."""
    sender = _managed_sender(ctx, sender_id)
    form: dict[str, Any] = {"destination_of": sender_id, "results_host": results_host}

    def run() -> None:
        port = results_port.strip()
        if port and not port.isdigit():
            raise InvalidInput(_("results destination: a host name or address and a port 1-65535"))
        senders.set_destination(
            ctx.db,
            ctx.actor,
            sender,
            host=results_host,
            port=int(port) if port else None,
            images_available=images_available,
        )
        ctx.commit()

    return run_form_action(
        ctx, run, lambda exc: _senders_view(request, ctx, exc.detail, form, exc.status), _SENDERS
    )


@router.get(_MESSAGES)
def messages_page(
    request: Request,
    ctx: Annotated[Ctx, gate(ReadingAction.HL7_MESSAGE_READ)],
    direction: Annotated[str, Query(max_length=3)] = "",
    ack: Annotated[str, Query(max_length=2)] = "",
    page: Annotated[int, Query(ge=1, le=10000)] = 1,
) -> Response:
    """The messages of the sites this person administers, newest first."""
    ctx.authorize(ReadingAction.HL7_MESSAGE_READ, _own_sites(ctx))
    sites = ctx.visible_sites(ReadingAction.HL7_MESSAGE_READ) or frozenset()
    direction = direction if direction in message_log.DIRECTIONS else ""
    ack = ack if ack in message_log.ACK_CODES else ""
    rows = message_log.list_messages(
        ctx.db,
        sites,
        direction=direction,
        ack_code=ack,
        limit=PAGE_SIZE + 1,
        offset=(page - 1) * PAGE_SIZE,
    )
    names = {s.id: s.name for s in accounts.list_sites(ctx.db)}
    return render_page(
        request,
        "reading/hl7_messages.html",
        ctx,
        messages=rows[:PAGE_SIZE],
        names=names,
        filters={"direction": direction, "ack": ack},
        page=page,
        more=len(rows) > PAGE_SIZE,
    )


@router.get(_MESSAGES + "/{message_id}")
def message_page(
    request: Request,
    message_id: int,
    ctx: Annotated[Ctx, gate(ReadingAction.HL7_MESSAGE_READ)],
) -> Response:
    """One message raw, with the acknowledgment that answered it (the opening is audited)."""
    message = ctx.db.get(HL7Message, message_id)
    if message is None or message.site_id is None:
        raise NotFound(_("no such HL7 message"))
    target = Target(
        kind="hl7_message",
        id=str(message.id),
        site_ids=frozenset({message.site_id}),
        patient_id=message.patient_id,
    )
    try:
        decision = ctx.authorize(ReadingAction.HL7_MESSAGE_READ, target)
    except Forbidden:
        raise NotFound(_("no such HL7 message")) from None
    inbound = message
    if message.answers_id is not None:
        inbound = ctx.db.get(HL7Message, message.answers_id) or message
    answers = message_log.answers_to(ctx.db, inbound)
    audit.record(
        ctx.db,
        ctx.actor,
        str(ReadingAction.HL7_MESSAGE_READ),
        ctx.outcome(decision),
        object_kind="hl7_message",
        object_id=message.id,
        patient_id=message.patient_id,
        site_id=message.site_id,
    )
    ctx.commit()
    return render_page(
        request,
        "reading/hl7_message.html",
        ctx,
        message=inbound,
        answers=answers,
        names={s.id: s.name for s in accounts.list_sites(ctx.db)},
        segments=segments_of(inbound.raw),
        answer_segments=[(a, segments_of(a.raw)) for a in answers],
    )


def segments_of(raw: bytes) -> list[str]:
    """The segments of a message as text, for display (bytes outside UTF-8 as Latin-1)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return [line for line in text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if line]
