"""A real SMTP server on loopback for the e-mail tests (aiosmtpd): STARTTLS or implicit TLS
with a certificate of a private authority, AUTH LOGIN and PLAIN, and hooks to refuse a
recipient or to hold a transaction half-way (to kill the sender in the middle)."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from imaging.certificates import Authority, Identity, authority, issue

USERNAME = "concilium@chr-metz.fr"
PASSWORD = "relay-secret-42"


@dataclass
class Received:
    """One message the server accepted (its handler was called with the whole content)."""

    sender: str
    recipients: list[str]
    raw: bytes
    login: str | None

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Recorder:
    """The server's handler: keeps what arrives; can refuse or hold."""

    refuse: set[str] = field(default_factory=set)
    """Recipients answered ``550 5.1.1``."""
    hold: str = ""
    """``"rcpt"`` or ``"data"``: wait for :attr:`release` at that step."""
    received: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    """Set when a held step is reached."""
    release: threading.Event = field(default_factory=threading.Event)

    async def _wait(self) -> None:
        self.arrived.set()
        while not self.release.is_set():
            await asyncio.sleep(0.02)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: mailbox unknown"
        if self.hold == "rcpt":
            await self._wait()
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        auth = session.auth_data
        login = auth.login.decode() if session.authenticated and auth else None
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, login)
        )
        if self.hold == "data":
            await self._wait()
        return "250 2.0.0 queued"


@dataclass
class Pki:
    """A private authority and the relay's certificate it issued (for 127.0.0.1)."""

    authority: Authority
    server: Identity

    @property
    def ca_file(self) -> Path:
        return self.authority.pem

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.server.certificate, self.server.key)
        return context


def make_pki(directory: Path, name: str = "Relay CA") -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca = authority(directory, name.replace(" ", "-"))
    return Pki(ca, issue(directory, "relay", ca, names=("localhost", "127.0.0.1")))


def _authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == USERNAME
        and auth_data.password.decode() == PASSWORD
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


@contextmanager
def smtp_server(
    port: int,
    recorder: Recorder,
    *,
    pki: Pki | None = None,
    implicit_tls: bool = False,
    auth: str | None = None,
) -> Iterator[Controller]:
    """Serve on ``127.0.0.1:port``: STARTTLS offered (and required) when ``pki`` is given,
    or TLS from the first byte with ``implicit_tls``; AUTH required with ``auth`` ``"LOGIN"``
    or ``"PLAIN"`` (the other mechanism is not offered, so the client must use this one)."""
    kwargs: dict[str, Any] = {}
    if pki is not None and implicit_tls:
        kwargs["ssl_context"] = pki.server_context()
    elif pki is not None:
        kwargs["tls_context"] = pki.server_context()
        kwargs["require_starttls"] = True
    if auth is not None:
        kwargs["authenticator"] = _authenticator
        kwargs["auth_required"] = True
        kwargs["auth_exclude_mechanism"] = [m for m in ("LOGIN", "PLAIN") if m != auth]
        # With implicit TLS the server does not see its own TLS: it would not offer AUTH.
        kwargs["auth_require_tls"] = not implicit_tls
    controller = Controller(
        recorder, hostname="127.0.0.1", port=port, server_hostname="localhost", **kwargs
    )
    controller.start()
    try:
        yield controller
    finally:
        recorder.release.set()
        controller.stop()
