"""The outbox: e-mail that must leave, kept in the database until it has left.

A service queues a message with :func:`enqueue` inside the transaction of the action that
causes it (the transactional outbox pattern): the message exists if and only if that action
committed, and nothing is sent for work that was rolled back. A :class:`Dispatcher` (a
thread of ``concilium serve``, or ``concilium mail dispatch`` as a worker of its own) then
claims each message due, hands it to the SMTP relay and records the outcome::

    pending --claim--> sending --relay accepted--> sent
       ^                  |  \\--refused or unreachable--> pending (later) | failed (no more)
       |                  \\--lease expired (its process died)--> sending (claimed again)
       +--- retry now --- failed;   pending | failed --cancel--> cancelled

Claiming takes a lease: the row is marked as held by one process until a deadline. On
PostgreSQL, ``SELECT ... FOR UPDATE SKIP LOCKED`` lets any number of processes claim side by
side, each getting other rows; on SQLite, transactions that write take the one write lock up
front, so claims follow one another. A process killed mid-send leaves its row ``sending``
until the lease ends; then any dispatcher claims it again.

Delivery is therefore **at least once**: a message is never lost once queued, but a process
killed after the relay accepted the message and before the row was marked sent sends it
again. Both copies carry the same Message-ID, so mail clients and archives can tell them
apart from two messages. Exactly once would need the relay to remember what it accepted,
which SMTP does not provide.

The message (subject, bodies, attachments), which may speak of patients, is sealed with the
installation's key (AES-256-GCM, as second factors are; bound to its Message-ID) and erased
once sent or cancelled. Every change of state is kept (:class:`OutboxMailEvent`), with the
relay's status codes or the network's error, never a recipient or any content; logs carry
the row's id, its Message-ID and its kind only.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import make_msgid
from enum import StrEnum
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from concilium.config import Settings, mailbox_address
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.encryption import SecretBox
from concilium.platform.errors import Conflict, NotFound
from concilium.platform.i18n import _
from concilium.platform.mail import (
    DeliveryError,
    Mail,
    SmtpConnection,
    SmtpRelay,
    build_message,
    delivery_error,
    refused_summary,
)
from concilium.platform.runtime import Runtime
from concilium.platform.tables import OutboxMail, OutboxMailEvent

log = logging.getLogger(__name__)


class MailState(StrEnum):
    """Where a queued message stands."""

    PENDING = "pending"
    """Waiting for its next try."""
    SENDING = "sending"
    """Held by a process that is sending it, until its lease ends."""
    SENT = "sent"
    """Accepted by the relay."""
    FAILED = "failed"
    """Given up: refused by the relay, or out of tries."""
    CANCELLED = "cancelled"
    """Withdrawn by an administrator before it left."""


WAITING = (MailState.PENDING, MailState.FAILED)
"""States an administrator may try again now, or cancel."""


class Cause(StrEnum):
    """What made a message change state (the history's wording, translated where shown)."""

    QUEUED = "queued"
    """Queued by the action that caused it."""
    CLAIMED = "claimed"
    """A process began a try (detail: the process)."""
    LEASE_EXPIRED = "lease-expired"
    """Its process stopped mid-send; the try's outcome is unknown (detail: that process)."""
    ACCEPTED = "accepted"
    """The relay accepted it (detail: recipients it refused, if any)."""
    ACCEPTED_AGAIN = "accepted-again"
    """A process whose lease had run out delivered it too (detail: that process)."""
    TRY_FAILED = "try-failed"
    """A try failed (detail: the relay's status codes or the network's error)."""
    UNREADABLE = "unreadable"
    """Its content cannot be read: sealed under another key, altered, or malformed."""
    RETRY = "retry"
    """An administrator asked for a try now (detail: who)."""
    CANCEL = "cancel"
    """An administrator withdrew it (detail: who)."""


# --- when to try again (pure) -----------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How often a message is tried, and how long between tries."""

    max_attempts: int
    """Tries before giving up."""
    first: timedelta
    """Wait after the first failure; each further wait doubles."""
    longest: timedelta
    """Longest wait."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.first <= timedelta(0) or self.longest < self.first:
            raise ValueError("the first wait must be positive and no longer than the longest")

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            settings.mail_max_attempts,
            timedelta(seconds=settings.mail_retry_seconds),
            timedelta(seconds=settings.mail_retry_max_seconds),
        )

    def delay(self, attempts: int) -> timedelta:
        """Wait after the ``attempts``-th failed try: first, twice that, four times..."""
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        factor: int = 2 ** min(attempts - 1, 32)
        return min(self.first * factor, self.longest)

    def gives_up(self, attempts: int, permanent: bool) -> bool:
        """Whether a message that failed its ``attempts``-th try is failed for good."""
        return permanent or attempts >= self.max_attempts


# --- queueing ---------------------------------------------------------------------------------


def _seal_context(message_id: str) -> str:
    return f"mail:{message_id}"


def message_id_domain(settings: Settings) -> str:
    """Right-hand side of the Message-IDs: the sender's domain, else the public host."""
    if settings.mail_from:
        return mailbox_address(settings.mail_from).rpartition("@")[2]
    return urlsplit(settings.public_url).hostname or "localhost"


def _note(session: Session, mail: OutboxMail, at: datetime, cause: Cause, detail: str = "") -> None:
    """Keep what happened to ``mail``, in the state it is in now."""
    session.add(
        OutboxMailEvent(
            mail_id=mail.id,
            at=at,
            state=mail.state,
            cause=cause.value,
            attempt=mail.attempts,
            detail=detail[:500],
        )
    )


def _enter(
    session: Session,
    mail: OutboxMail,
    state: MailState,
    at: datetime,
    cause: Cause,
    detail: str = "",
) -> None:
    """Move ``mail`` to ``state`` and keep the change."""
    mail.state = state.value
    _note(session, mail, at, cause, detail)


def enqueue(
    session: Session, runtime: Runtime, mail: Mail, *, site_id: int | None = None
) -> OutboxMail:
    """Queue ``mail`` in the caller's transaction: it is sent only if that transaction
    commits. ``site_id`` is the site the message concerns (its administrators see it in the
    outbox); None for the platform's own messages."""
    now = runtime.now()
    message_id = make_msgid(domain=message_id_domain(runtime.settings))
    row = OutboxMail(
        kind=mail.kind,
        site_id=site_id,
        recipients=list(mail.addresses),
        message_id=message_id,
        payload=runtime.box.seal(mail.to_json(), _seal_context(message_id)),
        state=MailState.PENDING.value,
        attempts=0,
        created_at=now,
        next_attempt_at=now,
        last_error="",
    )
    session.add(row)
    session.flush()
    _enter(session, row, MailState.PENDING, now, Cause.QUEUED)
    return row


def open_payload(box: SecretBox, row: OutboxMail) -> Mail:
    """The message a row holds (``InvalidTag`` if sealed under another key or altered)."""
    if row.payload is None:
        raise ValueError(f"mail {row.id} holds no message any more")
    return Mail.from_json(box.open(row.payload, _seal_context(row.message_id)))


# --- what administrators do -------------------------------------------------------------------


def list_mail(
    session: Session,
    site_ids: frozenset[int] | None,
    state: str = "",
    limit: int = 50,
    offset: int = 0,
) -> Sequence[OutboxMail]:
    """Messages of ``site_ids`` (None: every message, the platform's included), newest
    first, with their changes of state."""
    query = select(OutboxMail).options(selectinload(OutboxMail.events))
    if site_ids is not None:
        query = query.where(OutboxMail.site_id.in_(site_ids))
    if state:
        query = query.where(OutboxMail.state == state)
    query = query.order_by(OutboxMail.id.desc()).limit(limit).offset(offset)
    return session.execute(query).scalars().all()


def count_by_state(session: Session, site_ids: frozenset[int] | None) -> dict[str, int]:
    """How many messages of ``site_ids`` are in each state."""
    query = select(OutboxMail.state, func.count()).group_by(OutboxMail.state)
    if site_ids is not None:
        query = query.where(OutboxMail.site_id.in_(site_ids))
    counts = {state.value: 0 for state in MailState}
    counts.update({str(state): int(n) for state, n in session.execute(query).all()})
    return counts


def get_mail(session: Session, mail_id: int) -> OutboxMail:
    mail = session.get(OutboxMail, mail_id)
    if mail is None:
        raise NotFound(_("No such message."))
    return mail


def retry_now(session: Session, actor: audit.Actor, mail: OutboxMail, now: datetime) -> None:
    """Make a waiting or failed message due at once. A failed one gets one more try: if it
    fails again it is failed again, without another round of waits."""
    if mail.state not in WAITING:
        raise Conflict(_("Only a waiting or failed message can be tried again."))
    if mail.payload is None:
        raise Conflict(_("This message no longer holds its content."))
    mail.next_attempt_at = now
    _enter(session, mail, MailState.PENDING, now, Cause.RETRY, actor.username)
    audit.record(
        session,
        actor,
        "outbox.retry",
        "success",
        object_kind="mail",
        object_id=mail.id,
        site_id=mail.site_id,
        detail={"kind": mail.kind},
    )


def cancel(session: Session, actor: audit.Actor, mail: OutboxMail, now: datetime) -> None:
    """Withdraw a waiting or failed message; its content is erased."""
    if mail.state not in WAITING:
        raise Conflict(_("Only a waiting or failed message can be cancelled."))
    mail.next_attempt_at = None
    mail.payload = None
    _enter(session, mail, MailState.CANCELLED, now, Cause.CANCEL, actor.username)
    audit.record(
        session,
        actor,
        "outbox.cancel",
        "success",
        object_kind="mail",
        object_id=mail.id,
        site_id=mail.site_id,
        detail={"kind": mail.kind},
    )


# --- sending ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A message this process holds the lease on, ready to send."""

    id: int
    message_id: str
    kind: str
    attempt: int
    created_at: datetime
    mail: Mail


def process_holder() -> str:
    """This process's name on the rows it holds: host, pid and a nonce (pids are reused)."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{secrets.token_hex(4)}"


class Dispatcher:
    """Sends what the outbox holds, one message at a time over one relay connection, from
    :meth:`run_once` or from a thread of its own (:meth:`start`, :meth:`stop`)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        box: SecretBox,
        relay: SmtpRelay,
        clock: Callable[[], datetime],
        retry: RetryPolicy,
        *,
        lease: timedelta,
        poll: float,
        holder: str | None = None,
        connect: Callable[[SmtpRelay], SmtpConnection] = SmtpConnection,
    ) -> None:
        if lease <= timedelta(0) or poll <= 0:
            raise ValueError("lease and poll must be positive")
        self._sessions = sessions
        self._box = box
        self._relay = relay
        self._clock = clock
        self._retry = retry
        self._lease = lease
        self._poll = poll
        self._connect = connect
        self.holder = holder or process_holder()
        """The name this process holds rows under."""
        self._stopping = threading.Event()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_runtime(cls, runtime: Runtime) -> Dispatcher | None:
        """The dispatcher the settings describe; None when e-mail is off."""
        relay = SmtpRelay.from_settings(runtime.settings)
        if relay is None:
            return None
        settings = runtime.settings
        return cls(
            runtime.sessions,
            runtime.box,
            relay,
            runtime.now,
            RetryPolicy.from_settings(settings),
            lease=timedelta(seconds=settings.mail_lease_seconds),
            poll=settings.mail_poll_seconds,
        )

    # --- the thread ---

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="mail-outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the message being sent, if any (at most the relay's timeout)."""
        self._stopping.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def wake(self) -> None:
        """Look for due messages now rather than at the next poll."""
        self._wakeup.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("mail outbox pass failed")
            self._wakeup.wait(self._poll)
            self._wakeup.clear()

    # --- one pass ---

    def run_once(self) -> int:
        """Try every message due now, each once; returns how many were tried. After a
        failure of the connection itself (relay unreachable, refusing the login), the
        others wait for the next pass: they would fail alike."""
        tried: set[int] = set()
        connection: SmtpConnection | None = None
        try:
            while not self._stopping.is_set():
                claimed = self._claim(tried)
                if claimed is None:
                    break
                tried.add(claimed.id)
                try:
                    if connection is None:
                        connection = self._connect(self._relay)
                        connection.open()
                    message = build_message(
                        claimed.mail,
                        sender=self._relay.sender,
                        reply_to=self._relay.reply_to,
                        message_id=claimed.message_id,
                        date=claimed.created_at,
                    )
                    refused = connection.send(message, claimed.mail.addresses)
                except Exception as exc:
                    error = delivery_error(exc)
                    self._failed(claimed, error)
                    if error.connection:
                        if connection is not None:
                            connection.close()
                        break
                    continue
                self._sent(claimed, refused_summary(refused, len(claimed.mail.addresses)))
        finally:
            if connection is not None:
                connection.close()
        return len(tried)

    def _claim(self, tried: set[int]) -> Claimed | None:
        """Take the lease on the next message due (or whose holder's lease ran out)."""
        with transaction(self._sessions) as db:
            now = self._clock()
            while True:
                query = (
                    select(OutboxMail)
                    .where(
                        OutboxMail.state.in_([MailState.PENDING.value, MailState.SENDING.value]),
                        OutboxMail.next_attempt_at <= now,
                    )
                    .order_by(OutboxMail.next_attempt_at, OutboxMail.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
                if tried:
                    query = query.where(OutboxMail.id.not_in(tried))
                row = db.execute(query).scalar_one_or_none()
                if row is None:
                    return None
                if row.state == MailState.SENDING:
                    log.warning(
                        "mail lease expired",
                        extra={"mail_id": row.id, "kind": row.kind, "attempt": row.attempts},
                    )
                    row.last_error = f"try {row.attempts}: its process stopped mid-send"
                    _note(db, row, now, Cause.LEASE_EXPIRED, row.holder or "")
                    if self._retry.gives_up(row.attempts, permanent=False):
                        self._give_up(db, row, now, Cause.LEASE_EXPIRED, row.last_error)
                        continue
                try:
                    mail = open_payload(self._box, row)
                except InvalidTag:
                    reason = "cannot be opened with this installation's key"
                    self._give_up(db, row, now, Cause.UNREADABLE, reason)
                    continue
                except Exception as exc:  # a row no dispatcher could ever send
                    self._give_up(db, row, now, Cause.UNREADABLE, type(exc).__name__)
                    continue
                row.attempts += 1
                row.holder = self.holder
                row.next_attempt_at = now + self._lease
                _enter(db, row, MailState.SENDING, now, Cause.CLAIMED, self.holder)
                return Claimed(row.id, row.message_id, row.kind, row.attempts, row.created_at, mail)

    def _give_up(
        self, db: Session, row: OutboxMail, now: datetime, cause: Cause, reason: str
    ) -> None:
        row.last_error = reason
        row.next_attempt_at = None
        row.holder = None
        _enter(db, row, MailState.FAILED, now, cause, reason)
        audit.record(
            db,
            audit.SYSTEM,
            "mail.send",
            "failure",
            object_kind="mail",
            object_id=row.id,
            site_id=row.site_id,
            detail={"kind": row.kind, "attempts": row.attempts},
        )
        log.error(
            "mail failed",
            extra={"mail_id": row.id, "kind": row.kind, "attempts": row.attempts},
        )

    def _held(self, db: Session, claimed: Claimed) -> OutboxMail | None:
        row = db.execute(
            select(OutboxMail).where(OutboxMail.id == claimed.id).with_for_update()
        ).scalar_one_or_none()
        if row is not None and (row.state != MailState.SENDING or row.holder != self.holder):
            # The lease ran out while the relay was slow, and another process took the row.
            log.warning(
                "mail lease lost during send",
                extra={"mail_id": claimed.id, "kind": claimed.kind, "attempt": claimed.attempt},
            )
        return row

    def _sent(self, claimed: Claimed, refused: str) -> None:
        with transaction(self._sessions) as db:
            now = self._clock()
            row = self._held(db, claimed)
            if row is None:
                return
            if row.state in (MailState.SENT, MailState.CANCELLED):
                _note(db, row, now, Cause.ACCEPTED_AGAIN, self.holder)
                return
            row.sent_at = now
            row.next_attempt_at = None
            row.holder = None
            row.payload = None
            row.last_error = refused
            _enter(db, row, MailState.SENT, now, Cause.ACCEPTED, refused)
            audit.record(
                db,
                audit.SYSTEM,
                "mail.send",
                "success",
                object_kind="mail",
                object_id=row.id,
                site_id=row.site_id,
                detail={"kind": row.kind, "attempts": claimed.attempt},
            )
        log.info(
            "mail sent",
            extra={
                "mail_id": claimed.id,
                "message_id": claimed.message_id,
                "kind": claimed.kind,
                "attempt": claimed.attempt,
            },
        )

    def _failed(self, claimed: Claimed, error: DeliveryError) -> None:
        with transaction(self._sessions) as db:
            now = self._clock()
            row = self._held(db, claimed)
            if row is None or row.state != MailState.SENDING or row.holder != self.holder:
                return  # its new holder decides
            if self._retry.gives_up(claimed.attempt, error.permanent):
                self._give_up(db, row, now, Cause.TRY_FAILED, error.reason)
                return
            row.last_error = error.reason
            row.holder = None
            row.next_attempt_at = now + self._retry.delay(claimed.attempt)
            _enter(db, row, MailState.PENDING, now, Cause.TRY_FAILED, error.reason)
        log.warning(
            "mail not sent, will try again",
            extra={
                "mail_id": claimed.id,
                "kind": claimed.kind,
                "attempt": claimed.attempt,
                "error": error.reason,
            },
        )
