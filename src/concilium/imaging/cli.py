"""``concilium dicom``: the archive's DICOM server, imports and exports, and known nodes."""

from __future__ import annotations

import datetime as dt
import shutil
import signal
import ssl
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import click

from concilium.commands import (
    Failure,
    Group,
    cli_settings,
    cli_transaction,
    migrate_schema,
    operator,
    speak_terminal_language,
)
from concilium.config import Settings
from concilium.imaging import nodes
from concilium.imaging.archive import Archive, statistics
from concilium.imaging.consistency import check
from concilium.imaging.dimse import ClientTls, DicomServer, DimseSettings, server_tls_context
from concilium.imaging.dimse_services import DimseExtension
from concilium.imaging.export import stored_instances
from concilium.imaging.ingest import Sender, ingest_instance
from concilium.imaging.parsing import InvalidInstance
from concilium.imaging.process import archive_for
from concilium.platform import accounts
from concilium.platform.db import transaction
from concilium.platform.errors import ConciliumError
from concilium.platform.i18n import N_, _, ngettext
from concilium.platform.policy import Principal
from concilium.platform.runtime import Runtime

__all__ = ["dicom", "make_archive", "start_dicom_server"]


def make_archive(settings: Settings) -> Archive:
    """The archive of this installation, for a command that runs on its own."""
    return archive_for(Runtime.start(settings))


def dicom_tls(settings: Settings) -> ssl.SSLContext | None:
    """The DICOM listener's TLS, from ``CONCILIUM_DICOM_TLS_*``; None for plain TCP."""
    certificate, key = settings.dicom_tls_certificate, settings.dicom_tls_key
    if certificate is None and key is None:
        if settings.dicom_tls_client_ca is not None:
            raise Failure(_("CONCILIUM_DICOM_TLS_CLIENT_CA needs a certificate and key"))
        return None
    if certificate is None or key is None:
        raise Failure(_("set both CONCILIUM_DICOM_TLS_CERTIFICATE and CONCILIUM_DICOM_TLS_KEY"))
    try:
        return server_tls_context(certificate, key, settings.dicom_tls_client_ca)
    except (OSError, ssl.SSLError) as exc:
        raise Failure(
            _("cannot load the DICOM TLS certificate: %(error)s") % {"error": exc}
        ) from exc


def start_dicom_server(
    settings: Settings,
    port: int | None = None,
    archive: Archive | None = None,
    extensions: Sequence[DimseExtension] = (),
) -> DicomServer:
    """Serve DIMSE in a background thread on ``archive`` (that of the process); without one,
    the installation's archive is recovered from an interrupted run first. ``extensions``:
    SOP classes other services serve on the same listener."""
    tls = dicom_tls(settings)
    # Nodes registered with TLS are called with the listener's certificate, and trusted
    # when the authority of its client certificates (or, without one, the system) vouches.
    client_tls = ClientTls(
        certificate=settings.dicom_tls_certificate,
        key=settings.dicom_tls_key,
        ca=settings.dicom_tls_client_ca,
    )
    if archive is None:
        archive = make_archive(settings)
        archive.recover()
    try:
        server = DicomServer(
            archive,
            DimseSettings(
                ae_title=settings.dicom_ae_title,
                host=settings.dicom_host,
                port=settings.dicom_port if port is None else port,
                allow_unknown_ae=settings.dicom_allow_unknown_ae,
                tls=tls,
                client_tls=client_tls,
            ),
            extensions=extensions,
        )
    except (OSError, ssl.SSLError) as exc:
        raise Failure(_("cannot load the DICOM TLS files: %(error)s") % {"error": exc}) from exc
    server.start()
    return server


@click.group(
    "dicom",
    cls=Group,
    help=N_("The image archive: DICOM server, import, export and known DICOM nodes."),
)
@click.pass_context
def dicom(ctx: click.Context) -> None:
    speak_terminal_language(ctx)


