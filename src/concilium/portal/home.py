"""The home page of each person, with what they must know about their account, and the
administrators' alerts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from concilium.platform.accounts import list_sites
from concilium.platform.i18n import N_, _
from concilium.platform.policy import PlatformAction, Target, decide
from concilium.platform.tables import Alert, User
from concilium.portal import flows
from concilium.portal.dashboard import dashboard
from concilium.web.context import Ctx, gate
from concilium.web.forms import redirect_to
from concilium.web.rendering import render_page

router = APIRouter(include_in_schema=False)

ALERT_LABELS = {
    "break-the-glass": N_("Emergency access"),
    "second-factor-lock": N_("Account locked"),
}
"""What each kind of alert is called."""
ALERT_TEXTS = {
    "break-the-glass": N_("%(who)s opened emergency access to a patient of your hospitals."),
    "second-factor-lock": N_(
        "%(who)s's account was locked after wrong second-factor codes following a right password."
    ),
}
"""What each kind of alert says, in the reader's language (the alert's stored message is
the operators' English)."""


def alert_text(ctx: Ctx, alert: Alert) -> str:
    template = ALERT_TEXTS.get(alert.kind)
    if template is None or alert.user_id is None:
        return alert.message
    person = ctx.db.get(User, alert.user_id)
    return _(template) % {"who": person.full_name if person else alert.user_id}


SESSION_KINDS = {
    "supervision": N_("Supervision"),
    "broadcast": N_("Broadcast"),
    "conference": N_("Conference"),
}
"""What each kind of live session is called."""
SESSION_ROLES = {
    "director": N_("director"),
    "moderator": N_("moderator"),
    "presenter": N_("presenter"),
    "participant": N_("participant"),
    "viewer": N_("viewer"),
}
"""What each role in a live session is called."""
PROCEDURE_STATES = {"planned": N_("planned"), "started": N_("under way"), "ended": N_("ended")}
"""What each state of a telesurgery procedure is called."""


# --- home ---------------------------------------------------------------------------------


@router.get("/")
def home(request: Request, ctx: Annotated[Ctx, gate(PlatformAction.HOME)]) -> Response:
    ctx.authorize(PlatformAction.HOME)
    p = ctx.principal
    sites = {s.id: s for s in list_sites(ctx.db)}
    alerts = (
        flows.open_alerts(ctx)
        if decide(p, PlatformAction.ALERT_MANAGE, _own_sites(ctx)).allowed
        else []
    )
    return render_page(
        request,
        "portal/home.html",
        ctx,
        sites=sites,
        alerts=alerts,
        alert_labels=ALERT_LABELS,
        alert_texts={a.id: alert_text(ctx, a) for a in alerts},
        board=dashboard(ctx),
        session_kinds=SESSION_KINDS,
        session_roles=SESSION_ROLES,
        procedure_states=PROCEDURE_STATES,
        notifications=flows.my_notifications(ctx),
        can=lambda action: decide(p, action, _own_sites(ctx)).allowed,
        actions=PlatformAction,
        memberships=sorted((sites[s].name, sorted(r)) for s, r in p.roles.items() if s in sites),
    )


def _own_sites(ctx: Ctx) -> Target:
    return Target(kind="site", site_ids=frozenset(ctx.principal.roles))


@router.post("/notifications/{notification_id}/dismiss")
def dismiss_notification(
    notification_id: int, ctx: Annotated[Ctx, gate(PlatformAction.NOTIFICATION_MANAGE)]
) -> Response:
    flows.dismiss_notification(ctx, notification_id)
    return redirect_to("/")


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge_alert(
    alert_id: int, ctx: Annotated[Ctx, gate(PlatformAction.ALERT_MANAGE)]
) -> Response:
    flows.acknowledge_alert(ctx, alert_id)
    return redirect_to("/")
