"""E-mail: messages built as MIME (RFC 5322, RFC 2045-2049) and handed to an SMTP relay
(RFC 5321) over TLS, either upgraded by STARTTLS (RFC 3207) or from the first byte
(RFC 8314 section 3.3), authenticated by SMTP AUTH (RFC 4954) when the relay asks for it.

A service describes what it wants to say, and to whom, as a :class:`Mail`; the outbox keeps
it until it is sent (``concilium.platform.outbox``) and :func:`build_message` turns it into
an :class:`email.message.EmailMessage` with the installation's sender when it goes. A
calendar invitation travels as iMIP (RFC 6047 section 2.4): its ``text/calendar;
method=REQUEST`` part is an alternative of the text and HTML bodies, so calendar clients
offer to accept it, and the same object is attached as an ``.ics`` file for the others.

The relay's certificate and host name are always verified; STARTTLS that the relay does not
offer fails the attempt rather than sending in the clear. Nothing here logs: the outbox
logs a message by its id, Message-ID and kind, never by its recipients or content.
"""

from __future__ import annotations

import base64
import json
import re
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from enum import StrEnum
from pathlib import Path
from typing import Any

from concilium.config import Settings, mailbox_address
from concilium.platform.calendar_ics import Method

KIND = re.compile(r"[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*")
"""A message kind: ``area.what`` (``account.notice``, ``boards.invitation``)."""
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
_PARAMETER = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*")
_ENHANCED_STATUS = re.compile(rb"^\s*([245]\.\d{1,3}\.\d{1,3})\b")
"""Enhanced status code at the start of a reply's text (RFC 3463)."""
_LINE_BREAK = re.compile(r"[\r\n]")

MIME_POLICY = policy.SMTP.clone(cte_type="7bit")
"""CRLF line ends, and every part in 7-bit ASCII (quoted-printable or base64 where needed):
any relay accepts it, with or without 8BITMIME (RFC 6152)."""


# --- what a message says ---------------------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    """A file sent with a message (a PDF, an invitation)."""

    filename: str
    """Name the recipient's client shows and saves it under."""
    content: bytes
    """The file itself."""
    media_type: str
    """Its MIME type (``application/pdf``, ``text/calendar``)."""
    params: tuple[tuple[str, str], ...] = ()
    """Parameters of that type: ``(("method", "REQUEST"),)`` for an iTIP invitation."""

    def __post_init__(self) -> None:
        if not self.filename or _LINE_BREAK.search(self.filename) or "/" in self.filename:
            raise ValueError(f"an attachment's filename is one name, got {self.filename!r}")
        if not _MEDIA_TYPE.fullmatch(self.media_type):
            raise ValueError(
                f"an attachment's media type is 'type/subtype', got {self.media_type!r}"
            )
        for name, value in self.params:
            if not _PARAMETER.fullmatch(name) or _LINE_BREAK.search(value):
                raise ValueError(f"malformed media type parameter {name!r}")

    @property
    def method(self) -> str | None:
        """The iTIP method of a calendar (RFC 5546), which makes it an invitation."""
        if self.media_type != "text/calendar":
            return None
        return dict(self.params).get("method")


def calendar_attachment(
    ics: bytes, method: Method | None, filename: str = "invitation.ics"
) -> Attachment:
    """An iCalendar object (``calendar_ics.invitation`` or ``cancellation``) to send: with a
    method, as an iMIP message calendar clients act on (RFC 6047 section 2.4)."""
    params = (("method", method.value),) if method is not None else ()
    return Attachment(filename, ics, "text/calendar", params)


def _one_line(name: str, value: str) -> None:
    if _LINE_BREAK.search(value):
        raise ValueError(f"{name} must be one line")


