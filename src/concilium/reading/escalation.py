"""STAT exams nobody claimed: after :data:`STAT_DELAY` from their routing, every member of
the routed group credentialed for the exam's site is told in the application and by e-mail
(the platform's outbox), once. The messages name the site and the group and link to the
exam's page, never the patient."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from concilium.platform import audit, notifications
from concilium.platform.errors import InvalidInput
from concilium.platform.i18n import N_, _
from concilium.platform.notify import send_notice
from concilium.platform.runtime import Runtime
from concilium.platform.tables import Site, User
from concilium.reading.groups import members_of
from concilium.reading.reading_list import CLOSED
from concilium.reading.tables import ImagingOrderRecord, ReadingAssignment, ReadingGroup

__all__ = ["ESCALATE", "STAT_DELAY", "escalate_unclaimed"]

STAT_DELAY = timedelta(minutes=15)
"""How long a STAT exam may wait unclaimed before its group is alerted."""
ESCALATE = "reading.exam.escalate"
"""Audit action of an escalation."""
SUBJECT = N_("STAT exam waiting to be read")
TEXT = N_(
    "A STAT exam of %(site)s routed to %(group)s has not been claimed for %(minutes)s minutes."
)


def escalate_unclaimed(
    session: Session, runtime: Runtime, now: datetime, delay: timedelta = STAT_DELAY
) -> list[int]:
    """Alert the groups of the STAT exams unclaimed since ``delay``; the exams alerted.

    Each exam is taken by a conditional UPDATE of ``escalated_at``, so two processes never
    alert twice. The caller commits."""
    due = session.execute(
        select(ReadingAssignment.id, ImagingOrderRecord.site_id, ReadingAssignment.group_id)
        .join(ImagingOrderRecord, ImagingOrderRecord.id == ReadingAssignment.order_id)
        .where(
            ReadingAssignment.claimed_by_id.is_(None),
            ReadingAssignment.escalated_at.is_(None),
            ReadingAssignment.routed_at <= now - delay,
            ImagingOrderRecord.priority == "S",
            ImagingOrderRecord.status.not_in(CLOSED),
        )
    ).all()
    alerted: list[int] = []
    for exam_id, site_id, group_id in due:
        taken = session.execute(
            update(ReadingAssignment)
            .where(ReadingAssignment.id == exam_id, ReadingAssignment.escalated_at.is_(None))
            .values(escalated_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(taken, "rowcount", 0) != 1:
            continue
        site = session.get(Site, site_id)
        group = session.get(ReadingGroup, group_id)
        values = {
            "site": site.name if site else "",
            "group": group.name if group else "",
            "minutes": int(delay.total_seconds() // 60),
        }
        link = f"{runtime.settings.public_url.rstrip('/')}/reading/exams/{exam_id}"
        for user_id, sites in members_of(session, group_id).items():
            if site_id not in sites:
                continue
            notifications.notify(session, user_id, "reading.stat", _(TEXT) % values, now)
            user = session.get(User, user_id)
            if user is None or not user.email:
                continue
            try:
                send_notice(
                    session,
                    runtime,
                    user,
                    SUBJECT,
                    TEXT,
                    values=values,
                    link=link,
                    link_label=N_("Open the exam"),
                    kind="reading.stat",
                    site_id=site_id,
                )
            except InvalidInput:
                continue
        audit.record(
            session,
            audit.SYSTEM,
            ESCALATE,
            "success",
            object_kind="reading_exam",
            object_id=exam_id,
            site_id=site_id,
        )
        alerted.append(exam_id)
    return alerted
