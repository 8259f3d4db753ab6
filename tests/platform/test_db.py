"""Readers and writers on the embedded database."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from concilium.platform import audit
from concilium.platform.db import transaction
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
