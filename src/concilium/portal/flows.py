"""Authorised use-cases shared by the pages and the JSON API.

Each loads its object, asks the policy about that very object, calls the domain and
audits; the adapters only translate forms or JSON in and pages or JSON out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from concilium.platform import (
    account_links,
    accounts,
    audit,
    authn,
    notifications,
    patients,
    share_mail,
    sharing,
)
from concilium.platform.accounts import RoleGrant
from concilium.platform.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    SecondFactorRefused,
    TooManyRequests,
    Unauthenticated,
)
from concilium.platform.i18n import N_, _, show_datetime
from concilium.platform.policy import Action, PlatformAction, Target
from concilium.platform.tables import (
    Alert,
    ApiToken,
    AuditEvent,
    Consent,
    EmergencyGrant,
    Notification,
    Patient,
    Share,
    Site,
    User,
)
from concilium.portal import account_mail, emergency_mail
from concilium.portal.targets import sites_target, token_target, user_target
from concilium.web.context import Ctx
from concilium.web.rendering import reader_zone

# --- sites ---------------------------------------------------------------------------------


def create_site(ctx: Ctx, name: str, finess: str) -> Site:
    ctx.authorize(PlatformAction.SITE_MANAGE)
    site = accounts.create_site(ctx.db, ctx.actor, name, finess)
    ctx.commit()
    return site


def list_sites(ctx: Ctx) -> Sequence[Site]:
    ctx.authorize(PlatformAction.SITE_LIST)
    return accounts.list_sites(ctx.db)


# --- users ---------------------------------------------------------------------------------


def _grants(roles: Sequence[tuple[int, str]]) -> list[RoleGrant]:
    return [RoleGrant(site_id, role) for site_id, role in roles]


def create_user(
    ctx: Ctx,
    *,
    username: str,
    full_name: str,
    roles: Sequence[tuple[int, str]],
    email: str = "",
    profession: str = "",
    specialty: str = "",
    rpps: str | None = None,
) -> tuple[User, account_links.IssuedLink]:
    """A new account without a password, and the set-up link by which its holder chooses
    one and enrols their second factor (shown once, to the administrator)."""
    grants = _grants(roles)
    if not grants:
        raise InvalidInput(_("A user needs at least one role at a site."))
    ctx.authorize(
        PlatformAction.USER_MANAGE, sites_target(frozenset(g.site_id for g in grants), "user")
    )
    managed = ctx.visible_sites(PlatformAction.USER_MANAGE)
    if managed is not None and any(g.site_id not in managed for g in grants):
        raise InvalidInput(_("You can only give roles at sites you administer."))
    user = accounts.create_user(
        ctx.db,
        ctx.actor,
        username=username,
        full_name=full_name,
        password=None,
        roles=grants,
        email=email,
        profession=profession,
        specialty=specialty,
        rpps=rpps,
    )
    link = account_links.issue(ctx.db, ctx.runtime.settings, ctx.actor, user, "setup", ctx.now)
    mail = account_mail.send_setup_link(ctx.db, ctx.runtime, user, link, ctx.user.full_name)
    ctx.commit()
    return user, replace(link, mailed_to=user.email if mail is not None else "")


def list_users(ctx: Ctx) -> Sequence[User]:
    ctx.authorize(PlatformAction.USER_READ, Target(kind="user", owner_user_id=ctx.user.id))
    sites = ctx.visible_sites(PlatformAction.USER_READ)
    if sites is not None and not sites:
        return [ctx.user]
    return accounts.list_users(ctx.db, sites)


def read_user(ctx: Ctx, user_id: int) -> User:
    user, target = user_target(ctx.db, user_id)
    ctx.authorize(PlatformAction.USER_READ, target)
    return user


def set_user_disabled(ctx: Ctx, user_id: int, disabled: bool) -> User:
    user, target = user_target(ctx.db, user_id)
    ctx.authorize(PlatformAction.USER_MANAGE, target)
    changed = user.disabled != disabled
    accounts.set_disabled(ctx.db, ctx.actor, user, disabled)
    if changed:
        account_mail.send_status_notice(ctx.db, ctx.runtime, user, disabled, ctx.user.full_name)
    ctx.commit()
    return user


def set_user_roles(ctx: Ctx, user_id: int, roles: Sequence[tuple[int, str]]) -> User:
    user, target = user_target(ctx.db, user_id)
    grants = _grants(roles)
    ctx.authorize(PlatformAction.USER_MANAGE, target)
    before = {(m.site_id, m.role) for m in user.memberships}
    accounts.set_roles(
        ctx.db, ctx.actor, user, ctx.visible_sites(PlatformAction.USER_MANAGE), grants
    )
    if {(m.site_id, m.role) for m in user.memberships} != before:
        account_mail.send_roles_notice(ctx.db, ctx.runtime, user, ctx.user.full_name)
    ctx.commit()
    return user


def confirm_second_factor(ctx: Ctx, code: str | None, action: str, subject: User) -> None:
    """Acting on another person's account needs the actor's own second factor once more: a
    stolen session or API token is not enough. A refusal is audited and counted."""
    if not ctx.user.totp_secret:
        reason = _(
            "Enrol a second factor on your own account first, to act on another person's account."
        )
    elif not code or not authn.check_totp(
        ctx.db, ctx.runtime.box, ctx.runtime.settings, ctx.user, code, ctx.now, ctx.actor.ip
    ):
        reason = _(
            "Confirm with a current code of your authenticator, to act on another person's account."
        )
    else:
        return
    audit.record(
        ctx.db,
        ctx.actor,
        action,
        "refused",
        object_kind="user",
        object_id=subject.id,
        detail={"reason": "second factor not confirmed"},
    )
    ctx.commit()
    raise SecondFactorRefused(reason)


def issue_reset_link(ctx: Ctx, user_id: int, code: str | None) -> account_links.IssuedLink:
    """A link resetting another person's password and second factor: issued by who
    administers every site the account reaches, confirmed by their own second factor, and
    notified to the person, who gets the link by e-mail when their address can take it."""
    user, target = user_target(ctx.db, user_id)
    ctx.authorize(PlatformAction.USER_MANAGE, target)
    confirm_second_factor(ctx, code, "account.reset_link", user)
    link = account_links.issue(ctx.db, ctx.runtime.settings, ctx.actor, user, "reset", ctx.now)
    mail = account_mail.send_reset_link(ctx.db, ctx.runtime, user, link, ctx.user.full_name)
    ctx.commit()
    return replace(link, mailed_to=user.email if mail is not None else "")


# --- one's own credentials -------------------------------------------------------------------


def _own_credentials(ctx: Ctx) -> None:
    ctx.authorize(PlatformAction.CREDENTIALS_CHANGE, Target(kind="user", owner_user_id=ctx.user.id))
    if ctx.web_session is None:
        raise Forbidden(_("Passwords and second factors are changed from a signed-in browser."))


def _counted_refusal(ctx: Ctx, action: str, exc: Unauthenticated | TooManyRequests) -> None:
    """Keep a wrong password or code counted and audited, though the request fails."""
    audit.record(ctx.db, ctx.actor, action, "failure", detail={"reason": exc.detail})
    if authn.is_locked(ctx.user, ctx.now):
        authn.end_all_sessions(ctx.db, ctx.user.id)
    ctx.commit()


def change_password(ctx: Ctx, current: str, new: str, again: str, code: str) -> authn.NewSession:
    """Change one's own password (current password and second factor); every other session
    ends, and this browser gets a fresh one."""
    _own_credentials(ctx)
    try:
        authn.change_password(
            ctx.db,
            ctx.runtime.box,
            ctx.runtime.settings,
            ctx.user,
            current=current,
            new=new,
            again=again,
            code=code,
            ip=ctx.actor.ip,
            now=ctx.now,
        )
    except TooManyRequests as exc:
        _counted_refusal(ctx, "auth.password.change", exc)
        raise
    except Unauthenticated as exc:
        _counted_refusal(ctx, "auth.password.change", exc)
        raise InvalidInput(exc.detail) from exc
    ended = authn.end_all_sessions(ctx.db, ctx.user.id)
    started = authn.start_session(ctx.db, ctx.user, ctx.actor.ip, ctx.now, mfa_verified=True)
    audit.record(
        ctx.db, ctx.actor, "auth.password.change", "success", detail={"sessions_ended": ended}
    )
    notifications.notify(
        ctx.db,
        ctx.user.id,
        "account.password",
        _(
            "Your password was changed on %(when)s. If this was not you, tell your "
            "administrator at once."
        )
        % {"when": show_datetime(ctx.now, reader_zone(ctx))},
        ctx.now,
    )
    ctx.commit()
    return started


def enrol_second_factor(ctx: Ctx, current_password: str, secret: str, code: str) -> None:
    """A signed-in person without a second factor adds one, proven by their password."""
    _own_credentials(ctx)
    if ctx.user.totp_secret:
        raise InvalidInput(_("A second factor is enrolled already."))
    try:
        authn.confirm_password(
            ctx.db, ctx.runtime.settings, ctx.user, current_password, ctx.actor.ip, ctx.now
        )
    except TooManyRequests as exc:
        _counted_refusal(ctx, "auth.totp.enrol", exc)
        raise
    except Unauthenticated as exc:
        _counted_refusal(ctx, "auth.totp.enrol", exc)
        raise InvalidInput(exc.detail) from exc
    authn.enrol_totp(ctx.db, ctx.runtime.box, ctx.user, secret, code, ctx.now)
    audit.record(
        ctx.db, ctx.actor, "auth.totp.enrol", "success", object_kind="user", object_id=ctx.user.id
    )
    ctx.commit()


# --- tokens --------------------------------------------------------------------------------


def issue_token(
    ctx: Ctx,
    name: str,
    scopes: Sequence[str],
    days: int,
    user_id: int | None = None,
    code: str | None = None,
) -> authn.IssuedToken:
    """A token for the caller, or for another person (whose whole reach the caller
    administers, confirmed by the caller's second factor, and notified to that person)."""
    owner, target = user_target(ctx.db, user_id if user_id is not None else ctx.user.id)
    ctx.authorize(PlatformAction.TOKEN_MANAGE, target)
    if owner.id != ctx.user.id:
        confirm_second_factor(ctx, code, "token.create", owner)
    issued = authn.issue_token(
        ctx.db,
        ctx.runtime.settings,
        ctx.actor,
        owner,
        name,
        scopes,
        days,
        ctx.now,
        actions=ctx.runtime.actions,
    )
    ctx.commit()
    return issued


def list_tokens(ctx: Ctx) -> Sequence[ApiToken]:
    ctx.authorize(PlatformAction.TOKEN_MANAGE, Target(kind="token", owner_user_id=ctx.user.id))
    sites = ctx.visible_sites(PlatformAction.TOKEN_MANAGE)
    if sites is None:
        return authn.list_tokens(ctx.db, None)
    user_ids = [u.id for u in accounts.list_users(ctx.db, sites)] if sites else []
    return authn.list_tokens(ctx.db, sorted(set(user_ids) | {ctx.user.id}))


def revoke_token(ctx: Ctx, public_id: str) -> ApiToken:
    token, target = token_target(ctx.db, public_id)
    ctx.authorize(PlatformAction.TOKEN_MANAGE, target)
    authn.revoke_token(ctx.db, ctx.actor, token, ctx.now)
    ctx.commit()
    return token


# --- patients ------------------------------------------------------------------------------


def _patient(ctx: Ctx, patient_id: int, action: Action) -> tuple[Patient, str]:
    patient = patients.get_patient(ctx.db, patient_id)
    decision = ctx.authorize(action, patients.patient_target(ctx.db, patient, ctx.now))
    return patient, ctx.outcome(decision)


def read_patient(ctx: Ctx, patient_id: int) -> Patient:
    patient, outcome = _patient(ctx, patient_id, PlatformAction.PATIENT_READ)
    audit.record(
        ctx.db,
        ctx.actor,
        "patient.read",
        outcome,
        object_kind="patient",
        object_id=patient.id,
        patient_id=patient.id,
    )
    ctx.commit()
    return patient


def search_patients(ctx: Ctx, text: str, limit: int, offset: int) -> Sequence[Patient]:
    sites = ctx.visible_sites(PlatformAction.PATIENT_READ)
    shared = sharing.shared_resource_ids(
        ctx.db, "patient", ctx.user.id, frozenset(ctx.principal.roles), ctx.now
    )
    extra = frozenset(int(i) for i in shared) | ctx.principal.emergency_patient_ids
    found = patients.search_patients(ctx.db, sites, extra, text, limit, offset)
    audit.record(
        ctx.db,
        ctx.actor,
        "patient.query",
        "success",
        object_kind="patient",
        detail={"results": len(found), "text_given": bool(text.strip())},
    )
    ctx.commit()
    return found


def create_patient(ctx: Ctx, site_id: int, identifier: str, who: patients.Demographics) -> Patient:
    ctx.authorize(PlatformAction.PATIENT_WRITE, sites_target(frozenset({site_id}), "patient"))
    patient = patients.create_patient(ctx.db, ctx.actor, site_id, identifier, who)
    ctx.commit()
    return patient


def update_patient(ctx: Ctx, patient_id: int, who: patients.Demographics) -> Patient:
    patient, _site = _patient(ctx, patient_id, PlatformAction.PATIENT_WRITE)
    patients.update_demographics(ctx.db, ctx.actor, patient, who)
    ctx.commit()
    return patient


def add_identifier(ctx: Ctx, patient_id: int, site_id: int, value: str) -> Patient:
    patient, _site = _patient(ctx, patient_id, PlatformAction.PATIENT_WRITE)
    # Registering a patient at a site is acting at that site too.
    ctx.authorize(PlatformAction.PATIENT_WRITE, sites_target(frozenset({site_id}), "patient"))
    patients.add_identifier(ctx.db, ctx.actor, patient, site_id, value)
    ctx.commit()
    return patient


def merge_patients(ctx: Ctx, survivor_id: int, duplicate_id: int) -> Patient:
    survivor, _site = _patient(ctx, survivor_id, PlatformAction.PATIENT_MERGE)
    duplicate, _dup_site = _patient(ctx, duplicate_id, PlatformAction.PATIENT_MERGE)
    patients.merge(ctx.db, ctx.actor, survivor, duplicate)
    ctx.commit()
    return survivor


def consents(ctx: Ctx, patient_id: int) -> tuple[Patient, dict[str, str], Sequence[Consent]]:
    patient, outcome = _patient(ctx, patient_id, PlatformAction.CONSENT_READ)
    standing = patients.current_consent(ctx.db, patient.id)
    history = patients.consent_history(ctx.db, patient.id)
    audit.record(
        ctx.db,
        ctx.actor,
        "consent.read",
        outcome,
        object_kind="patient",
        object_id=patient.id,
        patient_id=patient.id,
    )
    ctx.commit()
    return patient, standing, history


def record_consent(
    ctx: Ctx, patient_id: int, purpose: str, decision: str, site_id: int, note: str
) -> Consent:
    patient, _site = _patient(ctx, patient_id, PlatformAction.CONSENT_RECORD)
    if site_id not in ctx.principal.roles:
        raise InvalidInput(_("Record consent at a site where you hold a role."))
    consent = patients.record_consent(ctx.db, ctx.actor, patient, purpose, decision, site_id, note)
    ctx.commit()
    return consent


# --- shares and break-the-glass --------------------------------------------------------------


def share_patient(
    ctx: Ctx,
    patient_id: int,
    *,
    to_site_id: int | None,
    to_user_id: int | None,
    expires_at: datetime,
    reason: str,
    from_site_id: int | None = None,
) -> Share:
    """Share a patient from one of the sharer's sites identifying them: the share grants
    what that site holds of the patient, never another hospital's data (see
    `sharing.create_share`). Without ``from_site_id``, the lowest such site."""
    patient, _site = _patient(ctx, patient_id, PlatformAction.SHARE_MANAGE)
    sharing_sites = ctx.principal.sites_with(PlatformAction.SHARE_MANAGE.rule.roles) & {
        i.site_id for i in patient.identifiers
    }
    if from_site_id is None and sharing_sites:
        from_site_id = min(sharing_sites)
    if from_site_id not in sharing_sites:
        raise InvalidInput(_("share from a site that identifies the patient and where you share"))
    if to_site_id is not None:
        accounts.get_site(ctx.db, to_site_id)
    if to_user_id is not None:
        accounts.get_user(ctx.db, to_user_id)
    share = sharing.create_share(
        ctx.db,
        ctx.actor,
        resource_kind="patient",
        resource_id=str(patient.id),
        to_site_id=to_site_id,
        to_user_id=to_user_id,
        expires_at=expires_at,
        now=ctx.now,
        reason=reason,
        patient_id=patient.id,
        from_site_id=from_site_id,
        granter_site_ids=frozenset(ctx.principal.roles),
    )
    share_mail.send_share_notice(
        ctx.db, ctx.runtime, share, what=N_("a patient's file"), path=f"/patients/{patient.id}"
    )
    ctx.commit()
    return share


def patient_shares(ctx: Ctx, patient_id: int) -> Sequence[Share]:
    patient, _site = _patient(ctx, patient_id, PlatformAction.SHARE_MANAGE)
    return sharing.shares_of(ctx.db, "patient", str(patient.id))


def revoke_share(ctx: Ctx, share_id: int) -> Share:
    share = sharing.get_share(ctx.db, share_id)
    if share.resource_kind != "patient":
        raise NotFound(_("Share %(number)s not found.") % {"number": share_id})
    patient, _site = _patient(ctx, int(share.resource_id), PlatformAction.SHARE_MANAGE)
    sharing.revoke_share(ctx.db, ctx.actor, share, ctx.now, patient.id)
    ctx.commit()
    return share


def break_the_glass(ctx: Ctx, site_id: int, identifier: str, justification: str) -> EmergencyGrant:
    ctx.authorize(PlatformAction.EMERGENCY_REQUEST)
    patient = patients.find_by_identifier(ctx.db, site_id, identifier.strip())
    if patient is None:
        raise NotFound(_("No patient with that hospital number at that site."))
    grant = sharing.break_the_glass(
        ctx.db,
        ctx.actor,
        patient_id=patient.id,
        patient_site_ids=frozenset(i.site_id for i in patient.identifiers),
        justification=justification,
        minutes=ctx.runtime.settings.emergency_access_minutes,
        now=ctx.now,
    )
    emergency_mail.send_alerts(ctx.db, ctx.runtime, grant, patient)
    ctx.commit()
    return grant


# --- notifications -------------------------------------------------------------------------


def my_notifications(ctx: Ctx) -> Sequence[Notification]:
    ctx.authorize(
        PlatformAction.NOTIFICATION_MANAGE, Target(kind="notification", owner_user_id=ctx.user.id)
    )
    return notifications.pending(ctx.db, ctx.user.id)


def dismiss_notification(ctx: Ctx, notice_id: int) -> None:
    notice = notifications.get_notification(ctx.db, notice_id)
    target = Target(kind="notification", id=str(notice.id), owner_user_id=notice.user_id)
    try:
        ctx.authorize(PlatformAction.NOTIFICATION_MANAGE, target)
    except Forbidden:
        # Another person's notification is not there for the caller; the attempt is audited.
        raise NotFound(_("Notification %(number)s not found.") % {"number": notice_id}) from None
    notifications.dismiss(ctx.db, ctx.actor, notice, ctx.now)
    ctx.commit()


# --- audit and alerts ----------------------------------------------------------------------


def search_audit(
    ctx: Ctx, criteria: audit.AuditFilter, limit: int, offset: int
) -> list[AuditEvent]:
    ctx.authorize(
        PlatformAction.AUDIT_READ, Target(kind="audit", site_ids=frozenset(ctx.principal.roles))
    )
    found = audit.search(
        ctx.db, ctx.visible_sites(PlatformAction.AUDIT_READ), criteria, limit, offset
    )
    audit.record(ctx.db, ctx.actor, "audit.query", "success", detail={"results": len(found)})
    ctx.commit()
    return found


def open_alerts(ctx: Ctx) -> list[Alert]:
    ctx.authorize(
        PlatformAction.ALERT_MANAGE, Target(kind="alert", site_ids=frozenset(ctx.principal.roles))
    )
    return sharing.open_alerts(ctx.db, ctx.visible_sites(PlatformAction.ALERT_MANAGE))


def acknowledge_alert(ctx: Ctx, alert_id: int) -> None:
    ctx.authorize(
        PlatformAction.ALERT_MANAGE, Target(kind="alert", site_ids=frozenset(ctx.principal.roles))
    )
    sharing.acknowledge_alert(
        ctx.db, ctx.actor, alert_id, ctx.visible_sites(PlatformAction.ALERT_MANAGE), ctx.now
    )
    ctx.commit()
