"""The page of a meeting as it runs: attendance, the case under discussion with its live
quorum, and the decision form; the decision and its addenda signed with the facilitator's
second factor.

The board's members and the organising site's coordinators see the page; only the board's
facilitators record attendance, take up a case, validate a decision and sign addenda
(:data:`BoardAction.MEETING_RUN`). Attendance is taken from who has the meeting's room open
(its websocket, :mod:`concilium.boards.room_socket`), each stretch validated here by the
facilitator, who may also record an arrival or a departure by hand. The page also holds the
synchronised image view (the built-in viewer of imaging, driven through the room). A bad
value shows the page again with what to write (422); a missing second factor is refused
(403, audited); a validation without quorum is refused (409) and the case is already on the
next meeting, the missing specialties named. Every case shown is an audited view.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response

from concilium import imaging
from concilium.boards import (
    attendance,
    case_pages,
    case_store,
    decisions,
    fhir_export,
    fiche,
    registry,
    specialties,
)
from concilium.boards.actions import BoardAction
from concilium.boards.cases import CaseStatus
from concilium.boards.process import BoardsProcess
from concilium.boards.tables import BoardCase, BoardMeeting
from concilium.platform.errors import (
    ConciliumError,
    Conflict,
    InvalidInput,
    NotFound,
    SecondFactorRefused,
)
from concilium.platform.fhir import FHIR_JSON
from concilium.platform.i18n import _, show_date, zone
from concilium.platform.policy import decide
from concilium.platform.tables import Patient, User
from concilium.web.context import Ctx, gate, process_of
from concilium.web.forms import redirect_to
from concilium.web.rendering import render_page
from concilium.web.second_factor import Signed, confirm_second_factor

router = APIRouter(include_in_schema=False)

Long = Annotated[str, Form(max_length=case_store.MAX_TEXT)]
Short = Annotated[str, Form(max_length=200)]


def _meeting(ctx: Ctx, meeting_id: int, action: Any) -> BoardMeeting:
    meeting = case_store.get_meeting(ctx.db, meeting_id)
    board = registry.get_board(ctx.db, meeting.board_id)
    if action == BoardAction.MEETING_RUN:
        ctx.authorize(action, attendance.run_target(ctx.db, board))
    else:
        ctx.authorize(action, attendance.meeting_target(ctx.db, board))
    return meeting


def _number(text: str, message: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise InvalidInput(message) from None


def decision_fields(form: dict[str, str]) -> decisions.DecisionFields:
    """The decision form as typed."""
    referent = form.get("referent_id", "").strip()
    return decisions.DecisionFields(
        proposal=form.get("proposal", ""),
        guideline=form.get("guideline", ""),
        outside_guidelines=bool(form.get("outside_guidelines")),
        justification=form.get("justification", ""),
        trial=form.get("trial", ""),
        further_exams=form.get("further_exams", ""),
        represent=bool(form.get("represent")),
        referent_id=int(referent) if referent.isdigit() else None,
    )


def confirm_signature(ctx: Ctx, code: str, case: BoardCase) -> None:
    """Signing a decision needs the signer's second factor once more."""
    board = registry.get_board(ctx.db, case.board_id)
    signed = Signed(
        str(BoardAction.MEETING_RUN), case_store.CASE_KIND, case.id, case.patient_id, board.site_id
    )
    confirm_second_factor(
        ctx,
        code,
        signed,
        refused=_("Confirm with a current code of your authenticator to sign the decision."),
        not_enrolled=_("Enrol a second factor on your account first, to sign decisions."),
    )


def _people(ctx: Ctx, user_ids: set[int]) -> dict[int, User]:
    found = {uid: ctx.db.get(User, uid) for uid in user_ids}
    return {uid: user for uid, user in found.items() if user is not None}


