"""``concilium reading``: reading groups, their members, on-call rota and routing rules,
and the routing of an order asked for by hand."""

from __future__ import annotations

from datetime import datetime

import click
from sqlalchemy import select

from concilium.commands import (
    Group,
    cli_settings,
    cli_transaction,
    operator,
    speak_terminal_language,
)
from concilium.platform import accounts
from concilium.platform.errors import InvalidInput, NotFound
from concilium.platform.i18n import N_, _
from concilium.reading import groups
from concilium.reading.assignments import route_order
from concilium.reading.tables import ImagingOrderRecord, ReadingGroup

__all__ = ["reading"]


@click.group(
    "reading",
    cls=Group,
    help=N_("Teleradiology: reading groups, their on-call rota and the routing of exams."),
)
@click.pass_context
def reading(ctx: click.Context) -> None:
    speak_terminal_language(ctx)


@reading.group("group", help=N_("Reading groups, each owned by a site."))
def group_group() -> None: ...


@group_group.command("add", help=N_("Create a reading group owned by a site."))
@click.option("--name", required=True, help=N_("Name of the group."))
@click.option("--site", "finess", required=True, help=N_("FINESS of the site that owns it."))
@click.option(
    "--local", is_flag=True, help=N_("The group reads its site's exams that no rule routes.")
)
def group_add(name: str, finess: str, local: bool) -> None:
    with cli_transaction(cli_settings()) as session:
        site = accounts.site_by_finess(session, finess)
        group = groups.add_group(session, operator(), name=name, site_id=site.id, local=local)
        click.echo(
            _("Reading group %(group)s created for %(site)s")
            % {"group": group.name, "site": site.name}
        )


@group_group.command(
    "list", help=N_("The reading groups, one a line: name, site FINESS, local or not.")
)
def group_list() -> None:
    with cli_transaction(cli_settings()) as session:
        sites = {site.id: site.finess for site in accounts.list_sites(session)}
        for group in groups.list_groups(session):
            local = "\tlocal" if group.local else ""
            click.echo(f"{group.name}\t{sites.get(group.site_id, group.site_id)}{local}")


@reading.group("member", help=N_("Radiologists reading in a group."))
def member_group() -> None: ...


@member_group.command(
    "add", help=N_("Add a user to a group, credentialed for its site and the sites given.")
)
@click.option("--group", "group_name", required=True, help=N_("Name of the group."))
@click.option("--user", "username", required=True, help=N_("User name of the radiologist."))
@click.option(
    "--site",
    "finesses",
    multiple=True,
    help=N_("FINESS of another site whose exams the member may read (repeatable)."),
)
def member_add(group_name: str, username: str, finesses: tuple[str, ...]) -> None:
    with cli_transaction(cli_settings()) as session:
        group = groups.group_by_name(session, group_name)
        assert group is not None
        user = accounts.user_by_username(session, username)
        if user is None:
            raise NotFound(_("no user named %(name)s") % {"name": username.strip()})
        member = groups.add_member(session, operator(), group, user.id)
        for finess in finesses:
            site = accounts.site_by_finess(session, finess)
            groups.add_credential(session, operator(), member, site.id)
        click.echo(_("%(user)s reads in %(group)s") % {"user": user.username, "group": group.name})


@reading.group("oncall", help=N_("The on-call rota of the groups."))
def oncall_group() -> None: ...


@oncall_group.command("add", help=N_("Add a night, weekend, holiday or fixed period to a rota."))
@click.option("--group", "group_name", required=True, help=N_("Name of the group."))
@click.option(
    "--kind", type=click.Choice(groups.ON_CALL_KINDS), required=True, help=N_("Kind of period.")
)
@click.option("--start", default="", help=N_("Local time it begins, HH:MM."))
@click.option("--end", default="", help=N_("Local time it ends, HH:MM."))
@click.option(
    "--weekdays", default="", help=N_("Night: the weekdays it begins, digits 0 (Monday) to 6.")
)
@click.option(
    "--from",
    "starts_at",
    default="",
    help=N_("Fixed period: first instant, ISO 8601 with its offset."),
)
@click.option(
    "--to", "ends_at", default="", help=N_("Fixed period: its end, ISO 8601 with its offset.")
)
def oncall_add(
    group_name: str, kind: str, start: str, end: str, weekdays: str, starts_at: str, ends_at: str
) -> None:
    with cli_transaction(cli_settings()) as session:
        group = groups.group_by_name(session, group_name)
        assert group is not None
        groups.add_on_call(
            session,
            operator(),
            group,
            kind,
            start=start,
            end=end,
            weekdays=weekdays,
            starts_at=_instant(starts_at),
            ends_at=_instant(ends_at),
        )
        click.echo(_("On-call period added to %(group)s") % {"group": group.name})


