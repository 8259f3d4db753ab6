"""The radiologist's worklist: the page ``/reading`` and the JSON API
``/api/v1/reading/...`` (the list, an exam with the patient's prior studies, claim and
release).

Every route asks the policy: the list with ``reading.worklist.read`` (it shows no patient
data), an exam with ``reading.exam.read`` on :func:`reading_list.exam_target`, so that a
radiologist outside the routed group is refused (403, audited). Opening an exam is audited
as an access to its patient. A claim is one conditional UPDATE: the loser gets 409.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from concilium import imaging
from concilium.platform import audit
from concilium.platform.errors import NotFound
from concilium.platform.i18n import _
from concilium.platform.tables import Patient, Site
from concilium.reading import assignments, reading_list
from concilium.reading.actions import ReadingAction
from concilium.reading.groups import groups_of_user, site_zone
from concilium.reading.tables import ImagingOrderRecord, ReadingAssignment, ReadingGroup
from concilium.web.context import Ctx, gate
from concilium.web.forms import redirect_to
from concilium.web.rendering import render_page

router = APIRouter(include_in_schema=False)
"""The worklist's pages."""
api_router = APIRouter(tags=["reading"])
"""The worklist's JSON API, described by the OpenAPI document."""

_PAGE = "/reading"
_API = "/api/v1/reading"
OPEN = "reading.exam.read"
"""Audit action of opening an exam (its patient's data)."""


def _filter(
    priority: str, modality: str, site_id: int | None, status: str, group_id: int | None
) -> reading_list.WorklistFilter:
    return reading_list.WorklistFilter(
        priority=priority if priority in reading_list.PRIORITIES else "",
        modality=modality.strip().upper()[:16],
        site_id=site_id,
        status=status.strip().upper()[:16],
        group_id=group_id,
    )


def _entries(ctx: Ctx, wanted: reading_list.WorklistFilter) -> list[reading_list.ExamEntry]:
    ctx.authorize(ReadingAction.WORKLIST_READ)
    user_id = ctx.principal.user_id
    if user_id is None:
        return []
    return reading_list.worklist(ctx.db, user_id, ctx.runtime.now(), wanted)


def _entry_json(entry: reading_list.ExamEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "accession_number": entry.accession_number,
        "procedure": entry.procedure,
        "modality": entry.modality,
        "site": {"id": entry.site_id, "name": entry.site_name},
        "group": {"id": entry.group_id, "name": entry.group_name},
        "priority": entry.priority,
        "status": entry.status,
        "scheduled_at": entry.scheduled_at.isoformat(),
        "due_at": entry.due_at.isoformat(),
        "seconds_left": entry.seconds_left,
        "claimed_by": entry.claimed_by or None,
        "mine": entry.mine,
    }


Priority = Annotated[str, Query(max_length=16)]
Text = Annotated[str, Query(max_length=16)]


@api_router.get(_API + "/worklist")
def worklist_api(
    ctx: Annotated[Ctx, gate(ReadingAction.WORKLIST_READ)],
    priority: Priority = "",
    modality: Text = "",
    site_id: int | None = None,
    status: Text = "",
    group_id: int | None = None,
) -> list[dict[str, Any]]:
    """The exams routed to the caller's groups, most urgent target first."""
    wanted = _filter(priority, modality, site_id, status, group_id)
    return [_entry_json(e) for e in _entries(ctx, wanted)]


@router.get(_PAGE)
def worklist_page(
    request: Request,
    ctx: Annotated[Ctx, gate(ReadingAction.WORKLIST_READ)],
    priority: Priority = "",
    modality: Text = "",
    site_id: int | None = None,
    status: Text = "",
    group_id: int | None = None,
) -> Response:
    wanted = _filter(priority, modality, site_id, status, group_id)
    entries = _entries(ctx, wanted)
    user_id = ctx.principal.user_id or 0
    mine = groups_of_user(ctx.db, user_id)
    group_names = {
        g.id: g.name for g in ctx.db.query(ReadingGroup).filter(ReadingGroup.id.in_(mine))
    }
    return render_page(
        request,
        "reading/worklist.html",
        ctx,
        entries=entries,
        filters=wanted,
        priorities=reading_list.PRIORITIES,
        groups=sorted(group_names.items(), key=lambda item: item[1]),
    )


def exam_of(ctx: Ctx, exam_id: int) -> tuple[ReadingAssignment, ImagingOrderRecord]:
    """The routed exam, if the policy lets the caller read it (refusal: 403, audited)."""
    assignment = ctx.db.get(ReadingAssignment, exam_id)
    order = ctx.db.get(ImagingOrderRecord, assignment.order_id) if assignment else None
    if assignment is None or order is None:
        raise NotFound(_("no such exam"))
    ctx.authorize(ReadingAction.EXAM_READ, reading_list.exam_target(ctx.db, assignment))
    return assignment, order


def _when(at: datetime | None, site: Site | None) -> str | None:
    if at is None:
        return None
    return at.astimezone(site_zone(site)).isoformat() if site else at.isoformat()


