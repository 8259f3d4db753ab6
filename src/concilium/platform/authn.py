"""Authentication: passwords with lockout and throttling, TOTP, browser sessions, API tokens."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from concilium.config import Settings
from concilium.platform import audit, notifications, totp
from concilium.platform.accounts import principal_for
from concilium.platform.encryption import SecretBox
from concilium.platform.errors import InvalidInput, NotFound, TooManyRequests, Unauthenticated
from concilium.platform.i18n import N_, _
from concilium.platform.passwords import hash_password, verify_password
from concilium.platform.policy import Action, scopes_within, token_scopes
from concilium.platform.tables import Alert, ApiToken, LoginAttempt, User, WebSession

TOKEN_PREFIX = "cnc"  # noqa: S105 - a label, not a secret
BAD_CREDENTIALS = N_("unknown user name or wrong password")
"""The one answer to a refused password, whatever the reason (unknown, wrong, locked,
disabled): it tells nobody whether an account exists."""
LONGEST_LOCK = timedelta(days=1)
"""Repeated runs of second-factor failures lock the account for twice as long each time,
up to this."""


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def mfa_required_by_roles(user: User, settings: Settings) -> bool:
    """Whether the account's roles (or office) require a second factor."""
    required = set(settings.mfa_required_roles)
    return user.is_platform_admin or any(m.role in required for m in user.memberships)


def mfa_required(user: User, settings: Settings) -> bool:
    """Whether the user must pass a second factor (enrolled, or a role that enforces it)."""
    return bool(user.totp_secret) or mfa_required_by_roles(user, settings)


@dataclass(frozen=True)
class LoginResult:
    user: User
    needs_totp: bool


@dataclass(frozen=True)
class LoginRefusal:
    """A refused login; the caller commits (counters and audit must persist) then answers."""

    error: Unauthenticated | TooManyRequests


def address_throttled(session: Session, settings: Settings, ip: str, now: datetime) -> bool:
    """Whether ``ip`` failed too often in the last minute; wrong passwords and wrong codes
    count alike, so an address cannot spread its guesses over accounts or steps."""
    recent = session.execute(
        select(func.count())
        .select_from(LoginAttempt)
        .where(
            LoginAttempt.ip == ip[:64],
            LoginAttempt.at > now - timedelta(minutes=1),
            ~LoginAttempt.success,
        )
    ).scalar_one()
    return bool(recent >= settings.login_ip_limit_per_minute)


def is_locked(user: User, now: datetime) -> bool:
    return user.locked_until is not None and user.locked_until > now


def hold_account(session: Session, user: User) -> None:
    """Re-read the account and hold its row until the transaction ends (SELECT ... FOR
    UPDATE on PostgreSQL; SQLite's writers are serialised already): checks and counters
    of concurrent attempts on one account then follow one another, so that a code is used
    once and no failure is lost."""
    session.refresh(user, with_for_update=True)


