"""The report's pages: the exam's page with the report editor beside the images, and the
signed report as its referring physician reads it, with its PDF.

The exam's page (``reading.exam.read``) shows the template's sections, the patient's
prior report (the latest final report of another exam of theirs that the policy lets the
reader see), the signed versions, and for the radiologist holding the exam the buttons to
save the draft and to sign (preliminary or final) with a fresh code of their
authenticator; once final, the addendum form for the radiologists who may write
(``reading.report.write``). Signing with a wrong code is refused (403, audited and
counted as a failed sign-in); by someone not holding the exam, 409 (audited).

The signed report's page and its PDFs (``reading.report.read`` on
:func:`reading_list.report_target`) are the site's radiologists', the routed readers'
while they read, and the referring and requesting physicians' once a version is signed.
Every view and change is audited with the patient. A signed version is committed first,
then stored into the archive as an Encapsulated PDF (:mod:`concilium.reading.report_archive`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from concilium import imaging
from concilium.platform import audit, notifications
from concilium.platform.errors import ConciliumError, NotFound, SecondFactorRefused
from concilium.platform.i18n import N_, _, show_datetime
from concilium.platform.policy import decide
from concilium.platform.tables import Patient, Site, User
from concilium.reading import (
    critical_findings,
    reading_list,
    report_archive,
    report_pdf,
    reports,
    results,
)
from concilium.reading.actions import ReadingAction
from concilium.reading.assignments import assignment_of
from concilium.reading.groups import site_zone
from concilium.reading.report_templates import template_for
from concilium.reading.tables import (
    ImagingOrderRecord,
    ReadingAssignment,
    ReadingReport,
    ReadingReportVersion,
)
from concilium.reading.worklist_web import exam_of, exam_view
from concilium.web.context import Ctx, gate, process_of
from concilium.web.forms import redirect_to
from concilium.web.rendering import render_page
from concilium.web.second_factor import Signed, confirm_second_factor

router = APIRouter(include_in_schema=False)
"""The report's pages."""

READ = "reading.report.read"
"""Audit action of a view of a report (its patient's data)."""
SIGNED_NOTICE = N_("The report of exam %(accession)s (%(site)s) is signed: %(link)s")
REPORT_STATES = {
    reports.DRAFT: N_("Draft"),
    reports.PRELIMINARY: N_("Preliminary"),
    reports.FINAL: N_("Final"),
}
"""What the exam's page calls each state of a report."""
Code = Annotated[str, Form(max_length=16)]
Long = Annotated[str, Form(max_length=reports.MAX_TEXT)]
Short = Annotated[str, Form(max_length=16)]
Finding = Annotated[str, Form(max_length=critical_findings.MAX_FINDING)]


async def section_texts(request: Request) -> dict[str, str]:
    """The sections as typed: the form's ``s_<key>`` fields."""
    form = await request.form()
    return {
        key[2:]: value.replace("\r\n", "\n")
        for key, value in form.items()
        if key.startswith("s_") and isinstance(value, str)
    }


Texts = Annotated[dict[str, str], Depends(section_texts)]


def _zone_of(ctx: Ctx, order: ImagingOrderRecord) -> Any:
    site = ctx.db.get(Site, order.site_id)
    return site_zone(site) if site is not None else ZoneInfo("Europe/Paris")


def _name(ctx: Ctx, user_id: int | None) -> str:
    user = ctx.db.get(User, user_id) if user_id else None
    return user.full_name if user is not None else ""


def _version_json(
    ctx: Ctx, order: ImagingOrderRecord, report: ReadingReport, row: ReadingReportVersion
) -> dict[str, Any]:
    return {
        "version": row.version,
        "status": row.status,
        "label": report_pdf.STATUS_LABELS[row.status],
        "signed_by": _name(ctx, row.signed_by_id),
        "signed_at": show_datetime(row.signed_at, _zone_of(ctx, order), "short"),
        "digest": row.digest,
        "sections": [s for s in row.sections if str(s.get("text", "")).strip()],
        "addendum": row.addendum,
        "pdf": f"/reading/reports/{report.id}/versions/{row.version}/pdf",
        "archived": row.archived_at is not None,
        "finding": critical_findings.flag_line(row),
    }


def _audit_view(ctx: Ctx, order: ImagingOrderRecord, report: ReadingReport, what: str) -> None:
    audit.record(
        ctx.db,
        ctx.actor,
        READ,
        "success",
        object_kind=reports.REPORT_KIND,
        object_id=report.id,
        patient_id=order.patient_id,
        site_id=order.site_id,
        detail={"view": what},
    )


