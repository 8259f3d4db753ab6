"""``concilium dicom fsck``: the index against the store, reported and repaired without ever
removing a file a row names."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time

import pytest
from click.testing import CliRunner

from concilium.cli import main
from concilium.imaging.archive import Archive
from concilium.imaging.consistency import check
from concilium.imaging.synthetic import SyntheticStudy, generate_ct_series

from .helpers import ingest_path, sender_at
from .stores import store_bytes


def _age(archive: Archive, address: str, hours: float) -> None:
    then = time.time() - hours * 3600
    os.utime(archive.store.path_of(address), (then, then))


def _damaged(archive: Archive, world, tmp_path):  # type: ignore[no-untyped-def]
    """Three indexed instances, one of whose file is gone; an old unnamed file, a young one,
    and an old one another live writer is in the middle of writing."""
    files = generate_ct_series(
        tmp_path / "ct", 3, study=SyntheticStudy(seed="fsck"), rows=32, columns=32
    )
    named = [ingest_path(archive, sender_at(world.metz.id), f).address for f in files]
    archive.store.path_of(named[2]).unlink()
    for address in named[:2]:
        _age(archive, address, 5)
    old = store_bytes(archive.store, b"left by a crash long ago").address
    _age(archive, old, 2)
    young = store_bytes(archive.store, b"just committed").address
    writer = Archive(archive.store.root, archive.sessions, archive.bus, clock=archive.clock)
    writer.writer.begin([hashlib.sha256(b"pending").hexdigest()])
    pending = store_bytes(writer.store, b"pending").address
    _age(archive, pending, 2)
    return named, old, young, pending, writer


def test_fsck_reports_and_repairs_without_removing_a_named_file(archive, world, tmp_path):
    named, old, young, pending, writer = _damaged(archive, world, tmp_path)
    try:
        seen: list[int] = []
        found = check(archive, progress=seen.append)
        assert found.missing == [named[2]]
        assert sorted(found.unnamed) == sorted([old, young])
        assert found.removed == [] and not found.consistent
        assert found.objects == 5 and found.indexed == 3 and seen == [5]

        repaired = check(archive, repair=True, grace=dt.timedelta(hours=1))
        assert repaired.removed == [old] and repaired.recent == 1
        assert repaired.missing == [named[2]] and not repaired.consistent
        assert not archive.store.exists(old)
        for address in (named[0], named[1], young, pending):
            assert archive.store.exists(address)
    finally:
        writer.close()


@pytest.mark.usefixtures("english")
def test_fsck_command_says_what_it_found_and_exits_accordingly(
    runtime, world, tmp_path, monkeypatch
):
    from concilium.imaging.process import archive_for

    archive = archive_for(runtime)
    named, old, young, pending, writer = _damaged(archive, world, tmp_path)
    writer.close()  # leaving, it removes the file it had not indexed
    assert not archive.store.exists(pending)
    archive.close()
    monkeypatch.setenv("CONCILIUM_DATA_DIR", str(runtime.settings.data_dir))
    monkeypatch.setenv("CONCILIUM_DATABASE_URL", runtime.settings.effective_database_url)
    runner = CliRunner()

    report = runner.invoke(main, ["dicom", "fsck"], catch_exceptions=False)
    assert report.exit_code == 1
    assert f"missing file: {named[2]}" in report.output
    assert f"unnamed file: {old}" in report.output
    assert "missing files cannot be repaired" in report.output
    assert "4 files checked" in report.output
    assert archive.store.exists(old)

    repair = runner.invoke(
        main, ["dicom", "fsck", "--repair", "--grace-minutes", "0"], catch_exceptions=False
    )
    assert repair.exit_code == 1  # the missing file remains
    assert f"removed unnamed file: {old}" in repair.output
    assert not archive.store.exists(old) and not archive.store.exists(young)
    assert archive.store.exists(named[0]) and archive.store.exists(named[1])

    archive.store.path_of(named[1]).unlink()
    monkeypatch.setenv("CONCILIUM_LANG", "fr")
    french = runner.invoke(main, ["dicom", "fsck"], catch_exceptions=False)
    assert french.exit_code == 1
    assert "fichier manquant" in french.output
