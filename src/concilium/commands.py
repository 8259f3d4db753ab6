"""What every ``concilium`` subcommand shares: settings, the installation's schema, one
transaction, the operator."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click
from sqlalchemy.orm import Session

from concilium.config import Settings, load_settings
from concilium.platform import audit, i18n
from concilium.platform.db import Schema, make_engine, make_sessionmaker, migrate, transaction
from concilium.platform.errors import ConciliumError
from concilium.platform.i18n import _


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


def speak_terminal_language(ctx: click.Context) -> str:
    """Read every catalogue and speak :func:`terminal_language` until the command ends (each
    command group calls it first). Machine-readable output (ids, tables, JSON, secrets) is
    never translated."""
    package = Path(__file__).parent
    first = [package / "platform" / "locale", package / "web" / "locale"]
    folders = first + sorted(f for f in package.glob("*/locale") if f not in first)
    i18n.load_catalogues(f for f in folders if f.is_dir())
    return ctx.with_resource(i18n.using_locale(terminal_language(os.environ)))


def installation() -> Installation:
    """The installation of the running command (set by the ``concilium`` group)."""
    found = click.get_current_context().find_object(Installation)
    if found is None:
        raise click.ClickException(_("run this command through `concilium`"))
    return found


def migrate_schema(settings: Settings, revision: str = "head") -> None:
    """Create or upgrade the installation's database to ``revision``."""
    migrate(settings.effective_database_url, installation().schema, revision)


def cli_settings() -> Settings:
    """The effective settings; a configuration error is a clean message and exit status 1."""
    try:
        return load_settings()
    except Exception as exc:
        raise click.ClickException(_("configuration error: %(error)s") % {"error": exc}) from exc


@contextmanager
def cli_transaction(settings: Settings) -> Iterator[Session]:
    """One transaction for one command; domain errors become a clean message and exit 1."""
    engine = make_engine(settings.effective_database_url)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            yield session
    except ConciliumError as exc:
        raise click.ClickException(exc.detail) from exc
    finally:
        engine.dispose()


def operator() -> audit.Actor:
    """The person at the terminal, as the audit trail names them."""
    return audit.Actor(None, f"cli:{getpass.getuser()}"[:64])
