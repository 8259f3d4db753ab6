"""The ``telesurgery`` command group: gateways, robot simulator, impairment proxy, qualify."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.orm import Session

from concilium.commands import (
    Failure,
    Group,
    cli_settings,
    cli_transaction,
    operator,
    speak_terminal_language,
)
from concilium.platform import accounts
from concilium.platform.errors import ConciliumError
from concilium.platform.i18n import N_, _
from concilium.telesurgery import procedures, readiness
from concilium.telesurgery.gateways import ConsoleGateway, RobotGateway
from concilium.telesurgery.impairment import PROFILES, profile, run_proxy
from concilium.telesurgery.limits import MotionLimits
from concilium.telesurgery.link import KeyFileError, ProcedureKeys, load_keys, write_keys
from concilium.telesurgery.motion import MotionScaling
from concilium.telesurgery.qualification import qualify, write_report
from concilium.telesurgery.reporting import TimelineReporter
from concilium.telesurgery.robot_simulator import DEFAULT_PORT
from concilium.telesurgery.robot_simulator import serve as serve_simulator
from concilium.telesurgery.safety import (
    LINK_CLASSES,
    SafetyThresholds,
    load_procedure_file,
    resolve_link_class,
)

DEFAULT_LINK_PORT = 18950
"""UDP port of the robot gateway's link endpoint."""


def _address(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(_("expected HOST:PORT, got %(value)r") % {"value": value})
    return host or "127.0.0.1", int(port)


class _Address(click.ParamType[tuple[str, int], Any]):
    name = "HOST:PORT"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, int]:
        if isinstance(value, tuple):
            return value
        try:
            return _address(str(value))
        except click.BadParameter as exc:
            self.fail(str(exc), param, ctx)


ADDRESS = _Address()


T = TypeVar("T")


def _with_progress(duration: float, run: Callable[[Callable[[float], None]], T]) -> T:
    """Run a qualification showing its progress on standard error: a bar on a terminal,
    a line every 10 % otherwise (logs of a scheduled run stay readable)."""
    if duration >= 2.0 and sys.stderr.isatty():
        with click.progressbar(length=100, label=_("qualifying"), file=sys.stderr) as bar:
            shown = 0

            def on_progress(fraction: float) -> None:
                nonlocal shown
                bar.update(int(fraction * 100) - shown)
                shown = int(fraction * 100)

            return run(on_progress)
    last_tenth = -1

    def on_line(fraction: float) -> None:
        nonlocal last_tenth
        if duration >= 2.0 and int(fraction * 10) > last_tenth:
            last_tenth = int(fraction * 10)
            click.echo(_("qualifying: %(percent)s%%") % {"percent": last_tenth * 10}, err=True)

    return run(on_line)


def _keys(path: Path) -> ProcedureKeys:
    try:
        return load_keys(path)
    except KeyFileError as exc:
        raise Failure(str(exc)) from exc


