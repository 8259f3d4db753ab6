"""The archive of one process: recovery from an interrupted write."""

from __future__ import annotations

from concilium.imaging.synthetic import generate_ct_series

from .helpers import ingest_path, sender_at
from .stores import store_bytes


def test_recovery_removes_unindexed_files_only(archive, world, tmp_path):
    (path,) = generate_ct_series(tmp_path / "ct", 1, rows=32, columns=32)
    kept = ingest_path(archive, sender_at(world.metz.id), path)
    orphan = store_bytes(archive.store, b"written, never indexed")
    (archive.store.root / "tmp" / "in-x.part").write_bytes(b"half")
    assert archive.recover() == 2
    assert set(archive.store.addresses()) == {kept.address}
    assert orphan.address not in set(archive.store.addresses())