@dicom.command(
    "serve", help=N_("Serve only the DICOM services (C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET).")
)
@click.option("--port", type=int, help=N_("Listen port (default: CONCILIUM_DICOM_PORT)."))
@click.option("--no-migrate", is_flag=True, help=N_("Do not bring the schema up to date first."))
def dicom_serve(port: int | None, no_migrate: bool) -> None:
    settings = cli_settings()
    if not no_migrate:
        migrate_schema(settings)
    server = start_dicom_server(settings, port)
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    click.echo(
        _("DICOM %(ae)s listening on %(host)s:%(port)s")
        % {"ae": settings.dicom_ae_title, "host": settings.dicom_host, "port": server.port}
    )
    try:
        stop.wait()
    finally:
        server.stop()


@dicom.command(
    "import",
    help=N_("Import every DICOM file under DIRECTORY; refused files are listed, not fatal."),
)
@click.argument(
    "directory",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help=N_("Directory to read, subdirectories included."),
)
@click.option(
    "--site", "finess", required=True, help=N_("FINESS of the site that owns the images.")
)
def dicom_import(directory: Path, finess: str) -> None:
    settings = cli_settings()
    archive = make_archive(settings)
    with transaction(archive.sessions) as session:
        try:
            site = accounts.site_by_finess(session, finess)
        except ConciliumError as exc:
            raise Failure(exc.detail) from exc
    actor = operator()
    # The operator already holds the server's files and database; as an importer they act
    # as an administrator of the site the images belong to, and every file is audited.
    sender = Sender(
        principal=Principal(
            user_id=0, username=actor.username, roles={site.id: frozenset({"admin"})}
        ),
        actor=actor,
        site_id=site.id,
    )
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    stored = refused = 0
    archive.open_for_writing()
    try:
        with click.progressbar(files, label=_("importing"), file=sys.stderr) as bar:
            for path in bar:
                try:
                    with path.open("rb") as fh:
                        ingest_instance(archive, sender, iter(lambda: fh.read(1 << 20), b""))
                    stored += 1
                except InvalidInstance as exc:
                    refused += 1
                    click.echo(f"\n{path}: {exc}", err=True)
    finally:
        archive.close()
    click.echo(
        ngettext("%(count)s instance stored", "%(count)s instances stored", stored)
        % {"count": stored}
        + ", "
        + ngettext("%(count)s refused", "%(count)s refused", refused) % {"count": refused}
    )


@dicom.command(
    "export",
    help=N_("Copy stored instances, byte for byte, to DIRECTORY/<study>/<series>/<instance>.dcm."),
)
@click.argument(
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help=N_("Directory to write to (created when missing)."),
)
@click.option("--study", "study_uid", default=None, help=N_("Only this Study Instance UID."))
def dicom_export(directory: Path, study_uid: str | None) -> None:
    settings = cli_settings()
    archive = make_archive(settings)
    with transaction(archive.sessions) as session:
        rows = stored_instances(session, study_uid or None)
    with click.progressbar(rows, label=_("exporting"), file=sys.stderr) as bar:
        for row in bar:
            target = directory / row.export_path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(archive.store.path_of(row.address), target)
    click.echo(
        ngettext(
            "%(count)s instance exported to %(directory)s",
            "%(count)s instances exported to %(directory)s",
            len(rows),
        )
        % {"count": len(rows), "directory": directory}
    )


