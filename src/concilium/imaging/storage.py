"""Content-addressed store of DICOM Part 10 files, kept byte for byte as received.

Instances received by C-STORE (PS3.4 B.2) or STOW-RS (PS3.18 10.5) are written exactly as
they arrived (PS3.10 7.1 file format) under their SHA-256 digest. A write is durable before
it returns: data go to a temporary file on the same filesystem, the file is fsynced, renamed
into place and the directory is fsynced. Only then may the caller index the instance and
acknowledge it, so an acknowledged instance survives a power cut.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "InstanceStore",
    "ObjectNotFound",
    "ObjectTooLarge",
    "OutOfResources",
    "StagedObject",
    "StorageError",
    "StoreStatistics",
    "StoredObject",
]

READ_CHUNK_SIZE = 1 << 20
_ADDRESS = re.compile(r"^[0-9a-f]{64}$")
_TMP_DIR = "tmp"
_OBJECTS_DIR = "objects"
_CACHE_DIR = "cache"


class StorageError(Exception):
    """Base class of every storage failure."""


class OutOfResources(StorageError):
    """The filesystem refused the write (disk full, quota); PS3.4 C-STORE status A700."""


class ObjectTooLarge(StorageError):
    """The object exceeds the size limit given to the write; PS3.4 C-STORE status A700."""


class ObjectNotFound(StorageError, KeyError):
    """No object is stored under this address."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An object durably present in the store."""

    address: str
    """Lower-case hexadecimal SHA-256 of the bytes."""
    size: int
    """Length in bytes."""
    path: Path
    """Where the bytes live; read-only for callers."""
    created: bool
    """False when identical bytes were already stored (deduplicated)."""


@dataclass(frozen=True, slots=True)
class StoreStatistics:
    """Totals over the whole store."""

    count: int
    """Number of stored objects."""
    bytes: int
    """Sum of their sizes."""


def _fsync_directory(directory: Path) -> None:
    # The rename is only durable once the directory entry itself reaches the disk.
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


SYNC_THREADS = 8
"""Files and directories a store syncs side by side (`InstanceStore.adopt_later`,
`InstanceStore.commit_all`): the disk serves concurrent syncs together, and a journalling
filesystem commits them in one transaction."""


def _translate_os_error(exc: OSError) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return OutOfResources(str(exc))
    return StorageError(str(exc))


class StagedObject:
    """Bytes received and fsynced in the store's temporary area, not yet part of the archive.

    Lets the caller validate the file (see `parsing.parse_instance`) before it enters the
    archive, then `commit` it or `discard` it. Usable as a context manager that discards
    whatever was not committed.
    """

    def __init__(self, store: InstanceStore, path: Path, address: str, size: int) -> None:
        self._store = store
        self.path = path
        """Temporary file holding the received bytes."""
        self.address = address
        """SHA-256 of the bytes, the address they will get."""
        self.size = size
        """Length in bytes."""
        self._done = False

    def commit(self) -> StoredObject:
        """Move the staged bytes to their address and make the move durable."""
        if self._done:
            raise StorageError("staged object already committed or discarded")
        self._done = True
        return self._store._commit(self.path, self.address, self.size)

    def discard(self) -> None:
        """Remove the staged bytes; harmless if already committed or discarded."""
        if not self._done:
            self._done = True
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> StagedObject:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()


