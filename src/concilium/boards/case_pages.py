"""The pages of the boards' cases: a referring physician prepares and submits a case (its
completeness shown as it goes), everyone entitled opens it, and the coordinator builds a
meeting's agenda, seeing which cases would miss their quorum.

Thin adapters over :mod:`concilium.boards.case_store` and :mod:`concilium.boards.agenda`:
every page asks the policy about the very case or board it shows, and every view of a
case is audited. A bad value shows the page again with what to write (422), a change the
case's state refuses says so (409); nothing is saved either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy import select

from concilium.boards import (
    agenda,
    attendance,
    case_files,
    case_store,
    decisions,
    meetings,
    registry,
    specialties,
)
from concilium.boards.actions import BoardAction
from concilium.boards.cases import CaseStatus
from concilium.boards.tables import Board, BoardCase, BoardMeeting
from concilium.platform import patients
from concilium.platform.errors import ConciliumError, InvalidInput, SecondFactorRefused
from concilium.platform.i18n import _
from concilium.platform.policy import PlatformAction, decide
from concilium.platform.tables import Patient, User
from concilium.web.context import Ctx, gate
from concilium.web.forms import redirect_to, run_form_action
from concilium.web.rendering import render_page

router = APIRouter(include_in_schema=False)

Long = Annotated[str, Form(max_length=case_store.MAX_TEXT)]
Short = Annotated[str, Form(max_length=200)]
SUMMARY_FIELDS = (
    "question",
    "diagnosis",
    "histology",
    "stage",
    "performance_status",
    "history",
    "current_treatment",
)


# --- reading the forms ---------------------------------------------------------------------------


def _fields(form: dict[str, Any]) -> case_store.CaseFields:
    text = str(form.get("performance_status", "")).strip()
    try:
        performance = int(text) if text else None
    except ValueError:
        raise InvalidInput(_("The performance status is WHO/ECOG 0 to 4.")) from None
    return case_store.CaseFields(
        question=str(form.get("question", "")),
        diagnosis=str(form.get("diagnosis", "")),
        histology=str(form.get("histology", "")),
        stage=str(form.get("stage", "")),
        performance_status=performance,
        history=str(form.get("history", "")),
        current_treatment=str(form.get("current_treatment", "")),
        within_guidelines=bool(form.get("within_guidelines")),
        gp_email=str(form.get("gp_email", "")),
    )


def _case_form(case: BoardCase) -> dict[str, Any]:
    return {
        "question": case.question,
        "diagnosis": case.diagnosis,
        "histology": case.histology,
        "stage": case.stage,
        "performance_status": ""
        if case.performance_status is None
        else str(case.performance_status),
        "history": case.history,
        "current_treatment": case.current_treatment,
        "within_guidelines": case.within_guidelines,
        "gp_email": case.gp_email,
    }


def _patient_by_hospital_number(ctx: Ctx, number: str) -> Patient:
    """The patient a hospital number names at a hospital whose patients this person may
    read; merged records lead to the record they were merged into."""
    value = number.strip()
    if not value:
        raise InvalidInput(_("Give the patient's hospital number."))
    sites = ctx.visible_sites(PlatformAction.PATIENT_READ)
    site_ids = sorted(sites) if sites is not None else []
    found: dict[int, Patient] = {}
    for site_id in site_ids:
        patient = patients.find_by_identifier(ctx.db, site_id, value)
        while patient is not None and patient.merged_into_id is not None:
            patient = patients.get_patient(ctx.db, patient.merged_into_id)
        if patient is None:
            continue
        target = patients.patient_target(ctx.db, patient, ctx.now)
        if decide(ctx.principal, PlatformAction.PATIENT_READ, target).allowed:
            found[patient.id] = patient
    if len(found) != 1:
        raise InvalidInput(
            _("No patient with the hospital number %(number)s at the hospitals you work at.")
            % {"number": value}
            if not found
            else _("The hospital number %(number)s names several patients.") % {"number": value}
        )
    return next(iter(found.values()))


# --- access ------------------------------------------------------------------------------------


def _case(ctx: Ctx, case_id: int, action: Any) -> BoardCase:
    """The case, if the policy lets this person do ``action`` on it (a refusal is audited)."""
    case = case_store.get_case(ctx.db, case_id)
    if action == BoardAction.CASE_EDIT:
        ctx.authorize(action, case_store.edit_target(case))
    elif action == BoardAction.AGENDA_MANAGE:
        board = registry.get_board(ctx.db, case.board_id)
        ctx.authorize(action, case_store.agenda_target(ctx.db, board))
    else:
        ctx.authorize(action, case_store.case_target(ctx.db, case))
    return case


def _may(ctx: Ctx, action: Any, target: Any) -> bool:
    return decide(ctx.principal, action, target).allowed


def _people(ctx: Ctx, user_ids: set[int]) -> dict[int, User]:
    found = {uid: ctx.db.get(User, uid) for uid in user_ids}
    return {uid: user for uid, user in found.items() if user is not None}


def _labels() -> dict[str, Any]:
    return {
        "status_labels": case_store.STATUS_LABELS,
        "event_labels": case_store.EVENT_LABELS,
        "document_kinds": case_files.DOCUMENT_KINDS,
    }


# --- a new case ----------------------------------------------------------------------------------


def _submission_board(ctx: Ctx, board_id: int) -> Board:
    board = registry.get_board(ctx.db, board_id)
    ctx.authorize(BoardAction.CASE_SUBMIT, case_store.submission_target(ctx.db, board))
    return board


def _new_view(
    request: Request,
    ctx: Ctx,
    board: Board,
    form: dict[str, Any] | None = None,
    error: str = "",
    status: int = 200,
) -> Response:
    return render_page(
        request,
        "boards/case_new.html",
        ctx,
        status,
        **specialties.FOR_PAGES,
        board=board,
        form=form or {},
        error=error,
    )


@router.get("/boards/{board_id}/cases/new")
def case_new_page(
    request: Request, board_id: int, ctx: Annotated[Ctx, gate(BoardAction.CASE_SUBMIT)]
) -> Response:
    """The form starting a case for a board."""
    return _new_view(request, ctx, _submission_board(ctx, board_id))


@router.post("/boards/{board_id}/cases")
def case_create(
    request: Request,
    board_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.CASE_SUBMIT)],
    patient: Annotated[str, Form(max_length=64)] = "",
    question: Long = "",
    diagnosis: Long = "",
    histology: Long = "",
    stage: Short = "",
    performance_status: Annotated[str, Form(max_length=8)] = "",
    history: Long = "",
    current_treatment: Long = "",
    within_guidelines: Annotated[str, Form(max_length=8)] = "",
    gp_email: Short = "",
) -> Response:
    """Start a draft case of a patient this physician may read, for this board."""
    board = _submission_board(ctx, board_id)
    form: dict[str, Any] = {
        "patient": patient,
        "question": question,
        "diagnosis": diagnosis,
        "histology": histology,
        "stage": stage,
        "performance_status": performance_status,
        "history": history,
        "current_treatment": current_treatment,
        "within_guidelines": within_guidelines,
        "gp_email": gp_email,
    }
    created: list[BoardCase] = []

    def run() -> None:
        found = _patient_by_hospital_number(ctx, patient)
        ctx.authorize(PlatformAction.PATIENT_READ, patients.patient_target(ctx.db, found, ctx.now))
        case = case_store.create_draft(
            ctx.db, ctx.actor, board, found.id, ctx.user.id, _fields(form), ctx.now
        )
        created.append(case)
        ctx.commit()

    response = run_form_action(
        ctx, run, lambda exc: _new_view(request, ctx, board, form, exc.detail, exc.status), ""
    )
    return redirect_to(f"/boards/cases/{created[0].id}") if created else response


# --- a case ------------------------------------------------------------------------------------


def _case_view(
    request: Request,
    ctx: Ctx,
    case: BoardCase,
    error: str = "",
    status: int = 200,
    form: dict[str, Any] | None = None,
    section: str = "",
) -> Response:
    board = registry.get_board(ctx.db, case.board_id)
    decision = ctx.authorize(BoardAction.CASE_READ, case_store.case_target(ctx.db, case))
    case_store.record_view(ctx.db, ctx.actor, case, ctx.outcome(decision))
    ctx.commit()
    may_edit = _may(ctx, BoardAction.CASE_EDIT, case_store.edit_target(case))
    may_plan = _may(ctx, BoardAction.AGENDA_MANAGE, case_store.agenda_target(ctx.db, board))
    draft = case.status == CaseStatus.DRAFT.value
    available: list[Any] = []
    if may_edit and draft:
        attached = {s.study_instance_uid for s in case_store.studies_of(ctx.db, case)}
        available = [
            m
            for m in case_files.patient_studies(ctx.db, ctx.principal, ctx.actor, case, ctx.now)
            if str(m.value("StudyInstanceUID")) not in attached
        ]
        ctx.commit()  # the archive's audit of the lookup
    earlier = [
        d
        for d in case_store.earlier_decisions(ctx.db, case)
        if _may(ctx, BoardAction.CASE_READ, case_store.case_target(ctx.db, d.case))
    ]
    history = case_store.history_of(ctx.db, case)
    meeting = (
        case_store.get_meeting(ctx.db, case.meeting_id) if case.meeting_id is not None else None
    )
    coming = [
        m
        for m in meetings.board_meetings(ctx.db, board, ctx.now, 12)
        if m.status == meetings.PLANNED
    ]
    patient = patients.get_patient(ctx.db, case.patient_id)
    missing = case_store.missing_of(ctx.db, case)
    versions = decisions.decisions_of(ctx.db, case)
    may_run = _may(ctx, BoardAction.MEETING_RUN, attendance.run_target(ctx.db, board))
    signers = {v.signed_by_id for v in versions} | {v.referent_id for v in versions}
    signers |= {int(p["user"]) for v in versions for p in v.participants}
    referents = decisions.referent_ids(ctx.db, case) if versions and may_run else []
    return render_page(
        request,
        "boards/case.html",
        ctx,
        status,
        **specialties.FOR_PAGES,
        case=case,
        board=board,
        patient=patient,
        meeting=meeting,
        coming=coming,
        documents=case_store.documents_of(ctx.db, case),
        studies=case_store.studies_of(ctx.db, case),
        available=available,
        history=history,
        people=_people(
            ctx,
            {t.actor_id for t in history if t.actor_id}
            | {case.referrer_id}
            | signers
            | set(referents),
        ),
        versions=versions,
        intact=decisions.intact(versions),
        may_run=may_run,
        referents=referents,
        earlier=earlier,
        missing=case_store.missing_labels(missing),
        consent_missing="non_opposition" in missing,
        may_edit=may_edit,
        may_plan=may_plan,
        draft=draft,
        form=form if section == "summary" and form else _case_form(case),
        typed=form if section != "summary" and form else {},
        error=error,
        section=section,
        **_labels(),
    )


def _act(
    request: Request,
    ctx: Ctx,
    case: BoardCase,
    section: str,
    run: Callable[[], object],
    form: dict[str, Any] | None = None,
) -> Response:
    """Run one of the case page's forms: on a refusal, the page again with the message by
    the form of ``section`` and what was typed in it."""

    def done() -> None:
        run()
        ctx.commit()

    def again(exc: ConciliumError) -> Response:
        fresh = case_store.get_case(ctx.db, case.id)
        ctx.db.refresh(fresh)
        return _case_view(request, ctx, fresh, exc.detail, exc.status, form, section)

    return run_form_action(ctx, done, again, f"/boards/cases/{case.id}#{section}")


def act_on_case(
    request: Request,
    ctx: Ctx,
    case: BoardCase,
    section: str,
    run: Callable[[], object],
    form: dict[str, Any] | None = None,
) -> Response:
    """Like the case page's own forms, a refused second factor showing the form again
    (403) rather than the error page."""
    try:
        return _act(request, ctx, case, section, run, form)
    except SecondFactorRefused as exc:
        ctx.db.rollback()
        fresh = case_store.get_case(ctx.db, case.id)
        return _case_view(request, ctx, fresh, exc.detail, exc.status, form, section)


@router.get("/boards/cases/{case_id}")
def case_page(
    request: Request, case_id: int, ctx: Annotated[Ctx, gate(BoardAction.CASE_READ)]
) -> Response:
    """A case: its patient, question, summary, documents, studies, history and what is
    missing; the forms its author and the board's coordinators may use."""
    return _case_view(request, ctx, _case(ctx, case_id, BoardAction.CASE_READ))


