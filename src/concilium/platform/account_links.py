"""Set-up and reset links: how a person chooses their password and enrols their second
factor (TOTP, RFC 6238) without anyone else ever knowing either.

An administrator (or the operator at the command line) issues a link for an account: a new
account gets a set-up link, an existing one a reset link, which replaces its password and
its second factor. A link is single-use, expires (``account_link_hours``), is stored only
as the hash of its secret, replaces any earlier link of the account, and is audited. Its
holder is notified (:func:`concilium.platform.notifications.send_link`, which never stores
the link); the portal e-mails the link itself to the holder's address when there is one
(``concilium.portal.account_mail``) and shows it once to the administrator.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from concilium.config import Settings
from concilium.platform import audit, notifications, totp
from concilium.platform.authn import end_all_sessions, mfa_required_by_roles
from concilium.platform.encryption import SecretBox
from concilium.platform.errors import InvalidInput, NotFound
from concilium.platform.i18n import _
from concilium.platform.passwords import hash_password
from concilium.platform.tables import AccountLink, User

PURPOSES = ("setup", "reset")
LINK_PATH = "/account/setup/"
"""Where a link's page lives; the secret follows."""


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedLink:
    """A link's address is known once, when issued; only its hash is kept."""

    url: str
    record: AccountLink
    mailed_to: str = ""
    """The e-mail address the link was queued to (in that message's body only); empty
    when none was sent."""


def issue(
    session: Session,
    settings: Settings,
    actor: audit.Actor,
    user: User,
    purpose: str,
    now: datetime,
) -> IssuedLink:
    """A new link for ``user``; earlier unused links of the account stop working."""
    if purpose not in PURPOSES:
        raise InvalidInput(f"a link is for {' or '.join(PURPOSES)}")
    if user.disabled:
        raise InvalidInput(_("enable the account before issuing a link for it"))
    session.execute(
        update(AccountLink)
        .where(
            AccountLink.user_id == user.id,
            AccountLink.used_at.is_(None),
            AccountLink.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    secret = secrets.token_urlsafe(32)
    record = AccountLink(
        user_id=user.id,
        purpose=purpose,
        secret_hash=_digest(secret),
        issued_by_id=actor.user_id,
        created_at=now,
        expires_at=now + timedelta(hours=settings.account_link_hours),
    )
    session.add(record)
    session.flush()
    audit.record(
        session,
        actor,
        f"account.{purpose}_link",
        "success",
        object_kind="user",
        object_id=user.id,
        detail={"link": record.id, "expires": record.expires_at.isoformat()},
    )
    url = notifications.send_link(
        session,
        user,
        purpose,
        settings.public_url.rstrip("/") + LINK_PATH + secret,
        record.expires_at,
        actor.username,
        now,
    )
    return IssuedLink(url, record)


def find(session: Session, secret: str, now: datetime) -> AccountLink:
    """The link behind a secret, if it still works (unused, not replaced, not expired)."""
    record = session.execute(
        select(AccountLink).where(AccountLink.secret_hash == _digest(secret))
    ).scalar_one_or_none()
    if (
        record is None
        or record.used_at is not None
        or record.revoked_at is not None
        or record.expires_at <= now
    ):
        raise NotFound(
            "this link no longer works (used, replaced or expired): ask an administrator "
            "for a new one"
        )
    return record


def needs_second_factor(user: User, settings: Settings) -> bool:
    """Whether completing a link must enrol an authenticator (the account's roles need one)."""
    return mfa_required_by_roles(user, settings)


def complete(
    session: Session,
    box: SecretBox,
    settings: Settings,
    link: AccountLink,
    *,
    password: str,
    password_again: str,
    totp_secret: str,
    code: str,
    ip: str,
    now: datetime,
) -> User:
    """Use the link: set the password and enrol the new second factor (or none, when the
    roles need none and no code is given). The link is used once even if two requests
    carry it at the same instant; the account's sessions all end."""
    user = session.get(User, link.user_id)
    if user is None or user.disabled:
        raise NotFound(_("this link's account is disabled or no longer exists"))
    if password != password_again:
        raise InvalidInput(_("the two passwords differ"))
    password_hash = hash_password(password)
    step = None
    if code.strip() or needs_second_factor(user, settings):
        step = totp.accepted_step(totp_secret, code, now, None)
        if step is None:
            raise InvalidInput(_("that code does not match; check the authenticator's clock"))
    used = session.execute(
        update(AccountLink)
        .where(
            AccountLink.id == link.id,
            AccountLink.used_at.is_(None),
            AccountLink.revoked_at.is_(None),
            AccountLink.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(used, "rowcount", 0) != 1:
        raise NotFound(_("this link was used already"))
    user.password_hash = password_hash
    user.totp_secret = box.seal(totp_secret, f"totp:{user.id}") if step is not None else None
    user.totp_last_step = step
    user.failed_logins = 0
    user.mfa_failures = 0
    user.locked_until = None
    ended = end_all_sessions(session, user.id)
    audit.record(
        session,
        audit.Actor(user.id, user.username, ip=ip),
        f"account.{link.purpose}",
        "success",
        object_kind="user",
        object_id=user.id,
        detail={"link": link.id, "second_factor": step is not None, "sessions_ended": ended},
    )
    notifications.notify(
        session,
        user.id,
        "account.password",
        "Your password was set and your second factor "
        + ("enrolled" if step is not None else "removed")
        + " through a link. If this was not you, tell your administrator at once.",
        now,
    )
    session.flush()
    return user
