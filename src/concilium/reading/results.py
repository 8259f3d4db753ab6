"""What is queued for the ordering hospital's system: signed reports (ORU^R01) and the
news that an order's images are available.

:func:`queue_report` is what signing a report calls, in the signing transaction: the
report and its message commit together. The message goes to the order's site's results
destination (``concilium.reading.senders.destination_of``); a site without one gets the
message kept as ``no_destination``, visible in the queue page, so that nothing is silently
left unsent.

:func:`queue_images_available` runs on the delivery's schedule: an order of a site whose
system asked for it (``images_available`` not ``none``) is announced once (``once_key``)
when the archive holds its study (same Study Instance UID, same site) and the study is
complete — a performed step of the order COMPLETED (MPPS), or no instance received for
``images_available_quiet`` seconds. Orders are watched for two weeks after their last
change, newest first.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium import imaging
from concilium.config import Settings
from concilium.platform import accounts
from concilium.platform.errors import InvalidInput, NotFound
from concilium.platform.i18n import _
from concilium.reading.hl7v2_datatypes import HierarchicDesignator
from concilium.reading.images_message import build_images_available
from concilium.reading.orders import OrderStatus
from concilium.reading.oru import Envelope, ImagingReport, build_oru_r01
from concilium.reading.outbound_store import enqueue
from concilium.reading.senders import ImagesAvailable, destination_of
from concilium.reading.tables import (
    HL7Sender,
    ImagingOrderRecord,
    OutboundMessage,
)
from concilium.reading.worklist_store import scheduled_steps

__all__ = ["IMAGES_KIND", "REPORT_KIND", "envelope_for", "queue_images_available", "queue_report"]

log = logging.getLogger(__name__)

REPORT_KIND = "report"
"""``OutboundMessage.kind`` of a report."""
IMAGES_KIND = "images_available"
"""``OutboundMessage.kind`` of an images-available message."""
_BATCH = 200
"""Orders looked at per round for complete studies."""
_OPEN = (OrderStatus.SCHEDULED, OrderStatus.IN_PROGRESS, OrderStatus.COMPLETED)
_RECENT = dt.timedelta(days=14)
"""Orders older than this (by their last change) are no longer watched for their study."""


def envelope_for(
    session: Session, site_id: int, destination: HL7Sender | None, settings: Settings
) -> Envelope:
    """MSH-3 to MSH-6 of a message to a site: from this platform (MSH-4 the site's FINESS)
    to the destination's application and facility (empty without one)."""
    site = accounts.get_site(session, site_id)
    return Envelope(
        sending_application=HierarchicDesignator(settings.hl7_outbound_application),
        sending_facility=HierarchicDesignator(site.finess),
        receiving_application=HierarchicDesignator(destination.application if destination else ""),
        receiving_facility=HierarchicDesignator(destination.facility if destination else ""),
    )


def queue_report(
    session: Session,
    order_id: int,
    report: ImagingReport,
    *,
    settings: Settings,
    now: dt.datetime,
    text_type: Literal["TX", "FT"] = "TX",
) -> OutboundMessage:
    """Queue the ORU^R01 of a report on an order, in the caller's transaction.

    The report must carry its order's accession number (it never goes out for another
    exam). The message is ``queued`` for the site's results destination, or kept as
    ``no_destination`` when the site has none.
    """
    order = session.get(ImagingOrderRecord, order_id)
    if order is None:
        raise NotFound(_("no such order"))
    if report.accession_number != order.accession_number:
        raise InvalidInput(_("the report's accession number is not its order's"))
    destination = destination_of(session, order.site_id)
    envelope = envelope_for(session, order.site_id, destination, settings)
    raw = build_oru_r01(report, envelope, now=now, text_type=text_type)
    message = enqueue(
        session,
        site_id=order.site_id,
        destination=destination,
        kind=REPORT_KIND,
        raw=raw,
        now=now,
        order_id=order.id,
        patient_id=order.patient_id,
    )
    if destination is None:
        log.warning("report message %d of order %d: no results destination", message.id, order.id)
    return message


def queue_images_available(session: Session, settings: Settings, now: dt.datetime) -> list[int]:
    """Queue the images-available message of each order whose study became complete; the
    orders announced."""
    told = select(OutboundMessage.order_id).where(
        OutboundMessage.kind == IMAGES_KIND, OutboundMessage.order_id.is_not(None)
    )
    rows = session.execute(
        select(ImagingOrderRecord, HL7Sender)
        .join(HL7Sender, HL7Sender.site_id == ImagingOrderRecord.site_id)
        .where(
            HL7Sender.images_available != ImagesAvailable.NONE.value,
            HL7Sender.results_host != "",
            HL7Sender.active.is_(True),
            ImagingOrderRecord.study_instance_uid != "",
            ImagingOrderRecord.status.in_([s.value for s in _OPEN]),
            ImagingOrderRecord.id.not_in(told),
            ImagingOrderRecord.updated_at >= now - _RECENT,
        )
        .order_by(ImagingOrderRecord.id.desc(), HL7Sender.id)
        .limit(_BATCH)
    ).all()
    announced: list[int] = []
    quiet = dt.timedelta(seconds=settings.images_available_quiet)
    for order, destination in rows:
        if order.id in announced:
            continue  # a second system of the site: the first one is told
        study = imaging.study_by_uid(session, order.study_instance_uid)
        if study is None or study.site_id != order.site_id:
            continue
        performed = any(step.status == OrderStatus.COMPLETED for step in order.steps)
        if not performed and study.updated_at + quiet > now:
            continue
        exams = scheduled_steps(
            session,
            [order.site_id],
            statuses=list(OrderStatus),
            accession_numbers=[order.accession_number],
        )
        if not exams:
            continue
        mode = ImagesAvailable(destination.images_available)
        envelope = envelope_for(session, order.site_id, destination, settings)
        raw = build_images_available(mode, order, exams[0], envelope, now=now)
        enqueue(
            session,
            site_id=order.site_id,
            destination=destination,
            kind=IMAGES_KIND,
            raw=raw,
            now=now,
            order_id=order.id,
            patient_id=order.patient_id,
            once_key=f"images:{order.id}",
        )
        announced.append(order.id)
    return announced