def _procedure(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        return load_procedure_file(path)
    except (OSError, ValueError) as exc:
        raise Failure(
            _("cannot read procedure file %(path)s: %(error)s") % {"path": path, "error": exc}
        ) from exc


def _settings(path: Path | None, link_class: str | None) -> dict[str, Any]:
    """A procedure file's sections over the preset of its link class."""
    try:
        return resolve_link_class(_procedure(path), link_class)
    except ValueError as exc:
        raise Failure(str(exc)) from exc


LINK_CLASS = click.option(
    "--link-class",
    type=click.Choice(list(LINK_CLASSES)),
    default=None,
    help=N_(
        "Threshold preset for the distance between console and robot (default: the "
        "procedure file's link_class, else lan); the file's values override it. "
        "See `telesurgery link-classes`."
    ),
)


def _realtime(priority: int | None) -> None:
    """Move this process to SCHED_FIFO: a gateway must not wait behind batch work."""
    if priority is None:
        return
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (AttributeError, OSError) as exc:
        raise Failure(
            _("cannot set real-time priority %(priority)s: %(error)s")
            % {"priority": priority, "error": exc}
        ) from exc


# The options both gateways take.
KEY_FILE = click.option(
    "--keys",
    "keys_path",
    required=True,
    type=click.Path(path_type=Path),
    help=N_("Procedure key file (mode 0600)."),
)
PROCEDURE_FILE = click.option(
    "--procedure",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help=N_("Procedure file (TOML or JSON) with [safety], [limits], [qualification]."),
)
REPORT_PROCEDURE = click.option(
    "--report-procedure", type=int, default=None, help=N_("Procedure number.")
)

RT_PRIORITY = click.option(
    "--rt-priority",
    type=click.IntRange(1, 99),
    default=None,
    help=N_("Run with SCHED_FIFO at this priority (Linux; needs CAP_SYS_NICE)."),
)


def _run_until_signal(main: Callable[[], Awaitable[Callable[[], dict[str, Any]] | None]]) -> None:
    """Run a service until SIGINT/SIGTERM, then print its counters as one JSON line."""

    async def runner() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        stats = await main()
        await stop.wait()
        if stats is not None:
            click.echo(json.dumps(stats(), default=str))

    asyncio.run(runner())


@click.group(
    "telesurgery",
    cls=Group,
    help=N_("Telesurgery: gateways, secure low-latency link, safety and link qualification."),
)
@click.option("-v", "--verbose", is_flag=True, help=N_("Log every state transition."))
@click.pass_context
def telesurgery(ctx: click.Context, verbose: bool) -> None:
    speak_terminal_language(ctx)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


@telesurgery.command(
    "generate-keys",
    help=N_("Write a fresh procedure key file (mode 0600) to PATH, for the demo and tests."),
)
@click.option("--procedure-id", required=True, help=N_("Procedure the keys belong to."))
@click.option(
    "--key-id",
    type=click.IntRange(0, 2**32 - 1),
    default=1,
    show_default=True,
    help=N_("Number of the key set."),
)
@click.argument(
    "path", type=click.Path(dir_okay=False, path_type=Path), help=N_("Key file to write.")
)
def generate_keys(procedure_id: str, key_id: int, path: Path) -> None:
    write_keys(ProcedureKeys.generate(procedure_id, key_id), path)
    click.echo(_("wrote %(path)s") % {"path": path})


@telesurgery.command(
    "console-gateway",
    help=N_("Serve the master console over OpenIGTLink and forward it over the link."),
)
@KEY_FILE
@click.option("--remote", required=True, type=ADDRESS, help=N_("Robot gateway (or proxy) UDP."))
@click.option(
    "--link-bind",
    type=ADDRESS,
    default="0.0.0.0:0",
    show_default=True,
    help=N_("Local UDP address of the link."),
)
@click.option(
    "--igtl-bind",
    type=ADDRESS,
    default=f"127.0.0.1:{DEFAULT_PORT}",
    show_default=True,
    help=N_("Where the master console connects over OpenIGTLink."),
)
@click.option("--scale", type=float, default=1.0, show_default=True, help=N_("Motion scaling."))
@PROCEDURE_FILE
@LINK_CLASS
@click.option(
    "--report-to",
    default=None,
    metavar="URL",
    help=N_(
        "Concilium's URL: report this side's view of the link to the procedure "
        "(needs --report-procedure, CONCILIUM_API_TOKEN with scope telesurgery:gateway and "
        "CONCILIUM_GATEWAY_TOKEN, the console gateway's enrolment token)."
    ),
)
@REPORT_PROCEDURE
@RT_PRIORITY
def console_gateway(
    keys_path: Path,
    remote: tuple[str, int],
    link_bind: tuple[str, int],
    igtl_bind: tuple[str, int],
    scale: float,
    procedure: Path | None,
    link_class: str | None,
    report_to: str | None,
    report_procedure: int | None,
    rt_priority: int | None,
) -> None:
    reporter = _reporter(report_to, report_procedure)
    keys = _keys(keys_path)
    _realtime(rt_priority)
    try:
        safety = SafetyThresholds.from_mapping(_settings(procedure, link_class)["safety"])
        scaling = MotionScaling(scale)
    except ValueError as exc:
        raise Failure(str(exc)) from exc

    async def main() -> Callable[[], dict[str, Any]]:
        gateway = ConsoleGateway(
            keys,
            remote,
            link_local=link_bind,
            igtl_host=igtl_bind[0],
            igtl_port=igtl_bind[1],
            scaling=scaling,
            freshness_ms=safety.command_freshness_ms,
        )
        if reporter is not None:
            reporter.attach(gateway)
        await gateway.start()
        if reporter is not None:
            reporter.start()
        assert gateway.link is not None
        click.echo(
            _("console gateway: OpenIGTLink on %(host)s:%(port)s, link %(local)s -> %(remote)s")
            % {
                "host": igtl_bind[0],
                "port": gateway.igtl_port,
                "local": gateway.link.local_address,
                "remote": remote,
            },
            err=True,
        )
        return gateway.stats

    _run_until_signal(main)


def _reporter(url: str | None, procedure_id: int | None) -> TimelineReporter | None:
    if url is None:
        return None
    # Tokens come from the environment: command lines are visible to every local user.
    api_token = os.environ.get("CONCILIUM_API_TOKEN", "")
    gateway_token = os.environ.get("CONCILIUM_GATEWAY_TOKEN", "")
    if procedure_id is None or not api_token or not gateway_token:
        raise Failure(
            _(
                "--report-to needs --report-procedure, CONCILIUM_API_TOKEN and "
                "CONCILIUM_GATEWAY_TOKEN"
            )
        )
    return TimelineReporter(url, procedure_id, api_token, gateway_token)


@telesurgery.command(
    "robot-gateway",
    help=N_("Receive the link, apply safety and limits, drive the robot controller."),
)
@KEY_FILE
@click.option("--robot", required=True, type=ADDRESS, help=N_("Robot controller OpenIGTLink."))
@click.option(
    "--link-bind",
    type=ADDRESS,
    default=f"0.0.0.0:{DEFAULT_LINK_PORT}",
    show_default=True,
    help=N_("Local UDP address of the link."),
)
@PROCEDURE_FILE
@LINK_CLASS
@click.option(
    "--report-to",
    default=None,
    metavar="URL",
    help=N_(
        "Concilium's URL: report transitions and link status to the procedure's timeline "
        "(needs --report-procedure, CONCILIUM_API_TOKEN with scope telesurgery:gateway and "
        "CONCILIUM_GATEWAY_TOKEN, the enrolment token)."
    ),
)
@REPORT_PROCEDURE
@RT_PRIORITY
def robot_gateway(
    keys_path: Path,
    robot: tuple[str, int],
    link_bind: tuple[str, int],
    procedure: Path | None,
    link_class: str | None,
    report_to: str | None,
    report_procedure: int | None,
    rt_priority: int | None,
) -> None:
    reporter = _reporter(report_to, report_procedure)
    keys = _keys(keys_path)
    _realtime(rt_priority)
    data = _settings(procedure, link_class)
    try:
        thresholds = SafetyThresholds.from_mapping(data.get("safety", {}))
        limits = MotionLimits.from_mapping(data.get("limits", {}))
    except (TypeError, ValueError) as exc:
        raise Failure(str(exc)) from exc

    async def main() -> Callable[[], dict[str, Any]]:
        gateway = RobotGateway(keys, robot[0], robot[1], thresholds, limits, link_local=link_bind)
        if reporter is not None:
            reporter.attach(gateway)
        await gateway.start()
        if reporter is not None:
            reporter.start()
        assert gateway.link is not None
        click.echo(
            _("robot gateway: link on %(local)s, robot %(host)s:%(port)s")
            % {"local": gateway.link.local_address, "host": robot[0], "port": robot[1]},
            err=True,
        )
        return gateway.stats

    _run_until_signal(main)


@telesurgery.command(
    "robot-simulator", help=N_("Run the simulated robot arm (OpenIGTLink server).")
)
@click.option(
    "--bind",
    type=ADDRESS,
    default=f"127.0.0.1:{DEFAULT_PORT}",
    show_default=True,
    help=N_("OpenIGTLink address the simulated robot listens on."),
)
@click.option(
    "--telemetry-hz",
    type=float,
    default=100.0,
    show_default=True,
    help=N_("Telemetry messages per second."),
)
@click.option(
    "--panel",
    is_flag=True,
    help=N_(
        "Read the local team's actions from standard input "
        "(confirm_engage, takeover, release; one a line)."
    ),
)
def robot_simulator(bind: tuple[str, int], telemetry_hz: float, panel: bool) -> None:
    click.echo(
        _("robot simulator on %(host)s:%(port)s") % {"host": bind[0], "port": bind[1]}, err=True
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_simulator(bind[0], bind[1], telemetry_hz, sys.stdin if panel else None))


@telesurgery.command(
    "impair", help=N_("Run the UDP impairment proxy with a named network profile.")
)
@click.option("--listen", required=True, type=ADDRESS, help=N_("Where the console side sends."))
@click.option("--upstream", required=True, type=ADDRESS, help=N_("Robot gateway link address."))
@click.option(
    "--profile",
    "profile_name",
    type=click.Choice(sorted(PROFILES)),
    required=True,
    help=N_("Network profile to impose."),
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help=N_("Seed of the random draws, to repeat a run."),
)
def impair(
    listen: tuple[str, int], upstream: tuple[str, int], profile_name: str, seed: int
) -> None:
    click.echo(
        _("impairing %(listen)s -> %(upstream)s as %(profile)s")
        % {"listen": listen, "upstream": upstream, "profile": profile_name},
        err=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_proxy(listen, upstream, profile(profile_name), seed))


@telesurgery.command(
    "qualify",
    help=N_(
        "Measure a link session and write a go/no-go report; exit status 1 on no-go.\n\n"
        "The link is judged against the procedure's safety thresholds too: no-go when its"
        " commands would reach the robot too late for the freshness budget."
    ),
)
@click.option(
    "--profile",
    "profile_name",
    type=click.Choice(["direct", *sorted(PROFILES)]),
    default="direct",
    show_default=True,
    help=N_("Network profile of a local proxy between the endpoints (direct: none)."),
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help=N_("Seconds of measurement."),
)
@click.option(
    "--rate",
    type=click.FloatRange(min=1),
    default=1000.0,
    show_default=True,
    help=N_("Commands per second."),
)
@click.option(
    "--bitrate", type=click.FloatRange(min=0), default=4e6, show_default=True, help=N_("bit/s")
)
@click.option(
    "--thresholds",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help=N_(
        "Procedure file: its [qualification] criteria and the [safety] thresholds the "
        "link must allow."
    ),
)
@LINK_CLASS
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(),
    help=N_("Directory of the report (JSON and HTML)."),
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help=N_("Seed of the random draws, to repeat a run."),
)
@click.option(
    "--procedure",
    "procedure_id",
    type=int,
    default=None,
    help=N_(
        "Judge with this procedure's thresholds and keep the report with it "
        "(in the data directory; --out, --thresholds and --link-class are then ignored)."
    ),
)
def qualify_command(
    profile_name: str,
    duration: float,
    rate: float,
    bitrate: float,
    thresholds: Path | None,
    link_class: str | None,
    out: Path,
    seed: int,
    procedure_id: int | None,
) -> None:
    if procedure_id is not None:
        _qualify_procedure(procedure_id, profile_name, duration, rate, bitrate, seed)
        return
    settings = _settings(thresholds, link_class)
    try:
        criteria = procedures.qualification_thresholds(settings)
        safety = SafetyThresholds.from_mapping(settings["safety"])
    except (TypeError, ValueError) as exc:
        raise Failure(str(exc)) from exc
    chosen = None if profile_name == "direct" else profile(profile_name)
    report = _with_progress(
        duration,
        lambda progress: qualify(
            chosen,
            criteria,
            duration,
            rate,
            bitrate,
            seed,
            progress,
            safety=safety,
            link_class=settings["link_class"],
        ),
    )
    json_path, html_path = write_report(report, out)
    verdict = "GO" if report.verdict.go else "NO-GO"
    click.echo(f"{verdict}: {json_path} {html_path}")
    for reason in report.verdict.said():
        click.echo(f"  - {reason}")
    if not report.verdict.go:
        sys.exit(1)


