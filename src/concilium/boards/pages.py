"""The boards' pages: the administration of boards (schedule, quorum rules, members and
their specialties, member sites, meetings) and, for each member, their boards and coming
meetings in their own time zone.

Thin adapters over :mod:`concilium.boards.registry` and :mod:`concilium.boards.meetings`:
every page asks the policy about the very board it shows. A board is managed by the
administrators and coordinators of its organising site; it is seen by its members only.
A bad value shows the form again with what to write (422) and saves nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from concilium.boards import calendar_feed, case_store, meetings, registry, specialties
from concilium.boards.actions import BoardAction
from concilium.boards.tables import Board
from concilium.platform import accounts, holidays
from concilium.platform.errors import ConciliumError, InvalidInput
from concilium.platform.i18n import _
from concilium.platform.policy import decide
from concilium.platform.tables import User
from concilium.web.context import Ctx, gate
from concilium.web.forms import redirect_to, run_form_action
from concilium.web.rendering import own_site_id, render_page

router = APIRouter(include_in_schema=False)

Short = Annotated[str, Form(max_length=200)]
DEFAULT_WEEKS = 12
"""Weeks of meetings a board's page generates unless told."""


# --- reading the forms ---------------------------------------------------------------------------


def _int(text: str, message: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise InvalidInput(message) from None


def _day(text: str, message: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(message) from None


def _fields(form: dict[str, str], site_id: int) -> registry.BoardFields:
    try:
        at = time.fromisoformat(form["at"].strip())
    except ValueError:
        raise InvalidInput(_("Write the start time as HH:MM, e.g. 14:00.")) from None
    until = form["until"].strip()
    region = form["holiday_region"].strip()
    return registry.BoardFields(
        name=form["name"],
        board_type=form["board_type"],
        site_id=site_id,
        starts_on=_day(form["starts_on"], _("Write the first day as YYYY-MM-DD.")),
        weekday=_int(form["weekday"], _("Choose the day of the week.")),
        at=at,
        duration_minutes=_int(form["duration_minutes"], _("The duration is a number of minutes.")),
        timezone=form["timezone"].strip(),
        interval_weeks=_int(form["interval_weeks"], _("A board meets every 1 to 52 weeks.")),
        holiday_region=region or None,
        on_holiday=form["on_holiday"],
        until=_day(until, _("Write the last day as YYYY-MM-DD.")) if until else None,
    )


def _board_form(board: Board) -> dict[str, Any]:
    return {
        "name": board.name,
        "board_type": board.board_type,
        "starts_on": board.starts_on.isoformat(),
        "until": board.until.isoformat() if board.until else "",
        "weekday": str(board.weekday),
        "at": board.at.isoformat(timespec="minutes"),
        "duration_minutes": str(board.duration_minutes),
        "timezone": board.timezone,
        "interval_weeks": str(board.interval_weeks),
        "holiday_region": board.holiday_region or "",
        "on_holiday": board.on_holiday,
    }


def _choices() -> dict[str, Any]:
    return {
        "board_types": registry.BOARD_TYPES,
        "member_roles": registry.MEMBER_ROLES,
        "holiday_choices": registry.HOLIDAY_CHOICES,
        "weekdays": registry.WEEKDAYS,
        "regions": sorted(holidays.REGIONS),
    }


# --- the list of boards and creating one ---------------------------------------------------------


def _managed_sites(ctx: Ctx) -> list[tuple[int, str]]:
    managed = ctx.visible_sites(BoardAction.BOARD_MANAGE)
    return [
        (s.id, s.name) for s in accounts.list_sites(ctx.db) if managed is None or s.id in managed
    ]


def _boards_view(
    request: Request,
    ctx: Ctx,
    error: str = "",
    form: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    managed = ctx.visible_sites(BoardAction.BOARD_MANAGE)
    today = ctx.now.date().isoformat()
    return render_page(
        request,
        "boards/admin.html",
        ctx,
        status,
        **specialties.FOR_PAGES,
        boards=registry.list_boards(ctx.db, managed),
        sites=_managed_sites(ctx),
        names=accounts.site_names(ctx.db),
        error=error,
        form=form
        or {
            "board_type": "haematology",
            "weekday": "4",
            "at": "14:00",
            "duration_minutes": "120",
            "timezone": "Europe/Paris",
            "interval_weeks": "1",
            "holiday_region": holidays.METROPOLITAN,
            "on_holiday": "skip",
            "starts_on": today,
            "until": "",
            "site_id": own_site_id(ctx),
        },
        **_choices(),
    )


@router.get("/admin/boards")
def boards_page(request: Request, ctx: Annotated[Ctx, gate(BoardAction.BOARD_MANAGE)]) -> Response:
    """The boards this person manages, and the form creating one."""
    return _boards_view(request, ctx)


@router.post("/admin/boards")
def board_create(
    request: Request,
    ctx: Annotated[Ctx, gate(BoardAction.BOARD_MANAGE)],
    site_id: Short = "",
    code: Annotated[str, Form(max_length=64)] = "",
    name: Short = "",
    board_type: Short = "",
    starts_on: Short = "",
    until: Short = "",
    weekday: Short = "",
    at: Short = "",
    duration_minutes: Short = "",
    timezone: Short = "",
    interval_weeks: Short = "1",
    holiday_region: Short = "",
    on_holiday: Short = "",
) -> Response:
    """Create a board organised at a site this person manages boards at."""
    form: dict[str, Any] = {
        "code": code,
        "name": name,
        "board_type": board_type,
        "starts_on": starts_on,
        "until": until,
        "weekday": weekday,
        "at": at,
        "duration_minutes": duration_minutes,
        "timezone": timezone,
        "interval_weeks": interval_weeks,
        "holiday_region": holiday_region,
        "on_holiday": on_holiday,
    }
    try:
        site = _int(site_id, _("Choose the organising site."))
    except InvalidInput as exc:
        return _boards_view(request, ctx, exc.detail, form, exc.status)
    form["site_id"] = site
    ctx.authorize(BoardAction.BOARD_MANAGE, registry.creation_target(site))
    created: list[Board] = []

    def run() -> None:
        board = registry.create_board(ctx.db, ctx.actor, code, _fields(form, site))
        created.append(board)
        ctx.commit()

    response = run_form_action(
        ctx, run, lambda exc: _boards_view(request, ctx, exc.detail, form, exc.status), ""
    )
    return redirect_to(f"/admin/boards/{created[0].id}") if created else response


# --- one board ------------------------------------------------------------------------------------


def _managed_board(ctx: Ctx, board_id: int) -> Board:
    """The board, if this person manages it (a refusal is audited)."""
    board = registry.get_board(ctx.db, board_id)
    ctx.authorize(BoardAction.BOARD_MANAGE, registry.board_target(ctx.db, board))
    return board


def _people(ctx: Ctx, user_ids: list[int]) -> dict[int, User]:
    found = {uid: ctx.db.get(User, uid) for uid in user_ids}
    return {uid: user for uid, user in found.items() if user is not None}


def _board_view(
    request: Request,
    ctx: Ctx,
    board: Board,
    error: str = "",
    status: int = 200,
    form: dict[str, Any] | None = None,
    section: str = "",
) -> Response:
    members = registry.members_of(ctx.db, board)
    sites = accounts.site_names(ctx.db)
    member_sites = registry.site_ids_of(ctx.db, board)
    return render_page(
        request,
        "boards/board_admin.html",
        ctx,
        status,
        **specialties.FOR_PAGES,
        board=board,
        members=members,
        people=_people(ctx, [m.user_id for m in members]),
        names=sites,
        member_sites=sorted(member_sites, key=lambda i: sites.get(i, "")),
        other_sites=sorted(
            ((i, n) for i, n in sites.items() if i not in member_sites), key=lambda s: s[1]
        ),
        meetings=meetings.board_meetings(ctx.db, board, ctx.now, 20),
        required=registry.show_requirements(board.required_specialties),
        may_plan=decide(
            ctx.principal, BoardAction.AGENDA_MANAGE, case_store.agenda_target(ctx.db, board)
        ).allowed,
        error=error,
        section=section,
        form=form if section == "schedule" and form else _board_form(board),
        typed=form if section != "schedule" and form else {},
        **_choices(),
    )


def _act(
    request: Request,
    ctx: Ctx,
    board: Board,
    section: str,
    run: Callable[[], object],
    form: dict[str, Any] | None = None,
) -> Response:
    """Run one of the board page's forms: on a bad value, the page again with the message
    by the form of ``section`` and what was typed in it (``form``)."""

    def done() -> None:
        run()
        ctx.commit()

    def again(exc: ConciliumError) -> Response:
        fresh = ctx.db.get(Board, board.id)
        assert fresh is not None
        ctx.db.refresh(fresh)
        return _board_view(request, ctx, fresh, exc.detail, exc.status, form, section)

    return run_form_action(ctx, done, again, f"/admin/boards/{board.id}#{section}")


@router.get("/admin/boards/{board_id}")
def board_page(
    request: Request, board_id: int, ctx: Annotated[Ctx, gate(BoardAction.BOARD_MANAGE)]
) -> Response:
    """A board's schedule, quorum rules, members, sites and meetings, to edit."""
    return _board_view(request, ctx, _managed_board(ctx, board_id))


@router.post("/admin/boards/{board_id}")
def board_edit(
    request: Request,
    board_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.BOARD_MANAGE)],
    name: Short = "",
    board_type: Short = "",
    starts_on: Short = "",
    until: Short = "",
    weekday: Short = "",
    at: Short = "",
    duration_minutes: Short = "",
    timezone: Short = "",
    interval_weeks: Short = "1",
    holiday_region: Short = "",
    on_holiday: Short = "",
) -> Response:
    """Change a board's name, type and schedule; the meetings already planned follow it."""
    board = _managed_board(ctx, board_id)
    form: dict[str, Any] = {
        "name": name,
        "board_type": board_type,
        "starts_on": starts_on,
        "until": until,
        "weekday": weekday,
        "at": at,
        "duration_minutes": duration_minutes,
        "timezone": timezone,
        "interval_weeks": interval_weeks,
        "holiday_region": holiday_region,
        "on_holiday": on_holiday,
    }

    def run() -> None:
        registry.update_board(ctx.db, ctx.actor, board, _fields(form, board.site_id))
        meetings.follow_schedule(ctx.db, ctx.actor, board, ctx.now)

    return _act(request, ctx, board, "schedule", run, form)


@router.post("/admin/boards/{board_id}/quorum")
def board_quorum(
    request: Request,
    board_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.BOARD_MANAGE)],
    min_specialties: Short = "",
    required: Annotated[str, Form(max_length=1000)] = "",
    records_without_discussion: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Replace the board's quorum rules and what its charter allows."""
    board = _managed_board(ctx, board_id)

    def run() -> None:
        count = _int(min_specialties, _("The minimum number of specialties is a number."))
        rules = registry.check_rules(count, registry.parse_requirements(required))
        registry.set_rules(ctx.db, ctx.actor, board, rules, bool(records_without_discussion))

    typed = {
        "min_specialties": min_specialties,
        "required": required,
        "records_without_discussion": records_without_discussion,
    }
    return _act(request, ctx, board, "quorum", run, typed)


