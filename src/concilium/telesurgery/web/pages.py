"""The pages of telesurgical procedures under ``/telesurgery``: the list with the planning
form, the procedure page (enrolment, keys, link qualification run from the page, the video,
START and every reason blocking it, leading to where it is fixed), the qualification report,
and the supervision and surgeon's views fed by the event stream.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from concilium import live as live_service
from concilium.live import LiveAction, LiveProcess
from concilium.platform import accounts, audit, patients
from concilium.platform.errors import ConciliumError, InvalidInput, NotFound
from concilium.platform.i18n import N_, _
from concilium.platform.policy import Action, PlatformAction, Target, decide
from concilium.platform.tables import Patient, User
from concilium.telesurgery import procedures, readiness
from concilium.telesurgery.actions import TelesurgeryAction
from concilium.telesurgery.impairment import PROFILES
from concilium.telesurgery.qualification import svg_plot
from concilium.telesurgery.qualification_runs import (
    MAX_DURATION_S,
    MAX_RATE_HZ,
    MIN_DURATION_S,
    MIN_RATE_HZ,
)
from concilium.telesurgery.safety import DEFAULT_LINK_CLASS, LINK_CLASSES
from concilium.telesurgery.tables import Procedure, QualificationRecord
from concilium.telesurgery.video import link_video, open_video, video_session
from concilium.telesurgery.web.access import (
    authorized_procedure,
    may,
    may_plan_at,
    visible_procedures,
)
from concilium.telesurgery.web.api import (
    ProcedureIn,
    plan_procedure,
    procedure_out,
    start_procedure,
    start_refusals,
)
from concilium.telesurgery.web.state import qualification_runs
from concilium.web.context import Ctx, gate, process_of, record_refusal
from concilium.web.rendering import reader_zone, render_page

router = APIRouter(include_in_schema=False)
"""Pages."""

QUALIFICATION_PROFILES = ("direct", *PROFILES)
"""Networks a qualification may be measured through: the loopback as it is, or a preset."""


def _site_names(ctx: Ctx) -> dict[int, str]:
    return {s.id: s.name for s in accounts.list_sites(ctx.db)}


def _user_names(ctx: Ctx, ids: list[int]) -> dict[int, str]:
    return {i: u.full_name for i in ids if (u := ctx.db.get(User, i)) is not None}


def _planner_sites(ctx: Ctx) -> list[tuple[int, str]]:
    allowed = ctx.visible_sites(TelesurgeryAction.PROCEDURE_MANAGE) or frozenset()
    return [(s.id, s.name) for s in accounts.list_sites(ctx.db) if s.id in allowed]


def _people(ctx: Ctx, site_ids: frozenset[int]) -> list[User]:
    """People holding a role at the planner's sites, to choose by name."""
    return [u for u in accounts.list_users(ctx.db, site_ids) if not u.disabled]


def _list_page(
    request: Request, ctx: Ctx, error: str = "", form: dict[str, Any] | None = None
) -> Response:
    planner_sites = _planner_sites(ctx)
    return render_page(
        request,
        "telesurgery/list.html",
        ctx,
        status=422 if error else 200,
        procedures=visible_procedures(ctx),
        sites=_site_names(ctx),
        planner_sites=planner_sites,
        all_sites=sorted(_site_names(ctx).items()),
        people=_people(ctx, frozenset(i for i, _name in planner_sites)),
        link_classes=list(LINK_CLASSES.values()),
        statuses=PROCEDURE_STATUSES,
        error=error,
        form=form or {},
    )


WORDS = (
    N_("console"),
    N_("robot"),
    N_("platform"),
    N_("transition"),
    N_("alarm"),
    N_("refusal"),
)
"""Words of the timeline and of the gateways, shown translated."""

PROCEDURE_STATUSES = {
    "planned": N_("planned"),
    "started": N_("started"),
    "ended": N_("ended"),
}
"""A procedure's status as people read it."""


@router.get("/telesurgery")
def list_page(
    request: Request, ctx: Annotated[Ctx, gate(TelesurgeryAction.PROCEDURE_READ)]
) -> Response:
    return _list_page(request, ctx)


def _person(ctx: Ctx, text: str) -> User:
    """A person named by user name or full name (as the form's suggestions give them)."""
    wanted = text.strip()
    user = accounts.user_by_username(ctx.db, wanted)
    if user is not None:
        return user
    folded = wanted.casefold()
    named = [u for u in accounts.active_users(ctx.db) if u.full_name.casefold() == folded]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise InvalidInput(
            _("several people are named %(name)s: give the user name") % {"name": wanted}
        )
    raise InvalidInput(_("nobody is named %(name)s") % {"name": repr(wanted)})


