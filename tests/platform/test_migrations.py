"""The schema is built by migrations alone, and the migrations match the code's tables."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from concilium.platform.db import Base, alembic_config
from concilium.services import SCHEMA, migrate_database


def test_migrated_schema_matches_tables(database_url):
    SCHEMA.load_tables()
    engine = create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    engine.dispose()
    assert diff == []


def test_migrate_from_empty_down_and_up_again(database_url):
    command.downgrade(alembic_config(database_url, SCHEMA), "base")
    engine = create_engine(database_url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate_database(database_url)
    assert {"users", "sites", "audit_events", "patients"} <= set(inspect(engine).get_table_names())
    engine.dispose()
