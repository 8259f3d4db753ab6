"""A person's own account: its page, changing the password, enrolling a second factor
(TOTP, RFC 6238), and the set-up or reset link by which a person chooses both."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from concilium.platform import account_links, accounts, audit, authn, totp
from concilium.platform.accounts import site_names
from concilium.platform.errors import ConciliumError, InvalidInput
from concilium.platform.i18n import _
from concilium.platform.policy import PlatformAction
from concilium.platform.tables import AccountLink
from concilium.portal import flows
from concilium.portal.signin import set_session_cookie
from concilium.web.context import Ctx, client_ip, gate, runtime_of
from concilium.web.forms import redirect_to
from concilium.web.rendering import render_page

router = APIRouter(include_in_schema=False)

Secret = Annotated[str, Form(max_length=1000)]
"""A password typed into a form."""
Code = Annotated[str, Form(max_length=12)]
"""A code from an authenticator app (may be left empty where none is needed)."""


# --- the account page and the password -----------------------------------------------------


def _account_view(
    request: Request, ctx: Ctx, status: int = 200, error: str = "", done: str = ""
) -> Response:
    return render_page(
        request,
        "portal/account.html",
        ctx,
        status,
        sites=site_names(ctx.db),
        mfa_required=authn.mfa_required(ctx.user, ctx.runtime.settings),
        error=error,
        done=done,
    )


@router.get("/account")
def account(
    request: Request, ctx: Annotated[Ctx, gate(PlatformAction.HOME)], changed: str = ""
) -> Response:
    ctx.authorize(PlatformAction.HOME)
    done = _("Your password was changed; your other sessions ended.") if changed else ""
    return _account_view(request, ctx, done=done)


@router.post("/account/password")
def change_password(
    request: Request,
    ctx: Annotated[Ctx, gate(PlatformAction.CREDENTIALS_CHANGE)],
    current_password: Secret,
    new_password: Secret,
    new_password_again: Secret,
    code: Code = "",
) -> Response:
    """Change one's password: the current one and the second factor prove it is its holder;
    the account's other sessions end."""
    try:
        started = flows.change_password(
            ctx, current_password, new_password, new_password_again, code
        )
    except ConciliumError as exc:
        ctx.db.rollback()
        if exc.status in (401, 403, 404):
            raise
        return _account_view(request, ctx, exc.status, error=exc.detail)
    response = redirect_to("/account?changed=1")
    set_session_cookie(request, response, started.cookie_value)
    return response


# --- enrolling a second factor while signed in ------------------------------------------------


def _enrol_view(
    request: Request, ctx: Ctx, secret: str, error: str = "", status: int = 200
) -> Response:
    uri = totp.provisioning_uri(secret, ctx.user.username)
    return render_page(
        request,
        "portal/enrol.html",
        ctx,
        status,
        qr=totp.qr_svg(uri),
        secret=secret,
        sealed=ctx.runtime.box.seal(secret, f"enrol:{ctx.user.id}"),
        error=error,
    )


@router.get("/account/second-factor")
def enrol_page(request: Request, ctx: Annotated[Ctx, gate(PlatformAction.HOME)]) -> Response:
    ctx.authorize(PlatformAction.HOME)
    if ctx.user.totp_secret:
        return redirect_to("/account")
    return _enrol_view(request, ctx, totp.new_secret())


@router.post("/account/second-factor")
def enrol_submit(
    request: Request,
    ctx: Annotated[Ctx, gate(PlatformAction.CREDENTIALS_CHANGE)],
    sealed: Annotated[str, Form(max_length=500)],
    current_password: Secret,
    code: Code,
) -> Response:
    """A signed-in person adds an authenticator; their password proves it is them."""
    if ctx.user.totp_secret:
        return redirect_to("/account")
    try:
        secret = ctx.runtime.box.open(sealed, f"enrol:{ctx.user.id}")
    except Exception as exc:
        raise InvalidInput(_("The enrolment form was altered; start again.")) from exc
    try:
        flows.enrol_second_factor(ctx, current_password, secret, code)
    except ConciliumError as exc:
        ctx.db.rollback()
        if exc.status in (401, 403, 404):
            raise
        return _enrol_view(request, ctx, secret, exc.detail, exc.status)
    return redirect_to("/account")


# --- set-up and reset links ------------------------------------------------------------------


def _link_view(
    request: Request,
    link: AccountLink,
    username: str,
    needs_code: bool,
    secret: str,
    error: str = "",
    status: int = 200,
) -> Response:
    box = runtime_of(request).box
    return render_page(
        request,
        "portal/setup.html",
        None,
        status,
        link=link,
        username=username,
        needs_code=needs_code,
        qr=totp.qr_svg(totp.provisioning_uri(secret, username)),
        secret=secret,
        sealed=box.seal(secret, f"link:{link.id}"),
        error=error,
    )


@router.get("/account/setup/{secret}")
def link_page(request: Request, secret: str) -> Response:
    """The page a set-up or reset link opens: choose a password, scan the QR code."""
    runtime = runtime_of(request)
    with runtime.sessions() as db:
        link = account_links.find(db, secret, runtime.now())
        user = accounts.get_user(db, link.user_id)
        needs = account_links.needs_second_factor(user, runtime.settings)
        return _link_view(request, link, user.username, needs, totp.new_secret())


@router.post("/account/setup/{secret}")
def link_submit(
    request: Request,
    secret: str,
    sealed: Annotated[str, Form(max_length=500)],
    password: Secret,
    password_again: Secret,
    code: Code = "",
) -> Response:
    runtime = runtime_of(request)
    now = runtime.now()
    with runtime.sessions() as db:
        link = account_links.find(db, secret, now)
        user = accounts.get_user(db, link.user_id)
        try:
            totp_secret = runtime.box.open(sealed, f"link:{link.id}")
        except Exception as exc:
            raise InvalidInput(_("The form was altered; open the link again.")) from exc
        try:
            account_links.complete(
                db,
                runtime.box,
                runtime.settings,
                link,
                password=password,
                password_again=password_again,
                totp_secret=totp_secret,
                code=code,
                ip=client_ip(request),
                now=now,
            )
        except InvalidInput as exc:
            db.rollback()
            needs = account_links.needs_second_factor(user, runtime.settings)
            return _link_view(request, link, user.username, needs, totp_secret, exc.detail, 422)
        # The holder just proved the password and the authenticator: they are signed in.
        started = authn.start_session(db, user, client_ip(request), now, mfa_verified=True)
        actor = audit.Actor(user.id, user.username, ip=client_ip(request))
        audit.record(db, actor, "auth.login", "success", detail={"through": link.purpose})
        db.commit()
    response = redirect_to("/")
    set_session_cookie(request, response, started.cookie_value)
    return response
