"""The hospital systems allowed to send HL7 messages, registered per site like DICOM nodes.

A sender is the pair MSH-3 (sending application) and MSH-4 (sending facility) of its
messages; it acts for one site, whose patients and orders its messages concern. A message
from a pair not registered (or deactivated) is refused with an AR acknowledgment.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.platform import audit
from concilium.platform.errors import Conflict, InvalidInput, NotFound
from concilium.platform.i18n import _
from concilium.reading.hl7v2 import MessageHeader
from concilium.reading.tables import HL7Sender

__all__ = [
    "ImagesAvailable",
    "add_sender",
    "destination_of",
    "get_sender",
    "list_senders",
    "remove_sender",
    "sender_actor",
    "sender_of",
    "set_destination",
]


class ImagesAvailable(StrEnum):
    """How a hospital system is told that an order's images are in the archive."""

    NONE = "none"
    """Not told."""
    ORM = "orm"
    """ORM^O01 (v2.3.1) with ORC-1 SC, ORC-5 CM: the procedure is done."""
    OMI = "omi"
    """OMI^O23 (v2.5.1) with ORC-1 SC, ORC-5 CM and the IPC of the study."""
    ORU = "oru"
    """ORU^R01 (v2.5.1) with OBR-25 R and the Study Instance UID (imaging results
    available, as dcm4chee-arc sends it)."""


_NAME = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]{0,62}[\x21-\x7e])?$")


def _check(value: str, what: str) -> str:
    value = value.strip()
    if not _NAME.fullmatch(value) or any(c in value for c in "|^~\\&"):
        raise InvalidInput(
            _("%(what)s: 1-64 printable characters, none of | ^ ~ \\ &") % {"what": what}
        )
    return value


def add_sender(
    session: Session,
    actor: audit.Actor,
    *,
    site_id: int,
    application: str,
    facility: str,
    description: str = "",
) -> HL7Sender:
    """Register MSH-3/MSH-4 as a sender of the site (audited)."""
    application = _check(application, _("sending application (MSH-3)"))
    facility = _check(facility, _("sending facility (MSH-4)"))
    existing = session.execute(
        select(HL7Sender).where(
            HL7Sender.application == application, HL7Sender.facility == facility
        )
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict(
            _("%(application)s of %(facility)s is already registered")
            % {"application": application, "facility": facility}
        )
    sender = HL7Sender(
        site_id=site_id,
        application=application,
        facility=facility,
        description=description.strip()[:200],
    )
    session.add(sender)
    session.flush()
    audit.record(
        session,
        actor,
        "hl7.sender.create",
        "success",
        object_kind="hl7_sender",
        object_id=sender.id,
        site_id=site_id,
        detail={"application": application, "facility": facility},
    )
    return sender


def list_senders(session: Session, site_ids: frozenset[int] | None = None) -> Sequence[HL7Sender]:
    """The senders of ``site_ids`` (None: of every site)."""
    query = select(HL7Sender).order_by(HL7Sender.site_id, HL7Sender.application, HL7Sender.id)
    if site_ids is not None:
        query = query.where(HL7Sender.site_id.in_(site_ids))
    return session.execute(query).scalars().all()


def get_sender(session: Session, application: str, facility: str) -> HL7Sender:
    """The sender registered as MSH-3/MSH-4, or :class:`NotFound`."""
    found = session.execute(
        select(HL7Sender).where(
            HL7Sender.application == application.strip(), HL7Sender.facility == facility.strip()
        )
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(
            _("no sender %(application)s of %(facility)s")
            % {"application": application, "facility": facility}
        )
    return found


def remove_sender(session: Session, actor: audit.Actor, sender: HL7Sender) -> None:
    """Forget a sender: its messages are refused from now on; the log keeps what it sent."""
    audit.record(
        session,
        actor,
        "hl7.sender.delete",
        "success",
        object_kind="hl7_sender",
        object_id=sender.id,
        site_id=sender.site_id,
        detail={"application": sender.application, "facility": sender.facility},
    )
    session.delete(sender)
    session.flush()


def sender_of(session: Session, header: MessageHeader) -> HL7Sender | None:
    """The active sender a message header names (MSH-3/MSH-4, by namespace or universal
    ID), or None."""
    application, facility = header.sending_application, header.sending_facility
    if not application or not facility:
        return None
    apps = {v for v in (application.namespace_id, application.universal_id) if v}
    facs = {v for v in (facility.namespace_id, facility.universal_id) if v}
    found = session.execute(
        select(HL7Sender).where(HL7Sender.application.in_(apps), HL7Sender.facility.in_(facs))
    ).scalars()
    return next((s for s in found if s.active), None)


def sender_actor(sender: HL7Sender | None, header: MessageHeader | None, peer: str) -> audit.Actor:
    """How a sender appears in the audit trail."""
    if sender is not None:
        name = f"hl7:{sender.application}@{sender.facility}"
        return audit.Actor(None, name[:64], role="hl7_sender", site_id=sender.site_id, ip=peer)
    application = str(header.sending_application or "") if header else ""
    facility = str(header.sending_facility or "") if header else ""
    return audit.Actor(None, f"hl7:{application}@{facility}"[:64], role="hl7_sender", ip=peer)


MLLP_PORT = 2575
"""Port of a results destination given without one (the port registered for HL7 v2)."""
_HOST = re.compile(r"^[A-Za-z0-9.:\-\[\]]{1,255}$")


def set_destination(
    session: Session,
    actor: audit.Actor,
    sender: HL7Sender,
    *,
    host: str,
    port: int | None,
    images_available: str,
) -> None:
    """Where the system receives results (MLLP host and port, 2575 when not given; an
    empty host: nowhere) and how it is told of available images (audited)."""
    host = host.strip()
    if host and port is None:
        port = MLLP_PORT
    if host and (not _HOST.fullmatch(host) or port is None or not 0 < port < 65536):
        raise InvalidInput(_("results destination: a host name or address and a port 1-65535"))
    try:
        mode = ImagesAvailable(images_available)
    except ValueError:
        raise InvalidInput(_("images available: none, orm, omi or oru")) from None
    sender.results_host = host
    sender.results_port = port if host else None
    sender.images_available = mode.value
    audit.record(
        session,
        actor,
        "hl7.sender.update",
        "success",
        object_kind="hl7_sender",
        object_id=sender.id,
        site_id=sender.site_id,
        detail={"results": f"{host}:{port}" if host else "", "images_available": mode.value},
    )
    session.flush()


def destination_of(session: Session, site_id: int) -> HL7Sender | None:
    """The registered system of a site that receives its results (the first with a
    results host), or None."""
    return (
        session.execute(
            select(HL7Sender)
            .where(
                HL7Sender.site_id == site_id,
                HL7Sender.results_host != "",
                HL7Sender.active.is_(True),
            )
            .order_by(HL7Sender.id)
            .limit(1)
        )
        .scalars()
        .first()
    )