def _patient_by_hospital_number(ctx: Ctx, number: str) -> int:
    """The patient a hospital number identifies at one of the hospitals whose patients the
    planner may see; merged records lead to the record they were merged into."""
    value = number.strip()
    if not value:
        raise InvalidInput(_("give the patient's hospital number"))
    sites = ctx.visible_sites(PlatformAction.PATIENT_READ)
    known = [i for i, _name in sorted(_site_names(ctx).items())]
    found: dict[int, Patient] = {}
    for site_id in known if sites is None else sorted(sites):
        patient = patients.find_by_identifier(ctx.db, site_id, value)
        while patient is not None and patient.merged_into_id is not None:
            patient = patients.get_patient(ctx.db, patient.merged_into_id)
        if patient is None:
            continue
        target = patients.patient_target(ctx.db, patient, ctx.now)
        if decide(ctx.principal, PlatformAction.PATIENT_READ, target).allowed:
            found[patient.id] = patient
    if not found:
        raise InvalidInput(
            _("no patient with the hospital number %(number)s at the hospitals you may see")
            % {"number": value}
        )
    if len(found) > 1:
        raise InvalidInput(
            _("the hospital number %(number)s names several patients: plan from the patient page")
            % {"number": value}
        )
    return next(iter(found))


@router.post("/telesurgery")
def create_page(
    request: Request,
    ctx: Annotated[Ctx, gate(TelesurgeryAction.PROCEDURE_MANAGE)],
    title: Annotated[str, Form(max_length=200)],
    console_site_id: Annotated[int, Form()],
    robot_site_id: Annotated[int, Form()],
    surgeon: Annotated[str, Form(max_length=200)],
    robot_name: Annotated[str, Form(max_length=100)],
    patient: Annotated[str, Form(max_length=64)],
    local_team: Annotated[str, Form(max_length=2000)] = "",
    link_class: Annotated[str, Form(max_length=32)] = DEFAULT_LINK_CLASS,
) -> Response:
    form = {
        "title": title,
        "console_site_id": console_site_id,
        "robot_site_id": robot_site_id,
        "surgeon": surgeon,
        "robot_name": robot_name,
        "patient": patient,
        "local_team": local_team,
        "link_class": link_class,
    }
    # Refused before any lookup: who may not plan at both sites learns nothing of their
    # people and patients.
    may_plan_at(ctx, console_site_id, robot_site_id)
    try:
        surgeon_user = _person(ctx, surgeon)
        team = [_person(ctx, name).id for name in local_team.split(",") if name.strip()]
        body = ProcedureIn(
            title=title,
            console_site_id=console_site_id,
            robot_site_id=robot_site_id,
            surgeon_id=surgeon_user.id,
            local_team_ids=team,
            robot_name=robot_name,
            patient_id=_patient_by_hospital_number(ctx, patient),
            link_class=link_class,
        )
        procedure = plan_procedure(ctx, body)
    except (InvalidInput, NotFound) as exc:
        ctx.db.rollback()
        return _list_page(request, ctx, exc.detail, form)
    return RedirectResponse(f"/telesurgery/{procedure.id}", status_code=303)


def _may_open_video(ctx: Ctx, procedure: Procedure) -> bool:
    """Whether the caller may create the video session at the robot site."""
    sites = frozenset({procedure.robot_site_id})
    at_robot_site = Target(live_service.RESOURCE_KIND, site_ids=sites)
    return decide(ctx.principal, LiveAction.LIVE_MANAGE, at_robot_site).allowed


BLOCKER_ANCHORS = {
    "status": "#start-h",
    "gateways": "#enrolment",
    "keys": "#keys",
    "qualification": "#qualify",
}
"""Where on the procedure page each reason blocking START is fixed (consent: the patient's
page)."""


def _blockers(ctx: Ctx, procedure: Procedure) -> list[tuple[str, str]]:
    """Each reason START is refused, in the reader's language, with the link to its fix."""
    found = []
    for blocker in start_refusals(ctx, procedure):
        if blocker.topic == "consent":
            href = f"/patients/{procedure.patient_id}"
        else:
            href = f"/telesurgery/{procedure.id}{BLOCKER_ANCHORS[blocker.topic]}"
        found.append((blocker.translated(), href))
    return found