def _view(
    request: Request,
    ctx: Ctx,
    meeting: BoardMeeting,
    error: str = "",
    status: int = 200,
    form: dict[str, str] | None = None,
    section: str = "",
) -> Response:
    board = registry.get_board(ctx.db, meeting.board_id)
    decision = ctx.authorize(BoardAction.CASE_READ, attendance.meeting_target(ctx.db, board))
    may_run = decide(
        ctx.principal, BoardAction.MEETING_RUN, attendance.run_target(ctx.db, board)
    ).allowed
    listed = case_store.agenda_of(ctx.db, meeting)
    current = attendance.under_discussion(ctx.db, meeting)
    for case in listed:
        case_store.record_view(
            ctx.db, ctx.actor, case, ctx.outcome(decision), f"meeting {meeting.key}"
        )
    ctx.commit()
    members = registry.members_of(ctx.db, board)
    rows = attendance.attendance_of(ctx.db, meeting)
    present = {r.user_id for r in rows if r.left_at is None}
    live = None
    discussion = None
    if current is not None:
        discussion = attendance.discussion_of(ctx.db, current)
        if discussion is not None:
            live = attendance.case_quorum(ctx.db, board, current, discussion.started_at, ctx.now)
    people = _people(
        ctx,
        {m.user_id for m in members}
        | {r.user_id for r in rows}
        | ({current.referrer_id} if current else set()),
    )
    return render_page(
        request,
        "boards/meeting.html",
        ctx,
        status,
        **specialties.FOR_PAGES,
        board=board,
        meeting=meeting,
        listed=listed,
        patients={c.patient_id: ctx.db.get(Patient, c.patient_id) for c in listed},
        current=current,
        discussion=discussion,
        live=live,
        missing=attendance.missing_specialties(live) if live is not None else [],
        members=members,
        rows=rows,
        present=present,
        people=people,
        referents=decisions.referent_ids(ctx.db, current) if current else [],
        studies=case_store.studies_of(ctx.db, current) if current else [],
        presets=imaging.WINDOW_PRESETS,
        me=ctx.user.id,
        may_run=may_run,
        form=form or {},
        error=error,
        section=section,
        status_labels=case_store.STATUS_LABELS,
    )


def _act(
    request: Request,
    ctx: Ctx,
    meeting: BoardMeeting,
    section: str,
    run: Callable[[], object],
    form: dict[str, str] | None = None,
) -> Response:
    """Run one of the meeting page's forms: a refusal shows the page again with the message
    by that form; success comes back to the page."""
    try:
        run()
        ctx.commit()
    except ConciliumError as exc:
        ctx.db.rollback()
        if exc.status in {401, 404} or (
            exc.status == 403 and not isinstance(exc, SecondFactorRefused)
        ):
            raise
        fresh = case_store.get_meeting(ctx.db, meeting.id)
        if section == "decision" and exc.status == 409:
            # Refused for want of quorum, the case went onto the next meeting.
            process_of(request.app, BoardsProcess).rooms.publish(meeting.id, {"type": "case"})
        return _view(request, ctx, fresh, exc.detail, exc.status, form, section)
    if section in {"agenda", "decision"}:
        # The case under discussion changed: every page of the room shows the new one.
        process_of(request.app, BoardsProcess).rooms.publish(meeting.id, {"type": "case"})
    return redirect_to(f"/boards/meetings/{meeting.id}#{section}")


@router.get("/boards/meetings/{meeting_id}")
def meeting_page(
    request: Request, meeting_id: int, ctx: Annotated[Ctx, gate(BoardAction.CASE_READ)]
) -> Response:
    """A meeting: who is there, its agenda, the case under discussion with its live quorum
    (specialties present and missing) and, for the facilitator, the decision form."""
    return _view(request, ctx, _meeting(ctx, meeting_id, BoardAction.CASE_READ))