@router.post("/boards/cases/{case_id}")
def case_edit(
    request: Request,
    case_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.CASE_EDIT)],
    question: Long = "",
    diagnosis: Long = "",
    histology: Long = "",
    stage: Short = "",
    performance_status: Annotated[str, Form(max_length=8)] = "",
    history: Long = "",
    current_treatment: Long = "",
    within_guidelines: Annotated[str, Form(max_length=8)] = "",
    gp_email: Short = "",
) -> Response:
    """Change the question and summary of a draft."""
    case = _case(ctx, case_id, BoardAction.CASE_EDIT)
    form: dict[str, Any] = {
        "question": question,
        "diagnosis": diagnosis,
        "histology": histology,
        "stage": stage,
        "performance_status": performance_status,
        "history": history,
        "current_treatment": current_treatment,
        "within_guidelines": within_guidelines,
        "gp_email": gp_email,
    }
    return _act(
        request,
        ctx,
        case,
        "summary",
        lambda: case_store.update_draft(ctx.db, ctx.actor, case, _fields(form), ctx.now),
        form,
    )


@router.post("/boards/cases/{case_id}/documents")
def document_add(
    request: Request,
    case_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.CASE_EDIT)],
    kind: Annotated[str, Form(max_length=32)] = "",
    file: UploadFile | None = None,
) -> Response:
    """Attach a PDF, PNG or JPEG to a draft."""
    case = _case(ctx, case_id, BoardAction.CASE_EDIT)

    def run() -> None:
        data = file.file.read(case_files.MAX_DOCUMENT_BYTES + 1) if file is not None else b""
        name = (file.filename or "") if file is not None else ""
        case_files.add_document(ctx.db, ctx.actor, case, kind, name, data, ctx.now)

    return _act(request, ctx, case, "documents", run, {"kind": kind})


