"""Messages to people: e-mails composed from templates in each recipient's language, with
times in their zone, and queued in the outbox.

A message is a pair of templates in a ``mail`` folder: ``<name>.txt``, whose ``subject``
block is the subject line and whose whole is the plain-text body, and ``<name>.html``, its
HTML alternative (optional). Both extend the platform's layouts (``layout.txt``,
``layout.html``), so every message ends with the same signature. Their words go through
``_()`` like any page's and are translated in the recipient's language; the ``datetime``,
``date`` and ``time`` filters show times in the recipient's zone. A service keeps its own
messages in its own folder (:class:`MailTemplates` ``(folder)``) and finds the layouts there.

:func:`send_notice` is the short form: a subject and a few paragraphs to one person.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from email.utils import formataddr
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context
from sqlalchemy.orm import Session

from concilium.config import mailbox_address
from concilium.platform import i18n
from concilium.platform.errors import InvalidInput
from concilium.platform.i18n import _
from concilium.platform.mail import Attachment, Mail
from concilium.platform.outbox import enqueue
from concilium.platform.runtime import Runtime
from concilium.platform.tables import OutboxMail, Site, User

log = logging.getLogger(__name__)

PLATFORM_MAIL = Path(__file__).with_name("templates") / "mail"
"""The platform's layouts and messages."""
PLATFORM_LOCALE = Path(__file__).with_name("locale")
"""The platform's catalogues, which hold the words of its messages."""


@dataclass(frozen=True)
class Recipient:
    """Who a message is for, and how they read."""

    address: str
    """``Name <local@domain>`` or ``local@domain``."""
    locale: str = i18n.DEFAULT_LOCALE
    """Their language (one of ``i18n.LOCALES``)."""
    zone: str = i18n.DEFAULT_ZONE
    """The IANA zone they read times in."""

    def __post_init__(self) -> None:
        if self.locale not in i18n.LOCALES:
            raise ValueError(f"unknown language {self.locale!r}; known: {i18n.LOCALES}")
        i18n.zone(self.zone)  # an unknown zone is refused here, not when sending


def zone_of(session: Session, user: User) -> str:
    """The IANA zone ``user`` reads times in: theirs, else their first site's, else the
    default."""
    zone = user.timezone
    if not zone:
        site_ids = sorted(m.site_id for m in user.memberships)
        site = session.get(Site, site_ids[0]) if site_ids else None
        zone = site.timezone if site is not None else None
    return zone or i18n.DEFAULT_ZONE


def recipient_of(session: Session, user: User) -> Recipient | None:
    """How ``user`` reads: their language (else French), their zone (:func:`zone_of`); None
    when they have no e-mail address."""
    if not user.email:
        return None
    return Recipient(
        address=formataddr((user.full_name, user.email)),
        locale=user.locale if user.locale in i18n.LOCALES else i18n.DEFAULT_LOCALE,
        zone=zone_of(session, user),
    )


def reachable_recipient(session: Session, user: User) -> Recipient | None:
    """:func:`recipient_of`, when mail can reach them: None also for an address no mail can
    reach (a mistyped address on an account never stops the act that writes to them; its
    message is left out, with a warning naming the account by its id)."""
    to = recipient_of(session, user)
    if to is None:
        return None
    try:
        mailbox_address(to.address)
    except ValueError:
        log.warning("no e-mail to user %s: the account's address is not a mailbox", user.id)
        return None
    return to


@pass_context
def _show_datetime(context: Context, value: datetime | None, form: str = "short") -> str:
    return "" if value is None else i18n.show_datetime(value, i18n.zone(context["zone"]), form)


@pass_context
def _show_date(context: Context, value: date | datetime | None, form: str = "short") -> str:
    return "" if value is None else i18n.show_date(value, i18n.zone(context["zone"]), form)


@pass_context
def _show_time(context: Context, value: datetime | None) -> str:
    return "" if value is None else i18n.show_time(value, i18n.zone(context["zone"]))


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]


class MailTemplates:
    """The message templates of one service (its ``mail`` folder), over the platform's."""

    def __init__(self, *folders: Path) -> None:
        loaders = [FileSystemLoader(folder) for folder in (*folders, PLATFORM_MAIL)]
        env = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        env.install_gettext_callables(  # type: ignore[attr-defined]
            i18n.gettext, i18n.ngettext, newstyle=True, pgettext=i18n.pgettext
        )
        env.filters["datetime"] = _show_datetime
        env.filters["date"] = _show_date
        env.filters["time"] = _show_time
        env.filters["paragraphs"] = _paragraphs
        self.env = env

    def compose(
        self,
        kind: str,
        to: Recipient,
        template: str,
        values: Mapping[str, Any],
        attachments: Sequence[Attachment] = (),
    ) -> Mail:
        """The message ``template`` for ``to``, in their language and zone."""
        with i18n.using_locale(to.locale) as locale:
            context = {**values, "locale": locale, "zone": to.zone}
            text_template = self.env.get_template(f"{template}.txt")
            subject = "".join(text_template.blocks["subject"](text_template.new_context(context)))
            text = text_template.render(context)
            try:
                html = self.env.get_template(f"{template}.html").render(context)
            except TemplateNotFound:
                html = ""
        return Mail(
            kind=kind,
            to=(to.address,),
            subject=" ".join(subject.split()),
            text=text,
            html=html,
            attachments=tuple(attachments),
            language=locale,
        )


PLATFORM_TEMPLATES = MailTemplates()
"""The platform's own messages."""


def compose(
    kind: str,
    to: Recipient,
    template: str,
    values: Mapping[str, Any],
    attachments: Sequence[Attachment] = (),
) -> Mail:
    """One of the platform's messages (``templates/mail/<template>.txt`` and ``.html``)."""
    return PLATFORM_TEMPLATES.compose(kind, to, template, values, attachments)


def _fill(message: str, values: Mapping[str, object], zone: str) -> str:
    shown = {
        name: i18n.show_datetime(value, i18n.zone(zone)) if isinstance(value, datetime) else value
        for name, value in values.items()
    }
    translated = _(message)
    return translated % shown if shown else translated


def send_notice(
    session: Session,
    runtime: Runtime,
    user: User,
    subject: str,
    text: str,
    *,
    values: Mapping[str, object] | None = None,
    link: str = "",
    link_label: str = "",
    kind: str = "account.notice",
    site_id: int | None = None,
    attachments: Sequence[Attachment] = (),
) -> OutboxMail:
    """Queue a short message to ``user`` in the caller's transaction, in their language.

    ``subject``, ``text`` (paragraphs separated by a blank line) and ``link_label`` are
    English messages marked with ``N_()``; they are translated for the recipient, then
    filled with ``values`` (``%(name)s`` placeholders; a ``datetime`` is shown in the
    recipient's zone). ``link`` is shown under the text, as a button in the HTML body.
    Raises ``InvalidInput`` when the person has no e-mail address."""
    if link and not link.startswith(("https://", "http://")):
        raise ValueError(f"a notice links to a web address, got {link[:20]!r}")
    to = recipient_of(session, user)
    if to is None:
        raise InvalidInput(_("This person has no e-mail address."))
    filled = values or {}
    with i18n.using_locale(to.locale):
        notice = {
            "name": user.full_name,
            "subject": _fill(subject, filled, to.zone),
            "text": _fill(text, filled, to.zone),
            "link": link,
            "link_label": _fill(link_label, filled, to.zone) if link_label else "",
        }
    mail = compose(kind, to, "notice", notice, attachments)
    return enqueue(session, runtime, mail, site_id=site_id)
