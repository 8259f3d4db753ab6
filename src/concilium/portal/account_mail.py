"""The e-mail giving a new account's holder their set-up link: who opened the account, its
user name, and the single-use link by which they choose their password and enrol their
second factor, with its expiry.

The link's secret is written in the message's body only: the outbox keeps the message sealed
and erases it once sent, its kind and row id are all that is logged, and the audit trail
names the link by its number (``account_links.issue``).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from concilium.config import mailbox_address
from concilium.platform import notify, outbox
from concilium.platform.account_links import IssuedLink
from concilium.platform.errors import InvalidInput
from concilium.platform.i18n import _
from concilium.platform.runtime import Runtime
from concilium.platform.tables import OutboxMail, User

MAIL_TEMPLATES = notify.MailTemplates(Path(__file__).with_name("templates") / "mail")
"""The portal's messages (``templates/mail``), over the platform's layouts."""
KIND = "account.setup"


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
    values = {
        "name": user.full_name,
        "username": user.username,
        "issuer": issuer,
        "link": link.url,
        "expires": link.record.expires_at,
    }
    mail = MAIL_TEMPLATES.compose(KIND, to, "account_setup", values)
    site_id = min((m.site_id for m in user.memberships), default=None)
    return outbox.enqueue(session, runtime, mail, site_id=site_id)