class _Writer:
    """Accumulates chunks into a temporary file while hashing them."""

    def __init__(self, tmp_dir: Path, max_size: int | None) -> None:
        self._max_size = max_size
        self._digest = hashlib.sha256()
        self.size = 0
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="in-", suffix=".part")
        self.path = Path(name)
        self._file: BinaryIO = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        if self._max_size is not None and self.size > self._max_size:
            raise ObjectTooLarge(f"object exceeds {self._max_size} bytes")
        self._digest.update(chunk)
        try:
            self._file.write(chunk)
        except OSError as exc:
            raise _translate_os_error(exc) from exc

    def finish(self) -> str:
        try:
            self._file.flush()
            # The data and the size that reads it back; other metadata (times) may lag.
            os.fdatasync(self._file.fileno())
        except OSError as exc:
            raise _translate_os_error(exc) from exc
        finally:
            self._file.close()
        return self._digest.hexdigest()

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class InstanceStore:
    """Content-addressed, write-once file store under one root directory.

    Layout: ``objects/ab/cd/abcd…`` (the full SHA-256 as file name, two fan-out levels so
    no directory grows past 65 536 entries) and ``tmp/`` for writes in progress, on the same
    filesystem so that the final rename is atomic: ``tmp/<writer>/`` for the store of a
    writer (`concilium.imaging.writers`), so that each process of a shared store cleans only
    its own.
    """

    def __init__(self, root: Path | str, writer: str | None = None) -> None:
        self.root = Path(root)
        self._objects = self.root / _OBJECTS_DIR
        self._tmp = self.root / _TMP_DIR
        if writer is not None:
            self._tmp = self.temporary_area_of(writer)
        self._objects.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._tmp_resolved = self._tmp.resolve()
        self._durable_leaves: set[Path] = set()
        """Leaf directories whose own entry is known to be on disk."""
        self._sync_pool: ThreadPoolExecutor | None = None
        self._make_fan_out()

    def _syncs(self) -> ThreadPoolExecutor:
        # Kept for the life of the store: starting threads for each batch costs more than
        # a batch of syncs on a fast disk.
        if self._sync_pool is None:
            self._sync_pool = ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="store-sync")
        return self._sync_pool

    def _fsync_directories(self, directories: Iterable[Path]) -> dict[Path, StorageError]:
        """Sync each directory, side by side; returns those that failed, with the error."""
        pending = list(directories)
        failed: dict[Path, StorageError] = {}

        def sync(directory: Path) -> None:
            try:
                _fsync_directory(directory)
            except OSError as exc:
                failed[directory] = _translate_os_error(exc)

        if len(pending) == 1:
            sync(pending[0])
        elif pending:
            list(self._syncs().map(sync, pending))
        return failed

    def _make_fan_out(self) -> None:
        # The 256 first-level directories exist, durably, before the first write: a write
        # then never has to make the objects directory itself durable again.
        missing = [d for d in (f"{i:02x}" for i in range(256)) if not (self._objects / d).is_dir()]
        for name in missing:
            (self._objects / name).mkdir(exist_ok=True)
        if missing:
            _fsync_directory(self._objects)

    @property
    def temporary_area(self) -> Path:
        """Where writes in progress are, on the objects' filesystem: a file written here by
        another writer can be adopted (`adopt`) and committed by a rename."""
        return self._tmp

    def temporary_area_of(self, writer: str) -> Path:
        """The temporary area of the writer ``writer`` (see `temporary_area`)."""
        if not writer.isalnum():
            raise ValueError(f"not a writer identity: {writer!r}")
        return self.root / _TMP_DIR / writer

    # -- addresses -------------------------------------------------------------------------

    def path_of(self, address: str) -> Path:
        """Path where the object with this address is (or would be) stored."""
        # Addresses reach us from URLs and the database: refuse anything that is not a
        # digest before it can be joined into a path.
        if not _ADDRESS.fullmatch(address):
            raise ValueError(f"not a SHA-256 address: {address!r}")
        return self._objects / address[:2] / address[2:4] / address

    def exists(self, address: str) -> bool:
        """Whether an object is stored under `address`."""
        return self.path_of(address).is_file()

    # -- writing ---------------------------------------------------------------------------

    def stage_iter(self, chunks: Iterable[bytes], *, max_size: int | None = None) -> StagedObject:
        """Write chunks to a fsynced temporary file; nothing is left behind on error."""
        writer = _Writer(self._tmp, max_size)
        try:
            for chunk in chunks:
                writer.write(chunk)
            address = writer.finish()
        except BaseException:
            writer.abort()
            raise
        return StagedObject(self, writer.path, address, writer.size)

    def adopt(self, path: Path, *, address: str | None = None) -> StagedObject:
        """Stage a file another writer has put in the temporary area (e.g. a multipart part):
        its bytes are synced where they are, never copied.

        `address` is the SHA-256 the writer computed while it wrote the file (see
        `multipart.Part.sha256`); without it the file is read once more to hash it. The
        directory the object will be committed to is made now if it is missing, so that its
        commit is a rename: on some filesystems making a directory costs as much as syncing
        the file, and adopting runs side by side with other work (see `commit_all`).
        """
        # Resolving costs a system call per path component; the parts of a request are
        # named under the temporary area as the store itself spells it.
        if path.parent != self._tmp and path.parent.resolve() != self._tmp_resolved:
            raise StorageError("only files of the store's temporary area can be adopted")
        if address is not None and not _ADDRESS.fullmatch(address):
            raise ValueError(f"not a SHA-256 address: {address!r}")
        try:
            with path.open("rb") as fh:
                if address is None:
                    address = hashlib.file_digest(fh, "sha256").hexdigest()
                size = os.fstat(fh.fileno()).st_size
                os.fdatasync(fh.fileno())
            leaf = self.path_of(address).parent
            if leaf not in self._durable_leaves:
                # Not synced here: `commit_all` syncs its parent before anything is stored.
                leaf.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _translate_os_error(exc) from exc
        return StagedObject(self, path, address, size)

    def adopt_later(self, path: Path, *, address: str | None = None) -> Future[StagedObject]:
        """`adopt` in one of the store's sync threads, while the caller goes on."""
        return self._syncs().submit(self.adopt, path, address=address)

    def _commit(self, tmp_path: Path, address: str, size: int) -> StoredObject:
        final = self.path_of(address)
        try:
            if final.is_file():
                # Same digest, same bytes: keep the first copy and drop ours.
                tmp_path.unlink(missing_ok=True)
                return StoredObject(address, size, final, created=False)
            self._durable_leaf(final.parent)
            tmp_path.replace(final)
            _fsync_directory(final.parent)
        except OSError as exc:
            tmp_path.unlink(missing_ok=True)
            raise _translate_os_error(exc) from exc
        return StoredObject(address, size, final, created=True)

    def _durable_leaf(self, leaf: Path) -> None:
        """Make sure the leaf directory exists and its entry is on disk.

        Once per leaf and process: a leaf another thread or process has just made may not be
        durable yet, so the first time this process meets it, its parent is synced too. Two
        threads meeting a new leaf together both sync its parent, which is harmless, and
        neither waits behind the other's sync.
        """
        if leaf in self._durable_leaves:
            return
        leaf.parent.mkdir(exist_ok=True)  # a first level removed since start-up
        leaf.mkdir(exist_ok=True)
        _fsync_directory(leaf.parent)
        self._durable_leaves.add(leaf)

    def commit_all(self, staged: Sequence[StagedObject]) -> list[StoredObject | StorageError]:
        """Move staged objects to their addresses as one batch; returns once all are durable.

        Each result, in order, is the stored object or the error that kept that object out:
        bytes that could not be moved are removed, bytes moved but not made durable are left
        for recovery. Several objects under one address (identical bytes) are stored once.

        Why an object reported stored survives a power cut: its data were synced when it was
        staged (`stage_iter`, `adopt`), before the rename that gives it its address. The
        rename changes one directory, its leaf, and is durable once that leaf is synced; a
        leaf this process has not made durable yet is an entry of its first-level directory,
        which is synced too (the first levels are durable from `__init__`). So, after every
        rename of the batch, each of these directories is synced once, however many objects
        it received, the syncs running side by side; an object is reported stored only once
        the syncs it depends on have all succeeded. A crash before that leaves files only the
        writer's pending writes name, which recovery resolves (`concilium.imaging.writers`).
        """
        results: list[StoredObject | StorageError] = []
        moved: list[tuple[int, StoredObject]] = []
        new_leaves: set[Path] = set()
        for item in staged:
            if item._done:
                results.append(StorageError("staged object already committed or discarded"))
                continue
            item._done = True
            final = self.path_of(item.address)
            try:
                if final.parent not in self._durable_leaves:
                    final.parent.mkdir(parents=True, exist_ok=True)
                    new_leaves.add(final.parent)
                created = not final.is_file()
                if created:
                    item.path.replace(final)
                else:
                    # Same digest, same bytes: keep the first copy and drop ours.
                    item.path.unlink(missing_ok=True)
            except OSError as exc:
                item.path.unlink(missing_ok=True)
                results.append(_translate_os_error(exc))
                continue
            moved.append((len(results), StoredObject(item.address, item.size, final, created)))
            results.append(moved[-1][1])
        # The leaf is synced even for a deduplicated object: the copy found there may be
        # another writer's, renamed but not yet synced.
        directories = {stored.path.parent for _, stored in moved}
        directories |= {leaf.parent for leaf in new_leaves}
        failed = self._fsync_directories(directories)
        for leaf in new_leaves - failed.keys():
            if leaf.parent not in failed:
                self._durable_leaves.add(leaf)
        for index, stored in moved:
            leaf = stored.path.parent
            error = failed.get(leaf) or (failed.get(leaf.parent) if leaf in new_leaves else None)
            if error is not None:
                # Not durable, so not stored; the file is left for recovery, as another
                # writer of the same bytes may be relying on it.
                results[index] = error
        return results

    # -- reading ---------------------------------------------------------------------------

    def open(self, address: str) -> BinaryIO:
        """Open the object for streaming reads; the caller closes it."""
        try:
            return self.path_of(address).open("rb")
        except FileNotFoundError as exc:
            raise ObjectNotFound(address) from exc

    def read(self, address: str) -> bytes:
        """Return the whole object; meant for small objects."""
        with self.open(address) as fh:
            return fh.read()

    def iter_chunks(self, address: str, chunk_size: int = READ_CHUNK_SIZE) -> Iterator[bytes]:
        """Yield the object in chunks, for streaming HTTP responses."""
        with self.open(address) as fh:
            while chunk := fh.read(chunk_size):
                yield chunk

    # -- removal and statistics ------------------------------------------------------------

    def delete(self, address: str) -> bool:
        """Remove the object; returns False if it was not stored."""
        path = self.path_of(address)
        self._drop_cache(address)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _fsync_directory(path.parent)
        return True

    def set_aside(self, address: str, aside: Path) -> bool:
        """Move the object out of its address to ``aside`` (in a temporary area) in one
        atomic rename; False when nothing is stored there."""
        aside.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.path_of(address).replace(aside)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise _translate_os_error(exc) from exc
        return True

    def put_back(self, aside: Path, address: str) -> None:
        """Return an object set aside to its address, durably; when identical bytes were
        stored there meanwhile, they stay and the copy set aside goes."""
        final = self.path_of(address)
        try:
            os.link(aside, final)
        except FileExistsError:
            pass
        except OSError as exc:
            raise _translate_os_error(exc) from exc
        aside.unlink(missing_ok=True)
        _fsync_directory(final.parent)

    def discard_aside(self, aside: Path, address: str) -> None:
        """Remove an object set aside for good, with what was derived from it."""
        self._drop_cache(address)
        aside.unlink(missing_ok=True)

    # -- derived data ----------------------------------------------------------------------

    def _cache_path(self, kind: str, address: str) -> Path:
        if not _ADDRESS.fullmatch(address) or not kind.isalpha():
            raise ValueError(f"not a cache entry: {kind}/{address!r}")
        return self.root / _CACHE_DIR / kind / address[:2] / address

    def read_cache(self, kind: str, address: str) -> str | None:
        """What was derived from a stored object and kept (e.g. its DICOM JSON), if any.

        Objects never change under an address, so an entry never goes stale; entries are
        not synced, as they can always be derived again.
        """
        try:
            return self._cache_path(kind, address).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def write_cache(self, kind: str, address: str, text: str) -> None:
        """Keep what was derived from a stored object (written whole, then renamed)."""
        path = self._cache_path(kind, address)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=".in-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        Path(name).replace(path)

    def _drop_cache(self, address: str) -> None:
        cache = self.root / _CACHE_DIR
        if cache.is_dir():
            for kind in cache.iterdir():
                (kind / address[:2] / address).unlink(missing_ok=True)

    def addresses(self) -> Iterator[str]:
        """Every stored address, in no particular order (for audits and rebuilding the index)."""
        for _dirpath, _dirnames, filenames in os.walk(self._objects):
            for name in filenames:
                if _ADDRESS.fullmatch(name):
                    yield name

    def addresses_under(self, prefix: str) -> Iterator[str]:
        """Every stored address beginning with ``prefix`` (two hexadecimal digits: one
        first-level directory), for checks that go through the store a slice at a time."""
        if not re.fullmatch(r"[0-9a-f]{2}", prefix):
            raise ValueError(f"not a first-level directory: {prefix!r}")
        for _dirpath, _dirnames, filenames in os.walk(self._objects / prefix):
            for name in filenames:
                if _ADDRESS.fullmatch(name) and name.startswith(prefix):
                    yield name

    def statistics(self) -> StoreStatistics:
        """Count and total size of stored objects, computed from the filesystem."""
        count = 0
        total = 0
        for address in self.addresses():
            count += 1
            total += self.path_of(address).stat().st_size
        return StoreStatistics(count=count, bytes=total)
