"""What every ``concilium`` subcommand shares: its language (help pages included), settings,
the installation's schema, one transaction, the operator."""

from __future__ import annotations

import copy
import getpass
import gettext
import inspect
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from sqlalchemy.orm import Session

from concilium.config import Settings, load_settings
from concilium.platform import audit, i18n
from concilium.platform.db import Schema, make_engine, make_sessionmaker, migrate, transaction
from concilium.platform.errors import ConciliumError
from concilium.platform.i18n import N_, _, ngettext


@dataclass(frozen=True)
class Installation:
    """What the ``concilium`` command hands to every service's commands (``ctx.obj``)."""

    schema: Schema
    """Every service's tables and migrations."""
    token_scopes: frozenset[str]
    """Every scope an API token can carry."""


LANGUAGE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
"""The POSIX locale variables, in the order gettext reads them."""


def terminal_language(environ: Mapping[str, str]) -> str:
    """The language the commands speak: ``CONCILIUM_LANG`` (``fr`` or ``en``) when set, else
    English when the first set of ``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG`` starts
    with ``en`` (``en_GB.UTF-8``), else French (``fr_FR.UTF-8``, ``C.UTF-8``, nothing set)."""
    chosen = environ.get("CONCILIUM_LANG", "").strip().lower()
    if not chosen:
        chosen = next((environ[v] for v in LANGUAGE_VARIABLES if environ.get(v)), "").lower()
    return "en" if chosen.startswith("en") else i18n.DEFAULT_LOCALE


def load_every_catalogue() -> None:
    """Read the platform's, the web's and every service's catalogues."""
    package = Path(__file__).parent
    first = [package / "platform" / "locale", package / "web" / "locale"]
    folders = first + sorted(f for f in package.glob("*/locale") if f not in first)
    i18n.load_catalogues(f for f in folders if f.is_dir())


_speaking: ContextVar[bool] = ContextVar("concilium_terminal_speech", default=False)
"""Whether a command speaks the terminal's language (click's own messages are then looked
up in the catalogues)."""


@contextmanager
def terminal_speech() -> Iterator[str]:
    """Speak :func:`terminal_language` for a block, every catalogue read."""
    load_every_catalogue()
    speaking = _speaking.set(True)
    try:
        with i18n.using_locale(terminal_language(os.environ)) as locale:
            yield locale
    finally:
        _speaking.reset(speaking)


def speak_terminal_language(ctx: click.Context) -> str:
    """Speak :func:`terminal_language` until the command ends (each command group calls it
    first). Machine-readable output (ids, tables, JSON, secrets) is never translated."""
    return ctx.with_resource(terminal_speech())


# click's own words on a help page, translated where :class:`Command` writes them.
CLICK_WORDS = (
    N_("Usage: "),
    N_("Options"),
    N_("Commands"),
    N_("Positional arguments"),
    N_("Show this message and exit."),
)


# click's own messages of a usage error, which click asks Python's gettext for: while a
# command speaks the terminal's language, :func:`_click_gettext` answers from the catalogues.
CLICK_ERRORS = (
    N_("Error: {message}"),
    N_("Try '{command} {option}' for help."),
    N_("Missing argument"),
    N_("Missing option"),
    N_("Missing parameter"),
    N_("Missing parameter: {param_name}"),
    N_("Missing command."),
    N_("No such option {name!r}."),
    N_("No such command {name!r}."),
    N_("Invalid value: {message}"),
    N_("Invalid value for {param_hint}: {message}"),
    N_("Option {name!r} does not take a value."),
    N_("{value!r} is not a valid {number_type}."),
    N_("{value} is not in the range {range}."),
    N_("{value!r} is not a valid boolean. Recognized values: {states}"),
    N_("{value!r} is not a valid UUID."),
    N_("{name} {filename!r} does not exist."),
    N_("{name} {filename!r} is a file."),
    N_("{name} {filename!r} is a directory."),
    N_("{name} {filename!r} is not readable."),
    N_("{name} {filename!r} is not writable."),
    N_("{name} {filename!r} is not executable."),
    N_("Could not open file {filename!r}: {message}"),
    N_("Aborted!"),
)


def _click_plurals() -> None:  # pragma: no cover - read by the message extractor only
    """click's plural messages of a usage error, named here so that the catalogues hold them."""
    ngettext("Did you mean {possibility}?", "(Did you mean one of: {possibilities}?)", 2)
    ngettext("{value!r} is not {choice}.", "{value!r} is not one of {choices}.", 2)
    ngettext("Got unexpected extra argument ({args})", "Got unexpected extra arguments ({args})", 2)
    ngettext(
        "Option {name!r} requires an argument.", "Option {name!r} requires {nargs} arguments.", 2
    )
    ngettext(
        "{value!r} does not match the format {format}.",
        "{value!r} does not match the formats {formats}.",
        2,
    )


def _click_gettext(message: str) -> str:
    """click's lookup of its own message: from the catalogues while a command speaks the
    terminal's language, else through Python's gettext as click does."""
    return i18n.gettext(message) if _speaking.get() else gettext.gettext(message)