@router.post("/admin/boards/{board_id}/members")
def member_add(
    request: Request,
    board_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.BOARD_MANAGE)],
    username: Annotated[str, Form(max_length=64)] = "",
    specialties: Annotated[str, Form(max_length=1000)] = "",
    role: Annotated[str, Form(max_length=16)] = "member",
) -> Response:
    """Add a person (of any hospital) to the board, or change their specialties and role."""
    board = _managed_board(ctx, board_id)

    def run() -> None:
        user = accounts.user_by_username(ctx.db, username)
        if user is None:
            raise InvalidInput(_("No user %(username)s.") % {"username": username.strip()})
        codes = registry.parse_specialties(specialties)
        if not codes:
            raise InvalidInput(_("Give at least one specialty code (e.g. haematology)."))
        registry.set_member(ctx.db, ctx.actor, board, user, codes, role)

    typed = {"username": username, "specialties": specialties, "role": role}
    return _act(request, ctx, board, "members", run, typed)


@router.post("/admin/boards/{board_id}/members/{user_id}/remove")
def member_remove(
    request: Request,
    board_id: int,
    user_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.BOARD_MANAGE)],
) -> Response:
    """Take a person off the board."""
    board = _managed_board(ctx, board_id)
    return _act(
        request,
        ctx,
        board,
        "members",
        lambda: registry.remove_member(ctx.db, ctx.actor, board, user_id),
    )