def _prior(
    ctx: Ctx, assignment: ReadingAssignment, order: ImagingOrderRecord
) -> dict[str, Any] | None:
    """The latest final report of the patient's other exams the reader may see: the
    routing that shares this exam with its readers shares the patient's earlier reports
    of the same site with them too; others as the policy says."""
    readers = reading_list.exam_target(ctx.db, assignment).shared_user_ids
    for prior_order, report, version in reports.prior_reports(ctx.db, order):
        prior_assignment = assignment_of(ctx.db, prior_order.id)
        if prior_assignment is None:
            continue
        target = reading_list.report_target(ctx.db, prior_assignment)
        if prior_order.site_id == order.site_id:
            target = replace(target, shared_user_ids=target.shared_user_ids | readers)
        if not decide(ctx.principal, ReadingAction.REPORT_READ, target).allowed:
            continue
        _audit_view(ctx, prior_order, report, "prior")
        return {
            "accession_number": prior_order.accession_number,
            "procedure": prior_order.procedure_description or prior_order.procedure_code,
            **_version_json(ctx, prior_order, report, version),
        }
    return None


def report_view(
    ctx: Ctx, assignment: ReadingAssignment, order: ImagingOrderRecord
) -> dict[str, Any]:
    """What the exam's page shows of its report, for the caller."""
    report = reports.report_of(ctx.db, order.id)
    if report is not None:
        sections = list(report.sections)
        versions = reports.versions_of(ctx.db, report)
        if versions:
            _audit_view(ctx, order, report, "exam")
    else:
        sections = [{**s.as_row(), "text": ""} for s in template_for(ctx.db, order).sections]
        versions = []
    status = report.status if report is not None else reports.DRAFT
    may_write = decide(
        ctx.principal, ReadingAction.REPORT_WRITE, reading_list.exam_target(ctx.db, assignment)
    ).allowed
    holder = assignment.claimed_by_id is not None and assignment.claimed_by_id == (
        ctx.principal.user_id
    )
    view = {
        "id": report.id if report is not None else None,
        "status": status,
        "sections": sections,
        "versions": [_version_json(ctx, order, report, v) for v in versions] if report else [],
        "intact": reports.intact(ctx.db, report) if report is not None else True,
        "may_edit": may_write and holder and status != reports.FINAL,
        "may_preliminary": status == reports.DRAFT,
        "may_addendum": may_write and status == reports.FINAL,
        "prior": _prior(ctx, assignment, order),
        "finding_level": report.finding_level if report is not None else "",
        "finding_text": report.finding_text if report is not None else "",
        "finding_levels": critical_findings.LEVELS,
        "communications": critical_findings.communication_lines(
            ctx.db, critical_findings.notices_of(ctx.db, report.id), _zone_of(ctx, order)
        )
        if report is not None
        else [],
    }
    ctx.commit()
    return view


def _page(request: Request, ctx: Ctx, exam_id: int, error: str = "", status: int = 200) -> Response:
    exam = exam_view(ctx, exam_id)
    assignment, order = exam_of(ctx, exam_id)
    return render_page(
        request,
        "reading/exam.html",
        ctx,
        status,
        exam=exam,
        report=report_view(ctx, assignment, order),
        error=error,
        report_states=REPORT_STATES,
    )


@router.get("/reading/exams/{exam_id}")
def exam_page(
    request: Request, exam_id: int, ctx: Annotated[Ctx, gate(ReadingAction.EXAM_READ)]
) -> Response:
    """The exam's page: patient, request, images, prior studies, claim or release, and
    the report editor with the prior report and the signed versions."""
    return _page(request, ctx, exam_id)


def _writable(ctx: Ctx, exam_id: int) -> tuple[ReadingAssignment, ImagingOrderRecord]:
    assignment, order = exam_of(ctx, exam_id)
    ctx.authorize(ReadingAction.REPORT_WRITE, reading_list.exam_target(ctx.db, assignment))
    return assignment, order


def _holding(ctx: Ctx, assignment: ReadingAssignment, order: ImagingOrderRecord) -> None:
    """Only the radiologist holding the exam writes its report; a refusal is audited."""
    try:
        reports.require_holder(assignment, ctx.principal.user_id)
    except reports.NotHolder:
        audit.record(
            ctx.db,
            ctx.actor,
            "reading.report.write",
            "refused",
            object_kind="reading_exam",
            object_id=assignment.id,
            patient_id=order.patient_id,
            site_id=order.site_id,
            detail={"reason": "exam not held"},
        )
        ctx.commit()
        raise


