"""What every ``concilium`` subcommand shares: settings, the installation's schema, one
transaction, the operator."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import click
from sqlalchemy.orm import Session

from concilium.config import Settings, load_settings
from concilium.platform import audit
from concilium.platform.db import Schema, make_engine, make_sessionmaker, migrate, transaction
from concilium.platform.errors import ConciliumError


@dataclass(frozen=True)
class Installation:
    """What the ``concilium`` command hands to every service's commands (``ctx.obj``)."""

    schema: Schema
    """Every service's tables and migrations."""
    token_scopes: frozenset[str]
    """Every scope an API token can carry."""


def installation() -> Installation:
    """The installation of the running command (set by the ``concilium`` group)."""
    found = click.get_current_context().find_object(Installation)
    if found is None:
        raise click.ClickException("run this command through `concilium`")
    return found


def migrate_schema(settings: Settings, revision: str = "head") -> None:
    """Create or upgrade the installation's database to ``revision``."""
    migrate(settings.effective_database_url, installation().schema, revision)


def cli_settings() -> Settings:
    """The effective settings; a configuration error is a clean message and exit status 1."""
    try:
        return load_settings()
    except Exception as exc:
        raise click.ClickException(f"configuration error: {exc}") from exc


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