@router.get("/boards/cases/{case_id}/documents/{document_id}")
def document_open(
    case_id: int,
    document_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.CASE_READ)],
) -> Response:
    """A document of the case, its opening audited."""
    case = _case(ctx, case_id, BoardAction.CASE_READ)
    document = case_store.get_document(ctx.db, case, document_id)
    decision = ctx.decisions[-1]
    case_store.record_view(
        ctx.db, ctx.actor, case, ctx.outcome(decision), f"document {document.id}"
    )
    ctx.commit()
    return Response(
        document.content,
        media_type=document.media_type,
        headers={
            "content-disposition": f"attachment; filename*=UTF-8''{quote(document.filename)}",
            "cache-control": "no-store",
        },
    )


@router.post("/boards/cases/{case_id}/documents/{document_id}/remove")
def document_remove(
    request: Request,
    case_id: int,
    document_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.CASE_EDIT)],
) -> Response:
    """Take a document off a draft."""
    case = _case(ctx, case_id, BoardAction.CASE_EDIT)
    return _act(
        request,
        ctx,
        case,
        "documents",
        lambda: case_files.remove_document(ctx.db, ctx.actor, case, document_id, ctx.now),
    )


@router.post("/boards/cases/{case_id}/studies")
def study_attach(
    request: Request,
    case_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.CASE_EDIT)],
    study: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Attach one of the patient's studies in the archive to a draft."""
    case = _case(ctx, case_id, BoardAction.CASE_EDIT)
    return _act(
        request,
        ctx,
        case,
        "studies",
        lambda: case_files.attach_study(ctx.db, ctx.principal, ctx.actor, case, study, ctx.now),
    )