def _instant(value: str) -> datetime | None:
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            _("instants are given as ISO 8601, e.g. 2026-03-07T02:00+01:00")
        ) from None
    if at.utcoffset() is None:
        raise InvalidInput(_("instants are given as ISO 8601, e.g. 2026-03-07T02:00+01:00"))
    return at


@reading.group("rule", help=N_("Routing rules: exams of a site go to a group."))
def rule_group() -> None: ...


@rule_group.command(
    "add", help=N_("Send a site's exams (of a modality) to a group while it is on call.")
)
@click.option("--name", required=True, help=N_("Name of the rule."))
@click.option("--site", "finess", required=True, help=N_("FINESS of the site of the exams."))
@click.option("--group", "group_name", required=True, help=N_("Name of the group."))
@click.option("--modality", default="", help=N_("Modality of the exams, e.g. CT."))
@click.option("--priority", default=100, type=int, help=N_("Lower numbers are tried first."))
@click.option(
    "--any-time", is_flag=True, help=N_("Applies at any time, not only while the group is on call.")
)
def rule_add(
    name: str, finess: str, group_name: str, modality: str, priority: int, any_time: bool
) -> None:
    with cli_transaction(cli_settings()) as session:
        site = accounts.site_by_finess(session, finess)
        group = groups.group_by_name(session, group_name)
        assert group is not None
        groups.add_rule(
            session,
            operator(),
            name=name,
            site_id=site.id,
            group=group,
            modality=modality,
            priority=priority,
            on_call_only=not any_time,
        )
        click.echo(
            _("Exams of %(site)s go to %(group)s") % {"site": site.name, "group": group.name}
        )


@rule_group.command(
    "list", help=N_("The rules in the order they are tried: name, site, modality, group.")
)
def rule_list() -> None:
    with cli_transaction(cli_settings()) as session:
        sites = {site.id: site.finess for site in accounts.list_sites(session)}
        names = {group.id: group.name for group in groups.list_groups(session)}
        for rule in groups.list_rules(session):
            when = "" if rule.on_call_only else "\t*"
            click.echo(
                f"{rule.priority}\t{rule.name}\t{sites.get(rule.site_id, rule.site_id)}\t"
                f"{rule.modality or '*'}\t{names.get(rule.group_id, rule.group_id)}{when}"
            )


@rule_group.command("remove", help=N_("Forget a routing rule."))
@click.option("--name", required=True, help=N_("Name of the rule."))
def rule_remove(name: str) -> None:
    with cli_transaction(cli_settings()) as session:
        groups.remove_rule(session, operator(), name)
        click.echo(_("Routing rule removed"))


@reading.command("route", help=N_("Route an order again to the group on call at its time."))
@click.option("--site", "finess", required=True, help=N_("FINESS of the order's site."))
@click.option("--accession", required=True, help=N_("Accession number of the order."))
def route(finess: str, accession: str) -> None:
    with cli_transaction(cli_settings()) as session:
        site = accounts.site_by_finess(session, finess)
        order = session.execute(
            select(ImagingOrderRecord).where(
                ImagingOrderRecord.site_id == site.id,
                ImagingOrderRecord.accession_number == accession.strip(),
            )
        ).scalar_one_or_none()
        if order is None:
            raise NotFound(_("no order of this site has this accession number"))
        assignment = route_order(session, operator(), order, again=True)
        if assignment is None:
            raise NotFound(_("no rule applies and the site has no local group"))
        group = session.get(ReadingGroup, assignment.group_id)
        click.echo(
            _("Order %(accession)s goes to %(group)s")
            % {"accession": order.accession_number, "group": group.name if group else ""}
        )
