"""Readers and writers on the embedded database."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from concilium.platform import audit
from concilium.platform.db import make_engine, transaction
from concilium.platform.tables import AuditHead


def test_an_open_reader_does_not_hold_up_a_writer(runtime):
    with runtime.read_sessions() as reader:
        reader.execute(select(AuditHead)).all()  # the reader's transaction is open
        started = time.monotonic()
        with transaction(runtime.sessions) as db:
            audit.record(db, audit.SYSTEM, "test.write", "success")
        # A writer waiting for the lock would wait the 30 s busy timeout.
        assert time.monotonic() - started < 5
    with runtime.read_sessions() as reader:
        assert reader.execute(select(AuditHead.seq)).scalar_one() == 1


def test_read_sessions_cannot_write_on_sqlite(runtime, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("query-only connections are an SQLite setting; PostgreSQL readers never block")
    with runtime.read_sessions() as reader, pytest.raises(OperationalError):
        reader.execute(text("DELETE FROM sites"))


def test_a_serving_engine_begins_write_transactions_only_off_the_event_loop(tmp_path):
    """Waiting for SQLite's write lock on the event loop would stall the requests holding
    it; the server's engine refuses, and the same work in a worker thread goes through."""
    engine = make_engine(f"sqlite:///{tmp_path / 'guard.db'}", serving=True)

    def write() -> int:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
            return int(conn.execute(text("SELECT count(*) FROM t")).scalar_one())

    async def on_the_loop() -> int:
        return write()

    async def in_a_worker_thread() -> int:
        return await asyncio.to_thread(write)

    with pytest.raises(RuntimeError, match="off the event loop"):
        asyncio.run(on_the_loop())
    assert asyncio.run(in_a_worker_thread()) == 1
    engine.dispose()