@dicom.command(
    "fsck",
    help=N_(
        "Compare the index with the stored files, online: rows whose file is missing, files "
        "no row names. Exit status 0 when consistent, 1 otherwise."
    ),
)
@click.option(
    "--repair",
    is_flag=True,
    help=N_(
        "Remove the files nothing names (no row, no pending write) older than the grace "
        "period; never a file a row names. Missing files cannot be repaired."
    ),
)
@click.option(
    "--grace-minutes",
    type=click.IntRange(min=0),
    default=60,
    show_default=True,
    help=N_("A file younger than this is never removed: it may be being indexed."),
)
def dicom_fsck(repair: bool, grace_minutes: int) -> None:
    archive = make_archive(cli_settings())

    def progress(count: int) -> None:
        click.echo(
            ngettext("%(count)s file checked", "%(count)s files checked", count) % {"count": count},
            err=True,
        )

    try:
        found = check(
            archive,
            repair=repair,
            grace=dt.timedelta(minutes=grace_minutes),
            progress=progress,
        )
    finally:
        archive.close()
    for address in found.missing:
        click.echo(_("missing file: %(address)s (named by the index)") % {"address": address})
    removed = set(found.removed)
    for address in found.unnamed:
        if address in removed:
            click.echo(_("removed unnamed file: %(address)s") % {"address": address})
        else:
            click.echo(_("unnamed file: %(address)s") % {"address": address})
    click.echo(
        _(
            "%(objects)s files, %(indexed)s addresses indexed: %(missing)s missing, "
            "%(unnamed)s unnamed, %(removed)s removed"
        )
        % {
            "objects": found.objects,
            "indexed": found.indexed,
            "missing": len(found.missing),
            "unnamed": len(found.unnamed),
            "removed": len(found.removed),
        }
    )
    if found.missing:
        click.echo(
            _(
                "missing files cannot be repaired: restore them from a backup, or delete "
                "their studies"
            ),
            err=True,
        )
    if found.recent:
        click.echo(
            ngettext(
                "%(count)s unnamed file is younger than the grace period and was kept",
                "%(count)s unnamed files are younger than the grace period and were kept",
                found.recent,
            )
            % {"count": found.recent},
            err=True,
        )
    if not found.consistent:
        raise click.exceptions.Exit(1)


@dicom.command("stats", help=N_("Studies, series, instances and bytes held by the archive."))
def dicom_stats() -> None:
    with cli_transaction(cli_settings()) as session:
        stats = statistics(session)
    counts = (
        (ngettext("%(count)s study", "%(count)s studies", stats.studies), stats.studies),
        (ngettext("%(count)s series", "%(count)s series", stats.series), stats.series),
        (ngettext("%(count)s instance", "%(count)s instances", stats.instances), stats.instances),
        (ngettext("%(count)s byte", "%(count)s bytes", stats.bytes), stats.bytes),
    )
    click.echo(", ".join(text % {"count": n} for text, n in counts))


@dicom.group(
    "ae", help=N_("DICOM nodes (modalities, PACS, workstations) allowed to talk to the archive.")
)
def ae_group() -> None: ...


@ae_group.command("add", help=N_("Register a node of a site; it acts for that site."))
@click.argument("ae_title", help=N_("AE title of the node."))
@click.option(
    "--host", required=True, help=N_("Host name or address at which the archive calls it.")
)
@click.option(
    "--port", type=int, required=True, help=N_("DICOM port at which the archive calls it.")
)
@click.option("--site", "finess", required=True, help=N_("FINESS of the node's site."))
@click.option("--store/--no-store", default=True, show_default=True, help=N_("May send images."))
@click.option(
    "--query/--no-query", default=False, show_default=True, help=N_("May query/retrieve.")
)
@click.option(
    "--move-destination/--no-move-destination",
    default=False,
    show_default=True,
    help=N_("May receive images by C-MOVE."),
)
@click.option(
    "--tls/--no-tls",
    default=False,
    show_default=True,
    help=N_("Call it over TLS (C-MOVE results), its certificate verified."),
)
@click.option(
    "--networks",
    default=None,
    help=N_(
        "Addresses or networks (CIDR, space-separated) it may call from "
        "[default: its host's address]."
    ),
)
@click.option(
    "--certificate",
    default="",
    help=N_("Over TLS, the client certificate it must present: SHA-256 fingerprint or subject."),
)
@click.option("--description", default="", help=N_("What the node is, for administrators."))
def ae_add(
    ae_title: str,
    host: str,
    port: int,
    finess: str,
    store: bool,
    query: bool,
    move_destination: bool,
    tls: bool,
    networks: str | None,
    certificate: str,
    description: str,
) -> None:
    with cli_transaction(cli_settings()) as session:
        site = accounts.site_by_finess(session, finess)
        ae = nodes.add_remote_ae(
            session,
            operator(),
            ae_title=ae_title,
            host=host,
            port=port,
            site_id=site.id,
            allow_store=store,
            allow_query=query,
            allow_move_destination=move_destination,
            description=description,
            tls=tls,
            networks=networks,
            certificate=certificate,
        )
        click.echo(_("AE %(ae)s registered for %(site)s") % {"ae": ae.ae_title, "site": site.name})


