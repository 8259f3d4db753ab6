"""The e-mails to an account's holder about their account: the set-up link of a new
account (who opened it, its user name, the single-use link by which they choose their
password and enrol their second factor, with its expiry), the reset link an administrator
issued, and short notices when an administrator changes their roles or disables or enables
the account.

A link's secret is written in the message's body only: the outbox keeps the message sealed
and erases it once sent, its kind and row id are all that is logged, and the audit trail
names the link by its number (``account_links.issue``).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.config import mailbox_address
from concilium.platform import i18n, notify, outbox
from concilium.platform.account_links import IssuedLink
from concilium.platform.errors import InvalidInput
from concilium.platform.i18n import N_, _
from concilium.platform.runtime import Runtime
from concilium.platform.tables import OutboxMail, Site, User
from concilium.web.labels import ROLE_LABELS

MAIL_TEMPLATES = notify.MailTemplates(Path(__file__).with_name("templates") / "mail")
"""The portal's messages (``templates/mail``), over the platform's layouts."""
KIND = "account.setup"
RESET_KIND = "account.reset"
ROLES_KIND = "account.roles"
STATUS_KIND = "account.status"


def _site_of(user: User) -> int | None:
    """The site whose administrators see the account's messages in the outbox."""
    return min((m.site_id for m in user.memberships), default=None)


def _link_values(user: User, link: IssuedLink, issuer: str) -> dict[str, object]:
    return {
        "name": user.full_name,
        "username": user.username,
        "issuer": issuer,
        "link": link.url,
        "expires": link.record.expires_at,
    }


def send_setup_link(
    session: Session, runtime: Runtime, user: User, link: IssuedLink, issuer: str
) -> OutboxMail | None:
    """Queue the set-up link of the new account ``user`` to its holder, in the caller's
    transaction; nothing when the account has no e-mail address (the administrator hands
    the link over, as the page that shows it once says). Raises ``InvalidInput`` for an
    address no mail can reach, so the account is not opened with it."""
    to = notify.recipient_of(session, user)
    if to is None:
        return None
    try:
        mailbox_address(to.address)
    except ValueError as exc:
        raise InvalidInput(
            _("%(address)s is not an e-mail address such as name@hospital.fr.")
            % {"address": user.email}
        ) from exc
    mail = MAIL_TEMPLATES.compose(KIND, to, "account_setup", _link_values(user, link, issuer))
    return outbox.enqueue(session, runtime, mail, site_id=_site_of(user))


def send_reset_link(
    session: Session, runtime: Runtime, user: User, link: IssuedLink, issuer: str
) -> OutboxMail | None:
    """Queue the reset link an administrator issued for ``user`` to its holder, in the
    caller's transaction; nothing when the account has no address that mail can reach (the
    administrator is then shown the link once, to hand over)."""
    to = notify.reachable_recipient(session, user)
    if to is None:
        return None
    mail = MAIL_TEMPLATES.compose(RESET_KIND, to, "account_reset", _link_values(user, link, issuer))
    return outbox.enqueue(session, runtime, mail, site_id=_site_of(user))


def _home_link(runtime: Runtime) -> str:
    return runtime.settings.public_url.rstrip("/") + "/"


def send_roles_notice(
    session: Session, runtime: Runtime, user: User, issuer: str
) -> OutboxMail | None:
    """Tell ``user`` that ``issuer`` changed their roles, and which they now hold, in their
    language; nothing without an address mail can reach."""
    to = notify.reachable_recipient(session, user)
    if to is None:
        return None
    site_ids = {m.site_id for m in user.memberships}
    names = {
        s.id: s.name for s in session.execute(select(Site).where(Site.id.in_(site_ids))).scalars()
    }
    with i18n.using_locale(to.locale):
        held = [
            _("%(role)s (%(site)s)")
            % {"role": _(ROLE_LABELS.get(m.role, m.role)), "site": names.get(m.site_id, "?")}
            for m in sorted(user.memberships, key=lambda m: (m.site_id, m.role))
        ]
        roles = ", ".join(held) if held else "—"
    return notify.send_notice(
        session,
        runtime,
        user,
        N_("Your roles on Concilium changed"),
        N_(
            "%(issuer)s changed your roles on Concilium. You now hold: %(roles)s.\n\n"
            "What you may see and do follows them from your next page. If you did not "
            "expect this change, tell your hospital's administrator."
        ),
        values={"issuer": issuer, "roles": roles},
        link=_home_link(runtime),
        link_label=N_("Open Concilium"),
        kind=ROLES_KIND,
        site_id=_site_of(user),
    )


def send_status_notice(
    session: Session, runtime: Runtime, user: User, disabled: bool, issuer: str
) -> OutboxMail | None:
    """Tell ``user`` that ``issuer`` disabled (or enabled again) their account, in their
    language; nothing without an address mail can reach."""
    if notify.reachable_recipient(session, user) is None:
        return None
    if disabled:
        subject = N_("Your Concilium account was disabled")
        text = N_(
            "%(issuer)s disabled your Concilium account: you can no longer sign in, and your "
            "open sessions have ended.\n\nIf you did not expect it, tell your hospital's "
            "administrator."
        )
        link = ""
    else:
        subject = N_("Your Concilium account is enabled again")
        text = N_(
            "%(issuer)s enabled your Concilium account again: you can sign in with your "
            "password and your second factor."
        )
        link = _home_link(runtime)
    return notify.send_notice(
        session,
        runtime,
        user,
        subject,
        text,
        values={"issuer": issuer},
        link=link,
        link_label=N_("Open Concilium") if link else "",
        kind=STATUS_KIND,
        site_id=_site_of(user),
    )
