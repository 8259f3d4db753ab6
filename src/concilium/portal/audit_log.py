"""The audit log for administrators: search, filters and export; the entries in words
(:mod:`concilium.portal.audit_view`)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from concilium.platform import audit
from concilium.platform.errors import InvalidInput
from concilium.platform.i18n import _
from concilium.platform.policy import PlatformAction, decide
from concilium.portal import audit_view, flows
from concilium.web.context import Ctx, gate
from concilium.web.forms import date_or_none
from concilium.web.rendering import reader_zone, render_page

router = APIRouter(include_in_schema=False)


# --- audit ---------------------------------------------------------------------------------------


def _day(text: str, zone: tzinfo, end: bool = False) -> datetime | None:
    """The start (or the end) of a day as the reader lives it, in their zone."""
    day = date_or_none(text)
    if day is None:
        return None
    if end:
        day += timedelta(days=1)
    return datetime.combine(day, time(0, 0), tzinfo=zone).astimezone(UTC)


@router.get("/audit")
def audit_page(
    request: Request,
    ctx: Annotated[Ctx, gate(PlatformAction.AUDIT_READ)],
    actor: Annotated[str, Query(max_length=64)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    outcome: Annotated[str, Query(max_length=24)] = "",
    patient_id: Annotated[str, Query(max_length=12)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    page: Annotated[int, Query(ge=1, le=10000)] = 1,
) -> Response:
    if patient_id and not patient_id.isdigit():
        raise InvalidInput(_("The patient number must be a whole number."))
    criteria = audit.AuditFilter(
        actor,
        action,
        outcome,
        int(patient_id) if patient_id else None,
        _day(since, reader_zone(ctx)),
        _day(until, reader_zone(ctx), end=True),
    )
    per_page = 50
    events = flows.search_audit(ctx, criteria, per_page + 1, (page - 1) * per_page)
    filters = {
        "actor": actor,
        "action": action,
        "outcome": outcome,
        "patient_id": patient_id,
        "since": since,
        "until": until,
    }
    lines = audit_view.lines(ctx.db, ctx.principal, events[:per_page], ctx.now)
    return render_page(
        request,
        "portal/audit.html",
        ctx,
        lines=lines,
        filters=filters,
        page=page,
        more=len(events) > per_page,
        outcomes=audit.OUTCOMES,
        outcome_labels=audit_view.OUTCOME_LABELS,
        kinds=audit_view.ACTION_KINDS,
        people=audit_view.people(ctx.db, ctx.visible_sites(PlatformAction.AUDIT_READ)),
        patient_label=audit_view.lines_patient(ctx.db, ctx.principal, patient_id, ctx.now),
        can_export=decide(ctx.principal, PlatformAction.AUDIT_EXPORT).allowed,
    )


@router.get("/audit/export")
def audit_export(
    ctx: Annotated[Ctx, gate(PlatformAction.AUDIT_EXPORT)],
    fmt: Annotated[str, Query(alias="format", pattern="^(fhir|syslog)$")] = "fhir",
) -> Response:
    """Whole trail as NDJSON FHIR AuditEvent resources or RFC 5424 lines."""
    ctx.authorize(PlatformAction.AUDIT_EXPORT)
    audit.record(ctx.db, ctx.actor, "audit.export", "success", detail={"format": fmt})
    ctx.commit()
    sessions = ctx.runtime.read_sessions  # a long export never holds up writers
    observer = urlsplit(ctx.runtime.settings.public_url).hostname or "concilium"

    def lines() -> Any:
        with sessions() as db:
            for line in audit.export_lines(audit.iter_events(db), fmt, observer):
                yield line + "\n"

    media = "application/fhir+ndjson" if fmt == "fhir" else "text/plain; charset=utf-8"
    filename = f"concilium-audit.{'ndjson' if fmt == 'fhir' else 'log'}"
    return StreamingResponse(
        lines(),
        media_type=media,
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
