"""Administration: hospitals, accounts and their roles, API tokens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from concilium.config import ROLES
from concilium.platform import authn
from concilium.platform.account_links import IssuedLink
from concilium.platform.accounts import list_sites, site_names
from concilium.platform.errors import ConciliumError, InvalidInput, SecondFactorRefused
from concilium.platform.i18n import _
from concilium.platform.policy import PlatformAction, Target, decide
from concilium.platform.tables import User
from concilium.portal import flows
from concilium.portal.targets import user_target
from concilium.web.context import Ctx, gate
from concilium.web.forms import redirect_to
from concilium.web.rendering import render_page

router = APIRouter(include_in_schema=False)


# --- administration ---------------------------------------------------------------------------


@router.get("/admin/sites")
def sites_page(request: Request, ctx: Annotated[Ctx, gate(PlatformAction.SITE_MANAGE)]) -> Response:
    ctx.authorize(PlatformAction.SITE_MANAGE)
    return render_page(request, "portal/sites.html", ctx, sites=flows.list_sites(ctx), error="")


@router.post("/admin/sites")
def sites_create(
    request: Request,
    ctx: Annotated[Ctx, gate(PlatformAction.SITE_MANAGE)],
    name: Annotated[str, Form(max_length=200)],
    finess: Annotated[str, Form(max_length=9)],
) -> Response:
    try:
        flows.create_site(ctx, name, finess.strip())
    except ConciliumError as exc:
        ctx.db.rollback()
        return render_page(
            request,
            "portal/sites.html",
            ctx,
            exc.status,
            sites=list_sites(ctx.db),
            error=exc.detail,
        )
    return redirect_to("/admin/sites")


def _managed_sites(ctx: Ctx) -> list[Any]:
    managed = ctx.visible_sites(PlatformAction.USER_MANAGE)
    return [s for s in list_sites(ctx.db) if managed is None or s.id in managed]


@router.get("/admin/users")
def users_page(request: Request, ctx: Annotated[Ctx, gate(PlatformAction.USER_MANAGE)]) -> Response:
    return _users_view(request, ctx, "", {})


def _users_view(
    request: Request, ctx: Ctx, error: str, form: dict[str, Any], status: int = 200
) -> Response:
    users = flows.list_users(ctx)
    sites = site_names(ctx.db)
    return render_page(
        request,
        "portal/users.html",
        ctx,
        status,
        users=users,
        sites=sites,
        managed=_managed_sites(ctx),
        roles=ROLES,
        error=error,
        form=form,
    )


@router.post("/admin/users")
def users_create(
    request: Request,
    ctx: Annotated[Ctx, gate(PlatformAction.USER_MANAGE)],
    username: Annotated[str, Form(max_length=63)],
    full_name: Annotated[str, Form(max_length=200)],
    site_id: Annotated[int, Form()],
    role: Annotated[str, Form(max_length=32)],
    email: Annotated[str, Form(max_length=200)] = "",
    profession: Annotated[str, Form(max_length=100)] = "",
    specialty: Annotated[str, Form(max_length=100)] = "",
    rpps: Annotated[str, Form(max_length=11)] = "",
) -> Response:
    form = {
        "username": username,
        "full_name": full_name,
        "email": email,
        "profession": profession,
        "specialty": specialty,
        "rpps": rpps,
        "site_id": site_id,
        "role": role,
    }
    try:
        user, link = flows.create_user(
            ctx,
            username=username,
            full_name=full_name,
            roles=[(site_id, role)],
            email=email,
            profession=profession,
            specialty=specialty,
            rpps=rpps.strip() or None,
        )
    except ConciliumError as exc:
        ctx.db.rollback()
        if exc.status == 403:
            raise
        return _users_view(request, ctx, exc.detail, form, exc.status)
    # The set-up link is shown this once: only its hash is kept.
    return _user_view(request, ctx, user, "", 201, link=link)


@router.get("/admin/users/{user_id}")
def user_page(
    request: Request, user_id: int, ctx: Annotated[Ctx, gate(PlatformAction.USER_MANAGE)]
) -> Response:
    user = flows.read_user(ctx, user_id)
    return _user_view(request, ctx, user, "")


def _user_view(
    request: Request,
    ctx: Ctx,
    user: User,
    error: str,
    status: int = 200,
    link: IssuedLink | None = None,
) -> Response:
    sites = site_names(ctx.db)
    _user, target = user_target(ctx.db, user.id)
    return render_page(
        request,
        "portal/user.html",
        ctx,
        status,
        subject=user,
        sites=sites,
        can_manage=decide(ctx.principal, PlatformAction.USER_MANAGE, target).allowed,
        outbox_allowed=decide(
            ctx.principal,
            PlatformAction.OUTBOX_MANAGE,
            Target(kind="mail", site_ids=frozenset(ctx.principal.roles)),
        ).allowed,
        link=link,
        link_hours=ctx.runtime.settings.account_link_hours,
        managed=_managed_sites(ctx),
        roles=ROLES,
        error=error,
    )


@router.post("/admin/users/{user_id}/roles")
async def user_roles(
    request: Request, user_id: int, ctx: Annotated[Ctx, gate(PlatformAction.USER_MANAGE)]
) -> Response:
    form = await request.form()
    grants: list[tuple[int, str]] = []
    for value in form.getlist("grant"):
        site, _sep, role = str(value).partition(":")
        if not site.isdigit():
            raise InvalidInput(_("Malformed role choice."))
        grants.append((int(site), role))

    def apply() -> Response:
        try:
            flows.set_user_roles(ctx, user_id, grants)
        except InvalidInput as exc:
            ctx.db.rollback()
            return _user_view(request, ctx, flows.read_user(ctx, user_id), exc.detail, 422)
        return redirect_to(f"/admin/users/{user_id}")

    return await run_in_threadpool(apply)  # the database is used off the event loop


@router.post("/admin/users/{user_id}/reset-link")
def user_reset_link(
    request: Request,
    user_id: int,
    ctx: Annotated[Ctx, gate(PlatformAction.USER_MANAGE)],
    code: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    """Issue a link resetting the account's password and second factor, shown once."""
    try:
        link = flows.issue_reset_link(ctx, user_id, code)
    except (InvalidInput, SecondFactorRefused) as exc:
        ctx.db.rollback()  # a refused code was counted and audited already
        return _user_view(request, ctx, flows.read_user(ctx, user_id), exc.detail, exc.status)
    return _user_view(request, ctx, flows.read_user(ctx, user_id), "", 201, link=link)