def authenticate_password(
    session: Session,
    settings: Settings,
    username: str,
    password: str,
    ip: str,
    now: datetime,
) -> LoginResult | LoginRefusal:
    """First step of login; a refusal is recorded (audit, counters) and returned, not raised.

    A right password resets the count of wrong passwords only: failures of the second
    factor keep counting across sign-ins until a right code is given."""
    if address_throttled(session, settings, ip, now):
        audit.record(
            session,
            audit.Actor(None, username[:64], ip=ip),
            "auth.login",
            "refused",
            detail={"reason": "address throttled"},
        )
        return LoginRefusal(
            TooManyRequests(_("too many attempts from this address; wait a minute"))
        )
    user = session.execute(
        select(User)
        .where(User.username == username.strip().lower())
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    actor = audit.Actor(user.id if user else None, username.strip().lower()[:64], ip=ip)
    # The password is checked in every case, so that neither the answer nor the time it
    # takes tells a locked account from an unknown one.
    valid = verify_password(user.password_hash if user else None, password)
    if user is not None and is_locked(user, now):
        session.add(LoginAttempt(at=now, ip=ip[:64], success=False))
        audit.record(session, actor, "auth.login", "refused", detail={"reason": "locked"})
        return LoginRefusal(Unauthenticated(_(BAD_CREDENTIALS)))
    if user is None or not valid or user.disabled:
        session.add(LoginAttempt(at=now, ip=ip[:64], success=False))
        reason = "disabled" if user is not None and valid else "bad credentials"
        if user is not None and not valid and register_failure(session, user, settings, now):
            reason = "bad credentials; account locked"
        audit.record(session, actor, "auth.login", "failure", detail={"reason": reason})
        return LoginRefusal(Unauthenticated(_(BAD_CREDENTIALS)))
    session.add(LoginAttempt(at=now, ip=ip[:64], success=True))
    user.failed_logins = 0
    needs_totp = mfa_required(user, settings)
    if needs_totp and not user.totp_secret:
        # A second factor is enrolled through a set-up or reset link, never by whoever
        # first signs in with a password someone else may know.
        audit.record(session, actor, "auth.login", "refused", detail={"reason": "no second factor"})
        return LoginRefusal(
            Unauthenticated(
                _(
                    "this account needs a second factor and has none yet: open the set-up "
                    "link an administrator gives you"
                )
            )
        )
    return LoginResult(user, needs_totp)


def register_failure(session: Session, user: User, settings: Settings, now: datetime) -> bool:
    """Count a wrong password; True when this failure locks the account."""
    user.failed_logins += 1
    if user.failed_logins < settings.login_max_failures:
        return False
    user.locked_until = now + timedelta(minutes=settings.lockout_minutes)
    user.failed_logins = 0
    return True


def _second_factor_failed(session: Session, user: User, settings: Settings, now: datetime) -> bool:
    """Count a wrong code; True when it locks the account. Each run of
    ``login_max_failures`` wrong codes locks it, twice as long as the run before; a wrong
    code means someone holds the password, so the administrators and the person are told."""
    user.mfa_failures += 1
    limit = settings.login_max_failures
    if user.mfa_failures % limit:
        return False
    runs = min(user.mfa_failures // limit, 16)
    lock = min(timedelta(minutes=settings.lockout_minutes) * 2 ** (runs - 1), LONGEST_LOCK)
    user.locked_until = now + lock
    until = f"{user.locked_until:%Y-%m-%d %H:%M} UTC"
    session.add(
        Alert(
            created_at=now,
            kind="second-factor-lock",
            user_id=user.id,
            site_ids=sorted({m.site_id for m in user.memberships}),
            message=f"{user.username}: {user.mfa_failures} wrong second-factor codes after a "
            f"right password; account locked until {until}",
        )
    )
    notifications.notify(
        session,
        user.id,
        "second-factor-lock",
        f"Wrong authenticator codes were entered after your password; your account is locked "
        f"until {until}. If this was not you, someone knows your password: change it.",
        now,
    )
    return True


def check_totp(
    session: Session,
    box: SecretBox,
    settings: Settings,
    user: User,
    code: str,
    now: datetime,
    ip: str = "",
) -> bool:
    """A fresh code of the user's authenticator (RFC 6238), accepted once.

    Refused without a look at the code when ``ip`` is throttled (raises
    :class:`TooManyRequests`) or the account is locked. Wrong codes count towards the
    address's throttle and the account's lock, across sign-ins, until a right one is given.
    The caller commits either way."""
    if address_throttled(session, settings, ip, now):
        raise TooManyRequests(_("too many attempts from this address; wait a minute"))
    hold_account(session, user)
    if not user.totp_secret or is_locked(user, now):
        session.add(LoginAttempt(at=now, ip=ip[:64], success=False))
        return False
    secret = box.open(user.totp_secret, f"totp:{user.id}")
    step = totp.accepted_step(secret, code, now, user.totp_last_step)
    if step is None:
        session.add(LoginAttempt(at=now, ip=ip[:64], success=False))
        _second_factor_failed(session, user, settings, now)
        return False
    user.totp_last_step = step
    user.mfa_failures = 0
    return True


def confirm_password(
    session: Session, settings: Settings, user: User, password: str, ip: str, now: datetime
) -> None:
    """The signed-in person proves again that they hold the password (before changing a
    credential); a wrong one counts as a failed sign-in (raises :class:`Unauthenticated`)."""
    if address_throttled(session, settings, ip, now):
        raise TooManyRequests(_("too many attempts from this address; wait a minute"))
    hold_account(session, user)
    if is_locked(user, now):
        raise Unauthenticated(_("the account is locked after repeated failures; try later"))
    if not verify_password(user.password_hash, password):
        session.add(LoginAttempt(at=now, ip=ip[:64], success=False))
        register_failure(session, user, settings, now)
        raise Unauthenticated(_("the current password is wrong"))


def change_password(
    session: Session,
    box: SecretBox,
    settings: Settings,
    user: User,
    *,
    current: str,
    new: str,
    again: str,
    code: str,
    ip: str,
    now: datetime,
) -> None:
    """Change one's own password, proven by the current password and, when the account has
    one, a fresh code of its second factor. Wrong ones count as failed sign-ins (raises
    :class:`Unauthenticated`; the caller commits the count). The caller then ends the
    account's other sessions."""
    confirm_password(session, settings, user, current, ip, now)
    if user.totp_secret and not check_totp(session, box, settings, user, code, now, ip):
        raise Unauthenticated(_("the code from your authenticator is wrong or was already used"))
    if new != again:
        raise InvalidInput(_("the two new passwords differ"))
    if verify_password(user.password_hash, new):
        raise InvalidInput(_("choose a password other than the current one"))
    user.password_hash = hash_password(new)
    user.failed_logins = 0


def enrol_totp(
    session: Session, box: SecretBox, user: User, secret: str, code: str, now: datetime
) -> None:
    """Store a new second factor once the user proved their authenticator shows its codes."""
    step = totp.accepted_step(secret, code, now, None)
    if step is None:
        raise InvalidInput(_("that code does not match; check the authenticator's clock"))
    user.totp_secret = box.seal(secret, f"totp:{user.id}")
    user.totp_last_step = step


# --- Browser sessions -------------------------------------------------------------------------


@dataclass(frozen=True)
class NewSession:
    cookie_value: str
    record: WebSession


def start_session(
    session: Session, user: User, ip: str, now: datetime, mfa_verified: bool
) -> NewSession:
    cookie_value = secrets.token_urlsafe(32)
    record = WebSession(
        id=_digest(cookie_value),
        user_id=user.id,
        created_at=now,
        last_seen_at=now,
        csrf_token=secrets.token_urlsafe(32),
        mfa_verified=mfa_verified,
        ip=ip[:64],
    )
    session.add(record)
    session.flush()
    return NewSession(cookie_value, record)


def resume_session(
    session: Session, settings: Settings, cookie_value: str, now: datetime
) -> WebSession | None:
    """The live session behind a cookie, touched; expired ones are ended here."""
    record = session.get(WebSession, _digest(cookie_value))
    if record is None:
        return None
    idle = timedelta(minutes=settings.session_idle_minutes)
    absolute = timedelta(hours=settings.session_absolute_hours)
    if now - record.last_seen_at > idle or now - record.created_at > absolute:
        session.delete(record)
        return None
    record.last_seen_at = now
    return record


def end_session(session: Session, cookie_value: str) -> None:
    session.execute(delete(WebSession).where(WebSession.id == _digest(cookie_value)))


def end_all_sessions(session: Session, user_id: int) -> int:
    """Sign the user out everywhere (logout, disable, password change)."""
    result = session.execute(delete(WebSession).where(WebSession.user_id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)


# --- API tokens -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedToken:
    """A token's secret is shown once, when issued; only its hash is kept."""

    secret: str
    record: ApiToken


def issue_token(
    session: Session,
    settings: Settings,
    actor: audit.Actor,
    user: User,
    name: str,
    scopes: Sequence[str],
    days: int,
    now: datetime,
    *,
    actions: Iterable[Action],
) -> IssuedToken:
    """Mint a token of ``user`` carrying ``scopes``, scopes of the installation's
    ``actions``; its secret is in the result, and only its hash is kept.

    A token never carries more than its user: a scope none of the user's roles, office or
    own account could use is refused. A token issued by someone else is notified to its user.
    """
    actions = tuple(actions)
    known_scopes = token_scopes(actions)
    unknown = sorted(set(scopes) - known_scopes)
    if unknown or not scopes:
        raise InvalidInput(f"scopes must be some of {sorted(known_scopes)}; unknown: {unknown}")
    beyond = sorted(set(scopes) - scopes_within(principal_for(session, user, now), actions))
    if beyond:
        raise InvalidInput(
            f"{user.username} has no use for {', '.join(beyond)}: a token never carries more "
            "than its user"
        )
    if not 1 <= days <= settings.token_max_days:
        raise InvalidInput(f"a token lives 1 to {settings.token_max_days} days")
    if not name.strip():
        raise InvalidInput(_("a token needs a name saying what uses it"))
    public_id = secrets.token_hex(6)
    secret = f"{TOKEN_PREFIX}_{public_id}_{secrets.token_urlsafe(32)}"
    record = ApiToken(
        public_id=public_id,
        user_id=user.id,
        name=name.strip()[:100],
        secret_hash=_digest(secret),
        scopes=sorted(set(scopes)),
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    session.add(record)
    session.flush()
    audit.record(
        session,
        actor,
        "token.create",
        "success",
        object_kind="token",
        object_id=public_id,
        detail={"scopes": record.scopes, "for_user": user.id},
    )
    if actor.user_id != user.id:
        notifications.notify(
            session,
            user.id,
            "token.issued",
            f"{actor.username} issued an API token “{record.name}” acting as you "
            f"({', '.join(record.scopes)}), valid until {record.expires_at:%Y-%m-%d}. "
            "If you did not ask for it, have it revoked.",
            now,
        )
    return IssuedToken(secret, record)


def token_user(session: Session, secret: str, now: datetime) -> tuple[User, ApiToken]:
    """The user and token behind a bearer secret, if it is valid, unexpired and not revoked."""
    parts = secret.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise Unauthenticated(_("malformed bearer token"))
    record = session.execute(
        select(ApiToken).where(ApiToken.public_id == parts[1])
    ).scalar_one_or_none()
    if record is None or not secrets.compare_digest(record.secret_hash, _digest(secret)):
        raise Unauthenticated(_("unknown bearer token"))
    if record.revoked_at is not None:
        raise Unauthenticated(_("bearer token revoked"))
    if record.expires_at <= now:
        raise Unauthenticated(_("bearer token expired"))
    user = session.get(User, record.user_id)
    if user is None or user.disabled:
        raise Unauthenticated(_("bearer token's user is disabled"))
    record.last_used_at = now
    return user, record


def get_token(session: Session, public_id: str) -> ApiToken:
    record = session.execute(
        select(ApiToken).where(ApiToken.public_id == public_id)
    ).scalar_one_or_none()
    if record is None:
        raise NotFound(f"token {public_id} not found")
    return record


def revoke_token(session: Session, actor: audit.Actor, record: ApiToken, now: datetime) -> None:
    if record.revoked_at is None:
        record.revoked_at = now
    audit.record(
        session, actor, "token.revoke", "success", object_kind="token", object_id=record.public_id
    )


def list_tokens(session: Session, user_ids: Sequence[int] | None) -> Sequence[ApiToken]:
    query = select(ApiToken).order_by(ApiToken.created_at.desc())
    if user_ids is not None:
        query = query.where(ApiToken.user_id.in_(user_ids))
    return session.execute(query).scalars().all()


@dataclass(frozen=True)
class Identity:
    """Who a request, a websocket or a proxied call comes from."""

    user: User
    """The signed-in account."""
    web_session: WebSession | None
    """The browser session, when identified by its cookie (None for a bearer token)."""
    scopes: frozenset[str] | None
    """Scopes of the bearer token used; None for a browser session (no scope limit)."""


def authenticate(
    session: Session,
    settings: Settings,
    now: datetime,
    *,
    bearer: str | None,
    cookie: str | None,
    allow_pending_mfa: bool = False,
) -> Identity:
    """Identify the caller by a bearer token, else by the session cookie: the one way in for
    pages, the JSON API, websockets and the media proxy alike.

    Touching a session (or ending an expired one) is committed here: it stands whatever the
    caller does next. Raises :class:`Unauthenticated` with a reason a person can act on.
    """
    if bearer is not None:
        user, token = token_user(session, bearer, now)
        return Identity(user, None, frozenset(token.scopes))
    if not cookie:
        raise Unauthenticated(_("sign in or send a bearer token"))
    web_session = resume_session(session, settings, cookie, now)
    session.commit()
    if web_session is None:
        raise Unauthenticated(_("your session has ended; sign in again"))
    owner = session.get(User, web_session.user_id)
    if owner is None or owner.disabled:
        raise Unauthenticated(_("this account is disabled"))
    if not allow_pending_mfa and not web_session.mfa_verified and mfa_required(owner, settings):
        raise Unauthenticated(_("complete the second factor to continue"))
    return Identity(owner, web_session, None)