@telesurgery.command(
    "link-classes",
    help=N_("The threshold presets by link class, with the profile to qualify them on."),
)
def link_classes() -> None:
    for preset in LINK_CLASSES.values():
        safety, limits = preset.safety, preset.limits
        click.echo(f"{preset.name}: {_(preset.title)}")
        click.echo(
            "  "
            + _(
                "freshness %(freshness)s ms, halt %(halt)s ms, warning %(warning)s ms, "
                "watchdog %(watchdog)s ms; speed %(speed)s mm/s, %(angular)s deg/s; "
                "profile %(profile)s"
            )
            % {
                "freshness": f"{safety.command_freshness_ms:g}",
                "halt": f"{safety.latency_halt_ms:g}",
                "warning": f"{safety.latency_warning_ms:g}",
                "watchdog": f"{safety.watchdog_ms:g}",
                "speed": f"{limits.max_velocity_mm_s:g}",
                "angular": f"{limits.max_angular_velocity_deg_s:g}",
                "profile": preset.profile,
            }
        )


# --- procedures on the platform -----------------------------------------------------------


def _user_id(db: Session, username: str) -> int:
    user = accounts.user_by_username(db, username)
    if user is None:
        raise Failure(_("no user named %(username)r") % {"username": username})
    return user.id


@telesurgery.group("procedure", help=N_("Telesurgical procedures on the platform."))
def procedure_group() -> None: ...