def _procedure_view(
    request: Request,
    ctx: Ctx,
    procedure: Procedure,
    error: str = "",
    status: int = 200,
    **shown: Any,
) -> Response:
    out = procedure_out(ctx, procedure)
    team = [procedure.surgeon_id, *procedure.local_team_ids]
    return render_page(
        request,
        "telesurgery/procedure.html",
        ctx,
        status=status,
        procedure=out,
        blockers=_blockers(ctx, procedure),
        statuses=PROCEDURE_STATUSES,
        sites=_site_names(ctx),
        people=_user_names(ctx, team),
        timeline=procedures.timeline(ctx.db, procedure),
        may_start=may(ctx, procedure, TelesurgeryAction.PROCEDURE_START),
        may_supervise=may(ctx, procedure, TelesurgeryAction.PROCEDURE_SUPERVISE),
        may_manage=may(ctx, procedure, TelesurgeryAction.PROCEDURE_MANAGE),
        may_open_video=_may_open_video(ctx, procedure),
        video=video_session(ctx.db, procedure),
        max_age_hours=ctx.runtime.settings.telesurgery_qualification_max_age_hours,
        profiles=QUALIFICATION_PROFILES,
        run=qualification_runs(request.app).get(procedure.id),
        error=error,
        **shown,
    )


@router.get("/telesurgery/{procedure_id}")
def procedure_page(
    request: Request, procedure_id: int, ctx: Annotated[Ctx, gate(TelesurgeryAction.PROCEDURE_READ)]
) -> Response:
    return _procedure_view(
        request, ctx, authorized_procedure(ctx, procedure_id, TelesurgeryAction.PROCEDURE_READ)
    )


