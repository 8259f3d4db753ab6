"""The JSON API of a case's decision (``/api/v1/boards/cases/{case}/...``): read the
decision and its versions, validate it with the facilitator's second factor, sign an
addendum. Described in the OpenAPI document (``api_router``).

The same rules as the meeting's page (:mod:`concilium.boards.decisions`), answered as
problems (RFC 9457): a field missing or wrong, 422; the second factor missing or wrong, 403
(audited, counted like a sign-in failure); access refused by the policy, 403 (audited,
with the patient); no quorum, 409 with ``reason`` ``quorum``, the specialties missing in
words (``missing``) and as the codes of each requirement unmet (``missing_requirements``),
and the meeting the case was moved onto (``postponed_to``); a validated decision changed
otherwise than by an addendum, 409 with ``reason`` ``immutable``. Reading is an audited
view of the case. The answers carry the decision, never the patient's identity.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from concilium.boards import attendance, case_store, decisions, fiche, registry
from concilium.boards.actions import BoardAction
from concilium.boards.cases import CaseStatus
from concilium.boards.meeting_pages import confirm_signature
from concilium.boards.tables import BoardCase, BoardDecision
from concilium.platform.errors import Conflict
from concilium.platform.i18n import _, show_date, zone
from concilium.platform.tables import User
from concilium.web.context import Ctx, gate
from concilium.web.problems import problem

api_router = APIRouter(tags=["boards"])
"""The decisions' JSON API, described by the OpenAPI document."""

_API = "/api/v1/boards"
_TEXT = case_store.MAX_TEXT


class DecisionBody(BaseModel):
    """The decision form's fields, and the facilitator's authenticator code."""

    proposal: str = Field(max_length=_TEXT, description="The collective proposal.")
    guideline: str = Field(max_length=_TEXT, description="The guideline or reference used.")
    outside_guidelines: bool = False
    justification: str = Field("", max_length=_TEXT, description="Needed outside guidelines.")
    trial: str = Field("", max_length=_TEXT, description="A clinical trial proposed.")
    further_exams: str = Field("", max_length=_TEXT)
    represent: bool = Field(False, description="To be presented again.")
    referent_id: int | None = Field(None, description="The physician following the patient.")
    code: str = Field("", max_length=16, description="A current code of the signer's TOTP.")

    def fields(self) -> decisions.DecisionFields:
        return decisions.DecisionFields(
            proposal=self.proposal,
            guideline=self.guideline,
            outside_guidelines=self.outside_guidelines,
            justification=self.justification,
            trial=self.trial,
            further_exams=self.further_exams,
            represent=self.represent,
            referent_id=self.referent_id,
        )


class AddendumBody(DecisionBody):
    """An addendum: the corrected decision and what it corrects."""

    reason: str = Field(max_length=_TEXT, description="What the addendum corrects.")