@router.post("/admin/boards/{board_id}/sites")
def site_add(
    request: Request,
    board_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.BOARD_MANAGE)],
    site_id: Short = "",
) -> Response:
    """Make a hospital a member site of the board."""
    board = _managed_board(ctx, board_id)
    return _act(
        request,
        ctx,
        board,
        "sites",
        lambda: registry.add_site(
            ctx.db, ctx.actor, board, _int(site_id, _("Choose a site.")) if site_id else 0
        ),
    )


@router.post("/admin/boards/{board_id}/sites/{site_id}/remove")
def site_remove(
    request: Request,
    board_id: int,
    site_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.BOARD_MANAGE)],
) -> Response:
    """A hospital stops taking part in the board."""
    board = _managed_board(ctx, board_id)
    return _act(
        request,
        ctx,
        board,
        "sites",
        lambda: registry.remove_site(ctx.db, ctx.actor, board, site_id),
    )


@router.post("/admin/boards/{board_id}/meetings")
def meetings_generate(
    request: Request,
    board_id: int,
    ctx: Annotated[Ctx, gate(BoardAction.BOARD_MANAGE)],
    weeks: Short = str(DEFAULT_WEEKS),
) -> Response:
    """Generate the board's meetings of the next weeks from its schedule (again: no
    meeting twice)."""
    board = _managed_board(ctx, board_id)

    def run() -> None:
        count = _int(weeks, _("Give a number of weeks."))
        meetings.generate_meetings(ctx.db, ctx.actor, board, ctx.now, count)

    return _act(request, ctx, board, "meetings", run, {"weeks": weeks})


