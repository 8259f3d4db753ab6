"""The e-mails to an account's holder about their account: the set-up link of a new
account (who opened it, its user name, the single-use link by which they choose their
password and enrol their second factor, with its expiry), and the reset link an
administrator issued.

A link's secret is written in the message's body only: the outbox keeps the message sealed
and erases it once sent, its kind and row id are all that is logged, and the audit trail
names the link by its number (``account_links.issue``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.orm import Session

from concilium.config import mailbox_address
from concilium.platform import notify, outbox
from concilium.platform.account_links import IssuedLink
from concilium.platform.errors import InvalidInput
from concilium.platform.i18n import _
from concilium.platform.runtime import Runtime
from concilium.platform.tables import OutboxMail, User

log = logging.getLogger(__name__)

MAIL_TEMPLATES = notify.MailTemplates(Path(__file__).with_name("templates") / "mail")
"""The portal's messages (``templates/mail``), over the platform's layouts."""
KIND = "account.setup"
RESET_KIND = "account.reset"


def _site_of(user: User) -> int | None:
    """The site whose administrators see the account's messages in the outbox."""
    return min((m.site_id for m in user.memberships), default=None)


def _reachable(session: Session, user: User) -> notify.Recipient | None:
    """The holder as a recipient; None without an address, or with one no mail can reach
    (a mistyped address never stops what the administrator does)."""
    to = notify.recipient_of(session, user)
    if to is None:
        return None
    try:
        mailbox_address(to.address)
    except ValueError:
        log.warning("no account e-mail for user %s: the address is not a mailbox", user.id)
        return None
    return to


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
    to = _reachable(session, user)
    if to is None:
        return None
    mail = MAIL_TEMPLATES.compose(RESET_KIND, to, "account_reset", _link_values(user, link, issuer))
    return outbox.enqueue(session, runtime, mail, site_id=_site_of(user))