@procedure_group.command(
    "create",
    help=N_(
        "Plan a procedure; prints its number. Its thresholds are the link class's preset,"
        " overridden by the procedure file's values."
    ),
)
@click.option("--title", required=True, help=N_("Title of the procedure, as the team reads it."))
@click.option("--console-site", required=True, help=N_("FINESS of the surgeon's site."))
@click.option("--robot-site", required=True, help=N_("FINESS of the robot's (patient's) site."))
@click.option("--surgeon", required=True, help=N_("User name (specialist at the console site)."))
@click.option("--local-team", multiple=True, help=N_("User name at the robot site (repeatable)."))
@click.option("--robot", "robot_name", required=True, help=N_("Name of the robot."))
@click.option("--patient", "patient_id", type=int, required=True, help=N_("Patient number."))
@click.option(
    "--thresholds",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help=N_("Procedure file (TOML or JSON) with [safety], [limits], [qualification]."),
)
@LINK_CLASS
def procedure_create(
    title: str,
    console_site: str,
    robot_site: str,
    surgeon: str,
    local_team: tuple[str, ...],
    robot_name: str,
    patient_id: int,
    thresholds: Path | None,
    link_class: str | None,
) -> None:
    settings = cli_settings()
    sections = _procedure(thresholds)
    with cli_transaction(settings) as db:
        procedure = procedures.create_procedure(
            db,
            operator(),
            title=title,
            console_site_id=accounts.site_by_finess(db, console_site).id,
            robot_site_id=accounts.site_by_finess(db, robot_site).id,
            surgeon_id=_user_id(db, surgeon),
            local_team_ids=[_user_id(db, name) for name in local_team],
            robot_name=robot_name,
            patient_id=patient_id,
            thresholds=sections,
            link_class=link_class,
            now=datetime.now(UTC),
        )
        click.echo(procedure.id)


