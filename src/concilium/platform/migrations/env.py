"""Alembic environment: runs the migrations of every service on one connection."""

from alembic import context
from sqlalchemy import create_engine, pool

from concilium.platform.db import PLATFORM_SCHEMA, Base, Schema

config = context.config
schema: Schema = config.attributes.get("schema", PLATFORM_SCHEMA)
schema.load_tables()
url = config.get_main_option("sqlalchemy.url")
assert url
connectable = create_engine(url, poolclass=pool.NullPool, hide_parameters=True)
with connectable.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