@router.post("/admin/users/{user_id}/disable")
def user_disable(user_id: int, ctx: Annotated[Ctx, gate(PlatformAction.USER_MANAGE)]) -> Response:
    flows.set_user_disabled(ctx, user_id, True)
    return redirect_to(f"/admin/users/{user_id}")


@router.post("/admin/users/{user_id}/enable")
def user_enable(user_id: int, ctx: Annotated[Ctx, gate(PlatformAction.USER_MANAGE)]) -> Response:
    flows.set_user_disabled(ctx, user_id, False)
    return redirect_to(f"/admin/users/{user_id}")


# --- tokens ------------------------------------------------------------------------------------


@router.get("/tokens")
def tokens_page(
    request: Request, ctx: Annotated[Ctx, gate(PlatformAction.TOKEN_MANAGE)]
) -> Response:
    return _tokens_view(request, ctx, issued=None, error="")


def _tokens_view(
    request: Request, ctx: Ctx, issued: authn.IssuedToken | None, error: str, status: int = 200
) -> Response:
    tokens = flows.list_tokens(ctx)
    names = {u.id: u.username for u in flows.list_users(ctx)} | {ctx.user.id: ctx.user.username}
    return render_page(
        request,
        "portal/tokens.html",
        ctx,
        status,
        tokens=tokens,
        names=names,
        scopes=sorted(ctx.runtime.token_scopes),
        issued=issued,
        error=error,
        max_days=ctx.runtime.settings.token_max_days,
    )


@router.post("/tokens")
async def tokens_create(
    request: Request, ctx: Annotated[Ctx, gate(PlatformAction.TOKEN_MANAGE)]
) -> Response:
    form = await request.form()
    scopes = [str(s) for s in form.getlist("scopes")]
    days_text = str(form.get("days", "90"))
    name = str(form.get("name", ""))[:100]

    def issue() -> Response:
        try:
            days = int(days_text)
            issued = flows.issue_token(ctx, name, scopes, days)
        except ValueError:
            return _tokens_view(
                request, ctx, None, _("The number of days must be a whole number."), 422
            )
        except InvalidInput as exc:
            ctx.db.rollback()
            return _tokens_view(request, ctx, None, exc.detail, 422)
        return _tokens_view(request, ctx, issued, "", 201)

    return await run_in_threadpool(issue)  # the database is used off the event loop


@router.post("/tokens/{token_id}/revoke")
def tokens_revoke(
    token_id: str, ctx: Annotated[Ctx, gate(PlatformAction.TOKEN_MANAGE)]
) -> Response:
    flows.revoke_token(ctx, token_id)
    return redirect_to("/tokens")
