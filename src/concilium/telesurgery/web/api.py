"""The JSON API of telesurgical procedures under ``/api/v1/telesurgery``, described in the
OpenAPI document: planning, gateway enrolment, key issue, START (refused with every reason),
the gateways' timeline ingest, the server-sent event stream and the progress of a link
qualification; with the procedure's JSON shape and the planning and START acts the pages share.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import AwareDatetime, BaseModel, Field
from starlette.concurrency import run_in_threadpool

from concilium.platform.errors import Forbidden, InvalidInput
from concilium.platform.i18n import _
from concilium.telesurgery import procedures, readiness
from concilium.telesurgery.actions import TelesurgeryAction
from concilium.telesurgery.tables import Procedure, QualificationRecord, TimelineEntry
from concilium.telesurgery.web.access import authorized_procedure, may_plan_at, visible_procedures
from concilium.telesurgery.web.state import qualification_runs, status_board
from concilium.web.context import Ctx, gate, record_refusal, runtime_of
from concilium.web.problems import problem

router = APIRouter(prefix="/api/v1/telesurgery", tags=["telesurgery"])
"""The JSON API, the gateways' timeline ingest and the event stream."""

EVENT_POLL_SECONDS = 0.5
"""How often the event stream looks for new timeline entries and status samples."""


def qualification_max_age(ctx: Ctx) -> timedelta:
    """How old the last passing link qualification may be when the procedure starts."""
    return timedelta(hours=ctx.runtime.settings.telesurgery_qualification_max_age_hours)


def plan_procedure(ctx: Ctx, body: ProcedureIn) -> Procedure:
    """Plan a procedure as the caller, committed."""
    # Planning needs the right at both sites: each side commits its people and its robot.
    # The patient must be known at one of them (checked by the domain).
    may_plan_at(ctx, body.console_site_id, body.robot_site_id)
    procedure = procedures.create_procedure(
        ctx.db,
        ctx.actor,
        title=body.title,
        console_site_id=body.console_site_id,
        robot_site_id=body.robot_site_id,
        surgeon_id=body.surgeon_id,
        local_team_ids=body.local_team_ids,
        robot_name=body.robot_name,
        patient_id=body.patient_id,
        thresholds=body.thresholds,
        link_class=body.link_class,
        now=ctx.now,
    )
    ctx.commit()
    return procedure


def start_procedure(ctx: Ctx, procedure: Procedure) -> None:
    """Start the procedure as the caller; a refusal is committed too, then raised."""
    try:
        readiness.start(ctx.db, ctx.actor, procedure, ctx.now, qualification_max_age(ctx))
    except readiness.StartRefused:
        ctx.commit()  # the refusal stays in the audit trail and the timeline
        raise
    ctx.commit()


def start_refusals(ctx: Ctx, procedure: Procedure) -> list[readiness.StartBlocker]:
    """Every reason START is refused now; empty when the procedure may start."""
    facts = readiness.start_facts(ctx.db, procedure)
    return readiness.start_blockers(facts, ctx.now, qualification_max_age(ctx))


class ProcedureIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    console_site_id: int
    robot_site_id: int
    surgeon_id: int
    local_team_ids: list[int] = Field(default_factory=list, max_length=50)
    robot_name: str = Field(min_length=1, max_length=100)
    patient_id: int
    thresholds: dict[str, Any] = Field(default_factory=dict)
    link_class: str | None = Field(default=None, max_length=32)
    """Threshold preset (``lan``, ``regional``, ``intercontinental``); ``thresholds`` override
    it value by value."""


class GatewayOut(BaseModel):
    role: str
    site_id: int
    public_name: str
    enrolled_at: datetime


class QualificationOut(BaseModel):
    id: int
    measured_at: datetime
    passed: bool
    profile: str
    reasons: list[str]
    report_url: str


class ProcedureOut(BaseModel):
    id: int
    title: str
    status: str
    console_site_id: int
    robot_site_id: int
    surgeon_id: int
    local_team_ids: list[int]
    robot_name: str
    patient_id: int
    link_class: str
    thresholds: dict[str, Any]
    consent: bool
    key_id: int | None
    gateways: list[GatewayOut]
    qualifications: list[QualificationOut]
    start_refused_because: list[str]
    """Empty when START is allowed."""
    state: str


def _qualification_out(record: QualificationRecord) -> QualificationOut:
    return QualificationOut(
        id=record.id,
        measured_at=record.measured_at,
        passed=record.passed,
        profile=record.profile,
        reasons=list(record.verdict.get("reasons", [])),
        report_url=f"/telesurgery/{record.procedure_id}/qualifications/{record.id}",
    )


