"""Sending what the outbox holds through a real SMTP server (aiosmtpd), and reading back
what it received: the e-mail tests of each service go through the outbox's own sending."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

from concilium.platform.mail import Security, SmtpRelay
from concilium.platform.outbox import Dispatcher, RetryPolicy
from concilium.platform.runtime import Runtime
from serving import free_port
from smtp_peer import Recorder, smtp_server


def deliver(runtime: Runtime) -> list[EmailMessage]:
    """Send every message due through a loopback relay; the messages it received, in order."""
    port, recorder = free_port(), Recorder()
    relay = SmtpRelay("127.0.0.1", port, Security.NONE, "Concilium <concilium@chr-metz.fr>")
    sender = Dispatcher(
        runtime.sessions,
        runtime.box,
        relay,
        runtime.now,
        RetryPolicy(3, timedelta(minutes=1), timedelta(hours=1)),
        lease=timedelta(minutes=5),
        poll=1.0,
    )
    with smtp_server(port, recorder):
        sender.run_once()
    return [received.message for received in recorder.received]


def text_of(message: EmailMessage) -> str:
    """The plain-text body, with the line ends as written."""
    body = message.get_body(("plain",))
    assert isinstance(body, EmailMessage)
    return str(body.get_content()).replace("\r\n", "\n")


def html_of(message: EmailMessage) -> str:
    body = message.get_body(("html",))
    assert isinstance(body, EmailMessage)
    return str(body.get_content())


def attachment(message: EmailMessage, filename: str) -> bytes:
    """The content of the attachment named ``filename``."""
    for part in message.iter_attachments():
        if part.get_filename() == filename:
            content = part.get_payload(decode=True)
            assert isinstance(content, bytes)
            return content
    raise AssertionError(f"no attachment {filename!r} in {message['Subject']!r}")
