"""The durable queue of HL7 messages to the hospital systems, in the database.

:func:`enqueue` only adds a row in the caller's transaction, so that what a message reports
(a signed report, a complete study) and the message commit together or not at all. The
delivery (``concilium.reading.outbound``) then takes due messages with :func:`claim_due`,
one conditional UPDATE each (a row is ``sending`` for one delivery at a time, until its
lease ends), and records each try's outcome:

- AA or CA: ``sent``;
- AR or CR: ``failed``, never retried, left for an administrator to review;
- AE, CE, no answer, no connection: ``queued`` again, due after a back-off doubled at each
  try (``hl7_outbound_retry``, at most ``hl7_outbound_retry_max``).

Messages of one destination go in the order they were queued: only the oldest of its
messages still ``queued`` or ``sending`` is ever taken. A message whose site has no
destination is kept as ``no_destination``, visible in the queue, never sent.
Every try that got an answer is written to the message log (the message and its
acknowledgment, raw). Errors kept name fields and addresses, never patient data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from concilium.platform import audit
from concilium.platform.errors import Conflict
from concilium.platform.i18n import _
from concilium.reading.hl7v2 import peek_header
from concilium.reading.tables import HL7Message, HL7Sender, OutboundMessage

__all__ = [
    "ACCEPTED",
    "REJECTED",
    "Claimed",
    "OutboundState",
    "cancel",
    "claim_due",
    "enqueue",
    "list_queue",
    "record_answer",
    "record_failure",
    "retry_delay",
    "retry_now",
]


class OutboundState(StrEnum):
    """Where a message of the queue is."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    NO_DESTINATION = "no_destination"


ACCEPTED = frozenset({"AA", "CA"})
"""MSA-1 codes that deliver a message (original and enhanced mode)."""
REJECTED = frozenset({"AR", "CR"})
"""MSA-1 codes that refuse it for good."""
_PENDING = (OutboundState.QUEUED, OutboundState.SENDING)


@dataclass(frozen=True)
class Claimed:
    """A message taken for one try."""

    id: int
    host: str
    port: int
    raw: bytes
    control_id: str
    attempts: int
    """Tries begun, this one included."""


def enqueue(
    session: Session,
    *,
    site_id: int,
    destination: HL7Sender | None,
    kind: str,
    raw: bytes,
    now: dt.datetime,
    order_id: int | None = None,
    patient_id: int | None = None,
    once_key: str | None = None,
) -> OutboundMessage:
    """Add a message to the queue in the caller's transaction (flushed, not committed).

    Without a destination that can receive it, the message is kept as ``no_destination``.
    """
    header = peek_header(raw)
    if header is None or not header.control_id:
        raise ValueError("an outbound message must begin with an MSH holding MSH-10")
    reachable = destination is not None and bool(destination.results_host)
    message = OutboundMessage(
        site_id=site_id,
        destination_id=destination.id if destination is not None else None,
        order_id=order_id,
        patient_id=patient_id,
        kind=kind,
        message_type=str(header.message_type)[:24],
        control_id=header.control_id,
        raw=raw,
        state=OutboundState.QUEUED if reachable else OutboundState.NO_DESTINATION,
        attempts=0,
        next_attempt_at=now,
        last_error="" if reachable else "no results destination for this site",
        ack_code="",
        once_key=once_key,
        created_at=now,
        updated_at=now,
    )
    session.add(message)
    session.flush()
    return message


