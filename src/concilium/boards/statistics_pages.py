"""A board's statistics: the page with its plots (``/boards/{board}/statistics``) and the
CSV export (``/boards/{board}/statistics.csv``), over a period of local days in the board's
zone (the last twelve months unless told).

Seen by the board's coordinators and facilitators and the organising site's
administrators and coordinators (``board.statistics``); counts and durations only, no
patient. The CSV is written for the spreadsheets French hospitals use: headers and labels
in the reader's language (French by default), fields separated by ``;``, decimal comma in
French, UTF-8 with a byte-order mark (without it, Excel reads UTF-8 as Windows-1252),
CRLF line ends (RFC 4180). One row per figure, then one per meeting.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from concilium.boards import case_store, registry
from concilium.boards.actions import BoardAction
from concilium.boards.charts import bar_chart
from concilium.boards.statistics import BoardStatistics, board_statistics
from concilium.boards.tables import Board
from concilium.platform.errors import InvalidInput
from concilium.platform.i18n import _, current_locale, show_date, zone
from concilium.web.context import Ctx, gate
from concilium.web.rendering import render_page

router = APIRouter(include_in_schema=False)

Day = Annotated[str, Query(alias="from", max_length=10)]
LastDay = Annotated[str, Query(alias="to", max_length=10)]
DEFAULT_DAYS = 365
DELAY_BUCKETS = (7, 14, 21, 28, 42, 56)
"""Upper bounds, in days, of the bars of the submission-to-decision plot."""


def _board(ctx: Ctx, board_id: int) -> Board:
    board = registry.get_board(ctx.db, board_id)
    ctx.authorize(BoardAction.STATISTICS_READ, case_store.agenda_target(ctx.db, board))
    return board


def _day(text: str, default: date) -> date:
    if not text.strip():
        return default
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(_("Write dates as YYYY-MM-DD, or pick them in the calendar.")) from None


def _period(ctx: Ctx, where: ZoneInfo, first: str, last: str) -> tuple[date, date]:
    today = ctx.now.astimezone(where).date()
    to_day = _day(last, today)
    from_day = _day(first, to_day - timedelta(days=DEFAULT_DAYS - 1))
    if from_day > to_day:
        raise InvalidInput(_("The first day of the period comes after its last day."))
    return from_day, to_day


def _figures(ctx: Ctx, board: Board, first: str, last: str) -> tuple[BoardStatistics, date, date]:
    where = zone(board.timezone)
    from_day, to_day = _period(ctx, where, first, last)
    start = datetime.combine(from_day, time(0), tzinfo=where).astimezone(UTC)
    end = datetime.combine(to_day + timedelta(days=1), time(0), tzinfo=where).astimezone(UTC)
    return board_statistics(ctx.db, board, start, end), from_day, to_day


def _days(value: timedelta | None) -> float | None:
    return None if value is None else round(value.total_seconds() / 86400, 1)


def _delay_bars(stats: BoardStatistics) -> list[tuple[str, float]]:
    bars: list[tuple[str, float]] = []
    low = 0
    for high in DELAY_BUCKETS:
        n = sum(1 for d in stats.delays if low * 86400 <= d.total_seconds() < high * 86400)
        bars.append((_("%(low)d-%(high)d d") % {"low": low, "high": high}, float(n)))
        low = high
    late = sum(1 for d in stats.delays if d.total_seconds() >= low * 86400)
    bars.append((_("≥ %(low)d d") % {"low": low}, float(late)))
    return bars


@router.get("/boards/{board_id}/statistics")
def statistics_page(
    request: Request,
    board_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.STATISTICS_READ)],
    first: Day = "",
    last: LastDay = "",
) -> Response:
    """The board's figures over the period, with their plots."""
    board = _board(ctx, board_id)
    stats, from_day, to_day = _figures(ctx, board, first, last)
    where = zone(board.timezone)
    per_meeting = [(show_date(m.starts_at, where, "short"), float(m.cases)) for m in stats.meetings]
    return render_page(
        request,
        "boards/statistics.html",
        ctx,
        board=board,
        stats=stats,
        from_day=from_day.isoformat(),
        to_day=to_day.isoformat(),
        median_days=_days(stats.median_delay),
        p90_days=_days(stats.p90_delay),
        cases_chart=bar_chart(per_meeting, _("Cases per meeting"), "chart-cases"),
        delay_chart=bar_chart(
            _delay_bars(stats), _("Decisions by time from submission"), "chart-delays"
        ),
    )


def _number(value: float | None, decimal: str) -> str:
    if value is None:
        return ""
    text = str(int(value)) if float(value).is_integer() else f"{value:.1f}"
    return text.replace(".", decimal)


def statistics_csv(stats: BoardStatistics, board: Board, from_day: date, to_day: date) -> bytes:
    """The figures as CSV for a spreadsheet, in the current language (see the module)."""
    decimal = "," if current_locale() == "fr" else "."
    where = zone(board.timezone)
    rate = None if stats.quorum_rate is None else round(100 * stats.quorum_rate, 1)
    rows: list[tuple[str, str]] = [
        (_("Board"), board.name),
        (_("From"), from_day.isoformat()),
        (_("To"), to_day.isoformat()),
        (_("Meetings"), str(len(stats.meetings))),
        (_("Cases"), str(stats.cases)),
        (_("Cases per meeting"), _number(stats.cases_per_meeting, decimal)),
        (_("Validations attempted"), str(stats.validations)),
        (_("Quorum met (%)"), _number(rate, decimal)),
        (_("Decisions"), str(stats.decisions)),
        (_("Submission to decision, median (days)"), _number(_days(stats.median_delay), decimal)),
        (
            _("Submission to decision, 90th percentile (days)"),
            _number(_days(stats.p90_delay), decimal),
        ),
        (_("Postponements (re-listed)"), str(stats.postponements)),
        (_("Decisions to present again"), str(stats.represent)),
        (_("Decisions outside guidelines"), str(stats.outside_guidelines)),
        (_("Trials proposed"), str(stats.trials)),
    ]
    rows += [
        (
            _("Cases at the meeting of %(day)s") % {"day": show_date(m.starts_at, where, "short")},
            str(m.cases),
        )
        for m in stats.meetings
    ]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow((_("Indicator"), _("Value")))
    writer.writerows(rows)
    return "\ufeff".encode() + out.getvalue().encode("utf-8")


@router.get("/boards/{board_id}/statistics.csv")
def statistics_export(
    board_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.STATISTICS_READ)],
    first: Day = "",
    last: LastDay = "",
) -> Response:
    """The board's figures over the period as CSV."""
    board = _board(ctx, board_id)
    stats, from_day, to_day = _figures(ctx, board, first, last)
    name = f"statistiques-{board.code}-{from_day.isoformat()}-{to_day.isoformat()}.csv"
    return Response(
        statistics_csv(stats, board, from_day, to_day),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
