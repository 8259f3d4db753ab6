"""Server-rendered pages: sign-in with a second factor, home per role, administration,
patients and consent, break-the-glass, audit log."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from concilium.config import ROLES
from concilium.imaging.actions import ImagingAction
from concilium.live.actions import LiveAction
from concilium.platform import audit, authn, patients, totp
from concilium.platform.accounts import list_sites
from concilium.platform.errors import ConciliumError, InvalidInput
from concilium.platform.policy import PlatformAction, Target, decide
from concilium.platform.tables import User
from concilium.services import TOKEN_SCOPES
from concilium.telesurgery.actions import TelesurgeryAction
from concilium.web import flows
from concilium.web.context import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Ctx,
    client_ip,
    gate,
    may_attempt,
    runtime_of,
)

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))

PUBLIC_PATHS = frozenset({"/login"})
"""Pages reachable without signing in."""
ROLE_LABELS = {
    "admin": "Administrator",
    "radiologist": "Radiologist",
    "referring_physician": "Referring physician",
    "specialist": "Specialist",
    "coordinator": "Coordinator",
    "technologist": "Technologist",
    "engineer": "Biomedical / network engineer",
    "learner": "Learner",
}
PURPOSE_LABELS = {
    "remote_reading": "Remote reading",
    "mdt_presentation": "Multidisciplinary meeting",
    "teaching": "Teaching broadcast and recording",
    "telesurgery": "Telesurgery",
}

Text = Annotated[str, Form(max_length=2000)]


def render_page(
    request: Request, name: str, ctx: Ctx | None, status: int = 200, **values: Any
) -> HTMLResponse:
    context: dict[str, Any] = {
        "ctx": ctx,
        "user": ctx.user if ctx else None,
        "csrf": ctx.csrf_token if ctx else "",
        "role_labels": ROLE_LABELS,
        "purpose_labels": PURPOSE_LABELS,
        "nav": _nav(ctx) if ctx else [],
        "path": request.url.path,
        **values,
    }
    return templates.TemplateResponse(request, name, context, status_code=status)


def _nav(ctx: Ctx) -> list[tuple[str, str]]:
    """Menu entries the policy would let this person use."""
    p = ctx.principal
    entries = [("/", "Home")]
    candidates = [
        (PlatformAction.PATIENT_READ, "/patients", "Patients"),
        (ImagingAction.STUDY_READ, "/imaging", "Imaging"),
        (LiveAction.LIVE_READ, "/live", "Live"),
        (LiveAction.LIVE_READ, "/live/library", "Recordings"),
        (TelesurgeryAction.PROCEDURE_READ, "/telesurgery", "Telesurgery"),
        (PlatformAction.EMERGENCY_REQUEST, "/emergency", "Emergency access"),
        (PlatformAction.USER_MANAGE, "/admin/users", "Users"),
        (PlatformAction.SITE_MANAGE, "/admin/sites", "Sites"),
        (ImagingAction.AE_MANAGE, "/admin/imaging/aes", "DICOM nodes"),
        (PlatformAction.AUDIT_READ, "/audit", "Audit log"),
    ]
    entries += [(href, label) for action, href, label in candidates if may_attempt(p, action)]
    entries += [("/tokens", "API tokens"), ("/account", "Account")]
    return entries


def render_error(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "error.html",
        {
            "ctx": None,
            "user": None,
            "nav": [],
            "title": title,
            "detail": detail,
            "status": status,
            "path": request.url.path,
        },
        status_code=status,
    )


def _site_names(ctx: Ctx) -> dict[int, str]:
    return {s.id: s.name for s in list_sites(ctx.db)}


def redirect_to(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _safe_next(target: str) -> str:
    """Only local paths: never redirect a signed-in user to another site."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _set_session_cookie(request: Request, response: Response, value: str) -> None:
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
        "login.html",
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
        return _login_form(request, 403, "The form expired; please sign in again.", username)
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
    if result.needs_enrolment:
        response = redirect_to(f"/login/enrol?next={target}")
    elif result.needs_totp:
        response = redirect_to(f"/login/totp?next={target}")
    else:
        response = redirect_to(target)
    _set_session_cookie(request, response, started.cookie_value)
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
    _set_session_cookie(ctx.request, response, started.cookie_value)
    return response


