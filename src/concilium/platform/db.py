"""Database engine, sessions and schema migrations (SQLite by default, PostgreSQL at scale)."""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import DateTime, Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from concilium.platform.errors import InvalidInput
from concilium.platform.i18n import _

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class Base(DeclarativeBase):
    """Declarative base of every Concilium table, whatever service owns it."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def on_event_loop() -> bool:
    """Whether the calling thread is running an asyncio event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def make_engine(url: str, *, read_only: bool = False, serving: bool = False) -> Engine:
    """Create the engine; SQLite gets WAL, a busy timeout and write-serialising transactions.

    ``read_only`` engines are for long-lived or frequent readers (event streams, polls): on
    SQLite their transactions are deferred and query-only, so in WAL mode they never take or
    wait for the write lock.

    A ``serving`` engine refuses to begin a write transaction on an event loop: waiting
    there for SQLite's write lock would stall the requests that hold it until the busy
    timeout. Such work runs in a worker thread.

    Every engine hides its statements' parameters from the messages of its errors: they are
    patients' names, identifiers and birth dates, and errors are logged.
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30, "isolation_level": None},
            hide_parameters=True,
            pool_size=8,
            max_overflow=8,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            if read_only:
                cursor.execute("PRAGMA query_only=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Every request may append to the audit chain, so writers take the write lock up
            # front: a deferred transaction that reads then writes would fail under concurrency.
            if serving and not read_only and on_event_loop():
                raise RuntimeError("a write transaction must begin off the event loop")
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        _refuse_numbers_out_of_range(engine)
        return engine
    engine = create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=10, hide_parameters=True
    )
    _refuse_numbers_out_of_range(engine)
    return engine


def _refuse_numbers_out_of_range(engine: Engine) -> None:
    """A number the database cannot hold (an identifier of 2^63 in a URL: beyond SQLite's
    64-bit INTEGER, beyond PostgreSQL's ``integer``) is the request's fault: `InvalidInput`,
    a 422 problem, rather than a driver error and a 500. The transaction is rolled back."""

    @event.listens_for(engine, "handle_error")
    def _out_of_range(context: ExceptionContext) -> BaseException | None:
        original = context.original_exception
        # sqlite3 raises OverflowError binding the value; PostgreSQL answers SQLSTATE 22003.
        if isinstance(original, OverflowError) or getattr(original, "sqlstate", None) == "22003":
            return InvalidInput(_("A number is out of range."))
        return None


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: committed if the block succeeds, rolled back otherwise."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@dataclass(frozen=True)
class Schema:
    """What the database of an installation holds: the platform's tables and each service's.

    The migrations form one linear history whose steps live with the service they concern
    (one Alembic version location per service)."""

    table_modules: tuple[str, ...]
    """Modules whose import declares tables on :data:`Base`'s metadata."""
    version_locations: tuple[Path, ...]
    """Folders of migration scripts (the platform's first)."""

    def load_tables(self) -> None:
        """Import every table module, so that :data:`Base`'s metadata is the whole schema."""
        for module in self.table_modules:
            importlib.import_module(module)


PLATFORM_SCHEMA = Schema(("concilium.platform.tables",), (MIGRATIONS_DIR / "versions",))
"""The platform's own tables and migrations."""


def alembic_config(url: str, schema: Schema) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option(
        "version_locations", os.pathsep.join(str(p) for p in schema.version_locations)
    )
    cfg.attributes["schema"] = schema
    return cfg


def migrate(url: str, schema: Schema, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (Alembic upgrade)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url, schema), revision)


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