@router.post("/boards/cases/{case_id}/submit")
def case_submit(
    request: Request, case_id: int, ctx: Annotated[Ctx, gate(BoardAction.CASE_EDIT)]
) -> Response:
    """Submit a complete draft to its board."""
    case = _case(ctx, case_id, BoardAction.CASE_EDIT)
    return _act(
        request,
        ctx,
        case,
        "state",
        lambda: case_store.submit(ctx.db, ctx.actor, case, ctx.now),
    )


@router.post("/boards/cases/{case_id}/withdraw")
def case_withdraw(
    request: Request,
    case_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.CASE_EDIT)],
    reason: Long = "",
) -> Response:
    """The case will not be presented."""
    case = _case(ctx, case_id, BoardAction.CASE_EDIT)
    return _act(
        request,
        ctx,
        case,
        "state",
        lambda: case_store.withdraw(ctx.db, ctx.actor, case, reason, ctx.now),
        {"reason": reason},
    )


def _meeting_id(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise InvalidInput(_("Choose a meeting of this board.")) from None


@router.post("/boards/cases/{case_id}/list")
def case_list(
    request: Request,
    case_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.AGENDA_MANAGE)],
    meeting_id: Short = "",
    back: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Put a submitted case on a coming meeting's agenda."""
    case = _case(ctx, case_id, BoardAction.AGENDA_MANAGE)

    def run() -> None:
        meeting = case_store.get_meeting(ctx.db, _meeting_id(meeting_id))
        case_store.list_on_meeting(ctx.db, ctx.actor, case, meeting, ctx.now)

    if back == "agenda" and meeting_id.strip().isdigit():
        meeting = case_store.get_meeting(ctx.db, int(meeting_id))
        return _agenda_act(request, ctx, meeting, run)
    return _act(request, ctx, case, "agenda", run, {"meeting_id": meeting_id})


