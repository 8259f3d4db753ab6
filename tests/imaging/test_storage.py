"""Content-addressed store: durable writes, deduplication, streaming, statistics."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from concilium.imaging import storage
from concilium.imaging.storage import InstanceStore, ObjectNotFound, ObjectTooLarge

from .stores import store_bytes, store_file, store_iter, store_stream


def _leftovers(store: InstanceStore) -> list[Path]:
    return list((store.root / "tmp").iterdir())


def test_store_returns_sha256_address_and_bytes_read_back(tmp_path: Path) -> None:
    store = InstanceStore(tmp_path)
    data = os.urandom(3000)
    stored = store_bytes(store, data)
    assert stored.address == hashlib.sha256(data).hexdigest()
    assert stored.created and stored.size == 3000
    assert store.read(stored.address) == data
    with store.open(stored.address) as fh:
        assert fh.read() == data
    assert b"".join(store.iter_chunks(stored.address, 1000)) == data
    assert stored.path.parent.name == stored.address[2:4]


def test_same_bytes_twice_share_one_file(tmp_path: Path) -> None:
    store = InstanceStore(tmp_path)
    first = store_bytes(store, b"DICM" * 100)
    second = store_iter(store, [b"DICM" * 50, b"DICM" * 50])
    assert first.address == second.address
    assert first.created and not second.created
    assert store.statistics() == storage.StoreStatistics(count=1, bytes=400)
    assert _leftovers(store) == []


def test_statistics_count_and_bytes(tmp_path: Path) -> None:
    store = InstanceStore(tmp_path)
    for size in (10, 20, 30):
        store_bytes(store, bytes([size]) * size)
    assert store.statistics() == storage.StoreStatistics(count=3, bytes=60)
    assert len(set(store.addresses())) == 3


def test_exception_mid_stream_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = InstanceStore(tmp_path)

    def broken() -> Iterator[bytes]:
        yield b"a" * 1000
        raise ConnectionResetError("peer went away")

    with pytest.raises(ConnectionResetError):
        store_iter(store, broken())
    assert _leftovers(store) == []
    assert store.statistics().count == 0


def test_async_stream_is_stored_and_failure_cleans_up(tmp_path: Path) -> None:
    store = InstanceStore(tmp_path)

    async def chunks(fail: bool) -> AsyncIterator[bytes]:
        for i in range(50):
            yield bytes([i]) * 4096
        if fail:
            raise asyncio.CancelledError

    stored = asyncio.run(store_stream(store, chunks(False)))
    expected = b"".join(bytes([i]) * 4096 for i in range(50))
    assert store.read(stored.address) == expected

    async def failing() -> None:
        await store_stream(store, chunks(True))

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(failing())
    assert _leftovers(store) == []
    assert store.statistics().count == 1


def test_size_limit_raises_and_cleans_up(tmp_path: Path) -> None:
    store = InstanceStore(tmp_path)
    with pytest.raises(ObjectTooLarge):
        store_iter(store, [b"x" * 600, b"x" * 600], max_size=1000)
    assert _leftovers(store) == []


def test_write_is_fsynced_then_renamed_then_directory_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = InstanceStore(tmp_path)
    events: list[tuple[str, Path]] = []
    real_fsync, real_fdatasync, real_replace = os.fsync, os.fdatasync, Path.replace

    def synced(fd: int) -> tuple[str, Path]:
        path = Path(f"/proc/self/fd/{fd}").readlink()
        return ("sync-dir" if path.is_dir() else "sync-file", path)

    def fsync(fd: int) -> None:
        events.append(synced(fd))
        real_fsync(fd)

    def fdatasync(fd: int) -> None:
        events.append(synced(fd))
        real_fdatasync(fd)

    def replace(src: Path, dst: Path) -> Path:
        events.append(("rename", dst))
        return real_replace(src, dst)

    monkeypatch.setattr(storage.os, "fsync", fsync)
    monkeypatch.setattr(storage.os, "fdatasync", fdatasync)
    monkeypatch.setattr(Path, "replace", replace)
    stored = store_bytes(store, b"payload")
    final = store.path_of(stored.address)
    kinds = [kind for kind, _ in events]
    # The bytes reach the disk before the rename, and the rename before the write returns.
    assert kinds[0] == "sync-file"
    assert kinds.index("rename") > 0 and events[kinds.index("rename")][1] == final
    assert events[-1] == ("sync-dir", final.parent)
    # A new leaf directory is itself made durable (its parent synced) before the rename.
    assert ("sync-dir", final.parent.parent) in events[: kinds.index("rename")]
    # A second object in the same leaf needs only its file and its directory synced.
    neighbour = next(
        data
        for data in (f"payload {n}".encode() for n in range(10**7))
        if hashlib.sha256(data).hexdigest()[:4] == stored.address[:4]
    )
    events.clear()
    second = store_bytes(store, neighbour)
    assert store.path_of(second.address).parent == final.parent
    assert [kind for kind, _ in events] == ["sync-file", "rename", "sync-dir"]


def test_failed_rename_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = InstanceStore(tmp_path)

    def replace(src: Path, dst: Path) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", replace)
    with pytest.raises(storage.OutOfResources):
        store_bytes(store, b"payload")
    assert _leftovers(store) == []
    assert store.statistics().count == 0


def test_staged_object_can_be_checked_then_discarded(tmp_path: Path) -> None:
    store = InstanceStore(tmp_path)
    with store.stage_iter([b"not dicom"]) as staged:
        assert staged.path.read_bytes() == b"not dicom"
    assert _leftovers(store) == []
    assert not store.exists(staged.address)


def test_delete_and_missing_objects(tmp_path: Path) -> None:
    store = InstanceStore(tmp_path)
    stored = store_bytes(store, b"to delete")
    assert store.delete(stored.address)
    assert not store.delete(stored.address)
    with pytest.raises(ObjectNotFound):
        store.read(stored.address)
    assert store.statistics().count == 0


def test_addresses_that_are_not_digests_are_refused(tmp_path: Path) -> None:
    store = InstanceStore(tmp_path)
    with pytest.raises(ValueError, match="SHA-256"):
        store.read("../../etc/passwd")


def test_store_file_copies_a_part(tmp_path: Path) -> None:
    store = InstanceStore(tmp_path / "store")
    source = tmp_path / "part.bin"
    source.write_bytes(os.urandom(3 * storage.READ_CHUNK_SIZE + 5))
    stored = store_file(store, source)
    assert store.read(stored.address) == source.read_bytes()


def test_derived_data_is_kept_per_object_and_goes_with_it(tmp_path: Path) -> None:
    store = InstanceStore(tmp_path)
    stored = store_bytes(store, b"an object")
    assert store.read_cache("metadata", stored.address) is None
    store.write_cache("metadata", stored.address, '{"derived": true}')
    assert store.read_cache("metadata", stored.address) == '{"derived": true}'
    with pytest.raises(ValueError):
        store.read_cache("../objects", stored.address)
    assert store.delete(stored.address)
    assert store.read_cache("metadata", stored.address) is None


def _in_tmp(store: InstanceStore, name: str, data: bytes) -> Path:
    path = store.root / "tmp" / name
    path.write_bytes(data)
    return path


def _same_leaf_as(address: str, name: str = "neighbour") -> bytes:
    return next(
        data
        for data in (f"{name} {n}".encode() for n in range(10**7))
        if hashlib.sha256(data).hexdigest()[:4] == address[:4]
    )


def test_adopt_takes_the_writers_digest_and_syncs_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = InstanceStore(tmp_path)
    data = os.urandom(5000)
    digest = hashlib.sha256(data).hexdigest()
    hashed = store.adopt(_in_tmp(store, "part-1.bin", data))
    assert (hashed.address, hashed.size) == (digest, 5000)
    synced: list[int] = []
    monkeypatch.setattr(storage.os, "fdatasync", synced.append)

    def no_reading(*args: object) -> None:
        raise AssertionError("the bytes were read again")

    monkeypatch.setattr(storage.hashlib, "file_digest", no_reading)
    staged = store.adopt(_in_tmp(store, "part-2.bin", data), address=digest)
    assert (staged.address, staged.size, len(synced)) == (digest, 5000, 1)
    # Its directory is made ahead, so that committing it is only a rename.
    assert store.path_of(digest).parent.is_dir()
    with pytest.raises(ValueError):
        store.adopt(_in_tmp(store, "part-3.bin", data), address="../../etc/passwd")
    with pytest.raises(storage.StorageError):
        store.adopt(tmp_path / "elsewhere.bin", address=digest)


def test_commit_all_renames_everything_then_syncs_each_directory_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = InstanceStore(tmp_path)
    first = os.urandom(3000)
    neighbour = _same_leaf_as(hashlib.sha256(first).hexdigest())
    staged = [
        store.adopt(_in_tmp(store, f"part-{i}.bin", data))
        for i, data in enumerate([first, neighbour, first])
    ]
    events: list[tuple[str, Path]] = []
    real_fsync, real_replace = os.fsync, Path.replace

    def fsync(fd: int) -> None:
        events.append(("sync-dir", Path(f"/proc/self/fd/{fd}").readlink()))
        real_fsync(fd)

    def replace(src: Path, dst: Path) -> Path:
        events.append(("rename", dst))
        return real_replace(src, dst)

    monkeypatch.setattr(storage.os, "fsync", fsync)
    monkeypatch.setattr(Path, "replace", replace)
    results = store.commit_all(staged)
    assert all(isinstance(r, storage.StoredObject) for r in results)
    a, b, c = (r for r in results if isinstance(r, storage.StoredObject))
    leaf = a.path.parent
    assert b.path.parent == leaf and c.path == a.path
    assert (a.created, b.created, c.created) == (True, True, False)
    # Every rename comes before every sync, and each directory is synced once: the leaf
    # that received the entries, and its parent, which received the new leaf.
    kinds = [kind for kind, _ in events]
    assert kinds == ["rename", "rename", "sync-dir", "sync-dir"]
    assert {path for kind, path in events if kind == "sync-dir"} == {leaf, leaf.parent}
    assert _leftovers(store) == []
    assert store.read(a.address) == first and store.read(b.address) == neighbour
    # The leaf is now known durable: a later object there syncs only the leaf.
    events.clear()
    other = _in_tmp(store, "part-9.bin", _same_leaf_as(a.address, "later"))
    (later,) = store.commit_all([store.adopt(other)])
    assert isinstance(later, storage.StoredObject) and later.path.parent == leaf
    assert events == [("rename", later.path), ("sync-dir", leaf)]


def test_commit_all_reports_a_failed_sync_or_rename_on_those_objects_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = InstanceStore(tmp_path)
    datas = [os.urandom(1000) for _ in range(3)]
    staged = [store.adopt(_in_tmp(store, f"p{i}.bin", d)) for i, d in enumerate(datas)]
    broken_leaf = store.path_of(staged[0].address).parent
    real_sync, real_replace = storage._fsync_directory, Path.replace

    def sync(directory: Path) -> None:
        if directory == broken_leaf:
            raise OSError(5, "Input/output error")
        real_sync(directory)

    def replace(src: Path, dst: Path) -> Path:
        if dst == store.path_of(staged[1].address):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(storage, "_fsync_directory", sync)
    monkeypatch.setattr(Path, "replace", replace)
    results = store.commit_all(staged)
    assert isinstance(results[0], storage.StorageError)
    assert isinstance(results[1], storage.OutOfResources)
    assert isinstance(results[2], storage.StoredObject) and results[2].created
    assert _leftovers(store) == []  # the refused bytes are gone from the temporary area
    # The leaf whose sync failed is not taken for durable: its parent is synced next time.
    assert broken_leaf not in store._durable_leaves
    # Every staged object was consumed, whatever became of it.
    assert all(isinstance(r, storage.StorageError) for r in store.commit_all(staged))