# --- what a member sees ---------------------------------------------------------------------------


@router.get("/boards")
def my_boards(request: Request, ctx: Annotated[Ctx, gate(BoardAction.BOARD_READ)]) -> Response:
    """The boards this person is a member of, and their coming meetings."""
    return mine_view(request, ctx)


def mine_view(request: Request, ctx: Ctx, feed_url: str = "") -> Response:
    """The "my boards" page; ``feed_url`` is the calendar address just made, shown once."""
    mine = [
        (board, member)
        for board, member in registry.boards_of_member(ctx.db, ctx.user.id)
        if decide(
            ctx.principal, BoardAction.BOARD_READ, registry.board_target(ctx.db, board)
        ).allowed
    ]
    readable = {board.id for board, _member in mine}
    coming = [
        (meeting, board)
        for meeting, board in meetings.upcoming_meetings(ctx.db, ctx.user.id, ctx.now)
        if board.id in readable
    ]
    every = registry.list_boards(ctx.db)
    return render_page(
        request,
        "boards/mine.html",
        ctx,
        **specialties.FOR_PAGES,
        boards=mine,
        coming=coming,
        may_plan={
            board.id
            for board, _member in mine
            if decide(
                ctx.principal,
                BoardAction.AGENDA_MANAGE,
                case_store.agenda_target(ctx.db, board),
            ).allowed
        },
        submit_to=[
            board
            for board in every
            if decide(
                ctx.principal,
                BoardAction.CASE_SUBMIT,
                case_store.submission_target(ctx.db, board),
            ).allowed
        ],
        my_cases=case_store.cases_of_referrer(ctx.db, ctx.user.id),
        board_names={board.id: board.name for board in every},
        status_labels=case_store.STATUS_LABELS,
        horizon=ctx.now + timedelta(weeks=DEFAULT_WEEKS),
        feed=calendar_feed.active_token(ctx.db, ctx.user.id),
        feed_url=feed_url,
        **_choices(),
    )


@router.get("/boards/{board_id}")
def board_members_page(
    request: Request, board_id: int, ctx: Annotated[Ctx, gate(BoardAction.BOARD_READ)]
) -> Response:
    """A board as its members see it: schedule, quorum, members, coming meetings."""
    board = registry.get_board(ctx.db, board_id)
    ctx.authorize(BoardAction.BOARD_READ, registry.board_target(ctx.db, board))
    members = registry.members_of(ctx.db, board)
    sites = accounts.site_names(ctx.db)
    return render_page(
        request,
        "boards/board.html",
        ctx,
        **specialties.FOR_PAGES,
        board=board,
        members=members,
        people=_people(ctx, [m.user_id for m in members]),
        names=sites,
        member_sites=sorted(registry.site_ids_of(ctx.db, board), key=lambda i: sites.get(i, "")),
        meetings=meetings.board_meetings(ctx.db, board, ctx.now, 20),
        required=specialties.requirements_text(board.required_specialties),
        may_submit=decide(
            ctx.principal, BoardAction.CASE_SUBMIT, case_store.submission_target(ctx.db, board)
        ).allowed,
        may_plan=decide(
            ctx.principal, BoardAction.AGENDA_MANAGE, case_store.agenda_target(ctx.db, board)
        ).allowed,
        may_see_statistics=decide(
            ctx.principal, BoardAction.STATISTICS_READ, case_store.agenda_target(ctx.db, board)
        ).allowed,
        **_choices(),
    )