@dataclass(frozen=True)
class Mail:
    """What a service wants to send, to whom; the sender is the installation's."""

    kind: str
    """What the message is (``account.notice``): shown to administrators and logged, so it
    never holds patient data."""
    to: tuple[str, ...]
    """Recipients, ``local@domain`` or ``Name <local@domain>``."""
    subject: str
    """Subject line, in the recipients' language."""
    text: str
    """Plain-text body (every message has one)."""
    html: str = ""
    """HTML body, an alternative of the text one; empty for none."""
    attachments: tuple[Attachment, ...] = ()
    """Files sent with it."""
    language: str = ""
    """Language of the text (``Content-Language``, RFC 3282); empty when unknown."""

    def __post_init__(self) -> None:
        if len(self.kind) > 64 or not KIND.fullmatch(self.kind):
            raise ValueError(f"a mail kind reads like 'area.what', got {self.kind!r}")
        if not self.to:
            raise ValueError("a mail needs at least one recipient")
        for recipient in self.to:
            mailbox_address(recipient)
        _one_line("the subject", self.subject)
        if not self.text.strip():
            raise ValueError("a mail needs a plain-text body")
        if self.language and not _PARAMETER.fullmatch(self.language):
            raise ValueError(f"a language is a tag such as 'fr', got {self.language!r}")

    @property
    def addresses(self) -> tuple[str, ...]:
        """The recipients' addresses, as the SMTP envelope names them (RCPT TO)."""
        return tuple(mailbox_address(recipient) for recipient in self.to)

    def to_json(self) -> str:
        """The mail as JSON, to keep it in the outbox."""
        return json.dumps(
            {
                "kind": self.kind,
                "to": list(self.to),
                "subject": self.subject,
                "text": self.text,
                "html": self.html,
                "language": self.language,
                "attachments": [
                    {
                        "filename": a.filename,
                        "media_type": a.media_type,
                        "params": [list(p) for p in a.params],
                        "content": base64.b64encode(a.content).decode("ascii"),
                    }
                    for a in self.attachments
                ],
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Mail:
        fields: dict[str, Any] = json.loads(text)
        return cls(
            kind=fields["kind"],
            to=tuple(fields["to"]),
            subject=fields["subject"],
            text=fields["text"],
            html=fields["html"],
            language=fields["language"],
            attachments=tuple(
                Attachment(
                    a["filename"],
                    base64.b64decode(a["content"]),
                    a["media_type"],
                    tuple((name, value) for name, value in a["params"]),
                )
                for a in fields["attachments"]
            ),
        )


def _mailbox(value: str) -> Address:
    name, address = parseaddr(value)
    local, _at, domain = address.rpartition("@")
    return Address(display_name=name, username=local, domain=domain)


def build_message(
    mail: Mail, *, sender: str, reply_to: str, message_id: str, date: datetime
) -> EmailMessage:
    """The message as it goes out (RFC 5322): headers, a text body and its HTML and calendar
    alternatives (``multipart/alternative``, RFC 2046 section 5.1.4), then attachments
    (``multipart/mixed``).

    ``Auto-Submitted: auto-generated`` (RFC 3834 section 5) keeps out-of-office replies away.
    """
    message = EmailMessage(policy=MIME_POLICY)
    message["From"] = _mailbox(sender)
    message["To"] = [_mailbox(recipient) for recipient in mail.to]
    if reply_to:
        message["Reply-To"] = _mailbox(reply_to)
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(mail.text)
    if mail.html:
        message.add_alternative(mail.html, subtype="html")
    invitations = [a for a in mail.attachments if a.method is not None]
    for invitation in invitations:
        message.add_alternative(
            invitation.content.decode("utf-8"), subtype="calendar", params=dict(invitation.params)
        )
    for attachment in mail.attachments:
        if attachment.method is not None:
            # The copy for clients that do not read iMIP: a file, not an alternative.
            message.add_attachment(
                attachment.content, "application", "ics", filename=attachment.filename
            )
            continue
        maintype, _slash, subtype = attachment.media_type.partition("/")
        message.add_attachment(
            attachment.content,
            maintype,
            subtype,
            filename=attachment.filename,
            params=dict(attachment.params),
        )
    if mail.language:
        # Last: building the parts moves every Content-* header into the first part.
        message["Content-Language"] = mail.language
    return message


# --- how it leaves ----------------------------------------------------------------------------


class Security(StrEnum):
    """How the connection to the relay is protected."""

    NONE = "none"
    """In the clear: for a relay on the same machine."""
    STARTTLS = "starttls"
    """Upgraded by STARTTLS (RFC 3207), which must succeed."""
    TLS = "tls"
    """TLS from the first byte (RFC 8314 section 3.3)."""


@dataclass(frozen=True)
class SmtpRelay:
    """Where and how this installation hands its e-mail over."""

    host: str
    """The relay's host name (its certificate must name it)."""
    port: int
    """Its port (587 submission, 465 implicit TLS, 25 relay)."""
    security: Security
    """How the connection is protected."""
    sender: str
    """``From`` of every message: ``Name <local@domain>``."""
    reply_to: str = ""
    """``Reply-To`` of every message; empty for none."""
    username: str = ""
    """SMTP AUTH account; empty for none."""
    password: str = field(default="", repr=False)
    """Its password."""
    ca_file: Path | None = None
    """Authorities trusted for the relay's certificate (else the system's)."""
    client_certificate: Path | None = None
    """Certificate presented to the relay (mutual TLS)."""
    client_key: Path | None = None
    """Its private key."""
    timeout: float = 30.0
    """Seconds to wait for the relay at each step."""

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("an SMTP relay needs a host name")
        mailbox_address(self.sender)
        if self.username and self.security is Security.NONE:
            raise ValueError("SMTP credentials are only sent over TLS")

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpRelay | None:
        """The configured relay; None when e-mail is off (no ``smtp_host``)."""
        if not settings.smtp_host:
            return None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=Security(settings.smtp_security),
            sender=settings.mail_from,
            reply_to=settings.mail_reply_to,
            username=settings.smtp_username,
            password=settings.smtp_password,
            ca_file=settings.smtp_ca_file,
            client_certificate=settings.smtp_client_certificate,
            client_key=settings.smtp_client_key,
            timeout=settings.smtp_timeout_seconds,
        )

    @property
    def sender_address(self) -> str:
        """The envelope sender (MAIL FROM)."""
        return mailbox_address(self.sender)

    def tls_context(self) -> ssl.SSLContext:
        """Verifies the relay's certificate chain and host name; TLS 1.2 at least (BCP 195)."""
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file) if self.ca_file else None
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.client_certificate is not None:
            context.load_cert_chain(self.client_certificate, self.client_key)
        return context


