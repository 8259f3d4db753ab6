"""Start-up at the scale of a region: with 200,000 instances indexed and their files present,
the archive is open for writing, and what a dead writer left is resolved, in seconds; the
store is never listed."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, insert, select

from concilium.imaging.archive import Archive
from concilium.imaging.storage import InstanceStore
from concilium.imaging.tables import (
    ImagingPendingWrite,
    ImagingSeries,
    ImagingStudy,
    ImagingWriter,
)
from concilium.platform.db import transaction

INSTANCES = 200_000
PENDING = 100
"""Pending writes of the dead writer: half indexed, half never."""


def _address(i: int) -> str:
    # Spread over the 256 first-level directories, one leaf each: the files exist as a
    # region's would, without making 65,536 directories for the test.
    return f"{i % 256:02x}00{i:060x}"


@pytest.fixture
def no_listing(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("start-up listed the store")

    for name in ("addresses", "addresses_under", "statistics"):
        monkeypatch.setattr(InstanceStore, name, refuse)


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """Where 200,000 files are made quickly: memory when the machine offers it (making them
    on this machine's disk takes half a minute; start-up never looks at them anyway)."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    made = Path(tempfile.mkdtemp(dir=shm, prefix="concilium-startup-"))
    yield made
    shutil.rmtree(made, ignore_errors=True)


def _bulk_index(connection: Connection, series_id: int, now: dt.datetime) -> None:
    """The instance rows, inserted in bulk as a migration of an existing archive would:
    COPY on PostgreSQL, one prepared INSERT executed many times on SQLite."""
    columns = (
        "series_id, sop_instance_uid, sop_class_uid, transfer_syntax_uid, address, size, "
        "source_ae_title, received_at"
    )
    ct, syntax = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1"
    raw = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        sql = f"COPY imaging_instances ({columns}) FROM STDIN"
        with raw.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[union-attr]
            for i in range(INSTANCES):
                row = (series_id, f"1.2.3.1.{i}", ct, syntax, _address(i), 1, "", now)
                copy.write_row(row)
        return
    stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
    raw.executemany(  # type: ignore[union-attr]
        f"INSERT INTO imaging_instances ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (series_id, f"1.2.3.1.{i}", ct, syntax, _address(i), 1, "", stamp)
            for i in range(INSTANCES)
        ),
    )


@pytest.mark.timing
def test_open_and_recovery_take_seconds_whatever_the_archive_holds(
    runtime, world, scratch, no_listing
):
    root = scratch / "images"
    now = dt.datetime.now(dt.UTC)
    with transaction(runtime.sessions) as db:
        study = ImagingStudy(study_instance_uid="1.2.3", site_id=world.metz.id)
        db.add(study)
        db.flush()
        series = ImagingSeries(study_id=study.id, series_instance_uid="1.2.3.1")
        db.add(series)
        db.flush()
        series_id = series.id
    with runtime.engine.begin() as connection:
        _bulk_index(connection, series_id, now)
        # A writer that died: its lease lapsed with pending writes, half of them indexed.
        dead = "0" * 32
        connection.execute(
            insert(ImagingWriter.__table__),
            [
                {
                    "id": dead,
                    "host": "elsewhere",
                    "pid": 1,
                    "started_at": now - dt.timedelta(hours=1),
                    "lease_expires_at": now - dt.timedelta(minutes=1),
                }
            ],
        )
        pending = [_address(i) for i in range(INSTANCES - PENDING // 2, INSTANCES + PENDING // 2)]
        connection.execute(
            insert(ImagingPendingWrite.__table__),
            [{"writer_id": dead, "seq": n, "address": a} for n, a in enumerate(pending)],
        )
    objects = root / "objects"
    for first in range(256):
        (objects / f"{first:02x}" / "00").mkdir(parents=True)
    for i in range(INSTANCES + PENDING // 2):
        address = _address(i)
        os.close(os.open(objects / address[:2] / "00" / address, os.O_WRONLY | os.O_CREAT))
    (root / "tmp" / dead).mkdir(parents=True)
    (root / "tmp" / dead / "in-1.part").write_bytes(b"half")

    archive = Archive(root, runtime.sessions, runtime.bus, clock=runtime.now)
    started = time.monotonic()
    archive.open_for_writing()
    removed = archive.recover()
    elapsed = time.monotonic() - started
    print(f"open and recovery: {elapsed:.3f} s")
    try:
        assert elapsed < 5, f"open and recovery took {elapsed:.2f} s"
        assert removed == PENDING // 2
        assert archive.store.exists(_address(INSTANCES - 1))
        assert not archive.store.exists(_address(INSTANCES))
        assert not (root / "tmp" / dead).exists()
        with transaction(runtime.sessions) as db:
            assert db.execute(select(func.count()).select_from(ImagingPendingWrite)).scalar() == 0
            assert set(db.execute(select(ImagingWriter.id)).scalars()) == {archive.writer.id}
    finally:
        archive.close()
