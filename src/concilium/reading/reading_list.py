"""The radiologist's worklist: the orders routed to the groups one reads in, for the sites
one is credentialed for, with their turnaround target.

Reading an exam of another site is granted by the routing: the members of the routed group
credentialed for the exam's site are the users the exam is shared with
(:func:`exam_target`) while the order is open and its report is not final: the grant
ends when the final report is signed or the order is COMPLETED, CANCELLED or DISCONTINUED.
The signed report is also shared with the order's referring and requesting physicians
(:func:`report_target`), the accounts bearing their practitioner identifier (RPPS).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.platform.policy import Target
from concilium.platform.tables import Site, User
from concilium.reading.groups import groups_of_user, members_of, site_zone
from concilium.reading.orders import OrderStatus
from concilium.reading.tables import (
    ImagingOrderRecord,
    ReadingAssignment,
    ReadingGroup,
    ReadingReport,
    ReadingReportVersion,
)

__all__ = [
    "CLOSED",
    "PRIORITIES",
    "TURNAROUND",
    "ExamEntry",
    "WorklistFilter",
    "exam_target",
    "priority_of",
    "referrer_ids",
    "report_target",
    "worklist",
]

CLOSED = frozenset(
    {OrderStatus.COMPLETED.value, OrderStatus.CANCELLED.value, OrderStatus.DISCONTINUED.value}
)
"""Order states that end the reading grant (as does the final report)."""
PRIORITIES = ("STAT", "urgent", "routine")
"""Priorities as the worklist names them."""
TURNAROUND = {
    "STAT": timedelta(hours=1),
    "urgent": timedelta(hours=4),
    "routine": timedelta(hours=48),
}
"""Turnaround targets from the scheduled start (else the arrival) of the order."""


def priority_of(code: str) -> str:
    """HL7 table 0027 as the worklist names it: S is STAT, A (ASAP) urgent, others routine."""
    return {"S": "STAT", "A": "urgent"}.get(code, "routine")


@dataclass(frozen=True)
class WorklistFilter:
    """What a radiologist narrows the list to (empty: everything)."""

    priority: str = ""
    modality: str = ""
    site_id: int | None = None
    status: str = ""
    group_id: int | None = None


@dataclass(frozen=True)
class ExamEntry:
    """One exam of the worklist (no patient data: the exam's page shows them, audited)."""

    id: int
    """The assignment's id, which names the exam in the addresses."""
    order_id: int
    accession_number: str
    procedure: str
    modality: str
    site_id: int
    site_name: str
    group_id: int
    group_name: str
    priority: str
    status: str
    scheduled_at: datetime
    """In the site's zone."""
    due_at: datetime
    """Turnaround target, in the site's zone."""
    seconds_left: int
    """Until the target (negative: late)."""
    claimed_by: str
    """User name of the reader holding it, empty when free."""
    mine: bool


def _readable(session: Session, user_id: int) -> dict[int, frozenset[int]]:
    return groups_of_user(session, user_id)


def worklist(
    session: Session, user_id: int, now: datetime, wanted: WorklistFilter | None = None
) -> list[ExamEntry]:
    """The open orders routed to the user's groups for sites the user is credentialed for,
    most urgent target first."""
    wanted = wanted or WorklistFilter()
    readable = _readable(session, user_id)
    if not readable:
        return []
    query = (
        select(ReadingAssignment, ImagingOrderRecord, ReadingGroup, Site)
        .join(ImagingOrderRecord, ImagingOrderRecord.id == ReadingAssignment.order_id)
        .join(ReadingGroup, ReadingGroup.id == ReadingAssignment.group_id)
        .join(Site, Site.id == ImagingOrderRecord.site_id)
        .where(
            ReadingAssignment.group_id.in_(readable),
            ImagingOrderRecord.status.not_in(CLOSED),
            ImagingOrderRecord.id.not_in(
                select(ReadingReport.order_id).where(ReadingReport.status == "final")
            ),
        )
    )
    if wanted.site_id is not None:
        query = query.where(ImagingOrderRecord.site_id == wanted.site_id)
    if wanted.group_id is not None:
        query = query.where(ReadingAssignment.group_id == wanted.group_id)
    if wanted.status:
        query = query.where(ImagingOrderRecord.status == wanted.status)
    holders = {
        row.id: row.username
        for row in session.execute(
            select(User.id, User.username)
            .join(ReadingAssignment, ReadingAssignment.claimed_by_id == User.id)
            .where(ReadingAssignment.group_id.in_(readable))
        )
    }
    entries: list[ExamEntry] = []
    for assignment, order, group, site in session.execute(query).tuples():
        if order.site_id not in readable.get(group.id, frozenset()):
            continue
        modality = next((step.modality for step in order.steps if step.modality), "")
        priority = priority_of(order.priority)
        if wanted.priority and priority != wanted.priority:
            continue
        if wanted.modality and modality.upper() != wanted.modality.upper():
            continue
        zone = site_zone(site)
        start = order.scheduled_at or order.created_at
        due = start + TURNAROUND[priority]
        entries.append(
            ExamEntry(
                id=assignment.id,
                order_id=order.id,
                accession_number=order.accession_number,
                procedure=order.procedure_description or order.procedure_code,
                modality=modality,
                site_id=site.id,
                site_name=site.name,
                group_id=group.id,
                group_name=group.name,
                priority=priority,
                status=order.status,
                scheduled_at=start.astimezone(zone),
                due_at=due.astimezone(zone),
                seconds_left=int((due - now).total_seconds()),
                claimed_by=holders.get(assignment.claimed_by_id or 0, ""),
                mine=assignment.claimed_by_id == user_id,
            )
        )
    return sorted(entries, key=lambda e: (e.seconds_left, e.id))


def exam_target(session: Session, assignment: ReadingAssignment) -> Target:
    """The policy's facts about a routed exam: its site, its patient, and the members of
    the routed group credentialed for its site while the order is open."""
    order = session.get(ImagingOrderRecord, assignment.order_id)
    if order is None:
        return Target(kind="reading_exam", id=str(assignment.id))
    readers: frozenset[int] = frozenset()
    final = session.execute(
        select(ReadingReport.id).where(
            ReadingReport.order_id == order.id, ReadingReport.status == "final"
        )
    ).first()
    if order.status not in CLOSED and final is None:
        readers = frozenset(
            user
            for user, sites in members_of(session, assignment.group_id).items()
            if order.site_id in sites
        )
    return Target(
        kind="reading_exam",
        id=str(assignment.id),
        site_ids=frozenset({order.site_id}),
        patient_id=order.patient_id,
        shared_user_ids=readers,
    )


def referrer_ids(session: Session, order: ImagingOrderRecord) -> frozenset[int]:
    """The accounts of the order's referring and requesting physicians: those whose
    practitioner identifier (RPPS) is the one the order gives (XCN-1)."""
    numbers = {n.strip() for n in (order.referring_physician_id, order.requesting_physician_id)}
    numbers.discard("")
    if not numbers:
        return frozenset()
    return frozenset(
        session.scalars(select(User.id).where(User.rpps.in_(numbers), User.disabled.is_(False)))
    )


def report_target(session: Session, assignment: ReadingAssignment) -> Target:
    """The policy's facts about an exam's report: those of the exam, shared also with the
    order's referring and requesting physicians once a version is signed."""
    target = exam_target(session, assignment)
    order = session.get(ImagingOrderRecord, assignment.order_id)
    if order is None:
        return target
    signed = session.execute(
        select(ReadingReportVersion.id)
        .join(ReadingReport, ReadingReport.id == ReadingReportVersion.report_id)
        .where(ReadingReport.order_id == order.id)
    ).first()
    if signed is None:
        return target
    return replace(
        target,
        kind="reading_report",
        shared_user_ids=target.shared_user_ids | referrer_ids(session, order),
    )