@router.post("/boards/meetings/{meeting_id}/attendance")
def attendance_record(
    request: Request,
    meeting_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.MEETING_RUN)],
    user_id: Short = "",
    event: Short = "",
    at: Short = "",
) -> Response:
    """The facilitator records that a member arrived or left, at a time (empty: now)."""
    meeting = _meeting(ctx, meeting_id, BoardAction.MEETING_RUN)

    def run() -> None:
        board = registry.get_board(ctx.db, meeting.board_id)
        who = _number(user_id, _("Choose a member of the board."))
        when = attendance.parse_time(at, board, meeting, ctx.now)
        if event == "arrived":
            attendance.arrive(ctx.db, ctx.actor, meeting, who, when, ctx.now)
        elif event == "left":
            attendance.leave(ctx.db, ctx.actor, meeting, who, when, ctx.now)
        else:
            raise InvalidInput(_("Say whether the member arrived or left."))

    return _act(request, ctx, meeting, "attendance", run, {"user_id": user_id, "at": at})


@router.post("/boards/meetings/{meeting_id}/attendance/{row_id}/validate")
def attendance_validate(
    request: Request,
    meeting_id: int,
    row_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.MEETING_RUN)],
) -> Response:
    """The facilitator validates a presence taken from the room: it counts from then on."""
    meeting = _meeting(ctx, meeting_id, BoardAction.MEETING_RUN)

    def run() -> None:
        attendance.validate(ctx.db, ctx.actor, meeting, row_id, ctx.now)

    return _act(request, ctx, meeting, "attendance", run)


@router.post("/boards/meetings/{meeting_id}/discuss")
def case_take_up(
    request: Request,
    meeting_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.MEETING_RUN)],
    case_id: Short = "",
) -> Response:
    """The facilitator takes up a case of the agenda: its discussion starts now."""
    meeting = _meeting(ctx, meeting_id, BoardAction.MEETING_RUN)

    def run() -> None:
        case = case_store.get_case(
            ctx.db, _number(case_id, _("Choose a case of this meeting's agenda."))
        )
        attendance.take_up(ctx.db, ctx.actor, meeting, case, ctx.now)

    return _act(request, ctx, meeting, "agenda", run)


DecisionForm = dict[str, str]


def _decision_form(
    proposal: str,
    guideline: str,
    outside_guidelines: str,
    justification: str,
    trial: str,
    further_exams: str,
    represent: str,
    referent_id: str,
) -> DecisionForm:
    return {
        "proposal": proposal,
        "guideline": guideline,
        "outside_guidelines": outside_guidelines,
        "justification": justification,
        "trial": trial,
        "further_exams": further_exams,
        "represent": represent,
        "referent_id": referent_id,
    }


@router.post("/boards/cases/{case_id}/decision")
def decision_validate(
    request: Request,
    case_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.MEETING_RUN)],
    proposal: Long = "",
    guideline: Long = "",
    outside_guidelines: Short = "",
    justification: Long = "",
    trial: Long = "",
    further_exams: Long = "",
    represent: Short = "",
    referent_id: Short = "",
    code: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """The facilitator validates the decision with their second factor, the case's quorum
    met; otherwise the case goes onto the next meeting (409)."""
    case = case_store.get_case(ctx.db, case_id)
    board = registry.get_board(ctx.db, case.board_id)
    ctx.authorize(BoardAction.MEETING_RUN, attendance.run_target(ctx.db, board))
    if case.meeting_id is None:
        raise Conflict(_("Only a case under discussion is decided."))
    meeting = case_store.get_meeting(ctx.db, case.meeting_id)
    form = _decision_form(
        proposal,
        guideline,
        outside_guidelines,
        justification,
        trial,
        further_exams,
        represent,
        referent_id,
    )

    def run() -> None:
        fields = decision_fields(form)
        if case.status != CaseStatus.DISCUSSED.value:
            raise Conflict(_("Only a case under discussion is decided."))
        decisions.check_fields(ctx.db, case, fields)
        confirm_signature(ctx, code, case)
        outcome = decisions.validate(ctx.db, ctx.actor, case, fields, ctx.now)
        if outcome.decision is not None:
            fiche.file_and_send(ctx.db, ctx.runtime, case, outcome.decision, [], ctx.now)
        ctx.commit()
        if outcome.decision is None:
            target = outcome.postponed_to
            raise Conflict(
                _(
                    "The quorum is not met for this case (missing: %(missing)s): it is "
                    "postponed to the meeting of %(day)s."
                )
                % {
                    "missing": "; ".join(outcome.missing),
                    "day": show_date(target.starts_at, zone(board.timezone), "long")
                    if target
                    else "—",
                }
            )

    return _act(request, ctx, meeting, "decision", run, form)


