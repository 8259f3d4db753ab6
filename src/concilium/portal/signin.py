"""Signing in and out: password, then the second factor (TOTP, RFC 6238).

An authenticator is enrolled through a set-up or reset link (``concilium.portal.account``),
never at a first sign-in: whoever knew an initial password could have enrolled their own."""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from concilium.platform import audit, authn
from concilium.platform.errors import TooManyRequests
from concilium.platform.i18n import _
from concilium.platform.policy import PlatformAction
from concilium.platform.tables import User
from concilium.web.context import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Ctx,
    client_ip,
    gate,
    runtime_of,
)
from concilium.web.forms import redirect_to
from concilium.web.rendering import render_page

router = APIRouter(include_in_schema=False)


def _safe_next(target: str) -> str:
    """Only local paths: never redirect a signed-in user to another site."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def set_session_cookie(request: Request, response: Response, value: str) -> None:
    settings = runtime_of(request).settings
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=settings.session_absolute_hours * 3600,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="strict",
        path="/",
    )


# --- sign-in ---------------------------------------------------------------------------------


def _login_form(
    request: Request, status: int = 200, error: str = "", username: str = ""
) -> Response:
    token = secrets.token_urlsafe(24)
    response = render_page(
        request,
        "portal/login.html",
        None,
        status,
        login_csrf=token,
        error=error,
        username=username,
        next=_safe_next(request.query_params.get("next", "/")),
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=1800,
        httponly=True,
        secure=runtime_of(request).settings.cookie_secure,
        samesite="strict",
        path="/login",
    )
    return response


@router.get("/login")
def login_page(request: Request) -> Response:
    return _login_form(request)


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1000)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    runtime = runtime_of(request)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not secrets.compare_digest(cookie, csrf_token):
        return _login_form(request, 403, _("The form expired; please sign in again."), username)
    now = runtime.now()
    metrics = request.app.state.metrics
    with runtime.sessions() as db:
        result = authn.authenticate_password(
            db, runtime.settings, username, password, client_ip(request), now
        )
        if isinstance(result, authn.LoginRefusal):
            db.commit()
            metrics.logins.labels("refused").inc()
            return _login_form(request, result.error.status, result.error.detail, username)
        started = authn.start_session(
            db, result.user, client_ip(request), now, mfa_verified=not result.needs_totp
        )
        if not result.needs_totp:
            audit.record(db, _actor(result.user, request), "auth.login", "success")
            metrics.logins.labels("success").inc()
        db.commit()
    target = _safe_next(next)
    if result.needs_totp:
        response = redirect_to(f"/login/totp?next={target}")
    else:
        response = redirect_to(target)
    set_session_cookie(request, response, started.cookie_value)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


def _actor(user: User, request: Request) -> audit.Actor:
    return audit.Actor(user.id, user.username, ip=client_ip(request))


def _finish_second_factor(ctx: Ctx, target: str) -> Response:
    """Replace the half-signed-in session by a fresh one (no session fixation across MFA)."""
    old = ctx.request.cookies.get(SESSION_COOKIE, "")
    authn.end_session(ctx.db, old)
    started = authn.start_session(ctx.db, ctx.user, client_ip(ctx.request), ctx.now, True)
    audit.record(ctx.db, ctx.actor, "auth.login", "success", detail={"second_factor": "totp"})
    ctx.commit()
    ctx.request.app.state.metrics.logins.labels("success").inc()
    response = redirect_to(_safe_next(target))
    set_session_cookie(ctx.request, response, started.cookie_value)
    return response


@router.get("/login/totp")
def totp_page(
    request: Request,
    ctx: Annotated[Ctx, gate(PlatformAction.HOME, allow_pending_mfa=True)],
    next: str = "/",
) -> Response:
    return render_page(request, "portal/totp.html", ctx, next=_safe_next(next), error="")


@router.post("/login/totp")
def totp_submit(
    request: Request,
    ctx: Annotated[Ctx, gate(PlatformAction.HOME, allow_pending_mfa=True)],
    code: Annotated[str, Form(max_length=12)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    runtime = ctx.runtime
    try:
        accepted = authn.check_totp(
            ctx.db, runtime.box, runtime.settings, ctx.user, code, ctx.now, client_ip(request)
        )
    except TooManyRequests as exc:
        audit.record(ctx.db, ctx.actor, "auth.totp", "refused", detail={"reason": "throttled"})
        ctx.commit()
        request.app.state.metrics.logins.labels("refused").inc()
        return render_page(
            request, "portal/totp.html", ctx, exc.status, next=_safe_next(next), error=exc.detail
        )
    if accepted:
        return _finish_second_factor(ctx, next)
    audit.record(ctx.db, ctx.actor, "auth.totp", "failure")
    locked = ctx.user.locked_until is not None and ctx.user.locked_until > ctx.now
    if locked:
        authn.end_all_sessions(ctx.db, ctx.user.id)
    ctx.commit()
    request.app.state.metrics.logins.labels("refused").inc()
    if locked:
        return _login_form(request, 401, _("Account locked after repeated failures; try later."))
    return render_page(
        request,
        "portal/totp.html",
        ctx,
        401,
        next=_safe_next(next),
        error=_("That code is wrong or was already used. Wait for the next one."),
    )


@router.post("/logout")
def logout(ctx: Annotated[Ctx, gate(PlatformAction.HOME, allow_pending_mfa=True)]) -> Response:
    """Signing out ends every session of the account, on every device."""
    ended = authn.end_all_sessions(ctx.db, ctx.user.id)
    audit.record(ctx.db, ctx.actor, "auth.logout", "success", detail={"sessions_ended": ended})
    ctx.commit()
    response = redirect_to("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