def procedure_out(ctx: Ctx, procedure: Procedure) -> ProcedureOut:
    """The procedure as the API and the procedure page show it."""
    facts = readiness.start_facts(ctx.db, procedure)
    key = readiness.active_key(ctx.db, procedure)
    return ProcedureOut(
        id=procedure.id,
        title=procedure.title,
        status=procedure.status,
        console_site_id=procedure.console_site_id,
        robot_site_id=procedure.robot_site_id,
        surgeon_id=procedure.surgeon_id,
        local_team_ids=list(procedure.local_team_ids),
        robot_name=procedure.robot_name,
        patient_id=procedure.patient_id,
        link_class=procedures.link_class_of(procedure),
        thresholds=procedure.thresholds,
        consent=facts.consent,
        key_id=key.key_id if key else None,
        gateways=[
            GatewayOut(
                role=g.role, site_id=g.site_id, public_name=g.public_name, enrolled_at=g.enrolled_at
            )
            for g in readiness.gateways(ctx.db, procedure).values()
        ],
        qualifications=[_qualification_out(q) for q in readiness.qualifications(ctx.db, procedure)],
        start_refused_because=[
            b.translated()
            for b in readiness.start_blockers(facts, ctx.now, qualification_max_age(ctx))
        ],
        state=procedures.current_state(ctx.db, procedure),
    )


class EnrolIn(BaseModel):
    role: str = Field(pattern="^(console|robot)$")
    public_name: str = Field(min_length=1, max_length=255)


class EnrolOut(BaseModel):
    role: str
    token: str
    """Shown once: the gateway presents it in ``X-Gateway-Token``."""


class KeysOut(BaseModel):
    key_id: int
    files: dict[str, str]
    """Key file of each gateway on the server, mode 0600, to hand over to the gateway."""


class EventIn(BaseModel):
    at: AwareDatetime
    kind: str = Field(pattern="^(transition|alarm|refusal)$")
    state: str = Field(default="", max_length=16)
    detail: str = Field(default="", max_length=2000)


class StatusIn(BaseModel):
    state: str | None = Field(default=None, max_length=16)
    latency_ms: float | None = Field(default=None, ge=0, le=1e6)
    jitter_ms: float | None = Field(default=None, ge=0, le=1e6)
    rtt_ms: float | None = Field(default=None, ge=0, le=1e6)
    loss: float | None = Field(default=None, ge=0, le=1)
    reordering: float | None = Field(default=None, ge=0, le=1)
    command_rate_hz: float | None = Field(default=None, ge=0, le=1e6)
    robot_position_mm: list[float] | None = Field(default=None, min_length=3, max_length=3)


class IngestIn(BaseModel):
    events: list[EventIn] = Field(default_factory=list, max_length=1000)
    status: StatusIn | None = None


class TimelineOut(BaseModel):
    id: int
    at: datetime
    source: str
    kind: str
    state: str
    detail: str

    @classmethod
    def of(cls, entry: TimelineEntry) -> TimelineOut:
        return cls(
            id=entry.id,
            at=entry.at,
            source=entry.source,
            kind=entry.kind,
            state=entry.state,
            detail=entry.detail,
        )


@router.get("/procedures")
def api_list(ctx: Annotated[Ctx, gate(TelesurgeryAction.PROCEDURE_READ)]) -> list[ProcedureOut]:
    return [procedure_out(ctx, p) for p in visible_procedures(ctx)]


@router.post("/procedures", status_code=201)
def api_create(
    body: ProcedureIn, ctx: Annotated[Ctx, gate(TelesurgeryAction.PROCEDURE_MANAGE)]
) -> ProcedureOut:
    return procedure_out(ctx, plan_procedure(ctx, body))


@router.get("/procedures/{procedure_id}")
def api_read(
    procedure_id: int, ctx: Annotated[Ctx, gate(TelesurgeryAction.PROCEDURE_READ)]
) -> ProcedureOut:
    return procedure_out(
        ctx, authorized_procedure(ctx, procedure_id, TelesurgeryAction.PROCEDURE_READ)
    )


@router.post("/procedures/{procedure_id}/gateways", status_code=201)
def api_enrol(
    procedure_id: int, body: EnrolIn, ctx: Annotated[Ctx, gate(TelesurgeryAction.PROCEDURE_MANAGE)]
) -> EnrolOut:
    procedure = authorized_procedure(ctx, procedure_id, TelesurgeryAction.PROCEDURE_MANAGE)
    _, token = readiness.enrol_gateway(
        ctx.db, ctx.actor, procedure, body.role, body.public_name, ctx.now
    )
    ctx.commit()
    return EnrolOut(role=body.role, token=token)


@router.post("/procedures/{procedure_id}/keys", status_code=201)
def api_issue_keys(
    procedure_id: int, ctx: Annotated[Ctx, gate(TelesurgeryAction.PROCEDURE_MANAGE)]
) -> KeysOut:
    procedure = authorized_procedure(ctx, procedure_id, TelesurgeryAction.PROCEDURE_MANAGE)
    directory = readiness.key_directory(ctx.runtime.settings.data_dir, procedure.id)
    issued, paths = readiness.issue_keys(ctx.db, ctx.actor, procedure, directory, ctx.now)
    ctx.commit()
    return KeysOut(key_id=issued.key_id, files={role: str(p) for role, p in paths.items()})