@router.post("/boards/cases/{case_id}/addenda")
def addendum_sign(
    request: Request,
    case_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.MEETING_RUN)],
    proposal: Long = "",
    guideline: Long = "",
    outside_guidelines: Short = "",
    justification: Long = "",
    trial: Long = "",
    further_exams: Long = "",
    represent: Short = "",
    referent_id: Short = "",
    reason: Long = "",
    code: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """The facilitator corrects a validated decision with a signed addendum."""
    case = case_store.get_case(ctx.db, case_id)
    board = registry.get_board(ctx.db, case.board_id)
    ctx.authorize(BoardAction.MEETING_RUN, attendance.run_target(ctx.db, board))
    form = _decision_form(
        proposal,
        guideline,
        outside_guidelines,
        justification,
        trial,
        further_exams,
        represent,
        referent_id,
    )
    form["reason"] = reason

    def run() -> None:
        fields = decision_fields(form)
        if not reason.strip():
            raise InvalidInput(_("Say what the addendum corrects."))
        decisions.check_fields(ctx.db, case, fields)
        confirm_signature(ctx, code, case)
        earlier = decisions.decisions_of(ctx.db, case)
        row = decisions.add_addendum(ctx.db, ctx.actor, case, fields, reason, ctx.now)
        fiche.file_and_send(ctx.db, ctx.runtime, case, row, earlier, ctx.now)

    return case_pages.act_on_case(request, ctx, case, "decision", run, form)


@router.get("/boards/cases/{case_id}/fiche")
def fiche_open(
    case_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.CASE_READ)],
    version: int = 0,
) -> Response:
    """The fiche RCP of a version of the case's decision (the latest by default), as it was
    sent; the view is audited."""
    case = case_store.get_case(ctx.db, case_id)
    decision = ctx.authorize(BoardAction.CASE_READ, case_store.case_target(ctx.db, case))
    versions = decisions.decisions_of(ctx.db, case)
    chosen = [v for v in versions if v.version == version] if version else versions[-1:]
    if not chosen or chosen[0].fiche_pdf is None:
        raise NotFound(_("No fiche for this case."))
    row = chosen[0]
    case_store.record_view(ctx.db, ctx.actor, case, ctx.outcome(decision), f"fiche v{row.version}")
    ctx.commit()
    name = fiche.filename(case, row)
    return Response(
        row.fiche_pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/boards/cases/{case_id}/fhir")
def decision_fhir(
    case_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.CASE_READ)],
    version: int = 0,
) -> Response:
    """A version of the case's validated decision (the latest by default) as a FHIR R4
    ``Bundle``: the CarePlan proposed, the meeting's Encounter, the Communication to the
    general practitioner (``boards.fhir_export``); the export is audited."""
    case = case_store.get_case(ctx.db, case_id)
    decision = ctx.authorize(BoardAction.CASE_READ, case_store.case_target(ctx.db, case))
    versions = decisions.decisions_of(ctx.db, case)
    chosen = [v for v in versions if v.version == version] if version else versions[-1:]
    if not chosen:
        raise NotFound(_("No decision for this case."))
    row = chosen[0]
    bundle = fhir_export.decision_bundle(ctx.db, case, row, ctx.now)
    case_store.record_view(ctx.db, ctx.actor, case, ctx.outcome(decision), f"fhir v{row.version}")
    ctx.commit()
    return JSONResponse(
        bundle,
        media_type=FHIR_JSON,
        headers={
            "Content-Disposition": f'attachment; filename="rcp-{case.id}-v{row.version}.fhir.json"'
        },
    )
