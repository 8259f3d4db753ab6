"""``concilium boards``: create boards, name their members, generate and list meetings."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import click

from concilium.boards import meetings, registry
from concilium.commands import (
    Failure,
    Group,
    cli_settings,
    cli_transaction,
    operator,
    speak_terminal_language,
)
from concilium.platform import accounts, holidays
from concilium.platform.i18n import N_, _
from concilium.platform.recurrence import HolidayPolicy

__all__ = ["boards"]

_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@click.group(
    "boards",
    cls=Group,
    help=N_("Multidisciplinary meetings (RCP): boards, members and meetings."),
)
@click.pass_context
def boards(ctx: click.Context) -> None:
    speak_terminal_language(ctx)


def _time(text: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise Failure(_("write the time as HH:MM, e.g. 14:00")) from None


@boards.command("create", help=N_("Create a board organised at a site."))
@click.argument("code")
@click.option("--name", required=True, help=N_("Name of the board."))
@click.option(
    "--type",
    "board_type",
    type=click.Choice(sorted(registry.BOARD_TYPES)),
    default="other",
    show_default=True,
    help=N_("Type of board, which gives its first quorum rules."),
)
@click.option("--site", "finess", required=True, help=N_("FINESS of the organising site."))
@click.option(
    "--weekday",
    type=click.Choice(_DAYS),
    required=True,
    help=N_("Day of the week the board meets on."),
)
@click.option("--at", "at", required=True, help=N_("Local start time, HH:MM."))
@click.option("--duration", type=int, default=120, show_default=True, help=N_("Minutes."))
@click.option("--timezone", default="Europe/Paris", show_default=True, help=N_("IANA time zone."))
@click.option(
    "--every", type=int, default=1, show_default=True, help=N_("Meets every this many weeks.")
)
@click.option(
    "--on-holiday",
    type=click.Choice([p.value for p in HolidayPolicy]),
    default=HolidayPolicy.SKIP.value,
    show_default=True,
    help=N_("What happens on a public holiday."),
)
@click.option(
    "--holidays",
    "region",
    type=click.Choice(sorted(holidays.REGIONS)),
    default=holidays.METROPOLITAN,
    show_default=True,
    help=N_("Region whose public holidays apply."),
)
@click.option(
    "--from",
    "starts_on",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help=N_("First day the board may meet (default: today)."),
)
def board_create(
    code: str,
    name: str,
    board_type: str,
    finess: str,
    weekday: str,
    at: str,
    duration: int,
    timezone: str,
    every: int,
    on_holiday: str,
    region: str,
    starts_on: datetime | None,
) -> None:
    with cli_transaction(cli_settings()) as session:
        site = accounts.site_by_finess(session, finess)
        fields = registry.BoardFields(
            name=name,
            board_type=board_type,
            site_id=site.id,
            starts_on=starts_on.date() if starts_on else date.today(),
            weekday=_DAYS.index(weekday),
            at=_time(at),
            duration_minutes=duration,
            timezone=timezone,
            interval_weeks=every,
            holiday_region=region,
            on_holiday=on_holiday,
        )
        board = registry.create_board(session, operator(), code, fields)
        click.echo(
            _("Board %(code)s created at %(site)s") % {"code": board.code, "site": site.name}
        )


@boards.command("list", help=N_("List the boards: code, site, schedule, quorum."))
def board_list() -> None:
    with cli_transaction(cli_settings()) as session:
        for board in registry.list_boards(session):
            required = registry.show_requirements(board.required_specialties) or "-"
            click.echo(
                f"{board.code}\tsite {board.site_id}\t{_DAYS[board.weekday]} "
                f"{board.at.isoformat(timespec='minutes')} {board.timezone}\t"
                f"{board.duration_minutes} min\t{board.on_holiday}\t"
                f"min {board.min_specialties}\t{required}\t{board.name}"
            )


@boards.group("member", cls=Group, help=N_("A board's members."))
def member_group() -> None:
    pass


@member_group.command("add", help=N_("Add a person to a board, or change their specialties."))
@click.argument("code")
@click.argument("username")
@click.option(
    "--specialty",
    "specialties",
    multiple=True,
    required=True,
    help=N_("Specialty code (repeat for several), e.g. haematology."),
)
@click.option(
    "--role",
    type=click.Choice(sorted(registry.MEMBER_ROLES)),
    default="member",
    show_default=True,
    help=N_("Role in the board."),
)
def member_add(code: str, username: str, specialties: tuple[str, ...], role: str) -> None:
    with cli_transaction(cli_settings()) as session:
        board = registry.board_by_code(session, code)
        user = accounts.user_by_username(session, username)
        if user is None:
            raise Failure(_("no user %(username)s") % {"username": username})
        codes = registry.parse_specialties(specialties)
        registry.set_member(session, operator(), board, user, codes, role)
        click.echo(
            _("%(username)s is a member of %(code)s") % {"username": user.username, "code": code}
        )


@member_group.command("remove", help=N_("Take a person off a board."))
@click.argument("code")
@click.argument("username")
def member_remove(code: str, username: str) -> None:
    with cli_transaction(cli_settings()) as session:
        board = registry.board_by_code(session, code)
        user = accounts.user_by_username(session, username)
        if user is None:
            raise Failure(_("no user %(username)s") % {"username": username})
        registry.remove_member(session, operator(), board, user.id)
        click.echo(
            _("%(username)s is no longer a member of %(code)s")
            % {"username": user.username, "code": code}
        )


@boards.group("meetings", cls=Group, help=N_("A board's meetings."))
def meetings_group() -> None:
    pass


@meetings_group.command(
    "generate", help=N_("Generate the meetings of the next weeks from the board's schedule.")
)
@click.argument("code")
@click.option("--weeks", type=int, default=12, show_default=True, help=N_("How many weeks."))
def meetings_generate(code: str, weeks: int) -> None:
    with cli_transaction(cli_settings()) as session:
        board = registry.board_by_code(session, code)
        done = meetings.generate_meetings(session, operator(), board, datetime.now(UTC), weeks)
        click.echo(
            _(
                "%(added)d added, %(moved)d moved, %(cancelled)d cancelled; "
                "%(planned)d meetings planned"
            )
            % {
                "added": done.added,
                "moved": done.moved,
                "cancelled": done.cancelled,
                "planned": done.planned,
            }
        )


@meetings_group.command("list", help=N_("List a board's coming meetings (times in UTC)."))
@click.argument("code")
def meetings_list(code: str) -> None:
    with cli_transaction(cli_settings()) as session:
        board = registry.board_by_code(session, code)
        for meeting in meetings.board_meetings(session, board, datetime.now(UTC)):
            click.echo(
                f"{meeting.key}\t{meeting.starts_at.isoformat()}\t{meeting.ends_at.isoformat()}"
                f"\t{meeting.status}\t{meeting.moved_for or '-'}"
            )