class DeliveryError(Exception):
    """Why a message did not go, in words that name no recipient and quote no content."""

    def __init__(self, reason: str, *, permanent: bool, connection: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        """The relay refused this very message (5xx): trying again would not help."""
        self.connection = connection
        """The connection is unusable (or was never made): open a new one for the next."""


def _reply(code: int, text: bytes | str) -> str:
    """A relay's reply as its code and enhanced status code only: the rest of its text may
    quote an address."""
    raw = text.encode("utf-8", "replace") if isinstance(text, str) else text
    enhanced = _ENHANCED_STATUS.match(raw)
    return f"{code} {enhanced.group(1).decode()}" if enhanced else str(code)


def delivery_error(exc: BaseException) -> DeliveryError:
    """What a failure to send means: whether it is this message's fault (a 5xx refusal of
    its recipients or content: no use trying again) or the relay's, the network's or the
    configuration's (tried again later: an administrator may be fixing it)."""
    name = type(exc).__name__
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _text in exc.recipients.values()})
        replies = sorted({_reply(code, text) for code, text in exc.recipients.values()})
        permanent = bool(codes) and all(500 <= code < 600 for code in codes)
        return DeliveryError(
            f"recipients refused: {', '.join(replies)}", permanent=permanent, connection=False
        )
    if isinstance(exc, smtplib.SMTPDataError):
        return DeliveryError(
            f"message refused: {_reply(exc.smtp_code, exc.smtp_error)}",
            permanent=500 <= exc.smtp_code < 600,
            connection=False,
        )
    if isinstance(exc, smtplib.SMTPSenderRefused):
        # The relay refuses mail_from: the configuration's fault, the same for every message.
        return DeliveryError(
            f"sender refused: {_reply(exc.smtp_code, exc.smtp_error)}",
            permanent=False,
            connection=True,
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return DeliveryError(
            f"authentication refused: {_reply(exc.smtp_code, exc.smtp_error)}",
            permanent=False,
            connection=True,
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return DeliveryError(
            f"{name}: {_reply(exc.smtp_code, exc.smtp_error)}", permanent=False, connection=True
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return DeliveryError(
            f"relay lacks a required extension: {exc}", permanent=False, connection=True
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DeliveryError(
            f"relay certificate refused: {exc.verify_message}", permanent=False, connection=True
        )
    if isinstance(exc, ssl.SSLError):
        return DeliveryError(f"TLS failed: {exc.reason or name}", permanent=False, connection=True)
    if isinstance(exc, OSError):
        detail = exc.strerror or str(exc) or "no reply"
        return DeliveryError(f"{name}: {detail}", permanent=False, connection=True)
    # Not the network's nor the relay's: this message cannot be built or sent, and would not
    # be on another try.
    return DeliveryError(name, permanent=True, connection=True)


class SmtpConnection:
    """One session with the relay: connect, secure, authenticate, then any number of
    messages, then QUIT. Each failure raises the ``smtplib`` or ``ssl`` exception;
    :func:`delivery_error` says what it means."""

    def __init__(self, relay: SmtpRelay, local_hostname: str | None = None) -> None:
        self.relay = relay
        self._local_hostname = local_hostname
        self._smtp: smtplib.SMTP | None = None

    def open(self) -> None:
        relay = self.relay
        smtp: smtplib.SMTP
        if relay.security is Security.TLS:
            smtp = smtplib.SMTP_SSL(
                relay.host,
                relay.port,
                local_hostname=self._local_hostname,
                timeout=relay.timeout,
                context=relay.tls_context(),
            )
        else:
            smtp = smtplib.SMTP(
                relay.host, relay.port, local_hostname=self._local_hostname, timeout=relay.timeout
            )
        try:
            smtp.ehlo()
            if relay.security is Security.STARTTLS:
                # Raises SMTPNotSupportedError when not offered: never a fallback to plain.
                smtp.starttls(context=relay.tls_context())
                smtp.ehlo()
            if relay.username:
                smtp.login(relay.username, relay.password)
        except BaseException:
            smtp.close()
            raise
        self._smtp = smtp

    def send(
        self, message: EmailMessage, recipients: Sequence[str]
    ) -> Mapping[str, tuple[int, bytes]]:
        """Hand one message over; the recipients the relay refused while accepting it for
        the others (all refused raises ``SMTPRecipientsRefused``)."""
        if self._smtp is None:
            raise smtplib.SMTPServerDisconnected("not connected")
        refused: Mapping[str, tuple[int, bytes]] = self._smtp.send_message(
            message, from_addr=self.relay.sender_address, to_addrs=list(recipients)
        )
        return refused

    def close(self) -> None:
        """QUIT, if the relay still listens; the socket is closed in any case."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def __enter__(self) -> SmtpConnection:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def refused_summary(refused: Mapping[str, tuple[int, bytes]], total: int) -> str:
    """Recipients refused while the others were accepted, without naming them."""
    if not refused:
        return ""
    replies = sorted({_reply(code, text) for code, text in refused.values()})
    return f"refused for {len(refused)} of {total} recipients: {', '.join(replies)}"
