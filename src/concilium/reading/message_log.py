"""The log of HL7 messages in and out, as administrators review it."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.reading.tables import HL7Message

__all__ = ["answers_to", "list_messages", "refused_unregistered"]

DIRECTIONS = ("in", "out")
ACK_CODES = ("AA", "AE", "AR")


def list_messages(
    session: Session,
    site_ids: Collection[int],
    *,
    direction: str = "",
    ack_code: str = "",
    limit: int = 50,
    offset: int = 0,
) -> Sequence[HL7Message]:
    """Messages of the sites, newest first; filtered by direction and acknowledgment code
    when given (values outside the known ones match nothing)."""
    query = select(HL7Message).where(HL7Message.site_id.in_(list(site_ids)))
    if direction:
        query = query.where(HL7Message.direction == direction)
    if ack_code:
        query = query.where(HL7Message.ack_code == ack_code)
    query = query.order_by(HL7Message.at.desc(), HL7Message.id.desc()).limit(limit).offset(offset)
    return session.execute(query).scalars().all()


def answers_to(session: Session, message: HL7Message) -> Sequence[HL7Message]:
    """The acknowledgments sent for an inbound message."""
    return (
        session.execute(
            select(HL7Message).where(HL7Message.answers_id == message.id).order_by(HL7Message.id)
        )
        .scalars()
        .all()
    )


def refused_unregistered(session: Session, limit: int = 20) -> Sequence[HL7Message]:
    """The latest messages refused because their sender is not registered (no site)."""
    return (
        session.execute(
            select(HL7Message)
            .where(HL7Message.site_id.is_(None), HL7Message.direction == "in")
            .order_by(HL7Message.at.desc(), HL7Message.id.desc())
            .limit(limit)
        )
        .scalars()
        .all()
    )
