"""The built-in image viewer: one study, read through the archive's own DICOMweb routes.

The page itself carries no pixels: the browser lists series with QIDO-RS, reads geometry,
windows and cine timing from WADO-RS ``metadata`` and draws frames fetched from WADO-RS
``rendered`` and ``thumbnail`` (PS3.18 10.4.1.1.3), each of those requests authorised and
audited by the DICOMweb routes. This route decides only whether the page may open: a study
the caller may not read does not exist for them (404), as on WADO-RS.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from concilium.imaging.access import STUDY_KIND, study_target
from concilium.imaging.actions import ImagingAction
from concilium.imaging.archive import study_by_uid
from concilium.imaging.tables import ImagingStudy
from concilium.imaging.windows import WINDOW_PRESETS
from concilium.platform import audit
from concilium.platform.errors import NotFound
from concilium.platform.i18n import _
from concilium.platform.policy import Decision, decide
from concilium.web.context import Ctx, gate, record_refusal
from concilium.web.rendering import render_page

__all__ = ["WINDOW_PRESETS", "router"]

router = APIRouter(include_in_schema=False)


def _visible_study(ctx: Ctx, study_uid: str) -> tuple[ImagingStudy, Decision]:
    """The study once the policy lets ``ctx`` read it; absent and refused both raise 404.

    A refusal is audited (as ``ctx.authorize`` does) but answered as not found, so a person
    of another site learns nothing of which studies exist.
    """
    study = study_by_uid(ctx.db, study_uid)
    if study is None:
        raise NotFound(_("no such study"))
    target = study_target(ctx.db, study, ctx.now)
    decision = decide(ctx.principal, ImagingAction.STUDY_READ, target)
    if not decision.allowed:
        record_refusal(ctx.db, ctx.actor, ImagingAction.STUDY_READ, target, decision.reason)
        raise NotFound(_("no such study"))
    ctx.decisions.append(decision)
    return study, decision


@router.get("/imaging/studies/{study}/viewer")
def study_viewer(
    request: Request, study: str, ctx: Annotated[Ctx, gate(ImagingAction.STUDY_READ)]
) -> Response:
    """The viewer page of one study: series thumbnails, slices, windows, zoom, measure, cine."""
    found, decision = _visible_study(ctx, study)
    audit.record(
        ctx.db,
        ctx.actor,
        "study.view",
        ctx.outcome(decision),
        object_kind=STUDY_KIND,
        object_id=found.study_instance_uid,
        patient_id=found.patient_id,
        site_id=found.site_id,
        detail={"basis": decision.basis},
    )
    ctx.commit()
    return render_page(
        request,
        "imaging/viewer.html",
        ctx,
        study=found,
        presets=WINDOW_PRESETS,
    )