def _confirm(ctx: Ctx, code: str, order: ImagingOrderRecord, report: ReadingReport) -> None:
    """Signing needs the signer's second factor once more."""
    signed = Signed(
        "reading.report.sign", reports.REPORT_KIND, report.id, order.patient_id, order.site_id
    )
    confirm_second_factor(
        ctx,
        code,
        signed,
        refused=_("Confirm with a current code of your authenticator to sign the report."),
        not_enrolled=_("Enrol a second factor on your account first, to sign reports."),
    )


def _act(request: Request, ctx: Ctx, exam_id: int, run: Callable[[], str]) -> Response:
    """Run a form of the report: a refusal shows the exam's page again with its message;
    success goes where ``run`` says."""
    try:
        target = run()
        ctx.commit()
    except ConciliumError as exc:
        ctx.db.rollback()
        if exc.status in {401, 404} or (
            exc.status == 403 and not isinstance(exc, SecondFactorRefused)
        ):
            raise
        return _page(request, ctx, exam_id, exc.detail, exc.status)
    return redirect_to(target)


def _after_signing(request: Request, ctx: Ctx, order: ImagingOrderRecord, version_id: int) -> None:
    """Store the committed version into the archive (tried again later if it fails)."""
    try:
        archive = process_of(request.app, imaging.ImagingProcess).archive
    except (LookupError, AttributeError):
        return
    report_archive.archive_version(archive, ctx.runtime.sessions, version_id, ctx.runtime.now())


def _send_results(
    ctx: Ctx, order: ImagingOrderRecord, report: ReadingReport, version: ReadingReportVersion
) -> None:
    """Queue the version's ORU^R01 for the ordering site's hospital system, in the
    signature's transaction: both are kept, or neither."""
    signed = reports.report_for_results(ctx.db, report.id, version.version)
    results.queue_report(ctx.db, order.id, signed, settings=ctx.runtime.settings, now=ctx.now)


def _notify_referrers(ctx: Ctx, order: ImagingOrderRecord, report: ReadingReport) -> None:
    site = ctx.db.get(Site, order.site_id)
    values = {
        "accession": order.accession_number,
        "site": site.name if site else "",
        "link": f"/reading/reports/{report.id}",
    }
    for user_id in reading_list.referrer_ids(ctx.db, order):
        notifications.notify(ctx.db, user_id, "reading.report", _(SIGNED_NOTICE) % values, ctx.now)


@router.post("/reading/exams/{exam_id}/report")
def report_save(
    request: Request,
    exam_id: int,
    texts: Texts,
    ctx: Annotated[Ctx, gate(ReadingAction.REPORT_WRITE)],
    finding_level: Short = "",
    finding_text: Finding = "",
) -> Response:
    """The radiologist holding the exam keeps the report as typed (a draft), with the
    finding flagged, if any."""
    assignment, order = _writable(ctx, exam_id)

    def run() -> str:
        _holding(ctx, assignment, order)
        report = reports.open_report(ctx.db, order, ctx.now)
        reports.save_draft(ctx.db, ctx.actor, order, report, texts, ctx.now)
        critical_findings.save_flag(report, finding_level, finding_text)
        return f"/reading/exams/{exam_id}#report"

    return _act(request, ctx, exam_id, run)


@router.post("/reading/exams/{exam_id}/report/sign")
def report_sign(
    request: Request,
    exam_id: int,
    texts: Texts,
    ctx: Annotated[Ctx, gate(ReadingAction.REPORT_WRITE)],
    level: Short = "",
    code: Code = "",
    finding_level: Short = "",
    finding_text: Finding = "",
) -> Response:
    """Sign the report as typed, preliminary (P) or final (F), with a fresh code; a
    flagged finding is communicated to the referring physicians."""
    assignment, order = _writable(ctx, exam_id)
    signed: list[int] = []

    def run() -> str:
        _holding(ctx, assignment, order)
        report = reports.open_report(ctx.db, order, ctx.now)
        reports.save_draft(ctx.db, ctx.actor, order, report, texts, ctx.now)
        critical_findings.save_flag(report, finding_level, finding_text)
        reports.check_signable(report, level)
        _confirm(ctx, code, order, report)
        version = reports.sign(ctx.db, ctx.actor, order, report, level, ctx.now, _pdf)
        _send_results(ctx, order, report, version)
        _notify_referrers(ctx, order, report)
        critical_findings.communicate(ctx.db, ctx.runtime, ctx.actor, order, version, ctx.now)
        signed.append(version.id)
        return "/reading" if report.status == reports.FINAL else f"/reading/exams/{exam_id}"

    response = _act(request, ctx, exam_id, run)
    for version_id in signed:
        _after_signing(request, ctx, order, version_id)
    return response


