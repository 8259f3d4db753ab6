"""The request context: who is asking (session cookie or bearer token), the policy gate,
CSRF, one database transaction per request, and the audit actor.

Every route but the public ones (login, health) takes a ``Ctx`` through ``gate(action)``,
which refuses anonymous callers and callers who could never be granted the action; the
handler then asks ``ctx.authorize`` about the very object it touches.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from anyio import CapacityLimiter, to_thread
from fastapi import Depends, FastAPI, Request
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from concilium.platform import audit
from concilium.platform.accounts import principal_for
from concilium.platform.authn import Identity, authenticate
from concilium.platform.errors import Forbidden, Unauthenticated
from concilium.platform.i18n import N_, _
from concilium.platform.policy import (
    NOTHING,
    Action,
    Decision,
    Principal,
    Target,
    decide,
    has_scope,
    visible_sites,
)
from concilium.platform.runtime import Runtime
from concilium.platform.services import Processes
from concilium.platform.tables import User, WebSession

log = logging.getLogger(__name__)

T = TypeVar("T")


class FormExpired(Forbidden):
    """A state-changing request of a browser without its session's CSRF token."""

    title = N_("Form expired")


SESSION_COOKIE = "concilium_session"
LOGIN_CSRF_COOKIE = "concilium_login_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def process_of(app: FastAPI, kind: type[T]) -> T:
    """The runtime of the service whose runtime is a ``kind``, built by the process
    assembly at start (``concilium.assembly``)."""
    processes: Processes = app.state.assembly
    return processes.service(kind)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def forwarded_client(peer: str, forwarded_for: Iterable[str], trusted: Sequence[Network]) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the
    right-most hop of ``X-Forwarded-For`` (RFC 7239's predecessor, as proxies append to it)
    that is not itself a trusted proxy. Hops left of it were written by the client."""
    peer_address = _address(peer)
    if peer_address is None or not any(peer_address in net for net in trusted):
        return peer
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    client = str(peer_address)
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # not an address: the last trusted proxy's view stands
        client = str(address)
        if not any(address in net for net in trusted):
            break
    return client


def client_ip(connection: HTTPConnection) -> str:
    """The address a request or websocket comes from, as the one place that decides it:
    throttling, the audit trail and sessions all use it."""
    peer = connection.client.host if connection.client else ""
    runtime: Runtime = connection.app.state.runtime
    trusted = runtime.settings.trusted_proxy_networks
    if not trusted:
        return peer
    return forwarded_client(peer, connection.headers.getlist("x-forwarded-for"), trusted)


@dataclass
class Ctx:
    """One request's view of the platform."""

    request: Request
    runtime: Runtime
    db: Session
    principal: Principal
    user: User
    web_session: WebSession | None
    action: Action
    now: datetime
    decisions: list[Decision] = field(default_factory=list)

    @property
    def actor(self) -> audit.Actor:
        # A person working at one site acts from it; for several, each entry names its object.
        sites = list(self.principal.roles)
        site_id = sites[0] if len(sites) == 1 else None
        return audit.Actor(
            self.user.id,
            self.user.username,
            role=self.principal.primary_role(site_id),
            site_id=site_id,
            ip=client_ip(self.request),
        )

    @property
    def csrf_token(self) -> str:
        return self.web_session.csrf_token if self.web_session else ""

    def authorize(self, action: Action, target: Target = NOTHING) -> Decision:
        """Ask the policy; a refusal is audited in its own transaction, then raised."""
        decision = decide(self.principal, action, target)
        if not decision.allowed:
            record_refusal(self.db, self.actor, action, target, decision.reason)
            raise Forbidden(_("You do not have access to this."))
        self.decisions.append(decision)
        return decision

    def outcome(self, decision: Decision) -> str:
        return "emergency-override" if decision.emergency else "success"

    def visible_sites(self, action: Action) -> frozenset[int] | None:
        return visible_sites(self.principal, action)

    def commit(self) -> None:
        self.db.commit()


def record_refusal(
    db: Session, actor: audit.Actor, action: Action | str, target: Target, reason: str
) -> None:
    """Discard the request's work, then keep the refusal itself: it must be audited even
    though the request fails."""
    db.rollback()
    audit.record_refusal(db, actor, str(action), target, reason)
    db.commit()


def may_attempt(principal: Principal, action: Action) -> bool:
    """Whether any object could ever be granted: refuses early those who hold no way in."""
    rule = action.rule
    if not has_scope(principal, rule):
        return False
    if rule.self_service or (principal.is_platform_admin and rule.platform_admin):
        return True
    if principal.sites_with(rule.roles):
        return True
    if rule.via_share and principal.roles:
        return True
    return rule.via_emergency and bool(principal.emergency_patient_ids)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


async def _sent_csrf(request: Request) -> str:
    """The CSRF token a state-changing cookie request carries: header, else form field."""
    if (
        request.method in SAFE_METHODS
        or _bearer(request) is not None
        or SESSION_COOKIE not in request.cookies
    ):
        return ""
    sent = request.headers.get("x-csrf-token", "")
    if not sent and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token", "")
        sent = value if isinstance(value, str) else ""
    return sent


def _check_csrf(request: Request, web_session: WebSession, sent: str) -> None:
    if request.method in SAFE_METHODS:
        return
    if not sent or not secrets.compare_digest(sent, web_session.csrf_token):
        raise FormExpired(_("This form has expired. Reload the page and try again."))


def _identify(
    request: Request,
    runtime: Runtime,
    db: Session,
    now: datetime,
    allow_pending: bool,
    sent_csrf: str,
) -> Identity:
    identity = authenticate(
        db,
        runtime.settings,
        now,
        bearer=_bearer(request),
        cookie=request.cookies.get(SESSION_COOKIE),
        allow_pending_mfa=allow_pending,
    )
    if identity.web_session is not None:
        _check_csrf(request, identity.web_session, sent_csrf)
    return identity


def _admit(
    request: Request,
    runtime: Runtime,
    db: Session,
    action: Action,
    now: datetime,
    allow: bool,
    sent_csrf: str,
) -> Ctx:
    """Who is asking and whether they could ever be granted ``action``; refusals audited.

    Runs in a worker thread: on SQLite a transaction waits for the write lock when it
    begins, and a wait on the event loop would stall the very requests holding the lock.
    The handler starts inside an open transaction, so it never begins one on the loop.
    """
    try:
        identity = _identify(request, runtime, db, now, allow, sent_csrf)
    except Unauthenticated:
        anonymous = audit.Actor(None, "", ip=client_ip(request))
        record_refusal(db, anonymous, action, NOTHING, "not authenticated")
        raise
    principal = principal_for(db, identity.user, now, identity.scopes)
    ctx = Ctx(request, runtime, db, principal, identity.user, identity.web_session, action, now)
    if not has_scope(principal, action.rule):
        record_refusal(db, ctx.actor, action, NOTHING, "token lacks the scope")
        raise Forbidden(
            _("This token does not carry the scope %(scope)s.") % {"scope": action.rule.scope}
        )
    if not may_attempt(principal, action):
        record_refusal(db, ctx.actor, action, NOTHING, "role does not permit this")
        raise Forbidden(_("Your roles do not give access to this page or action."))
    db.connection()  # begin the handler's transaction here, off the event loop
    return ctx


ADMISSION_THREADS = 16
"""Requests waiting for the database at admission, at most, each in a thread of its own."""


def _admission_limiter(request: Request) -> CapacityLimiter:
    """The threads where requests wait to be admitted, apart from the handlers' threads.

    On SQLite a request waits for the write lock while it is admitted; were those waits in
    the handlers' thread pool, enough of them would leave the request holding the lock no
    thread to run its handler in, and everyone would wait for the busy timeout.
    """
    state = request.app.state
    limiter: CapacityLimiter | None = getattr(state, "admission_limiter", None)
    if limiter is None:
        limiter = state.admission_limiter = CapacityLimiter(ADMISSION_THREADS)
    return limiter


def gate(action: Action, *, allow_pending_mfa: bool = False) -> Any:
    """Dependency: authenticate, check the action can be granted at all, open the transaction."""

    async def dependency(request: Request) -> AsyncIterator[Ctx]:
        runtime = runtime_of(request)
        now = runtime.now()
        db = runtime.sessions()
        try:
            sent_csrf = await _sent_csrf(request)
            admit = partial(_admit, request, runtime, db, action, now, allow_pending_mfa, sent_csrf)
            yield await to_thread.run_sync(admit, limiter=_admission_limiter(request))
        finally:
            db.rollback()  # whatever the handler did not commit is discarded
            db.close()

    dependency.action = action  # type: ignore[attr-defined]
    # The transaction ends when the handler returns, not after a long download is sent.
    return Depends(dependency, scope="function")