@router.get("/login/totp")
def totp_page(
    request: Request,
    ctx: Annotated[Ctx, gate(PlatformAction.HOME, allow_pending_mfa=True)],
    next: str = "/",
) -> Response:
    return render_page(request, "totp.html", ctx, next=_safe_next(next), error="")


@router.post("/login/totp")
def totp_submit(
    request: Request,
    ctx: Annotated[Ctx, gate(PlatformAction.HOME, allow_pending_mfa=True)],
    code: Annotated[str, Form(max_length=12)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    runtime = ctx.runtime
    if authn.check_totp(ctx.db, runtime.box, runtime.settings, ctx.user, code, ctx.now):
        return _finish_second_factor(ctx, next)
    audit.record(ctx.db, ctx.actor, "auth.totp", "failure")
    locked = ctx.user.locked_until is not None and ctx.user.locked_until > ctx.now
    if locked:
        authn.end_all_sessions(ctx.db, ctx.user.id)
    ctx.commit()
    request.app.state.metrics.logins.labels("refused").inc()
    if locked:
        return _login_form(request, 401, "Account locked after repeated failures; try later.")
    return render_page(
        request,
        "totp.html",
        ctx,
        401,
        next=_safe_next(next),
        error="That code is wrong or was already used. Wait for the next one.",
    )


def _enrol_view(
    request: Request, ctx: Ctx, secret: str, error: str, target: str, status: int = 200
) -> Response:
    uri = totp.provisioning_uri(secret, ctx.user.username)
    sealed = ctx.runtime.box.seal(secret, f"enrol:{ctx.user.id}")
    return render_page(
        request,
        "enrol.html",
        ctx,
        status,
        qr=totp.qr_svg(uri),
        secret=secret,
        sealed=sealed,
        error=error,
        next=target,
    )


@router.get("/login/enrol")
def enrol_page(
    request: Request,
    ctx: Annotated[Ctx, gate(PlatformAction.HOME, allow_pending_mfa=True)],
    next: str = "/",
) -> Response:
    if ctx.user.totp_secret:
        return redirect_to("/account")
    return _enrol_view(request, ctx, totp.new_secret(), "", _safe_next(next))


@router.post("/login/enrol")
def enrol_submit(
    request: Request,
    ctx: Annotated[Ctx, gate(PlatformAction.HOME, allow_pending_mfa=True)],
    sealed: Annotated[str, Form(max_length=500)],
    code: Annotated[str, Form(max_length=12)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    if ctx.user.totp_secret:
        return redirect_to("/account")
    try:
        secret = ctx.runtime.box.open(sealed, f"enrol:{ctx.user.id}")
    except Exception as exc:
        raise InvalidInput("the enrolment form was altered; start again") from exc
    try:
        authn.enrol_totp(ctx.db, ctx.runtime.box, ctx.user, secret, code, ctx.now)
    except InvalidInput as exc:
        return _enrol_view(request, ctx, secret, exc.detail, _safe_next(next), 422)
    audit.record(
        ctx.db, ctx.actor, "auth.totp.enrol", "success", object_kind="user", object_id=ctx.user.id
    )
    return _finish_second_factor(ctx, next)


@router.post("/logout")
def logout(ctx: Annotated[Ctx, gate(PlatformAction.HOME, allow_pending_mfa=True)]) -> Response:
    """Signing out ends every session of the account, on every device."""
    ended = authn.end_all_sessions(ctx.db, ctx.user.id)
    audit.record(ctx.db, ctx.actor, "auth.logout", "success", detail={"sessions_ended": ended})
    ctx.commit()
    response = redirect_to("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- home and account ---------------------------------------------------------------------------


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
        "home.html",
        ctx,
        sites=sites,
        alerts=alerts,
        can=lambda action: decide(p, action, _own_sites(ctx)).allowed,
        actions=PlatformAction,
        memberships=sorted((sites[s].name, sorted(r)) for s, r in p.roles.items() if s in sites),
    )


def _own_sites(ctx: Ctx) -> Target:
    return Target(kind="site", site_ids=frozenset(ctx.principal.roles))


@router.get("/account")
def account(request: Request, ctx: Annotated[Ctx, gate(PlatformAction.HOME)]) -> Response:
    ctx.authorize(PlatformAction.HOME)
    sites = _site_names(ctx)
    return render_page(
        request,
        "account.html",
        ctx,
        sites=sites,
        mfa_required=authn.mfa_required(ctx.user, ctx.runtime.settings),
    )


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge_alert(
    alert_id: int, ctx: Annotated[Ctx, gate(PlatformAction.ALERT_MANAGE)]
) -> Response:
    flows.acknowledge_alert(ctx, alert_id)
    return redirect_to("/")


# --- administration ---------------------------------------------------------------------------


@router.get("/admin/sites")
def sites_page(request: Request, ctx: Annotated[Ctx, gate(PlatformAction.SITE_MANAGE)]) -> Response:
    ctx.authorize(PlatformAction.SITE_MANAGE)
    return render_page(request, "sites.html", ctx, sites=flows.list_sites(ctx), error="")


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
            request, "sites.html", ctx, exc.status, sites=list_sites(ctx.db), error=exc.detail
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
    sites = _site_names(ctx)
    return render_page(
        request,
        "users.html",
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
    password: Annotated[str, Form(max_length=1000)],
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
        user = flows.create_user(
            ctx,
            username=username,
            full_name=full_name,
            password=password,
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
    return redirect_to(f"/admin/users/{user.id}")


@router.get("/admin/users/{user_id}")
def user_page(
    request: Request, user_id: int, ctx: Annotated[Ctx, gate(PlatformAction.USER_MANAGE)]
) -> Response:
    user = flows.read_user(ctx, user_id)
    return _user_view(request, ctx, user, "")


def _user_view(request: Request, ctx: Ctx, user: User, error: str, status: int = 200) -> Response:
    sites = _site_names(ctx)
    return render_page(
        request,
        "user.html",
        ctx,
        status,
        subject=user,
        sites=sites,
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
        site, _, role = str(value).partition(":")
        if not site.isdigit():
            raise InvalidInput("malformed role choice")
        grants.append((int(site), role))

    def apply() -> Response:
        try:
            flows.set_user_roles(ctx, user_id, grants)
        except InvalidInput as exc:
            ctx.db.rollback()
            return _user_view(request, ctx, flows.read_user(ctx, user_id), exc.detail, 422)
        return redirect_to(f"/admin/users/{user_id}")

    return await run_in_threadpool(apply)  # the database is used off the event loop


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
        "tokens.html",
        ctx,
        status,
        tokens=tokens,
        names=names,
        scopes=sorted(TOKEN_SCOPES),
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
            return _tokens_view(request, ctx, None, "days must be a whole number", 422)
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


# --- patients ----------------------------------------------------------------------------------


@router.get("/patients")
def patients_page(
    request: Request,
    ctx: Annotated[Ctx, gate(PlatformAction.PATIENT_READ)],
    q: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    return _patients_view(request, ctx, q, "", {})


def _patients_view(
    request: Request, ctx: Ctx, q: str, error: str, form: dict[str, Any], status: int = 200
) -> Response:
    found = flows.search_patients(ctx, q, 100, 0)
    sites = _site_names(ctx)
    writable = ctx.visible_sites(PlatformAction.PATIENT_WRITE)
    write_sites = [(i, n) for i, n in sites.items() if writable is None or i in writable]
    return render_page(
        request,
        "patients.html",
        ctx,
        status,
        patients=found,
        q=q,
        sites=sites,
        write_sites=write_sites,
        error=error,
        form=form,
    )


def _date_or_none(text: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInput("dates are written YYYY-MM-DD") from exc


@router.post("/patients")
def patients_create(
    request: Request,
    ctx: Annotated[Ctx, gate(PlatformAction.PATIENT_WRITE)],
    site_id: Annotated[int, Form()],
    identifier: Annotated[str, Form(max_length=64)],
    family_name: Annotated[str, Form(max_length=100)],
    given_name: Annotated[str, Form(max_length=100)],
    birth_date: Annotated[str, Form(max_length=10)] = "",
    sex: Annotated[str, Form(max_length=1)] = "U",
) -> Response:
    form = {
        "site_id": site_id,
        "identifier": identifier,
        "family_name": family_name,
        "given_name": given_name,
        "birth_date": birth_date,
        "sex": sex,
    }
    try:
        who = patients.Demographics(family_name, given_name, _date_or_none(birth_date), sex)
        patient = flows.create_patient(ctx, site_id, identifier, who)
    except ConciliumError as exc:
        ctx.db.rollback()
        if exc.status == 403:
            raise
        return _patients_view(request, ctx, "", exc.detail, form, exc.status)
    return redirect_to(f"/patients/{patient.id}")


@router.get("/patients/{patient_id}")
def patient_page(
    request: Request, patient_id: int, ctx: Annotated[Ctx, gate(PlatformAction.PATIENT_READ)]
) -> Response:
    return _patient_view(request, ctx, patient_id, "")


def _patient_view(
    request: Request, ctx: Ctx, patient_id: int, error: str, status: int = 200
) -> Response:
    patient = flows.read_patient(ctx, patient_id)
    _, standing, history = flows.consents(ctx, patient_id)
    target = patients.patient_target(ctx.db, patient, ctx.now)
    can_share = decide(ctx.principal, PlatformAction.SHARE_MANAGE, target).allowed
    shares = flows.patient_shares(ctx, patient_id) if can_share else []
    sites = _site_names(ctx)
    names = {u.id: u.full_name for u in _people(ctx)}
    return render_page(
        request,
        "patient.html",
        ctx,
        status,
        patient=patient,
        standing=standing,
        history=history,
        shares=shares,
        sites=sites,
        names=names,
        error=error,
        can_write=decide(ctx.principal, PlatformAction.PATIENT_WRITE, target).allowed,
        can_consent=decide(ctx.principal, PlatformAction.CONSENT_RECORD, target).allowed,
        can_share=can_share,
        can_merge=decide(ctx.principal, PlatformAction.PATIENT_MERGE, target).allowed,
        emergency=decide(ctx.principal, PlatformAction.PATIENT_READ, target).emergency,
        my_sites=[(s, sites[s]) for s in sorted(ctx.principal.roles) if s in sites],
        purposes=patients.PURPOSES,
        decisions=patients.DECISIONS,
        default_expiry=(ctx.now + timedelta(days=7)).date().isoformat(),
    )


def _people(ctx: Ctx) -> list[User]:
    return list(
        ctx.db.execute(select(User).where(~User.disabled).order_by(User.full_name)).scalars()
    )


def run_form_action(
    ctx: Ctx,
    run: Callable[[], object],
    redisplay: Callable[[ConciliumError], Response],
    done: str,
) -> Response:
    """Run a form's action. A user error shows the form again with the message and saves
    nothing; refusals (401, 403, 404) go to the error handlers; success goes to ``done``."""
    try:
        run()
    except ConciliumError as exc:
        ctx.db.rollback()
        if exc.status in {401, 403, 404}:
            raise
        return redisplay(exc)
    return redirect_to(done)


def _patient_action(request: Request, ctx: Ctx, patient_id: int, run: Any) -> Response:
    return run_form_action(
        ctx,
        run,
        lambda exc: _patient_view(request, ctx, patient_id, exc.detail, exc.status),
        f"/patients/{patient_id}",
    )


@router.post("/patients/{patient_id}/identifiers")
def patient_identifier(
    request: Request,
    patient_id: int,
    ctx: Annotated[Ctx, gate(PlatformAction.PATIENT_WRITE)],
    site_id: Annotated[int, Form()],
    value: Annotated[str, Form(max_length=64)],
) -> Response:
    return _patient_action(
        request, ctx, patient_id, lambda: flows.add_identifier(ctx, patient_id, site_id, value)
    )


@router.post("/patients/{patient_id}/consents")
def patient_consent(
    request: Request,
    patient_id: int,
    ctx: Annotated[Ctx, gate(PlatformAction.CONSENT_RECORD)],
    purpose: Annotated[str, Form(max_length=32)],
    decision: Annotated[str, Form(max_length=16)],
    site_id: Annotated[int, Form()],
    note: Text = "",
) -> Response:
    return _patient_action(
        request,
        ctx,
        patient_id,
        lambda: flows.record_consent(ctx, patient_id, purpose, decision, site_id, note),
    )


@router.post("/patients/{patient_id}/shares")
def patient_share(
    request: Request,
    patient_id: int,
    ctx: Annotated[Ctx, gate(PlatformAction.SHARE_MANAGE)],
    expires_on: Annotated[str, Form(max_length=10)],
    to_site_id: Annotated[str, Form(max_length=12)] = "",
    to_user_id: Annotated[str, Form(max_length=12)] = "",
    reason: Text = "",
) -> Response:
    def run() -> None:
        day = _date_or_none(expires_on)
        if day is None:
            raise InvalidInput("give the day the share ends")
        flows.share_patient(
            ctx,
            patient_id,
            to_site_id=int(to_site_id) if to_site_id.isdigit() else None,
            to_user_id=int(to_user_id) if to_user_id.isdigit() else None,
            expires_at=datetime.combine(day, time(23, 59), tzinfo=UTC),
            reason=reason,
        )

    return _patient_action(request, ctx, patient_id, run)


@router.post("/shares/{share_id}/revoke")
def share_revoke(share_id: int, ctx: Annotated[Ctx, gate(PlatformAction.SHARE_MANAGE)]) -> Response:
    share = flows.revoke_share(ctx, share_id)
    return redirect_to(f"/patients/{share.resource_id}")


@router.post("/patients/{patient_id}/merge")
def patient_merge(
    request: Request,
    patient_id: int,
    ctx: Annotated[Ctx, gate(PlatformAction.PATIENT_MERGE)],
    duplicate_id: Annotated[int, Form()],
) -> Response:
    return _patient_action(
        request, ctx, patient_id, lambda: flows.merge_patients(ctx, patient_id, duplicate_id)
    )


@router.get("/emergency")
def emergency_page(
    request: Request, ctx: Annotated[Ctx, gate(PlatformAction.EMERGENCY_REQUEST)]
) -> Response:
    ctx.authorize(PlatformAction.EMERGENCY_REQUEST)
    return render_page(
        request,
        "emergency.html",
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
            "emergency.html",
            ctx,
            exc.status,
            sites=list_sites(ctx.db),
            error=exc.detail,
            form=form,
            minutes=ctx.runtime.settings.emergency_access_minutes,
        )
    return redirect_to(f"/patients/{grant.patient_id}")


# --- audit ---------------------------------------------------------------------------------------


def _day(text: str, end: bool = False) -> datetime | None:
    day = _date_or_none(text)
    if day is None:
        return None
    start = datetime.combine(day, time(0, 0), tzinfo=UTC)
    return start + timedelta(days=1) if end else start


@router.get("/audit")
def audit_page(
    request: Request,
    ctx: Annotated[Ctx, gate(PlatformAction.AUDIT_READ)],
    actor: Annotated[str, Query(max_length=64)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    outcome: Annotated[str, Query(max_length=24)] = "",
    patient_id: Annotated[str, Query(max_length=12)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    page: Annotated[int, Query(ge=1, le=10000)] = 1,
) -> Response:
    if patient_id and not patient_id.isdigit():
        raise InvalidInput("patient number must be a whole number")
    criteria = audit.AuditFilter(
        actor,
        action,
        outcome,
        int(patient_id) if patient_id else None,
        _day(since),
        _day(until, end=True),
    )
    per_page = 50
    events = flows.search_audit(ctx, criteria, per_page + 1, (page - 1) * per_page)
    filters = {
        "actor": actor,
        "action": action,
        "outcome": outcome,
        "patient_id": patient_id,
        "since": since,
        "until": until,
    }
    return render_page(
        request,
        "audit.html",
        ctx,
        events=events[:per_page],
        filters=filters,
        page=page,
        more=len(events) > per_page,
        outcomes=audit.OUTCOMES,
        can_export=decide(ctx.principal, PlatformAction.AUDIT_EXPORT).allowed,
    )


@router.get("/audit/export")
def audit_export(
    ctx: Annotated[Ctx, gate(PlatformAction.AUDIT_EXPORT)],
    fmt: Annotated[str, Query(alias="format", pattern="^(fhir|syslog)$")] = "fhir",
) -> Response:
    """Whole trail as NDJSON FHIR AuditEvent resources or RFC 5424 lines."""
    ctx.authorize(PlatformAction.AUDIT_EXPORT)
    audit.record(ctx.db, ctx.actor, "audit.export", "success", detail={"format": fmt})
    ctx.commit()
    sessions = ctx.runtime.read_sessions  # a long export never holds up writers
    observer = urlsplit(ctx.runtime.settings.public_url).hostname or "concilium"

    def lines() -> Any:
        with sessions() as db:
            for line in audit.export_lines(audit.iter_events(db), fmt, observer):
                yield line + "\n"

    media = "application/fhir+ndjson" if fmt == "fhir" else "text/plain; charset=utf-8"
    filename = f"concilium-audit.{'ndjson' if fmt == 'fhir' else 'log'}"
    return StreamingResponse(
        lines(),
        media_type=media,
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