@router.post("/reading/exams/{exam_id}/report/addenda")
def report_addendum(
    request: Request,
    exam_id: int,
    ctx: Annotated[Ctx, gate(ReadingAction.REPORT_WRITE)],
    text: Long = "",
    code: Code = "",
) -> Response:
    """Add a signed addendum to the final report."""
    order = _writable(ctx, exam_id)[1]
    signed: list[int] = []

    def run() -> str:
        report = reports.report_of(ctx.db, order.id)
        if report is None:
            raise NotFound(_("no such report"))
        if text.strip():
            _confirm(ctx, code, order, report)
        version = reports.add_addendum(ctx.db, ctx.actor, order, report, text, ctx.now, _pdf)
        _send_results(ctx, order, report, version)
        _notify_referrers(ctx, order, report)
        signed.append(version.id)
        return f"/reading/exams/{exam_id}#versions"

    response = _act(request, ctx, exam_id, run)
    for version_id in signed:
        _after_signing(request, ctx, order, version_id)
    return response


def _pdf(session: Any, order: ImagingOrderRecord, version: ReadingReportVersion) -> bytes:
    return report_pdf.render(session, order, version)


def _readable(ctx: Ctx, report_id: int) -> tuple[ImagingOrderRecord, ReadingReport, Any]:
    report = ctx.db.get(ReadingReport, report_id)
    order = ctx.db.get(ImagingOrderRecord, report.order_id) if report else None
    assignment = assignment_of(ctx.db, order.id) if order else None
    if report is None or order is None or assignment is None:
        raise NotFound(_("no such report"))
    decision = ctx.authorize(
        ReadingAction.REPORT_READ, reading_list.report_target(ctx.db, assignment)
    )
    return order, report, decision


@router.get("/reading/reports/{report_id}")
def report_page(
    request: Request, report_id: int, ctx: Annotated[Ctx, gate(ReadingAction.REPORT_READ)]
) -> Response:
    """The signed report: every version, each with its PDF (the view is audited)."""
    order, report, decision = _readable(ctx, report_id)
    versions = reports.versions_of(ctx.db, report)
    if not versions:
        raise NotFound(_("no such report"))
    audit.record(
        ctx.db,
        ctx.actor,
        READ,
        ctx.outcome(decision),
        object_kind=reports.REPORT_KIND,
        object_id=report.id,
        patient_id=order.patient_id,
        site_id=order.site_id,
        detail={"view": "page"},
    )
    ctx.commit()
    patient = ctx.db.get(Patient, order.patient_id)
    site = ctx.db.get(Site, order.site_id)
    return render_page(
        request,
        "reading/report.html",
        ctx,
        order=order,
        site=site,
        patient=patient,
        report=report,
        versions=[_version_json(ctx, order, report, v) for v in reversed(versions)],
        intact=reports.intact(ctx.db, report),
        communications=critical_findings.communication_lines(
            ctx.db, critical_findings.notices_of(ctx.db, report.id), _zone_of(ctx, order)
        ),
        scheduled=show_datetime(order.scheduled_at or order.created_at, _zone_of(ctx, order)),
    )


@router.get("/reading/reports/{report_id}/versions/{version}/pdf")
def report_pdf_open(
    report_id: int, version: int, ctx: Annotated[Ctx, gate(ReadingAction.REPORT_READ)]
) -> Response:
    """A signed version's PDF, as signed (the view is audited)."""
    order, report, decision = _readable(ctx, report_id)
    chosen = [v for v in reports.versions_of(ctx.db, report) if v.version == version]
    if not chosen:
        raise NotFound(_("no such version of the report"))
    row = chosen[0]
    audit.record(
        ctx.db,
        ctx.actor,
        READ,
        ctx.outcome(decision),
        object_kind=reports.REPORT_KIND,
        object_id=report.id,
        patient_id=order.patient_id,
        site_id=order.site_id,
        detail={"view": f"pdf v{row.version}"},
    )
    ctx.commit()
    return Response(
        row.pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{report_pdf.filename(order, row)}"'},
    )