@router.post("/procedures/{procedure_id}/start", response_model=None)
def api_start(
    request: Request,
    procedure_id: int,
    ctx: Annotated[Ctx, gate(TelesurgeryAction.PROCEDURE_START)],
) -> ProcedureOut | JSONResponse:
    procedure = authorized_procedure(ctx, procedure_id, TelesurgeryAction.PROCEDURE_START)
    try:
        start_procedure(ctx, procedure)
    except readiness.StartRefused as exc:
        reasons = [b.translated() for b in start_refusals(ctx, procedure)]
        return problem(exc.status, exc.title, exc.detail, request, reasons=reasons)
    return procedure_out(ctx, procedure)


@router.get("/procedures/{procedure_id}/timeline")
def api_timeline(
    procedure_id: int,
    ctx: Annotated[Ctx, gate(TelesurgeryAction.PROCEDURE_READ)],
    after: int = 0,
) -> list[TimelineOut]:
    procedure = authorized_procedure(ctx, procedure_id, TelesurgeryAction.PROCEDURE_READ)
    return [TimelineOut.of(e) for e in procedures.timeline(ctx.db, procedure, after)]


@router.post("/procedures/{procedure_id}/timeline", status_code=201)
def api_ingest(
    request: Request,
    procedure_id: int,
    body: IngestIn,
    ctx: Annotated[Ctx, gate(TelesurgeryAction.PROCEDURE_INGEST)],
    x_gateway_token: Annotated[str, Header(max_length=200)] = "",
) -> list[TimelineOut]:
    """A gateway reports state transitions, alarms and refusals (kept and audited) and its
    latest link status (shown live, not kept)."""
    procedure = authorized_procedure(ctx, procedure_id, TelesurgeryAction.PROCEDURE_INGEST)
    gateway = readiness.gateway_for_token(ctx.db, procedure, x_gateway_token)
    if gateway is None:
        target = procedures.procedure_target(procedure)
        reason = "unknown gateway token"
        record_refusal(ctx.db, ctx.actor, TelesurgeryAction.PROCEDURE_INGEST, target, reason)
        raise Forbidden(_("send the gateway's enrolment token in X-Gateway-Token"))
    try:
        events = [procedures.TimelineEvent(e.at, e.kind, e.state, e.detail) for e in body.events]
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    entries = procedures.ingest(ctx.db, ctx.actor, procedure, gateway.role, events)
    ctx.commit()
    if body.status is not None:
        sample = body.status.model_dump(exclude_none=True)
        status_board(request.app).update(procedure.id, gateway.role, sample)
    return [TimelineOut.of(e) for e in entries]


@router.get("/procedures/{procedure_id}/events")
def api_events(
    request: Request, procedure_id: int, ctx: Annotated[Ctx, gate(TelesurgeryAction.PROCEDURE_READ)]
) -> StreamingResponse:
    """Server-sent events (HTML Living Standard 9.2): ``timeline`` for each new entry and
    ``status`` for each new link status sample, until the client goes away.

    The handler itself runs in a worker thread (it reads the database); the stream, on the
    event loop, reads through its own short read-only sessions in worker threads."""
    procedure = authorized_procedure(ctx, procedure_id, TelesurgeryAction.PROCEDURE_READ)
    # Only the id goes on: the request's own session is released now (on SQLite every
    # transaction takes the write lock, so a long-lived stream must not keep one open).
    known_id = procedure.id
    ctx.db.rollback()
    ctx.db.close()
    runtime = runtime_of(request)
    board = status_board(request.app)

    def poll(after: int) -> list[dict[str, Any]]:
        with runtime.read_sessions() as db:
            found = db.get(Procedure, known_id)
            if found is None:
                return []
            entries = procedures.timeline(db, found, after)
            return [TimelineOut.of(e).model_dump(mode="json") for e in entries]

    async def stream() -> AsyncIterator[str]:
        last_id = 0
        last_version = -1
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            for payload in await run_in_threadpool(poll, last_id):
                last_id = payload["id"]
                yield f"event: timeline\ndata: {json.dumps(payload)}\n\n"
            version, sample = board.latest(known_id)
            if version != last_version:
                last_version = version
                yield f"event: status\ndata: {json.dumps(sample)}\n\n"
            await asyncio.sleep(EVENT_POLL_SECONDS)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/procedures/{procedure_id}/qualification-run")
def api_qualification_run(
    request: Request,
    procedure_id: int,
    ctx: Annotated[Ctx, gate(TelesurgeryAction.PROCEDURE_READ)],
) -> dict[str, Any]:
    """The progress of the latest qualification started from the web (``state`` ``none``
    when there is none in this process)."""
    procedure = authorized_procedure(ctx, procedure_id, TelesurgeryAction.PROCEDURE_READ)
    run = qualification_runs(request.app).get(procedure.id)
    return run.as_json() if run is not None else {"state": "none"}