@procedure_group.command("list", help=N_("Every procedure, one a line: number, status, title."))
def procedure_list() -> None:
    with cli_transaction(cli_settings()) as db:
        for procedure in procedures.list_procedures(db, None):
            click.echo(f"{procedure.id}\t{procedure.status}\t{procedure.title}")


@telesurgery.command(
    "enrol",
    help=N_("Enrol a gateway; prints its enrolment token (shown once, only its hash is kept)."),
)
@click.option("--procedure", "procedure_id", type=int, required=True, help=N_("Procedure number."))
@click.option(
    "--role",
    type=click.Choice(procedures.GATEWAY_ROLES),
    required=True,
    help=N_("Which gateway: the console's or the robot's."),
)
@click.option("--public-name", required=True, help=N_("HOST:PORT where the peer reaches the link."))
def enrol(procedure_id: int, role: str, public_name: str) -> None:
    with cli_transaction(cli_settings()) as db:
        procedure = procedures.get_procedure(db, procedure_id)
        _enrolment, token = readiness.enrol_gateway(
            db, operator(), procedure, role, public_name, datetime.now(UTC)
        )
        click.echo(token)


@telesurgery.command(
    "issue-keys",
    help=N_(
        "Issue a fresh key set to both gateways (files mode 0600); the previous set is revoked."
    ),
)
@click.option("--procedure", "procedure_id", type=int, required=True, help=N_("Procedure number."))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=N_("Directory for the two key files (default: the procedure's in the data directory)."),
)
def issue_keys(procedure_id: int, out: Path | None) -> None:
    settings = cli_settings()
    with cli_transaction(settings) as db:
        procedure = procedures.get_procedure(db, procedure_id)
        directory = out or readiness.key_directory(settings.data_dir, procedure.id)
        issued, paths = readiness.issue_keys(
            db, operator(), procedure, directory, datetime.now(UTC)
        )
        click.echo(_("key set %(id)s") % {"id": issued.key_id})
        for role, path in paths.items():
            click.echo(f"  {role}: {path}")


def _qualify_procedure(
    procedure_id: int, profile_name: str, duration: float, rate: float, bitrate: float, seed: int
) -> None:
    settings = cli_settings()
    with cli_transaction(settings) as db:
        procedure = procedures.get_procedure(db, procedure_id)
        db.expunge(procedure)
    # The measurement runs outside any transaction: it takes seconds and must not hold locks.
    try:
        report = _with_progress(
            duration,
            lambda progress: readiness.run_qualification(
                procedure,
                profile_name,
                duration,
                rate_hz=rate,
                bitrate_bps=bitrate,
                seed=seed,
                progress=progress,
            ),
        )
    except ConciliumError as exc:
        raise Failure(exc.detail) from exc
    with cli_transaction(settings) as db:
        procedure = procedures.get_procedure(db, procedure_id)
        record = readiness.record_qualification(
            db, operator(), procedure, report, settings.data_dir, datetime.now(UTC)
        )
        html_path = settings.data_dir / record.html_path
    verdict = "GO" if report.verdict.go else "NO-GO"
    click.echo(
        _("%(verdict)s: kept with procedure %(id)s (%(path)s)")
        % {"verdict": verdict, "id": procedure_id, "path": html_path}
    )
    for reason in report.verdict.said():
        click.echo(f"  - {reason}")
    if not report.verdict.go:
        sys.exit(1)