@router.post("/telesurgery/{procedure_id}/video")
async def video_page(
    request: Request,
    procedure_id: int,
    ctx: Annotated[Ctx, gate(TelesurgeryAction.PROCEDURE_MANAGE)],
    live_session_id: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Link the live session carrying the video: an existing one (its number; the caller
    manages it) or, when no number is given, a new supervision session at the robot site,
    taken live through the live service."""
    procedure = await run_in_threadpool(
        authorized_procedure, ctx, procedure_id, TelesurgeryAction.PROCEDURE_MANAGE
    )

    def link_existing(wanted: str) -> None:
        if not wanted.isdigit():
            raise InvalidInput(_("a live session is given by its number"))
        live = live_service.find_session(ctx.db, int(wanted))
        if live is None:
            target = Target(live_service.RESOURCE_KIND, wanted)
            record_refusal(ctx.db, ctx.actor, LiveAction.LIVE_MANAGE, target, "none")
            raise NotFound(_("live session %(id)s not found") % {"id": wanted})
        ctx.authorize(
            LiveAction.LIVE_MANAGE,
            live_service.session_target(ctx.db, live, LiveAction.LIVE_MANAGE, ctx.now),
        )
        link_video(ctx.db, ctx.actor, procedure, live, ctx.now)
        ctx.commit()

    def may_open() -> None:
        at_robot_site = frozenset({procedure.robot_site_id})
        ctx.authorize(
            LiveAction.LIVE_MANAGE, Target(live_service.RESOURCE_KIND, site_ids=at_robot_site)
        )
        # Showing a patient to others needs the right to see that patient oneself.
        patient = patients.get_patient(ctx.db, procedure.patient_id)
        ctx.authorize(
            PlatformAction.PATIENT_READ, patients.patient_target(ctx.db, patient, ctx.now)
        )

    wanted = live_session_id.strip()
    try:
        if wanted:
            await run_in_threadpool(link_existing, wanted)
        else:
            await run_in_threadpool(may_open)
            sessions = process_of(request.app, LiveProcess).sessions
            await open_video(ctx.db, ctx.actor, procedure, ctx.now, sessions)
            await run_in_threadpool(ctx.commit)
    except ConciliumError as exc:
        # As a form does: a user error shows the page again and saves nothing; refusals go
        # to the error handlers.
        await run_in_threadpool(ctx.db.rollback)
        if exc.status in {401, 403, 404}:
            raise
        return await run_in_threadpool(
            _procedure_view, request, ctx, procedure, exc.detail, exc.status
        )
    return RedirectResponse(f"/telesurgery/{procedure.id}", status_code=303)


@router.post("/telesurgery/{procedure_id}/start")
def start_page(
    procedure_id: int, ctx: Annotated[Ctx, gate(TelesurgeryAction.PROCEDURE_START)]
) -> Response:
    procedure = authorized_procedure(ctx, procedure_id, TelesurgeryAction.PROCEDURE_START)
    # A refusal is shown by the page it returns to: the reasons, now also in the timeline.
    with contextlib.suppress(readiness.StartRefused):
        start_procedure(ctx, procedure)
    return RedirectResponse(f"/telesurgery/{procedure.id}", status_code=303)


def _plots(verdict: dict[str, Any]) -> list[Markup]:
    """The report's plots over time, titled in the reader's language."""
    m = verdict.get("measurements", {})
    safety = verdict.get("safety", {})
    thresholds = verdict.get("thresholds", {})

    def series(name: str) -> list[tuple[float, float]]:
        return [(float(x), float(y)) for x, y in m.get(name, []) if x is not None and y is not None]

    def plot(
        points: list[tuple[float, float]],
        title: str,
        unit: str,
        limits: list[tuple[float, str]] | None = None,
    ) -> str:
        # Narrower than the file's plots: on a phone their labels stay readable.
        return svg_plot(points, title, unit, limits or [], width=480, height=220)

    def limit(value: Any, label: str) -> list[tuple[float, str]]:
        return [(float(value), label)] if isinstance(value, int | float) else []

    return [
        Markup(drawn)  # noqa: S704 - every text in the plot is escaped by svg_plot
        for drawn in (
            plot(series("latency_series"), _("One-way latency, console to robot"), "ms"),
            plot(
                series("command_age_series"),
                _("Command age at worst, as the robot judges freshness"),
                "ms",
                limit(safety.get("command_freshness_ms"), "command_freshness_ms"),
            ),
            plot(
                series("rtt_series"),
                _("Round-trip time"),
                "ms",
                limit(thresholds.get("rtt_p999_ms"), "rtt_p999_ms")
                + limit(safety.get("latency_halt_ms"), "latency_halt_ms"),
            ),
            plot(
                series("throughput_series"),
                _("Video throughput received"),
                "kbit/s",
                limit((m.get("bitrate_bps") or 0) / 1000, _("planned")),
            ),
        )
    ]


@router.get("/telesurgery/{procedure_id}/qualifications/{qualification_id}")
def qualification_report(
    request: Request,
    procedure_id: int,
    qualification_id: int,
    ctx: Annotated[Ctx, gate(TelesurgeryAction.PROCEDURE_READ)],
) -> Response:
    """The qualification report, in the reader's language and zone, from what was kept."""
    procedure = authorized_procedure(ctx, procedure_id, TelesurgeryAction.PROCEDURE_READ)
    record = ctx.db.get(QualificationRecord, qualification_id)
    if record is None or record.procedure_id != procedure.id:
        raise NotFound(_("qualification %(id)s not found") % {"id": qualification_id})
    verdict = record.verdict
    return render_page(
        request,
        "telesurgery/report.html",
        ctx,
        procedure=procedure,
        record=record,
        criteria=verdict.get("criteria", []),
        m=verdict.get("measurements", {}),
        safety=verdict.get("safety", {}),
        link_class=verdict.get("link_class", ""),
        plots=_plots(verdict),
    )


@router.post("/telesurgery/{procedure_id}/qualifications")
def qualify_page(
    request: Request,
    procedure_id: int,
    ctx: Annotated[Ctx, gate(TelesurgeryAction.PROCEDURE_MANAGE)],
    profile: Annotated[str, Form(max_length=64)] = "direct",
    duration_s: Annotated[float, Form()] = 10.0,
    rate_hz: Annotated[float, Form()] = 1000.0,
) -> Response:
    """Start a link qualification in the background; the page follows its progress."""
    procedure = authorized_procedure(ctx, procedure_id, TelesurgeryAction.PROCEDURE_MANAGE)
    problem_text = ""
    if profile not in QUALIFICATION_PROFILES:
        problem_text = _("unknown network profile %(name)r") % {"name": profile}
    elif not MIN_DURATION_S <= duration_s <= MAX_DURATION_S:
        problem_text = _("a qualification lasts %(low)g to %(high)g s") % {
            "low": MIN_DURATION_S,
            "high": MAX_DURATION_S,
        }
    elif not MIN_RATE_HZ <= rate_hz <= MAX_RATE_HZ:
        problem_text = _("the command rate is %(low)g to %(high)g per second") % {
            "low": MIN_RATE_HZ,
            "high": MAX_RATE_HZ,
        }
    elif procedure.status == "ended":
        problem_text = _("the procedure has ended")
    if problem_text:
        return _procedure_view(request, ctx, procedure, problem_text, 422)
    audit.record(
        ctx.db,
        ctx.actor,
        "procedure.qualify",
        "success",
        object_kind=procedures.RESOURCE_KIND,
        object_id=procedure.id,
        patient_id=procedure.patient_id,
        detail={"started": True, "profile": profile, "duration_s": duration_s},
    )
    ctx.commit()
    started = qualification_runs(request.app).start(
        ctx.runtime.sessions,
        ctx.runtime.settings.data_dir,
        ctx.actor,
        procedure,
        profile,
        duration_s,
        rate_hz,
    )
    if started is None:
        return _procedure_view(
            request, ctx, procedure, _("a qualification of this procedure is under way"), 409
        )
    return RedirectResponse(f"/telesurgery/{procedure.id}#qualify", status_code=303)


@router.post("/telesurgery/{procedure_id}/gateways")
def enrol_page(
    request: Request,
    procedure_id: int,
    ctx: Annotated[Ctx, gate(TelesurgeryAction.PROCEDURE_MANAGE)],
    role: Annotated[str, Form(max_length=16)],
    public_name: Annotated[str, Form(max_length=255)],
) -> Response:
    """Enrol a gateway; its token is shown once, on the page this returns."""
    procedure = authorized_procedure(ctx, procedure_id, TelesurgeryAction.PROCEDURE_MANAGE)
    try:
        _, token = readiness.enrol_gateway(ctx.db, ctx.actor, procedure, role, public_name, ctx.now)
    except ConciliumError as exc:
        ctx.db.rollback()
        return _procedure_view(request, ctx, procedure, exc.detail, exc.status)
    ctx.commit()
    return _procedure_view(request, ctx, procedure, enrolled=(role, token))


@router.post("/telesurgery/{procedure_id}/keys")
def keys_page(
    request: Request,
    procedure_id: int,
    ctx: Annotated[Ctx, gate(TelesurgeryAction.PROCEDURE_MANAGE)],
) -> Response:
    """Issue the link keys; the page names the key file of each gateway on the server."""
    procedure = authorized_procedure(ctx, procedure_id, TelesurgeryAction.PROCEDURE_MANAGE)
    directory = readiness.key_directory(ctx.runtime.settings.data_dir, procedure.id)
    try:
        _issued, paths = readiness.issue_keys(ctx.db, ctx.actor, procedure, directory, ctx.now)
    except ConciliumError as exc:
        ctx.db.rollback()
        return _procedure_view(request, ctx, procedure, exc.detail, exc.status)
    ctx.commit()
    files = {role: str(path) for role, path in paths.items()}
    return _procedure_view(request, ctx, procedure, key_files=files)


def _live_page(
    request: Request, ctx: Ctx, procedure_id: int, action: Action, template: str
) -> Response:
    procedure = authorized_procedure(ctx, procedure_id, action)
    video = video_session(ctx.db, procedure)
    # The picture is the live service's: shown only to whom it lets join that session.
    may_watch = video is not None and (
        decide(
            ctx.principal,
            LiveAction.LIVE_JOIN,
            live_service.session_target(ctx.db, video, LiveAction.LIVE_JOIN, ctx.now),
        ).allowed
    )
    return render_page(
        request,
        template,
        ctx,
        procedure=procedure,
        sites=_site_names(ctx),
        state=procedures.current_state(ctx.db, procedure),
        thresholds=procedure.thresholds.get("safety", {}),
        video=video,
        may_watch=may_watch,
        zone=reader_zone(ctx).key,
    )


@router.get("/telesurgery/{procedure_id}/supervise")
def supervise_page(
    request: Request,
    procedure_id: int,
    ctx: Annotated[Ctx, gate(TelesurgeryAction.PROCEDURE_SUPERVISE)],
) -> Response:
    return _live_page(
        request,
        ctx,
        procedure_id,
        TelesurgeryAction.PROCEDURE_SUPERVISE,
        "telesurgery/supervise.html",
    )


@router.get("/telesurgery/{procedure_id}/surgeon")
def surgeon_page(
    request: Request, procedure_id: int, ctx: Annotated[Ctx, gate(TelesurgeryAction.PROCEDURE_READ)]
) -> Response:
    return _live_page(
        request, ctx, procedure_id, TelesurgeryAction.PROCEDURE_READ, "telesurgery/surgeon.html"
    )