def _names(ctx: Ctx, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = ctx.db.query(User.id, User.full_name).filter(User.id.in_(ids))
    return {int(i): str(name) for i, name in rows}


def _version_json(row: BoardDecision, names: dict[int, str]) -> dict[str, Any]:
    return {
        "version": row.version,
        "meeting_id": row.meeting_id,
        "proposal": row.proposal,
        "guideline": row.guideline,
        "outside_guidelines": row.outside_guidelines,
        "justification": row.justification,
        "trial": row.trial,
        "further_exams": row.further_exams,
        "represent": row.represent,
        "referent": {"id": row.referent_id, "name": names.get(row.referent_id, "")},
        "reason": row.reason,
        "participants": [
            {
                "id": int(p["user"]),
                "name": names.get(int(p["user"]), ""),
                "specialty": p.get("specialty") or None,
            }
            for p in row.participants
        ],
        "discussion_started_at": row.discussion_started_at.isoformat(),
        "signed_by": {"id": row.signed_by_id, "name": names.get(row.signed_by_id, "")},
        "signed_at": row.signed_at.isoformat(),
        "digest": row.digest,
        "fiche": f"/boards/cases/{row.case_id}/fiche?version={row.version}",
    }


def _decision_json(ctx: Ctx, case: BoardCase) -> dict[str, Any]:
    versions = decisions.decisions_of(ctx.db, case)
    ids = {v.referent_id for v in versions} | {v.signed_by_id for v in versions}
    ids |= {int(p["user"]) for v in versions for p in v.participants}
    names = _names(ctx, ids)
    return {
        "case": {"id": case.id, "board_id": case.board_id, "status": case.status},
        "intact": decisions.intact(versions),
        "versions": [_version_json(v, names) for v in versions],
    }


def _case_to_run(ctx: Ctx, case_id: int) -> BoardCase:
    case = case_store.get_case(ctx.db, case_id)
    board = registry.get_board(ctx.db, case.board_id)
    ctx.authorize(BoardAction.MEETING_RUN, attendance.run_target(ctx.db, board))
    return case


def _immutable(request: Request, detail: str) -> JSONResponse:
    return problem(409, Conflict.title, detail, request, reason="immutable")


@api_router.get(_API + "/cases/{case_id}/decision")
def decision_read(case_id: int, ctx: Annotated[Ctx, gate(BoardAction.CASE_READ)]) -> dict[str, Any]:
    """The case's decision and its addenda, oldest first, with whether their chain of
    digests holds (an audited view of the case)."""
    case = case_store.get_case(ctx.db, case_id)
    granted = ctx.authorize(BoardAction.CASE_READ, case_store.case_target(ctx.db, case))
    case_store.record_view(ctx.db, ctx.actor, case, ctx.outcome(granted), "decision (API)")
    body = _decision_json(ctx, case)
    ctx.commit()
    return body


@api_router.post(_API + "/cases/{case_id}/decision", status_code=201)
def decision_validate(
    request: Request,
    case_id: int,
    body: DecisionBody,
    ctx: Annotated[Ctx, gate(BoardAction.MEETING_RUN)],
) -> Response:
    """Validate the decision of the case under discussion, signed with the facilitator's
    second factor; without quorum, 409 naming the specialties missing, the case moved onto
    the next meeting."""
    case = _case_to_run(ctx, case_id)
    if case.status == CaseStatus.DECIDED.value:
        return _immutable(request, _("A validated decision is corrected by an addendum only."))
    if case.status != CaseStatus.DISCUSSED.value:
        raise Conflict(_("Only a case under discussion is decided."))
    fields = body.fields()
    decisions.check_fields(ctx.db, case, fields)
    confirm_signature(ctx, body.code, case)
    outcome = decisions.validate(ctx.db, ctx.actor, case, fields, ctx.now)
    if outcome.decision is not None:
        fiche.file_and_send(ctx.db, ctx.runtime, case, outcome.decision, [], ctx.now)
    ctx.commit()
    if outcome.decision is None:
        board = registry.get_board(ctx.db, case.board_id)
        target = outcome.postponed_to
        detail = _(
            "The quorum is not met for this case (missing: %(missing)s): it is "
            "postponed to the meeting of %(day)s."
        ) % {
            "missing": "; ".join(outcome.missing),
            "day": show_date(target.starts_at, zone(board.timezone), "long") if target else "—",
        }
        return problem(
            409,
            Conflict.title,
            detail,
            request,
            reason="quorum",
            missing=list(outcome.missing),
            missing_requirements=[sorted(r) for r in outcome.quorum.missing_required],
            postponed_to=(
                {"meeting_id": target.id, "starts_at": target.starts_at.isoformat()}
                if target
                else None
            ),
        )
    return JSONResponse(_decision_json(ctx, case), status_code=201)


@api_router.post(_API + "/cases/{case_id}/addenda", status_code=201)
def addendum_sign(
    request: Request,
    case_id: int,
    body: AddendumBody,
    ctx: Annotated[Ctx, gate(BoardAction.MEETING_RUN)],
) -> Response:
    """Correct the validated decision with a signed addendum, its next version."""
    case = _case_to_run(ctx, case_id)
    fields = body.fields()
    if case.status != CaseStatus.DECIDED.value:
        raise Conflict(_("Only a validated decision is corrected by an addendum."))
    decisions.check_fields(ctx.db, case, fields)
    confirm_signature(ctx, body.code, case)
    earlier = decisions.decisions_of(ctx.db, case)
    row = decisions.add_addendum(ctx.db, ctx.actor, case, fields, body.reason, ctx.now)
    fiche.file_and_send(ctx.db, ctx.runtime, case, row, earlier, ctx.now)
    ctx.commit()
    return JSONResponse(_decision_json(ctx, case), status_code=201)