@api_router.get(_API + "/exams/{exam_id}")
def exam_api(exam_id: int, ctx: Annotated[Ctx, gate(ReadingAction.EXAM_READ)]) -> dict[str, Any]:
    """An exam with its patient, its images and the patient's prior studies at every site
    the archive lets the caller read (the opening is audited)."""
    return exam_view(ctx, exam_id)


def exam_view(ctx: Ctx, exam_id: int) -> dict[str, Any]:
    assignment, order = exam_of(ctx, exam_id)
    decision = ctx.decisions[-1]
    patient = ctx.db.get(Patient, order.patient_id)
    site = ctx.db.get(Site, order.site_id)
    audit.record(
        ctx.db,
        ctx.actor,
        OPEN,
        ctx.outcome(decision),
        object_kind="reading_exam",
        object_id=assignment.id,
        patient_id=order.patient_id,
        site_id=order.site_id,
    )
    try:
        studies = imaging.patient_studies(
            ctx.db, ctx.principal, ctx.actor, order.patient_id, now=ctx.runtime.now()
        )
    except imaging.NotAuthorized:
        studies = []
    ctx.commit()
    priors = []
    for match in studies:
        uid = str(match.value("StudyInstanceUID"))
        if uid and uid == order.study_instance_uid:
            continue
        priors.append(
            {
                "study_instance_uid": uid,
                "date": str(match.value("StudyDate")),
                "description": str(match.value("StudyDescription")),
                "accession_number": str(match.value("AccessionNumber")),
                "viewer": f"/ohif/viewer?StudyInstanceUIDs={uid}",
            }
        )
    uid = order.study_instance_uid
    # The order names its study from the start (the HIS's UID or one made for it); its
    # images are there once the archive holds that study for this reader.
    arrived = bool(uid) and any(str(m.value("StudyInstanceUID")) == uid for m in studies)
    return {
        "id": assignment.id,
        "accession_number": order.accession_number,
        "procedure": order.procedure_description or order.procedure_code,
        "priority": reading_list.priority_of(order.priority),
        "status": order.status,
        "reason": order.reason,
        "site": {"id": order.site_id, "name": site.name if site else ""},
        "scheduled_at": _when(order.scheduled_at, site),
        "patient": {
            "family_name": patient.family_name if patient else "",
            "given_name": patient.given_name if patient else "",
            "birth_date": patient.birth_date.isoformat()
            if patient and patient.birth_date
            else None,
        },
        "images": {
            "viewer": f"/ohif/viewer?StudyInstanceUIDs={uid}" if arrived else None,
            "study": f"/imaging/studies/{uid}" if arrived else None,
        },
        "priors": priors,
        "claimed_by_me": assignment.claimed_by_id == ctx.principal.user_id,
        "claimed": assignment.claimed_by_id is not None,
    }


def _claim(ctx: Ctx, exam_id: int) -> None:
    assignment, order = exam_of(ctx, exam_id)
    user_id = ctx.principal.user_id
    if user_id is None:
        raise NotFound(_("no such exam"))
    assignments.claim(ctx.db, assignment.id, user_id, ctx.runtime.now())
    audit.record(
        ctx.db,
        ctx.actor,
        "reading.exam.claim",
        "success",
        object_kind="reading_exam",
        object_id=assignment.id,
        patient_id=order.patient_id,
        site_id=order.site_id,
    )
    ctx.commit()


def _release(ctx: Ctx, exam_id: int) -> None:
    assignment, order = exam_of(ctx, exam_id)
    assignments.release(ctx.db, assignment.id, ctx.principal.user_id or 0)
    audit.record(
        ctx.db,
        ctx.actor,
        "reading.exam.release",
        "success",
        object_kind="reading_exam",
        object_id=assignment.id,
        patient_id=order.patient_id,
        site_id=order.site_id,
    )
    ctx.commit()


@api_router.post(_API + "/exams/{exam_id}/claim")
def claim_api(exam_id: int, ctx: Annotated[Ctx, gate(ReadingAction.EXAM_READ)]) -> dict[str, Any]:
    """Hold the exam for reading; 409 (problem+json) when another reader holds it."""
    _claim(ctx, exam_id)
    return {"id": exam_id, "claimed": True}


@api_router.post(_API + "/exams/{exam_id}/release")
def release_api(exam_id: int, ctx: Annotated[Ctx, gate(ReadingAction.EXAM_READ)]) -> dict[str, Any]:
    """Give the exam back to the group; 409 when the caller does not hold it."""
    _release(ctx, exam_id)
    return {"id": exam_id, "claimed": False}


@router.post(_PAGE + "/exams/{exam_id}/claim")
def claim_page(exam_id: int, ctx: Annotated[Ctx, gate(ReadingAction.EXAM_READ)]) -> Response:
    _claim(ctx, exam_id)
    return redirect_to(_PAGE)


@router.post(_PAGE + "/exams/{exam_id}/release")
def release_page(exam_id: int, ctx: Annotated[Ctx, gate(ReadingAction.EXAM_READ)]) -> Response:
    _release(ctx, exam_id)
    return redirect_to(_PAGE)