@router.post("/boards/cases/{case_id}/postpone")
def case_postpone(
    request: Request,
    case_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.AGENDA_MANAGE)],
    reason: Long = "",
) -> Response:
    """Postpone a listed case: it goes onto the board's next meeting."""
    case = _case(ctx, case_id, BoardAction.AGENDA_MANAGE)
    return _act(
        request,
        ctx,
        case,
        "agenda",
        lambda: case_store.postpone(ctx.db, ctx.actor, case, reason, ctx.now),
        {"reason": reason},
    )


@router.post("/boards/cases/{case_id}/record")
def case_record(
    request: Request,
    case_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.AGENDA_MANAGE)],
    guideline: Long = "",
) -> Response:
    """Record a listed case within guidelines without discussion, as the charter allows."""
    case = _case(ctx, case_id, BoardAction.AGENDA_MANAGE)
    return _act(
        request,
        ctx,
        case,
        "agenda",
        lambda: case_store.record_without_discussion(ctx.db, ctx.actor, case, guideline, ctx.now),
        {"guideline": guideline},
    )


# --- a meeting's agenda ---------------------------------------------------------------------------


def _agenda_meeting(ctx: Ctx, meeting_id: int) -> tuple[BoardMeeting, Board]:
    meeting = case_store.get_meeting(ctx.db, meeting_id)
    board = registry.get_board(ctx.db, meeting.board_id)
    ctx.authorize(BoardAction.AGENDA_MANAGE, case_store.agenda_target(ctx.db, board))
    return meeting, board


