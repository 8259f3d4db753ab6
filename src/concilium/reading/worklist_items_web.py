"""The worklist items' JSON API, ``/api/v1/reading/worklist-items``: list, create, change and
cancel the scheduled procedure steps a modality worklist answers (``scheduling``), as
Orthanc's worklist plugin and dcm4chee-arc's ``/mwlitems`` offer.

Access: ``reading.worklist_item.manage`` at the item's site (technologists and
coordinators); a list shows the caller's sites only; an item of another site is answered
404 as if it did not exist (the refusal is audited). Every answer naming a patient is
audited with that patient. Errors are problem+json (RFC 9457).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select

from concilium.platform import audit
from concilium.platform.errors import Forbidden, NotFound
from concilium.platform.i18n import _
from concilium.platform.policy import Target
from concilium.reading import scheduling
from concilium.reading.actions import ReadingAction
from concilium.reading.orders import Priority
from concilium.reading.tables import ImagingOrderRecord, ScheduledStepRecord
from concilium.web.context import Ctx, gate

api_router = APIRouter(tags=["reading"])
"""Described by the OpenAPI document."""

MANAGE = ReadingAction.WORKLIST_ITEM_MANAGE
_API = "/api/v1/reading/worklist-items"
_PRIORITIES = {"routine": Priority.ROUTINE, "urgent": Priority.ASAP, "stat": Priority.STAT}
_NAMES = {"R": "routine", "A": "urgent", "S": "stat"}
LIMIT = 500

# DICOM value representations, checked at the door so that nothing odd reaches a modality:
# SH/CS (no backslash, no control character), AE (16 characters, no backslash), UI.
_SH = r"^[^\\\x00-\x1f]{1,16}$"
_CS = r"^[A-Z0-9_ ]{1,16}$"
_AE = r"^[ -\[\]-~]{1,16}$"
_UI = r"^[0-9]+(\.[0-9]+)*$"
_LO = r"^[^\\\x00-\x1f]{1,64}$"
_PN = r"^[^\\\x00-\x1f]{1,200}$"


class Procedure(BaseModel):
    """The requested procedure, a code of a coding scheme."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=_LO, description="Code value (0008,0100).")
    scheme: str = Field(pattern=_SH, description="Coding scheme designator, e.g. LN, 99BRIEY.")
    meaning: str = Field(pattern=_LO, description="Code meaning.")


class NewWorklistItem(BaseModel):
    """A worklist item to schedule for a patient of the site."""

    model_config = ConfigDict(extra="forbid")
    site_id: int = Field(ge=1, le=2**31 - 1)
    patient_id: int = Field(ge=1, le=2**31 - 1, description="The platform patient.")
    accession_number: str = Field(pattern=_SH)
    modality: str = Field(pattern=_CS, description="CT, MR, US...")
    scheduled_at: AwareDatetime
    procedure: Procedure
    station_ae_title: str = Field("", pattern=r"^$|" + _AE[1:])
    requested_procedure_id: str = Field("", pattern=r"^$|" + _SH[1:])
    step_id: str = Field("", pattern=r"^$|" + _SH[1:])
    priority: Literal["routine", "urgent", "stat"] = "routine"
    study_instance_uid: str | None = Field(None, max_length=64, pattern=_UI)
    referring_physician: str = Field("", pattern=r"^$|" + _PN[1:])
    reason: str = Field("", max_length=2000)


class WorklistItemChange(BaseModel):
    """What to change of an item (absent: unchanged)."""

    model_config = ConfigDict(extra="forbid")
    scheduled_at: AwareDatetime | None = None
    station_ae_title: str | None = Field(None, pattern=_AE)
    modality: str | None = Field(None, pattern=_CS)
    description: str | None = Field(None, pattern=r"^$|" + _LO[1:])


def _item_json(ctx: Ctx, step: ScheduledStepRecord) -> dict[str, Any]:
    order = step.order
    return {
        "id": step.id,
        "site_id": order.site_id,
        "patient": {
            "id": order.patient_id,
            "identifier": scheduling.identifier_at(ctx.db, order.patient_id, order.site_id),
        },
        "accession_number": order.accession_number,
        "requested_procedure_id": step.requested_procedure_id,
        "step_id": step.step_id,
        "modality": step.modality,
        "station_ae_title": step.station_ae_title,
        "scheduled_at": step.start_at.isoformat() if step.start_at else None,
        "description": step.description,
        "procedure": {
            "code": order.procedure_code,
            "scheme": order.procedure_coding_system,
            "meaning": order.procedure_description,
        },
        "priority": _NAMES.get(order.priority, "urgent"),
        "study_instance_uid": step.study_instance_uid,
        "status": step.status,
    }


def _audit(ctx: Ctx, action: str, step: ScheduledStepRecord) -> None:
    audit.record(
        ctx.db,
        ctx.actor,
        action,
        "success",
        object_kind="worklist_item",
        object_id=step.id,
        patient_id=step.order.patient_id,
        site_id=step.order.site_id,
    )


