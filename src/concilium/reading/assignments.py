"""Which reading group reads an order, and who holds it.

:func:`route_order` applies :func:`concilium.reading.routing.explain_route` to an order at
its scheduled start (else its arrival), with the stored rules and rota
(:mod:`concilium.reading.groups`), and stores the decision. The order store routes each
order once, when it is first stored; :func:`route_order` with ``again=True`` decides anew
(an unclaimed order only).

:func:`claim` is one conditional UPDATE (``claimed_by_id IS NULL``): of two readers
claiming at once exactly one wins, the other gets :class:`ClaimTaken`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from concilium.platform import audit
from concilium.platform.db import utcnow
from concilium.platform.errors import Conflict, NotFound
from concilium.platform.i18n import _
from concilium.platform.tables import Site
from concilium.reading.groups import build_rota, build_table
from concilium.reading.routing import ExamFacts, NoRoute, explain_route
from concilium.reading.tables import ImagingOrderRecord, ReadingAssignment

__all__ = [
    "ROUTE",
    "ClaimTaken",
    "assignment_of",
    "claim",
    "release",
    "route_order",
]

ROUTE = "reading.route"
"""Audit action of a routing decision."""


class ClaimTaken(Conflict):
    """Another reader holds the exam."""


def assignment_of(session: Session, order_id: int) -> ReadingAssignment | None:
    """The stored routing of an order, if any."""
    return session.execute(
        select(ReadingAssignment).where(ReadingAssignment.order_id == order_id)
    ).scalar_one_or_none()


def route_order(
    session: Session,
    actor: audit.Actor,
    order: ImagingOrderRecord,
    now: datetime | None = None,
    *,
    again: bool = False,
) -> ReadingAssignment | None:
    """Route an order to its reading group and store the decision.

    Returns None, storing nothing, when no rule applies and its site has no local group.
    An order already routed keeps its group unless ``again`` (then it must be unclaimed).
    """
    existing = assignment_of(session, order.id)
    if existing is not None and not again:
        return existing
    if existing is not None and existing.claimed_by_id is not None:
        raise Conflict(_("this exam is being read; release it before routing it again"))
    site = session.get(Site, order.site_id)
    if site is None:
        raise NotFound(_("no such site"))
    at = order.scheduled_at or now or utcnow()
    modality = next((step.modality for step in order.steps if step.modality), None)
    try:
        decision = explain_route(
            ExamFacts(str(order.site_id), modality),
            build_table(session),
            build_rota(session, site),
            at,
        )
    except NoRoute:
        return None
    assignment = existing or ReadingAssignment(order_id=order.id)
    assignment.group_id = int(decision.group)
    assignment.rule = decision.rule.name if decision.rule else ""
    assignment.reason = decision.reason[:300]
    assignment.decided_for = at
    assignment.routed_at = now or utcnow()
    if existing is None:
        session.add(assignment)
    session.flush()
    audit.record(
        session,
        actor,
        ROUTE,
        "success",
        object_kind="imaging_order",
        object_id=order.id,
        site_id=order.site_id,
        detail={"group_id": assignment.group_id, "rule": assignment.rule},
    )
    return assignment


def claim(session: Session, assignment_id: int, user_id: int, now: datetime) -> None:
    """Hold the exam for reading; :class:`ClaimTaken` when someone else holds it.

    One conditional UPDATE decides, so concurrent claims cannot both win; claiming an
    exam one already holds is a no-op."""
    result = session.execute(
        update(ReadingAssignment)
        .where(
            ReadingAssignment.id == assignment_id,
            ReadingAssignment.claimed_by_id.is_(None),
        )
        .values(claimed_by_id=user_id, claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) == 1:
        return
    holder = session.execute(
        select(ReadingAssignment.claimed_by_id).where(ReadingAssignment.id == assignment_id)
    ).scalar_one_or_none()
    if holder != user_id:
        raise ClaimTaken(_("another radiologist is reading this exam"))


def release(session: Session, assignment_id: int, user_id: int) -> None:
    """Give the exam back to the group (only its holder may)."""
    result = session.execute(
        update(ReadingAssignment)
        .where(
            ReadingAssignment.id == assignment_id,
            ReadingAssignment.claimed_by_id == user_id,
        )
        .values(claimed_by_id=None, claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise Conflict(_("you do not hold this exam"))