def _click_ngettext(singular: str, plural: str, n: int) -> str:
    """click's lookup of its own plural message (see :func:`_click_gettext`)."""
    if _speaking.get():
        return i18n.ngettext(singular, plural, n)
    return gettext.ngettext(singular, plural, n)


for _module in (click.core, click.exceptions, click.parser, click.types):
    # Each imported ``gettext as _`` and ``ngettext`` by name; both are looked up at call time.
    _module._ = _click_gettext  # type: ignore[attr-defined]
    _module.ngettext = _click_ngettext  # type: ignore[attr-defined]


def _help(text: str | None) -> str:
    """A help text (the English message given as ``help=N_(...)``) in the current language."""
    return _(text) if text else ""


class Command(click.Command):
    """A command whose help page is in the terminal's language: ``--help`` is answered
    before any group callback runs, so the page speaks it on its own. Help texts are given
    as ``help=N_("...")`` so that the catalogues hold them (docstrings are not extracted)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command in the terminal's language: a usage error (missing or unknown
        option, invalid value) is said in it too, click's own words and all."""
        with terminal_speech():
            return super().main(*args, **kwargs)

    def get_help(self, ctx: click.Context) -> str:
        with terminal_speech():
            return super().get_help(ctx)

    def get_usage(self, ctx: click.Context) -> str:
        with terminal_speech():  # a usage error shows it, before any group callback too
            return super().get_usage(ctx)

    def get_short_help_str(self, limit: int = 45) -> str:
        translated = copy.copy(self)
        translated.help = _help(self.help) or None
        translated.short_help = _help(self.short_help) or None
        return click.Command.get_short_help_str(translated, limit)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        pieces = " ".join(self.collect_usage_pieces(ctx))
        formatter.write_usage(ctx.command_path, pieces, prefix=_("Usage: "))

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        text = inspect.cleandoc(_help(self.help)).partition("\f")[0]
        if text:
            formatter.write_paragraph()
            with formatter.indentation():
                formatter.write_text(text)

    def format_arguments(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        documented = [p for p in self.get_params(ctx) if isinstance(p, click.Argument)]
        if any(argument.help for argument in documented):
            with formatter.section(_("Positional arguments")):
                formatter.write_dl([(a.make_metavar(ctx), _help(a.help)) for a in documented])

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [
            (option.get_help_spec(ctx), _option_help(option, ctx))
            for option in self.get_params(ctx)
            if isinstance(option, click.Option) and not option.hidden
        ]
        if rows:
            with formatter.section(_("Options")):
                formatter.write_dl(rows)


def _option_help(option: click.Option, ctx: click.Context) -> str:
    """An option's help and what click adds to it (default, range, required), translated."""
    extra = option.get_help_extra(ctx)
    items = []
    if "envvars" in extra:
        items.append(_("env var: %(names)s") % {"names": ", ".join(extra["envvars"])})
    if "default" in extra:
        items.append(_("default: %(value)s") % {"value": extra["default"]})
    if "range" in extra:
        items.append(extra["range"])
    if "required" in extra:
        items.append(_("required"))
    text = _help(option.help)
    if not items:
        return text
    return f"{text}  [{'; '.join(items)}]" if text else f"[{'; '.join(items)}]"


class Group(Command, click.Group):
    """A command group whose help pages, and those of its commands and subgroups, are in
    the terminal's language."""

    command_class = Command
    group_class = type

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_options(ctx, formatter)
        self.format_commands(ctx, formatter)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        listed = [
            (name, command)
            for name in self.list_commands(ctx)
            if (command := self.get_command(ctx, name)) is not None and not command.hidden
        ]
        if listed:
            limit = formatter.width - 6 - max(len(name) for name, _command in listed)
            with formatter.section(_("Commands")):
                formatter.write_dl([(n, c.get_short_help_str(limit)) for n, c in listed])


class Failure(click.ClickException):
    """A command that cannot do what it was asked: its message (already in the terminal's
    language) after click's "Error:", which :class:`Command` has said in that language too,
    on standard error, and exit status 1."""


def installation() -> Installation:
    """The installation of the running command (set by the ``concilium`` group)."""
    found = click.get_current_context().find_object(Installation)
    if found is None:
        raise Failure(_("run this command through `concilium`"))
    return found


def migrate_schema(settings: Settings, revision: str = "head") -> None:
    """Create or upgrade the installation's database to ``revision``."""
    migrate(settings.effective_database_url, installation().schema, revision)


def cli_settings() -> Settings:
    """The effective settings; a configuration error is a clean message and exit status 1."""
    try:
        return load_settings()
    except Exception as exc:
        raise Failure(_("configuration error: %(error)s") % {"error": exc}) from exc


@contextmanager
def cli_transaction(settings: Settings) -> Iterator[Session]:
    """One transaction for one command; domain errors become a clean message and exit 1."""
    engine = make_engine(settings.effective_database_url)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            yield session
    except ConciliumError as exc:
        raise Failure(exc.detail) from exc
    finally:
        engine.dispose()


def operator() -> audit.Actor:
    """The person at the terminal, as the audit trail names them."""
    return audit.Actor(None, f"cli:{getpass.getuser()}"[:64])
