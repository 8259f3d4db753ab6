"""Inbound HL7 v2 messages of the hospital systems, stored and acknowledged (IHE RAD-1,
RAD-12, RAD-4, RAD-13 over MLLP).

:func:`receive` is the application side of the MLLP listener. For each message, in one
database transaction: the sender (MSH-3/MSH-4) must be registered, else AR; a control ID
(MSH-10) the sender used before gets the very acknowledgment it got then, and nothing is
applied again; otherwise the message is applied (ADT to the site's patients through the
platform, orders to the order table) inside a savepoint, the message and its
acknowledgment are written to the log, and the transaction commits. Only then is the
acknowledgment returned to be sent: what was acknowledged with AA is durable. A content
error (:class:`HL7Error`) rolls the savepoint back and answers AE/AR with ERR; an
unexpected failure rolls everything back and answers AR 207 ("send again later"), logged
without an idempotency key so that the repeat is processed.

Every message is kept raw, and so is every acknowledgment. Log lines name message types,
codes and sizes, never patient data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, tzinfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from concilium.platform import audit, i18n, patients
from concilium.platform.db import transaction
from concilium.platform.tables import Site
from concilium.reading.adt import read_adt
from concilium.reading.hl7v2 import Message, MessageHeader, parse_message, peek_header
from concilium.reading.hl7v2_ack import UNKNOWN_SENDER, acknowledgment_code_for, build_ack
from concilium.reading.hl7v2_errors import ErrorCode, ErrorLocation, HL7Error, failure_trace
from concilium.reading.order_store import store_orders
from concilium.reading.orders import read_order_message
from concilium.reading.patient_sync import apply_adt, patient_for
from concilium.reading.senders import sender_actor, sender_of
from concilium.reading.tables import HL7Message, HL7Sender

__all__ = ["Receipt", "receive"]

logger = logging.getLogger(__name__)

SUPPORTED = {"ADT", "ORM", "OMI"}
"""Message codes applied; the others are answered AR 200."""


@dataclass(frozen=True)
class Receipt:
    """What :func:`receive` did with one message."""

    ack: bytes
    """The acknowledgment to send back."""
    ack_code: str
    """Its MSA-1."""
    message_id: int | None
    """The log row of the message (None when even the log could not be written)."""
    repeated: bool = False
    """The control ID was seen before: the first answer was sent again."""


def receive(
    sessions: sessionmaker[Session],
    raw: bytes,
    *,
    peer: str,
    now: datetime,
) -> Receipt:
    """Apply one inbound message and return its acknowledgment; never raises.

    Times the message gives without an offset are the local time of the sender's site
    (``Site.timezone``), as the hospital's systems write them.

    Blocking (database work): call it from a worker thread.
    """
    for attempt in (1, 2):
        try:
            return _receive(sessions, raw, peer, now)
        except IntegrityError as exc:
            logger.warning("HL7 message stored concurrently: %s", failure_trace(exc))
            # The same control ID, processed at the same time on another connection: the
            # second attempt finds the first and answers as it did.
            if attempt == 2:
                break
        except Exception as exc:
            logger.error("HL7 message could not be stored: %s", failure_trace(exc))
            break
    return _failed(sessions, raw, peer, now)


def _receive(sessions: sessionmaker[Session], raw: bytes, peer: str, now: datetime) -> Receipt:
    host = peer.rsplit(":", 1)[0]
    try:
        message: Message | None = parse_message(raw)
        header = message.header if message else None
        parse_error: HL7Error | None = None
    except HL7Error as refused:
        message, header, parse_error = None, peek_header(raw), refused
    with transaction(sessions) as session:
        sender = sender_of(session, header) if header is not None else None
        actor = sender_actor(sender, header, host)
        if parse_error is not None or message is None:
            assert parse_error is not None
            return _answer(session, raw, header, sender, peer, now, [parse_error])
        assert header is not None
        if sender is None:
            unknown = HL7Error(
                ErrorCode.APPLICATION_INTERNAL_ERROR,
                "the sending application (MSH-3) and facility (MSH-4) are not registered "
                "as a sender of any site",
                ErrorLocation("MSH", 1, 3),
            )
            audit.record(
                session,
                actor,
                "hl7.message.receive",
                "refused",
                object_kind="hl7_message",
                object_id=header.control_id[:64],
                detail={"reason": "unregistered sender", "type": str(header.message_type)},
            )
            return _answer(session, raw, header, None, peer, now, [unknown])
        first = session.execute(
            select(HL7Message).where(
                HL7Message.sender_id == sender.id,
                HL7Message.idempotency_key == header.control_id,
            )
        ).scalar_one_or_none()
        if first is not None:
            return _repeat(session, raw, header, sender, peer, now, first)
        errors: list[HL7Error] = []
        patient_id: int | None = None
        savepoint = session.begin_nested()
        try:
            site = session.get(Site, sender.site_id)
            local = i18n.zone(site.timezone if site is not None else None)
            patient_id = _apply(session, actor, sender, message, now, local)
            savepoint.commit()
        except HL7Error as error:
            savepoint.rollback()
            errors.append(error)
        return _answer(
            session,
            raw,
            header,
            sender,
            peer,
            now,
            errors,
            key=header.control_id,
            patient_id=patient_id,
        )


def _apply(
    session: Session,
    actor: audit.Actor,
    sender: HL7Sender,
    message: Message,
    now: datetime,
    zone: tzinfo,
) -> int:
    code = message.header.message_type.code
    if code == "ADT":
        return apply_adt(session, actor, sender.site_id, read_adt(message, zone=zone)).id
    if code in ("ORM", "OMI"):
        order = read_order_message(message, zone=zone)
        patient = patient_for(session, actor, sender.site_id, order.patient, update_known=False)

        def survivor_of(patient_id: int) -> int:
            current = patients.get_patient(session, patient_id)
            while current.merged_into_id is not None:
                current = patients.get_patient(session, current.merged_into_id)
            return current.id

        store_orders(session, sender.site_id, patient, order, survivor_of, now)
        return patient.id
    raise HL7Error(
        ErrorCode.UNSUPPORTED_MESSAGE_TYPE,
        f"message type {code[:3]!r} is not accepted here; accepted: {', '.join(sorted(SUPPORTED))}",
        ErrorLocation("MSH", 1, 9, component=1),
    )


def _log_in(
    session: Session,
    raw: bytes,
    header: MessageHeader | None,
    sender: HL7Sender | None,
    peer: str,
    now: datetime,
) -> HL7Message:
    application = header.sending_application if header else None
    facility = header.sending_facility if header else None
    row = HL7Message(
        direction="in",
        at=now,
        site_id=sender.site_id if sender else None,
        sender_id=sender.id if sender else None,
        sending_application=str(application or "")[:64],
        sending_facility=str(facility or "")[:64],
        peer=peer[:64],
        message_type=str(header.message_type)[:24] if header else "",
        control_id=header.control_id[:199] if header else "",
        raw=raw,
    )
    session.add(row)
    return row


def _log_out(session: Session, incoming: HL7Message, ack: bytes, now: datetime) -> None:
    session.add(
        HL7Message(
            direction="out",
            at=now,
            site_id=incoming.site_id,
            sender_id=incoming.sender_id,
            sending_application=incoming.sending_application,
            sending_facility=incoming.sending_facility,
            peer=incoming.peer,
            message_type="ACK",
            control_id=_control_id_of(ack),
            ack_code=incoming.ack_code,
            error=incoming.error,
            raw=ack,
            answers_id=incoming.id,
            patient_id=incoming.patient_id,
        )
    )


def _control_id_of(ack: bytes) -> str:
    header = peek_header(ack)
    return header.control_id[:199] if header else ""


def _answer(
    session: Session,
    raw: bytes,
    header: MessageHeader | None,
    sender: HL7Sender | None,
    peer: str,
    now: datetime,
    errors: list[HL7Error],
    *,
    key: str | None = None,
    patient_id: int | None = None,
) -> Receipt:
    ack = build_ack(header or UNKNOWN_SENDER, now=now, errors=errors)
    code = acknowledgment_code_for(errors).value
    incoming = _log_in(session, raw, header, sender, peer, now)
    incoming.ack_code = code
    incoming.error = "; ".join(str(e) for e in errors)
    incoming.idempotency_key = key[:199] if key else None
    incoming.patient_id = patient_id
    session.flush()
    _log_out(session, incoming, ack, now)
    session.flush()
    logger.info(
        "HL7 %s from %s (%d bytes): %s",
        incoming.message_type or "message",
        peer,
        len(raw),
        code,
    )
    return Receipt(ack, code, incoming.id)


def _repeat(
    session: Session,
    raw: bytes,
    header: MessageHeader,
    sender: HL7Sender,
    peer: str,
    now: datetime,
    first: HL7Message,
) -> Receipt:
    answer = session.execute(
        select(HL7Message).where(HL7Message.answers_id == first.id, HL7Message.direction == "out")
    ).scalar_one()
    incoming = _log_in(session, raw, header, sender, peer, now)
    incoming.ack_code = first.ack_code
    incoming.error = first.error
    incoming.repeat_of_id = first.id
    incoming.patient_id = first.patient_id
    session.flush()
    _log_out(session, incoming, answer.raw, now)
    session.flush()
    logger.info("HL7 %s from %s repeated: first answer sent again", first.message_type, peer)
    return Receipt(answer.raw, first.ack_code, incoming.id, repeated=True)


def _failed(sessions: sessionmaker[Session], raw: bytes, peer: str, now: datetime) -> Receipt:
    """AR 207 after an unexpected failure; the message is still logged (without key) when
    the database allows it, so that a repeat of it is processed."""
    header = peek_header(raw)
    error = HL7Error(
        ErrorCode.APPLICATION_INTERNAL_ERROR,
        "the receiving application failed; send again later",
    )
    try:
        with transaction(sessions) as session:
            sender = sender_of(session, header) if header is not None else None
            return _answer(session, raw, header, sender, peer, now, [error])
    except Exception as exc:
        logger.error("HL7 message could not be logged: %s", failure_trace(exc))
        ack = build_ack(header or UNKNOWN_SENDER, now=now, errors=[error])
        return Receipt(ack, "AR", None)
