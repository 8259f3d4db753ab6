"""The archive of one process among several sharing a store: recovery resolves what dead
writers left pending, and nothing a live writer is writing."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from concilium.imaging import ingest
from concilium.imaging.archive import Archive
from concilium.imaging.storage import InstanceStore
from concilium.imaging.synthetic import SyntheticStudy, generate_ct_series
from concilium.imaging.tables import ImagingPendingWrite, ImagingWriter
from concilium.platform.db import transaction

from .helpers import ingest_path, sender_at
from .stores import store_bytes


@pytest.fixture
def no_listing(monkeypatch):
    """A store that fails as soon as anything lists it: recovery must not."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("recovery listed the store")

    monkeypatch.setattr(InstanceStore, "addresses", refuse)
    monkeypatch.setattr(InstanceStore, "addresses_under", refuse)
    monkeypatch.setattr(InstanceStore, "statistics", refuse)


def _another_process(archive: Archive) -> Archive:
    """An archive on the same store and database, with a writer identity of its own."""
    return Archive(
        archive.store.root,
        archive.sessions,
        archive.bus,
        clock=archive.clock,
        lease_clock=archive.writer.clock,
    )


@pytest.fixture
def leased(runtime, tmp_path, clock):
    """An archive whose leases follow the test's clock, so that a test can let one lapse."""
    archive = Archive(
        tmp_path / "images", runtime.sessions, runtime.bus, clock=clock, lease_clock=clock
    )
    yield archive
    archive.close()


def _die(archive: Archive) -> None:
    """The process of ``archive`` is gone: its lease is no longer renewed, nothing cleaned."""
    archive.writer._stop.set()


def _pending(archive: Archive) -> list[tuple[str, str]]:
    with transaction(archive.sessions) as db:
        return [
            (w, a)
            for w, a in db.execute(
                select(ImagingPendingWrite.writer_id, ImagingPendingWrite.address)
            )
        ]


def _writers(archive: Archive) -> set[str]:
    with transaction(archive.sessions) as db:
        return set(db.execute(select(ImagingWriter.id)).scalars())


def test_a_live_writers_unindexed_file_survives_another_processes_start_up(
    archive, world, tmp_path, monkeypatch
):
    """Two servers on one data dir and one database: one has committed a file and not yet
    indexed it when the other starts. The file must survive, and be served once indexed."""
    (path,) = generate_ct_series(tmp_path / "ct", 1, rows=32, columns=32)
    entered, release = threading.Event(), threading.Event()
    index_batch = ingest._index_batch

    def paused(*args, **kwargs):
        entered.set()
        assert release.wait(30)
        return index_batch(*args, **kwargs)

    monkeypatch.setattr(ingest, "_index_batch", paused)
    outcome: list[object] = []
    writing = threading.Thread(
        target=lambda: outcome.append(ingest_path(archive, sender_at(world.metz.id), path))
    )
    writing.start()
    assert entered.wait(30)
    other = _another_process(archive)
    try:
        other.recover()  # the other server's start-up
        release.set()
        writing.join(30)
        (result,) = outcome
        assert isinstance(result, ingest.IngestResult)
        assert other.store.read(result.address) == path.read_bytes()
    finally:
        release.set()
        other.close()
    assert _pending(archive) == []


def test_recovery_resolves_only_the_pending_writes_of_dead_writers(
    leased, world, tmp_path, clock, no_listing
):
    archive = leased
    files = generate_ct_series(
        tmp_path / "ct", 2, study=SyntheticStudy(seed="dead"), rows=32, columns=32
    )
    sender = sender_at(world.metz.id)
    kept = ingest_path(archive, sender, files[0])
    # A crash between the store and the index: a file committed, pending, never indexed; and
    # one indexed whose pending write was not yet removed; and half-written temporary files.
    (orphan_seq,) = archive.writer.begin([_address(b"acknowledged to nobody")])
    orphan = store_bytes(archive.store, b"acknowledged to nobody")
    archive.writer.begin([kept.address])
    (archive.store.temporary_area / "in-x.part").write_bytes(b"half")
    dead_id = archive.writer.id
    _die(archive)
    clock.advance(seconds=31)

    # A live writer, registered after the lapse, in the middle of its own write.
    live = _another_process(archive)
    live_bytes = b"being written by a live writer"
    live.writer.begin([_address(live_bytes)])
    live_file = store_bytes(live.store, live_bytes)
    (live.store.temporary_area / "in-y.part").write_bytes(b"half")

    starting = _another_process(archive)
    try:
        assert starting.recover() == 1
        assert not archive.store.exists(orphan.address)
        assert archive.store.exists(kept.address)
        assert live.store.exists(live_file.address)
        assert (live.store.temporary_area / "in-y.part").exists()
        assert not archive.store.temporary_area.exists()
        assert _writers(archive) == {live.writer.id, starting.writer.id}
        assert dead_id not in _writers(archive)
        assert _pending(archive) == [(live.writer.id, live_file.address)]
        assert orphan_seq  # the dead writer's entries went with it
        # Twice is harmless: nothing is left to resolve.
        assert starting.recover() == 0
    finally:
        starting.close()
        live.close()
    # The live writer leaving resolves its own pending write: its unindexed file goes.
    assert not archive.store.exists(live_file.address)
    assert _pending(archive) == []


def test_a_paused_writer_whose_lease_was_taken_over_acknowledges_nothing(
    leased, world, tmp_path, clock, monkeypatch
):
    archive = leased
    (path,) = generate_ct_series(tmp_path / "ct", 1, rows=32, columns=32)
    entered, release = threading.Event(), threading.Event()
    index_batch = ingest._index_batch

    def paused(*args, **kwargs):
        entered.set()
        assert release.wait(30)
        return index_batch(*args, **kwargs)

    monkeypatch.setattr(ingest, "_index_batch", paused)
    failure: list[BaseException] = []

    def write() -> None:
        try:
            ingest_path(archive, sender_at(world.metz.id), path)
        except BaseException as exc:
            failure.append(exc)

    writing = threading.Thread(target=write)
    writing.start()
    assert entered.wait(30)
    _die(archive)
    clock.advance(seconds=31)
    other = _another_process(archive)
    try:
        assert other.recover() == 1  # the paused writer's file, never acknowledged
        release.set()
        writing.join(30)
        assert failure and type(failure[0]).__name__ == "WriterFenced"
        with transaction(archive.sessions) as db:
            assert db.execute(select(func.count()).select_from(ImagingPendingWrite)).scalar() == 0
        assert [p for p in (archive.store.root / "objects").rglob("*") if p.is_file()] == []
    finally:
        release.set()
        other.close()


def _address(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
