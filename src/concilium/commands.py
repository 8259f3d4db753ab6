"""What every ``concilium`` subcommand shares: settings, one transaction, the operator."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy.orm import Session

from concilium.config import Settings, load_settings
from concilium.platform import audit
from concilium.platform.db import make_engine, make_sessionmaker, transaction
from concilium.platform.errors import ConciliumError


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