def claim_due(session: Session, now: dt.datetime, lease: float) -> list[Claimed]:
    """Take the oldest pending message of each destination, when it is due (or its lease
    ended), for one try; commits nothing (the caller commits before sending)."""
    heads = (
        select(func.min(OutboundMessage.id))
        .where(OutboundMessage.state.in_(_PENDING), OutboundMessage.destination_id.is_not(None))
        .group_by(OutboundMessage.destination_id)
    )
    rows = session.execute(
        select(OutboundMessage, HL7Sender)
        .join(HL7Sender, HL7Sender.id == OutboundMessage.destination_id)
        .where(OutboundMessage.id.in_(heads))
        .order_by(OutboundMessage.id)
    ).all()
    claimed = []
    for message, destination in rows:
        if not destination.results_host or not destination.results_port:
            continue
        if message.state == OutboundState.QUEUED:
            due = message.next_attempt_at <= now
        else:
            due = message.lease_until is None or message.lease_until <= now
        if not due:
            continue
        taken = session.execute(
            update(OutboundMessage)
            .where(
                OutboundMessage.id == message.id,
                OutboundMessage.state == message.state,
                OutboundMessage.attempts == message.attempts,
            )
            .values(
                state=OutboundState.SENDING,
                attempts=message.attempts + 1,
                lease_until=now + dt.timedelta(seconds=lease),
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(
                Claimed(
                    message.id,
                    destination.results_host,
                    destination.results_port,
                    message.raw,
                    message.control_id,
                    message.attempts + 1,
                )
            )
    return claimed


def retry_delay(attempts: int, first: float, longest: float) -> float:
    """Seconds before the next try after ``attempts`` tries: doubled each time, capped."""
    return float(min(longest, first * 2 ** max(0, min(attempts - 1, 40))))


def _taken(session: Session, claimed: Claimed) -> OutboundMessage | None:
    """The row, if this try still holds it (an administrator may have cancelled it)."""
    message = session.get(OutboundMessage, claimed.id, populate_existing=True)
    if message is None or message.state != OutboundState.SENDING:
        return None
    if message.attempts != claimed.attempts:
        return None  # its lease ended and another try took it
    return message


def record_answer(
    session: Session,
    claimed: Claimed,
    *,
    ack_code: str,
    ack_raw: bytes,
    error: str,
    now: dt.datetime,
    retry: float,
    retry_max: float,
    peer: str,
) -> OutboundMessage | None:
    """Record the acknowledgment of a try, and log the message with it."""
    out_header, ack_header = peek_header(claimed.raw), peek_header(ack_raw)
    message = session.get(OutboundMessage, claimed.id)
    if message is None:
        return None
    logged = HL7Message(
        direction="out",
        at=now,
        site_id=message.site_id,
        sender_id=message.destination_id,
        sending_application=_hd(out_header.sending_application if out_header else None),
        sending_facility=_hd(out_header.sending_facility if out_header else None),
        peer=peer[:64],
        message_type=message.message_type,
        control_id=message.control_id,
        ack_code=ack_code[:2],
        error=error,
        raw=claimed.raw,
        patient_id=message.patient_id,
    )
    session.add(logged)
    session.flush()
    session.add(
        HL7Message(
            direction="in",
            at=now,
            site_id=message.site_id,
            sender_id=message.destination_id,
            sending_application=_hd(ack_header.sending_application if ack_header else None),
            sending_facility=_hd(ack_header.sending_facility if ack_header else None),
            peer=peer[:64],
            message_type=str(ack_header.message_type)[:24] if ack_header else "ACK",
            control_id=ack_header.control_id[:199] if ack_header else "",
            ack_code=ack_code[:2],
            error=error,
            raw=ack_raw,
            answers_id=logged.id,
            patient_id=message.patient_id,
        )
    )
    taken = _taken(session, claimed)
    if taken is None:
        return None
    taken.ack_code = ack_code[:2]
    taken.log_id = logged.id
    taken.lease_until = None
    taken.updated_at = now
    if ack_code in ACCEPTED:
        taken.state, taken.sent_at, taken.last_error = OutboundState.SENT, now, ""
    elif ack_code in REJECTED:
        taken.state, taken.last_error = OutboundState.FAILED, error or ack_code
    else:
        _again(taken, error or ack_code, now, retry, retry_max)
    session.flush()
    return taken


def record_failure(
    session: Session,
    claimed: Claimed,
    *,
    error: str,
    now: dt.datetime,
    retry: float,
    retry_max: float,
) -> OutboundMessage | None:
    """Record a try that got no acknowledgment: the message is due again later."""
    taken = _taken(session, claimed)
    if taken is None:
        return None
    _again(taken, error, now, retry, retry_max)
    taken.lease_until = None
    taken.updated_at = now
    session.flush()
    return taken


def _again(
    message: OutboundMessage, error: str, now: dt.datetime, retry: float, retry_max: float
) -> None:
    message.state = OutboundState.QUEUED
    message.last_error = error[:2000]
    delay = retry_delay(message.attempts, retry, retry_max)
    message.next_attempt_at = now + dt.timedelta(seconds=delay)


def _hd(value: object) -> str:
    return str(value or "")[:64]


def list_queue(
    session: Session,
    site_ids: Collection[int] | None,
    *,
    state: str = "",
    limit: int = 100,
    offset: int = 0,
) -> Sequence[OutboundMessage]:
    """The messages of the sites (None: every site), by destination then queue order."""
    query = select(OutboundMessage)
    if site_ids is not None:
        query = query.where(OutboundMessage.site_id.in_(list(site_ids)))
    if state:
        query = query.where(OutboundMessage.state == state)
    query = (
        query.order_by(OutboundMessage.destination_id, OutboundMessage.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return session.execute(query).scalars().all()


def _audit(session: Session, actor: audit.Actor, action: str, message: OutboundMessage) -> None:
    audit.record(
        session,
        actor,
        action,
        "success",
        object_kind="hl7_outbound",
        object_id=message.id,
        patient_id=message.patient_id,
        site_id=message.site_id,
        detail={"kind": message.kind, "state": message.state},
    )


def cancel(
    session: Session, actor: audit.Actor, message: OutboundMessage, now: dt.datetime
) -> None:
    """Give up a message not yet delivered (audited); one being sent cannot be."""
    if message.state not in (
        OutboundState.QUEUED,
        OutboundState.FAILED,
        OutboundState.NO_DESTINATION,
    ):
        raise Conflict(_("this message can no longer be cancelled"))
    message.state = OutboundState.CANCELLED
    message.updated_at = now
    _audit(session, actor, "hl7.outbound.cancel", message)
    session.flush()


def retry_now(
    session: Session, actor: audit.Actor, message: OutboundMessage, now: dt.datetime
) -> None:
    """Make a message not delivered due at once (audited). A message without destination
    takes its site's destination, if one has been given since."""
    if message.state not in (
        OutboundState.QUEUED,
        OutboundState.FAILED,
        OutboundState.CANCELLED,
        OutboundState.NO_DESTINATION,
    ):
        raise Conflict(_("this message is being sent or has been sent"))
    destination = session.get(HL7Sender, message.destination_id) if message.destination_id else None
    if destination is None or not destination.results_host:
        destination = next(
            (
                s
                for s in session.execute(
                    select(HL7Sender)
                    .where(HL7Sender.site_id == message.site_id, HL7Sender.results_host != "")
                    .order_by(HL7Sender.id)
                ).scalars()
            ),
            None,
        )
    if destination is None:
        raise Conflict(_("this hospital has no results destination"))
    message.destination_id = destination.id
    message.state = OutboundState.QUEUED
    message.next_attempt_at = now
    message.updated_at = now
    _audit(session, actor, "hl7.outbound.retry", message)
    session.flush()