def _agenda_view(
    request: Request,
    ctx: Ctx,
    meeting: BoardMeeting,
    error: str = "",
    status: int = 200,
) -> Response:
    board = registry.get_board(ctx.db, meeting.board_id)
    forecast = agenda.forecast(ctx.db, board, meeting)
    waiting = case_store.waiting_cases(ctx.db, board)
    shown = [item.case for item in forecast.items] + waiting
    decision = ctx.decisions[-1] if ctx.decisions else None
    outcome = ctx.outcome(decision) if decision is not None else "success"
    case_store.record_views(ctx.db, ctx.actor, board, shown, outcome, f"agenda {meeting.key}")
    ctx.commit()
    wanted = {c.patient_id for c in shown}
    found = list(ctx.db.scalars(select(Patient).where(Patient.id.in_(wanted)))) if wanted else []
    names: dict[int, Patient | None] = {p.id: p for p in found}
    return render_page(
        request,
        "boards/agenda.html",
        ctx,
        status,
        **specialties.FOR_PAGES,
        board=board,
        meeting=meeting,
        forecast=forecast,
        waiting=waiting,
        patients=names,
        members=registry.members_of(ctx.db, board),
        error=error,
        **_labels(),
    )


def _agenda_act(
    request: Request, ctx: Ctx, meeting: BoardMeeting, run: Callable[[], object]
) -> Response:
    def done() -> None:
        run()
        ctx.commit()

    def again(exc: ConciliumError) -> Response:
        fresh = case_store.get_meeting(ctx.db, meeting.id)
        return _agenda_view(request, ctx, fresh, exc.detail, exc.status)

    return run_form_action(ctx, done, again, f"/boards/meetings/{meeting.id}/agenda")


@router.get("/boards/meetings/{meeting_id}/agenda")
def agenda_page(
    request: Request, meeting_id: int, ctx: Annotated[Ctx, gate(BoardAction.AGENDA_MANAGE)]
) -> Response:
    """A meeting's agenda: order, minutes and specialties per case, and which cases would
    miss their quorum; the cases waiting to be listed."""
    meeting, _board = _agenda_meeting(ctx, meeting_id)
    return _agenda_view(request, ctx, meeting)


@router.post("/boards/meetings/{meeting_id}/agenda")
def agenda_save(
    request: Request,
    meeting_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.AGENDA_MANAGE)],
    case: Annotated[list[str] | None, Form(max_length=16)] = None,
    place: Annotated[list[str] | None, Form(max_length=8)] = None,
    minutes: Annotated[list[str] | None, Form(max_length=8)] = None,
    specialties: Annotated[list[str] | None, Form(max_length=1000)] = None,
) -> Response:
    """Save the agenda: each case's place, minutes and the specialties it needs."""
    meeting, _board = _agenda_meeting(ctx, meeting_id)
    ids, places, times, needs = case or [], place or [], minutes or [], specialties or []

    def run() -> None:
        if not len(ids) == len(places) == len(times) == len(needs):
            raise InvalidInput(_("Give each case of the agenda a place, each once."))
        rows = []
        for raw_id, raw_place, raw_minutes, raw_needs in zip(
            ids, places, times, needs, strict=True
        ):
            try:
                case_id, order, count = int(raw_id), int(raw_place), int(raw_minutes)
            except ValueError:
                raise InvalidInput(
                    _("Places and minutes are whole numbers (e.g. 1, 2, 3 and 10).")
                ) from None
            rows.append((order, case_id, count, registry.parse_specialties(raw_needs)))
        listed = {c.id: c for c in case_store.agenda_of(ctx.db, meeting)}
        for _order, case_id, count, needed in rows:
            if case_id not in listed:
                raise InvalidInput(_("Give each case of the agenda a place, each once."))
            if listed[case_id].status == CaseStatus.ON_AGENDA.value:
                case_store.plan_case(ctx.db, ctx.actor, listed[case_id], count, needed, ctx.now)
        ordered = [case_id for _order, case_id, _c, _n in sorted(rows, key=lambda r: (r[0], r[1]))]
        case_store.reorder(ctx.db, ctx.actor, meeting, ordered, ctx.now)

    return _agenda_act(request, ctx, meeting, run)
