"""``concilium hl7``: the hospital systems allowed to send HL7 messages, per site."""

from __future__ import annotations

import click

from concilium.commands import (
    Group,
    cli_settings,
    cli_transaction,
    operator,
    speak_terminal_language,
)
from concilium.platform import accounts
from concilium.platform.i18n import N_, _
from concilium.reading import senders, stations

__all__ = ["hl7"]


@click.group(
    "hl7",
    cls=Group,
    help=N_("HL7 v2 messages of the hospital systems: the senders registered per site."),
)
@click.pass_context
def hl7(ctx: click.Context) -> None:
    speak_terminal_language(ctx)


@hl7.group(
    "node",
    help=N_("Hospital systems (MSH-3 application, MSH-4 facility) allowed to send messages."),
)
def node_group() -> None: ...


@node_group.command("add", help=N_("Register a sender of a site; its messages concern that site."))
@click.option("--site", "finess", required=True, help=N_("FINESS of the sender's site."))
@click.option(
    "--application", required=True, help=N_("Sending application, as in MSH-3 of its messages.")
)
@click.option(
    "--facility", required=True, help=N_("Sending facility, as in MSH-4 of its messages.")
)
@click.option("--description", default="", help=N_("What the system is, for administrators."))
@click.option(
    "--results-host", default="", help=N_("Host of its MLLP listener that receives results.")
)
@click.option("--results-port", type=int, default=None, help=N_("Port of that listener."))
@click.option(
    "--images-available",
    type=click.Choice([m.value for m in senders.ImagesAvailable]),
    default="none",
    help=N_("How it is told that an order's images are available: none, orm, omi or oru."),
)
def node_add(
    finess: str,
    application: str,
    facility: str,
    description: str,
    results_host: str,
    results_port: int | None,
    images_available: str,
) -> None:
    with cli_transaction(cli_settings()) as session:
        site = accounts.site_by_finess(session, finess)
        sender = senders.add_sender(
            session,
            operator(),
            site_id=site.id,
            application=application,
            facility=facility,
            description=description,
        )
        if results_host or images_available != "none":
            senders.set_destination(
                session,
                operator(),
                sender,
                host=results_host,
                port=results_port,
                images_available=images_available,
            )
        click.echo(
            _("HL7 sender %(application)s of %(facility)s registered for %(site)s")
            % {"application": sender.application, "facility": sender.facility, "site": site.name}
        )


@node_group.command(
    "list", help=N_("The registered senders, one a line: application, facility, site FINESS.")
)
def node_list() -> None:
    with cli_transaction(cli_settings()) as session:
        sites = {site.id: site for site in accounts.list_sites(session)}
        for sender in senders.list_senders(session):
            site = sites.get(sender.site_id)
            state = "" if sender.active else "\t" + _("inactive")
            results = ""
            if sender.results_host or sender.images_available != "none":
                where = (
                    f"{sender.results_host}:{sender.results_port}" if sender.results_host else "-"
                )
                results = f"\t{where}\t{sender.images_available}"
            click.echo(
                f"{sender.application}\t{sender.facility}\t"
                f"{site.finess if site else sender.site_id}\t{site.name if site else ''}"
                f"{results}{state}"
            )


@node_group.command(
    "destination",
    help=N_(
        "Where a sender receives results (ORU) and images-available messages, over MLLP; "
        "an empty host: nowhere."
    ),
)
@click.option("--application", required=True, help=N_("Sending application (MSH-3)."))
@click.option("--facility", required=True, help=N_("Sending facility (MSH-4)."))
@click.option("--host", required=True, help=N_("Host of its MLLP listener that receives results."))
@click.option("--port", type=int, default=None, help=N_("Port of that listener."))
@click.option(
    "--images-available",
    type=click.Choice([m.value for m in senders.ImagesAvailable]),
    default="none",
    help=N_("How it is told that an order's images are available: none, orm, omi or oru."),
)
def node_destination(
    application: str, facility: str, host: str, port: int | None, images_available: str
) -> None:
    with cli_transaction(cli_settings()) as session:
        sender = senders.get_sender(session, application, facility)
        senders.set_destination(
            session, operator(), sender, host=host, port=port, images_available=images_available
        )
        if sender.results_host:
            click.echo(
                _("Results of %(application)s of %(facility)s go to %(host)s:%(port)s")
                % {
                    "application": sender.application,
                    "facility": sender.facility,
                    "host": sender.results_host,
                    "port": sender.results_port,
                }
            )
        else:
            click.echo(
                _("%(application)s of %(facility)s receives no results")
                % {"application": sender.application, "facility": sender.facility}
            )


@node_group.command("remove", help=N_("Forget a sender: its messages are refused from now on."))
@click.option("--application", required=True, help=N_("Sending application (MSH-3)."))
@click.option("--facility", required=True, help=N_("Sending facility (MSH-4)."))
def node_remove(application: str, facility: str) -> None:
    with cli_transaction(cli_settings()) as session:
        sender = senders.get_sender(session, application, facility)
        senders.remove_sender(session, operator(), sender)
        click.echo(
            _("HL7 sender %(application)s of %(facility)s removed")
            % {"application": sender.application, "facility": sender.facility}
        )


@hl7.group(
    "station",
    help=N_("Which modality (AE title) performs a step when the order names no station."),
)
def station_group() -> None: ...


@station_group.command(
    "add", help=N_("Send a site's steps of a modality or procedure to a station.")
)
@click.option("--site", "finess", required=True, help=N_("FINESS of the site."))
@click.option("--ae", "ae_title", required=True, help=N_("Scheduled station AE title."))
@click.option("--modality", default="", help=N_("Modality of the steps, e.g. CT."))
@click.option("--procedure", default="", help=N_("Requested procedure code of the steps."))
def station_add(finess: str, ae_title: str, modality: str, procedure: str) -> None:
    with cli_transaction(cli_settings()) as session:
        site = accounts.site_by_finess(session, finess)
        rule = stations.add_station_rule(
            session,
            operator(),
            site_id=site.id,
            station_ae_title=ae_title,
            modality=modality,
            procedure_code=procedure,
        )
        click.echo(
            _("Steps of %(site)s go to %(ae)s") % {"site": site.name, "ae": rule.station_ae_title}
        )


@station_group.command(
    "list", help=N_("The station rules, one a line: site FINESS, modality, procedure, AE title.")
)
def station_list() -> None:
    with cli_transaction(cli_settings()) as session:
        sites = {site.id: site.finess for site in accounts.list_sites(session)}
        for rule in stations.list_station_rules(session):
            click.echo(
                f"{sites.get(rule.site_id, rule.site_id)}\t{rule.modality or '*'}\t"
                f"{rule.procedure_code or '*'}\t{rule.station_ae_title}"
            )


@station_group.command("remove", help=N_("Forget a station rule of a site."))
@click.option("--site", "finess", required=True, help=N_("FINESS of the site."))
@click.option("--modality", default="", help=N_("Modality of the rule."))
@click.option("--procedure", default="", help=N_("Requested procedure code of the rule."))
def station_remove(finess: str, modality: str, procedure: str) -> None:
    with cli_transaction(cli_settings()) as session:
        site = accounts.site_by_finess(session, finess)
        stations.remove_station_rule(session, operator(), site.id, modality, procedure)
        click.echo(_("Station rule removed"))
