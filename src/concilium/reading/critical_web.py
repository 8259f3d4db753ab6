"""The acknowledgement page of a critical or actionable finding: the physician it was
communicated to (and only they: ``reading.finding.acknowledge``, the target being theirs)
reads the level, the finding and the exam, opens the report and acknowledges it. Every
view, acknowledgement and refusal is audited with the patient
(:mod:`concilium.reading.critical_findings`)."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from concilium.platform import audit
from concilium.platform.errors import NotFound
from concilium.platform.i18n import _, show_datetime
from concilium.platform.policy import Target
from concilium.platform.tables import Site, User
from concilium.reading import critical_findings
from concilium.reading.actions import ReadingAction
from concilium.reading.groups import site_zone
from concilium.reading.tables import (
    CriticalFindingNotice,
    ImagingOrderRecord,
    ReadingReport,
    ReadingReportVersion,
)
from concilium.web.context import Ctx, gate
from concilium.web.forms import redirect_to
from concilium.web.rendering import render_page

router = APIRouter(include_in_schema=False)
"""The acknowledgement page."""

Found = tuple[CriticalFindingNotice, ImagingOrderRecord, ReadingReport, ReadingReportVersion]


def _found(ctx: Ctx, notice_id: int) -> Found:
    """The communication and its exam, once the policy let the caller acknowledge it."""
    notice = ctx.db.get(CriticalFindingNotice, notice_id)
    report = ctx.db.get(ReadingReport, notice.report_id) if notice else None
    order = ctx.db.get(ImagingOrderRecord, report.order_id) if report else None
    version = ctx.db.get(ReadingReportVersion, notice.version_id) if notice else None
    if notice is None or report is None or order is None or version is None:
        raise NotFound(_("no such finding"))
    ctx.authorize(
        ReadingAction.FINDING_ACKNOWLEDGE,
        Target(
            kind=critical_findings.NOTICE_KIND,
            id=str(notice.id),
            site_ids=frozenset({order.site_id}),
            patient_id=order.patient_id,
            owner_user_id=notice.recipient_id,
        ),
    )
    return notice, order, report, version


@router.get("/reading/findings/{notice_id}")
def finding_page(
    request: Request,
    notice_id: int,
    ctx: Annotated[Ctx, gate(ReadingAction.FINDING_ACKNOWLEDGE)],
) -> Response:
    """The finding communicated to the caller, with the button to acknowledge it."""
    notice, order, report, version = _found(ctx, notice_id)
    audit.record(
        ctx.db,
        ctx.actor,
        "reading.finding.read",
        "success",
        object_kind=critical_findings.NOTICE_KIND,
        object_id=notice.id,
        patient_id=order.patient_id,
        site_id=order.site_id,
    )
    ctx.commit()
    site = ctx.db.get(Site, order.site_id)
    where = site_zone(site) if site is not None else ZoneInfo("Europe/Paris")
    signer = ctx.db.get(User, version.signed_by_id)
    return render_page(
        request,
        "reading/finding.html",
        ctx,
        notice=notice,
        order=order,
        site=site,
        level=critical_findings.LEVELS[notice.level],
        finding=version.finding_text,
        signed_by=signer.full_name if signer else "",
        signed_at=show_datetime(version.signed_at, where),
        report_link=f"/reading/reports/{report.id}",
        record=critical_findings.communication_lines(ctx.db, [notice], where),
    )


@router.post("/reading/findings/{notice_id}/acknowledge")
def finding_acknowledge(
    notice_id: int, ctx: Annotated[Ctx, gate(ReadingAction.FINDING_ACKNOWLEDGE)]
) -> Response:
    """The physician acknowledges the finding; the time is recorded (the first time)."""
    notice, order, report, _version = _found(ctx, notice_id)
    critical_findings.acknowledge(ctx.db, ctx.actor, order, notice, ctx.now)
    ctx.commit()
    return redirect_to(f"/reading/reports/{report.id}")