def _step(ctx: Ctx, item_id: int) -> ScheduledStepRecord:
    step = ctx.db.get(ScheduledStepRecord, item_id)
    if step is None:
        raise NotFound(_("No such worklist item."))
    order = step.order
    target = Target(
        kind="worklist_item",
        id=str(step.id),
        site_ids=frozenset({order.site_id}),
        patient_id=order.patient_id,
    )
    try:
        ctx.authorize(MANAGE, target)
    except Forbidden:
        raise NotFound(_("No such worklist item.")) from None
    return step


@api_router.get(_API)
def list_items(
    ctx: Annotated[Ctx, gate(MANAGE)],
    site_id: int | None = None,
    modality: Annotated[str, Query(max_length=16)] = "",
    station_ae_title: Annotated[str, Query(max_length=16)] = "",
    day: date | None = None,
    status: Annotated[str, Query(max_length=16)] = "",
) -> list[dict[str, Any]]:
    """The worklist items of the caller's sites (at most 500, by start), optionally of one
    site, modality, station, day (UTC) or status; each patient shown is audited."""
    query = select(ScheduledStepRecord).join(
        ImagingOrderRecord, ScheduledStepRecord.order_id == ImagingOrderRecord.id
    )
    sites = ctx.visible_sites(MANAGE)
    if sites is not None:
        query = query.where(ImagingOrderRecord.site_id.in_(sites))
    if site_id is not None:
        query = query.where(ImagingOrderRecord.site_id == site_id)
    if modality.strip():
        query = query.where(ScheduledStepRecord.modality == modality.strip().upper())
    if station_ae_title.strip():
        query = query.where(ScheduledStepRecord.station_ae_title == station_ae_title.strip())
    if status.strip():
        query = query.where(ScheduledStepRecord.status == status.strip().upper())
    if day is not None:
        start = datetime.combine(day, time(0), tzinfo=ctx.now.tzinfo)
        query = query.where(
            ScheduledStepRecord.start_at >= start,
            ScheduledStepRecord.start_at < start + timedelta(days=1),
        )
    query = query.order_by(ScheduledStepRecord.start_at, ScheduledStepRecord.id).limit(LIMIT)
    steps = list(ctx.db.execute(query).scalars())
    items = [_item_json(ctx, step) for step in steps]
    for step in steps:
        _audit(ctx, "reading.worklist_item.read", step)
    ctx.commit()
    return items


@api_router.post(_API, status_code=201)
def create_item(body: NewWorklistItem, ctx: Annotated[Ctx, gate(MANAGE)]) -> JSONResponse:
    """Schedule an item (its order, as an HL7 order would): the modality worklist answers
    it at once. 404 for a patient the site does not know, 409 for an accession number the
    site already uses."""
    target = Target(kind="worklist_item", site_ids=frozenset({body.site_id}))
    ctx.authorize(MANAGE, target)
    item = scheduling.NewItem(
        site_id=body.site_id,
        patient_id=body.patient_id,
        accession_number=body.accession_number,
        modality=body.modality,
        scheduled_at=body.scheduled_at,
        procedure_code=body.procedure.code,
        procedure_scheme=body.procedure.scheme,
        procedure_meaning=body.procedure.meaning,
        station_ae_title=body.station_ae_title,
        requested_procedure_id=body.requested_procedure_id,
        step_id=body.step_id,
        priority=_PRIORITIES[body.priority],
        study_instance_uid=body.study_instance_uid,
        referring_physician=body.referring_physician,
        reason=body.reason,
    )
    step = scheduling.create_item(ctx.db, item, ctx.now)
    _audit(ctx, "reading.worklist_item.create", step)
    answer = _item_json(ctx, step)
    ctx.commit()
    return JSONResponse(answer, status_code=201, headers={"Location": f"{_API}/{step.id}"})


@api_router.get(_API + "/{item_id}")
def read_item(item_id: int, ctx: Annotated[Ctx, gate(MANAGE)]) -> dict[str, Any]:
    """One worklist item."""
    step = _step(ctx, item_id)
    _audit(ctx, "reading.worklist_item.read", step)
    answer = _item_json(ctx, step)
    ctx.commit()
    return answer


@api_router.patch(_API + "/{item_id}")
def change_item(
    item_id: int, body: WorklistItemChange, ctx: Annotated[Ctx, gate(MANAGE)]
) -> dict[str, Any]:
    """Move an item: its start, station, modality or description; 409 once it has ended."""
    step = _step(ctx, item_id)
    change = scheduling.ItemChange(
        scheduled_at=body.scheduled_at,
        station_ae_title=body.station_ae_title,
        modality=body.modality,
        description=body.description,
    )
    scheduling.change_item(ctx.db, step, change, ctx.now)
    _audit(ctx, "reading.worklist_item.update", step)
    answer = _item_json(ctx, step)
    ctx.commit()
    return answer


@api_router.delete(_API + "/{item_id}")
def cancel_item(item_id: int, ctx: Annotated[Ctx, gate(MANAGE)]) -> dict[str, Any]:
    """Cancel an item (as ORC CA): it leaves the modality worklist; 409 once it has ended."""
    step = _step(ctx, item_id)
    scheduling.cancel_item(ctx.db, step, ctx.now)
    _audit(ctx, "reading.worklist_item.cancel", step)
    answer = _item_json(ctx, step)
    ctx.commit()
    return answer
