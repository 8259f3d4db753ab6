"""Break-the-glass: justified, time-boxed access to a patient in an emergency."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from concilium.platform.accounts import list_sites
from concilium.platform.errors import ConciliumError
from concilium.platform.policy import PlatformAction
from concilium.portal import flows
from concilium.web.context import Ctx, gate
from concilium.web.forms import Text, redirect_to
from concilium.web.rendering import render_page

router = APIRouter(include_in_schema=False)


@router.get("/emergency")
def emergency_page(
    request: Request, ctx: Annotated[Ctx, gate(PlatformAction.EMERGENCY_REQUEST)]
) -> Response:
    ctx.authorize(PlatformAction.EMERGENCY_REQUEST)
    return render_page(
        request,
        "portal/emergency.html",
        ctx,
        sites=list_sites(ctx.db),
        error="",
        form={},
        minutes=ctx.runtime.settings.emergency_access_minutes,
    )


@router.post("/emergency")
def emergency_open(
    request: Request,
    ctx: Annotated[Ctx, gate(PlatformAction.EMERGENCY_REQUEST)],
    site_id: Annotated[int, Form()],
    identifier: Annotated[str, Form(max_length=64)],
    justification: Text,
) -> Response:
    try:
        grant = flows.break_the_glass(ctx, site_id, identifier, justification)
    except ConciliumError as exc:
        ctx.db.rollback()
        if exc.status == 403:
            raise
        form = {"site_id": site_id, "identifier": identifier, "justification": justification}
        return render_page(
            request,
            "portal/emergency.html",
            ctx,
            exc.status,
            sites=list_sites(ctx.db),
            error=exc.detail,
            form=form,
            minutes=ctx.runtime.settings.emergency_access_minutes,
        )
    return redirect_to(f"/patients/{grant.patient_id}")
