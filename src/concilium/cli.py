"""The ``concilium`` command: serve, migrate, administer, and each service's own tools."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from concilium.commands import (
    Failure,
    Group,
    Installation,
    cli_settings,
    cli_transaction,
    migrate_schema,
    operator,
    speak_terminal_language,
)
from concilium.config import Settings
from concilium.platform import account_links, accounts, audit, authn, demo, totp
from concilium.platform.accounts import RoleGrant
from concilium.platform.audit_checkpoints import CheckpointLog, read_head
from concilium.platform.db import utcnow
from concilium.platform.encryption import SecretBox, load_or_create_key
from concilium.platform.i18n import N_, _
from concilium.platform.services import resolve
from concilium.services import ACTIONS, SCHEMA, SERVICES, TOKEN_SCOPES


@click.group(
    cls=Group,
    context_settings={"help_option_names": ["-h", "--help"]},
    help=N_(
        "Concilium: the hospitals of a region working as one team at a distance.\n\n"
        "Messages are in French, in English when CONCILIUM_LANG=en or the locale "
        "(LANGUAGE, LC_ALL, LC_MESSAGES, LANG) is English."
    ),
)
@click.pass_context
def main(ctx: click.Context) -> None:
    speak_terminal_language(ctx)
    ctx.obj = Installation(SCHEMA, TOKEN_SCOPES)


@main.command(
    help=N_("Serve the web UI, the APIs and the protocol listeners (stops gracefully on SIGTERM).")
)
@click.option("--host", help=N_("Listen address (default: CONCILIUM_HTTP_HOST)."))
@click.option("--port", type=int, help=N_("Listen port (default: CONCILIUM_HTTP_PORT)."))
@click.option("--no-migrate", is_flag=True, help=N_("Do not bring the schema up to date first."))
def serve(host: str | None, port: int | None, no_migrate: bool) -> None:
    import uvicorn

    from concilium.app import application
    from concilium.assembly import Assembly
    from concilium.web.observability import configure_logging

    settings = cli_settings()
    configure_logging(settings.log_level)
    if not no_migrate:
        migrate_schema(settings)
    assembly = Assembly.build(settings)
    assembly.open()  # what an interrupted run left is recovered first
    try:
        uvicorn.run(
            application(assembly, serve=True),
            host=host or settings.http_host,
            port=port or settings.http_port,
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=20,
        )
    finally:
        assembly.close()


@main.command("migrate", help=N_("Create or upgrade the database schema."))
@click.option("--revision", default="head", show_default=True, help=N_("Schema revision to reach."))
def migrate_command(revision: str) -> None:
    migrate_schema(cli_settings(), revision)
    click.echo(_("schema at %(revision)s") % {"revision": revision})


# --- sites ----------------------------------------------------------------------------------


@main.group(help=N_("Hospitals of the region."))
def site() -> None: ...


@site.command("create", help=N_("Register a hospital of the region."))
@click.option("--name", required=True, help=N_("Name of the hospital, as people know it."))
@click.option("--finess", required=True, help=N_("Nine-character FINESS number."))
def site_create(name: str, finess: str) -> None:
    with cli_transaction(cli_settings()) as session:
        created = accounts.create_site(session, operator(), name, finess)
        click.echo(
            _("site %(id)s created: %(name)s (%(finess)s)")
            % {"id": created.id, "name": created.name, "finess": created.finess}
        )


@site.command("list", help=N_("Every hospital, one a line: number, FINESS number, name."))
def site_list() -> None:
    with cli_transaction(cli_settings()) as session:
        for s in accounts.list_sites(session):
            click.echo(f"{s.id}\t{s.finess}\t{s.name}")


# --- users ----------------------------------------------------------------------------------


@main.group(help=N_("Accounts and their roles."))
def user() -> None: ...


@user.command(
    "create", help=N_("Create an account (for the first administrator, and for scripts).")
)
@click.option("--username", required=True, help=N_("User name, to sign in with."))
@click.option(
    "--full-name", required=True, help=N_("First name and last name, as colleagues read them.")
)
@click.option(
    "--role",
    "role_specs",
    multiple=True,
    # Translators: the roles are the names a script gives; they stay in English.
    help=N_(
        "ROLE@FINESS, repeatable; roles: admin, radiologist, referring_physician, specialist, "
        "coordinator, technologist, engineer, learner."
    ),
)
@click.option(
    "--password",
    help=N_(
        "Initial password, for scripts and tests; without it, a set-up link is printed by "
        "which the account's holder chooses their password and sets up their authenticator."
    ),
)
@click.option("--profession", default="", help=N_("Profession (physician, nurse, ...)."))
@click.option("--specialty", default="", help=N_("Medical specialty."))
@click.option("--rpps", default=None, help=N_("Eleven-digit practitioner number."))
@click.option("--email", default="", help=N_("E-mail address, for notifications and set-up links."))
@click.option("--platform-admin", is_flag=True, help=N_("Administers the whole region."))
@click.option(
    "--with-totp",
    is_flag=True,
    help=N_("With --password: enrol a second factor now and print its key."),
)
def user_create(
    username: str,
    full_name: str,
    role_specs: tuple[str, ...],
    password: str | None,
    profession: str,
    specialty: str,
    rpps: str | None,
    email: str,
    platform_admin: bool,
    with_totp: bool,
) -> None:
    settings = cli_settings()
    if with_totp and password is None:
        raise click.UsageError(_("--with-totp goes with --password; a set-up link enrols it"))
    with cli_transaction(settings) as session:
        grants = []
        for spec in role_specs:
            role, _at, finess = spec.partition("@")
            grants.append(RoleGrant(accounts.site_by_finess(session, finess).id, role))
        created = accounts.create_user(
            session,
            operator(),
            username=username,
            full_name=full_name,
            password=password,
            roles=grants,
            email=email,
            profession=profession,
            specialty=specialty,
            rpps=rpps,
            is_platform_admin=platform_admin,
        )
        click.echo(
            _("user %(id)s created: %(username)s")
            % {"id": created.id, "username": created.username}
        )
        if password is None:
            link = account_links.issue(session, settings, operator(), created, "setup", utcnow())
            click.echo(
                _("set-up link (works once, until %(until)s UTC; give it to the account's holder):")
                % {"until": f"{link.record.expires_at:%Y-%m-%d %H:%M}"}
            )
            click.echo(link.url)
        if with_totp:
            secret = totp.new_secret()
            box = SecretBox(load_or_create_key(settings.data_dir, settings.secret_key))
            created.totp_secret = box.seal(secret, f"totp:{created.id}")
            click.echo(_("authenticator key: %(key)s") % {"key": secret})
            uri = totp.provisioning_uri(secret, created.username)
            click.echo(_("otpauth URI: %(uri)s") % {"uri": uri})


@user.command(
    "list",
    help=N_("Every account, one a line: number, user name, state, roles, full name."),
)
def user_list() -> None:
    with cli_transaction(cli_settings()) as session:
        for u in accounts.list_users(session, None):
            roles = ",".join(sorted(f"{m.role}@{m.site_id}" for m in u.memberships))
            state = "disabled" if u.disabled else "active"
            click.echo(f"{u.id}\t{u.username}\t{state}\t{roles}\t{u.full_name}")


@user.command("disable", help=N_("Disable an account and end its sessions."))
@click.argument("username", help=N_("User name of the account."))
def user_disable(username: str) -> None:
    with cli_transaction(cli_settings()) as session:
        found = accounts.user_by_username(session, username)
        if found is None:
            raise Failure(_("no user %(username)r") % {"username": username})
        accounts.set_disabled(session, operator(), found, True)
        click.echo(_("user %(username)s disabled") % {"username": found.username})


# --- tokens ---------------------------------------------------------------------------------


@main.group(help=N_("API bearer tokens for machines and scripts."))
def token() -> None: ...


@token.command("create", help=N_("Issue a token; prints its id, then its secret (shown once)."))
@click.option("--user", "username", required=True, help=N_("Account the token acts for."))
@click.option("--name", required=True, help=N_("What will use it."))
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(sorted(TOKEN_SCOPES)),
    help=N_("What the token may do (repeatable)."),
)
@click.option("--days", type=int, default=90, show_default=True, help=N_("Days until it expires."))
def token_create(username: str, name: str, scopes: tuple[str, ...], days: int) -> None:
    settings = cli_settings()
    with cli_transaction(settings) as session:
        owner = accounts.user_by_username(session, username)
        if owner is None:
            raise Failure(_("no user %(username)r") % {"username": username})
        issued = authn.issue_token(
            session,
            settings,
            operator(),
            owner,
            name,
            list(scopes),
            days,
            utcnow(),
            actions=ACTIONS,
        )
        click.echo(
            _("token %(id)s expires %(day)s")
            % {"id": issued.record.public_id, "day": f"{issued.record.expires_at:%Y-%m-%d}"}
        )
        click.echo(issued.secret)


@token.command("revoke", help=N_("Revoke a token: it no longer opens anything."))
@click.argument("token_id", help=N_("Id of the token, as `token create` printed it."))
def token_revoke(token_id: str) -> None:
    with cli_transaction(cli_settings()) as session:
        authn.revoke_token(session, operator(), authn.get_token(session, token_id), utcnow())
        click.echo(_("token %(id)s revoked") % {"id": token_id})


# --- demo -----------------------------------------------------------------------------------


@main.group("demo", help=N_("Demonstration data."))
def demo_group() -> None: ...


@demo_group.command(
    "load",
    help=N_(
        "Two hospitals, one user per role, a few patients with their studies, a modality "
        "node per hospital, a planned telesurgery procedure and a scheduled live session;"
        " prints the sign-in details. What exists is left alone: loading twice adds "
        "nothing twice."
    ),
)
def demo_load() -> None:
    settings = cli_settings()
    migrate_schema(settings)
    key = load_or_create_key(settings.data_dir, settings.secret_key)
    links: dict[str, str] = {}
    with cli_transaction(settings) as session:
        accounts_loaded = demo.load(session, key)
        for a in accounts_loaded:
            user = accounts.user_by_username(session, a.username)
            # An account whose role needs a second factor enrols it through a link.
            if user is not None and authn.mfa_required(user, settings) and not user.totp_secret:
                issued = account_links.issue(session, settings, operator(), user, "setup", utcnow())
                links[a.username] = issued.url
    _demo_services(settings)
    click.echo(_("Demo accounts (password shown). Accounts marked * need an authenticator app:"))
    click.echo(_("open the set-up link printed under them once, choose a password (the one shown"))
    click.echo(_("will do) and scan the QR code; each run prints new links."))
    for a in accounts_loaded:
        mark = "*" if a.username in links else " "
        click.echo(f"  {mark} {a.username:<18} {a.password:<24} {a.role:<20} {a.site}")
        if a.username in links:
            click.echo("      " + _("set-up link: %(url)s") % {"url": links[a.username]})


def _demo_services(settings: Settings) -> None:
    """The services' part of the demonstration, through each service's own loader."""
    from concilium.imaging import demo as imaging_demo
    from concilium.imaging.cli import make_archive
    from concilium.live import demo as live_demo
    from concilium.telesurgery import demo as telesurgery_demo

    images = imaging_demo.load(make_archive(settings))
    with cli_transaction(settings) as session:
        telesurgery_demo.load(session, utcnow())
        live_demo.load(session, utcnow())
    nodes = ", ".join(title for title, _ in imaging_demo.DEMO_NODES.values())
    click.echo(
        _("Demo images: %(count)s studies sent by the modality nodes %(nodes)s.")
        % {"count": images.studies, "nodes": nodes}
    )
    click.echo(_("Planned telesurgery procedure: %(title)s") % {"title": telesurgery_demo.TITLE})
    click.echo(_("Scheduled live session: %(title)s") % {"title": live_demo.TITLE})


# --- audit ----------------------------------------------------------------------------------


@main.group("audit", help=N_("The audit trail."))
def audit_group() -> None: ...


def _checkpoint_log(settings: Settings) -> CheckpointLog:
    key = load_or_create_key(settings.data_dir, settings.secret_key)
    return CheckpointLog.in_data_dir(settings.data_dir, key, settings.audit_syslog_destination)


@audit_group.command(
    "verify",
    help=N_(
        "Check the hash chain, and the chain against the signed checkpoints of its head; "
        "exit status 1 if any entry was altered or deleted, the tail cut, or a checkpoint"
        " altered."
    ),
)
@click.option(
    "--checkpoints",
    "others",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=N_(
        "More checkpoints: a copy of the data dir file, or a syslog collector's file (repeatable)."
    ),
)
def audit_verify(others: tuple[Path, ...]) -> None:
    settings = cli_settings()
    checkpoints = list(_checkpoint_log(settings).read(others))
    with cli_transaction(settings) as session:
        breaks = audit.verify(session, checkpoints)
        length = audit.chain_length(session)
    if breaks:
        for b in breaks:
            subject = (
                _("checkpoint %(number)s") % {"number": b.checkpoint}
                if b.checkpoint
                else _("entry %(number)s") % {"number": b.seq}
            )
            said = {"subject": subject, "problem": b.problem.said()}
            click.echo(_("%(subject)s: %(problem)s") % said, err=True)
        raise SystemExit(1)
    if length and not checkpoints:
        click.echo(
            _(
                "no checkpoint of the chain yet: a cut tail would go unnoticed "
                "(`concilium serve` takes them; `concilium audit checkpoint` takes one now)"
            ),
            err=True,
        )
    click.echo(
        _("audit chain intact: %(entries)s entries, %(checkpoints)s checkpoints agree")
        % {"entries": length, "checkpoints": len(checkpoints)}
    )


@audit_group.command(
    "checkpoint",
    help=N_("Take a signed checkpoint of the chain's head now (the server takes them on its own)."),
)
def audit_checkpoint() -> None:
    settings = cli_settings()
    with cli_transaction(settings) as session:
        seq, digest = read_head(session)
    if seq == 0:
        click.echo(_("the audit chain is empty: nothing to checkpoint"))
        return
    taken = _checkpoint_log(settings).take(seq, digest, utcnow())
    click.echo(
        _("checkpoint of entry %(number)s (%(hash)s…) written")
        % {"number": taken.seq, "hash": taken.hash[:16]}
    )


@audit_group.command(
    "export", help=N_("Write the whole audit trail, oldest entry first, for an archive.")
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["fhir", "syslog"]),
    default="fhir",
    show_default=True,
    help=N_("FHIR AuditEvent NDJSON or RFC 5424 lines."),
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=N_("File to write (default: standard output)."),
)
def audit_export(fmt: str, output: Path | None) -> None:
    settings = cli_settings()
    with cli_transaction(settings) as session:
        total = audit.chain_length(session)
        stream = output.open("w", encoding="utf-8") if output else sys.stdout
        try:
            with click.progressbar(length=total, label=_("exporting"), file=sys.stderr) as bar:
                for line in audit.export_lines(audit.iter_events(session), fmt, "concilium"):
                    stream.write(line + "\n")
                    bar.update(1)
        finally:
            if output:
                stream.close()


# --- configuration --------------------------------------------------------------------------


@main.group("config", help=N_("Configuration."))
def config_group() -> None: ...


@config_group.command("show", help=N_("Print the effective configuration, secrets masked."))
def config_show() -> None:
    click.echo(json.dumps(cli_settings().masked(), indent=2, default=str))


for _service in SERVICES:
    for _reference in (
        (_service.commands,) if isinstance(_service.commands, str) else _service.commands
    ):
        if _reference:
            main.add_command(resolve(_reference, click.Group))