@ae_group.command(
    "identity",
    help=N_("Bind a node to where it may call from and the certificate it presents over TLS."),
)
@click.argument("ae_title", help=N_("AE title of the node."))
@click.option("--networks", default=None, help=N_("Addresses or networks (CIDR) it may call from."))
@click.option(
    "--certificate",
    default=None,
    help=N_("Over TLS, the certificate it must present (SHA-256 fingerprint or subject); '' none."),
)
def ae_identity(ae_title: str, networks: str | None, certificate: str | None) -> None:
    with cli_transaction(cli_settings()) as session:
        ae = nodes.set_remote_ae_identity(
            session, operator(), ae_title, networks=networks, certificate=certificate
        )
        where = {"ae": ae.ae_title, "networks": ae.networks or ae.host}
        if ae.certificate:
            click.echo(
                _("AE %(ae)s calls from %(networks)s, presenting %(certificate)s")
                % {**where, "certificate": ae.certificate}
            )
        else:
            click.echo(_("AE %(ae)s calls from %(networks)s") % where)


@ae_group.command(
    "tls", help=N_("Call a node over TLS from now on (on), or over plain TCP again (off).")
)
@click.argument("ae_title", help=N_("AE title of the node."))
@click.argument(
    "state", type=click.Choice(["on", "off"]), help=N_("on: over TLS; off: over plain TCP.")
)
def ae_tls(ae_title: str, state: str) -> None:
    with cli_transaction(cli_settings()) as session:
        ae = nodes.set_remote_ae_tls(session, operator(), ae_title, state == "on")
        if ae.tls:
            click.echo(_("AE %(ae)s is called over TLS") % {"ae": ae.ae_title})
        else:
            click.echo(_("AE %(ae)s is called over plain TCP") % {"ae": ae.ae_title})


@ae_group.command(
    "list",
    help=N_(
        "The registered nodes, one a line: AE title, address, site, permissions, transport, "
        "networks and certificate."
    ),
)
def ae_list() -> None:
    with cli_transaction(cli_settings()) as session:
        for ae in nodes.list_remote_aes(session):
            flags = ",".join(
                name
                for name, on in (
                    ("store", ae.allow_store),
                    ("query", ae.allow_query),
                    ("move-destination", ae.allow_move_destination),
                )
                if on
            )
            address = f"{ae.host}:{ae.port}"
            transport = "tls" if ae.tls else "tcp"
            identity = f"{ae.networks or ae.host}\t{ae.certificate or '-'}"
            click.echo(
                f"{ae.ae_title}\t{address}\tsite {ae.site_id}\t{flags or '-'}\t{transport}"
                f"\t{identity}"
            )


@ae_group.command("remove", help=N_("Forget a node: it may no longer talk to the archive."))
@click.argument("ae_title", help=N_("AE title of the node."))
def ae_remove(ae_title: str) -> None:
    with cli_transaction(cli_settings()) as session:
        nodes.remove_remote_ae(session, operator(), ae_title)
        click.echo(_("AE %(ae)s removed") % {"ae": ae_title})
