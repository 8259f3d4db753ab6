"""The processes writing to one store, on one host or several sharing it: who they are, how
long they are known alive, and what each is in the middle of writing.

A writer registers in the database (`ImagingWriter`: identity, host, pid, a lease it renews
in a background thread). Before a file enters the store, or leaves it, the writer records a
pending write for its address (`ImagingPendingWrite`) in a committed transaction; the
transaction that indexes the file removes that entry, so a file is at every moment either
named by an index row, or by a pending write of its writer. The writer's temporary files are
its own too, under ``tmp/<writer id>/``.

Recovery is proportional to the work in flight, not to the archive: it looks only at writers
whose lease has lapsed (dead, on any host), takes them over one by one with a compare-and-set
on their lease, and resolves each pending write: a file some row or another pending write
names stays, any other is removed, then the entry, the temporary files and the writer go.
A live writer's pending writes and files are never touched.

A file is removed only through `Writer.remove_unnamed`: it is first moved aside (an atomic
rename) and only then are the rows and the other writers' pending writes consulted. A writer
records its pending write before it looks whether identical bytes are already stored, so
either it sees the file gone and stores its own copy, or the remover sees its entry and puts
the file back. Nobody removes what another may be writing or may have just indexed.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import secrets
import shutil
import socket
import threading
import weakref
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, delete, exists, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from concilium.imaging.storage import InstanceStore, StorageError
from concilium.imaging.tables import ImagingInstance, ImagingPendingWrite, ImagingWriter
from concilium.platform.db import transaction

__all__ = ["Lease", "Writer", "WriterFenced"]

log = logging.getLogger(__name__)

_IN_CHUNK = 500
"""Entries per ``IN`` list, well under every backend's limit on bound parameters."""


class WriterFenced(StorageError):
    """This writer's lease lapsed and another process resolved its pending writes: what it
    writes can no longer be acknowledged (the process must be restarted)."""


@dataclass(frozen=True)
class Lease:
    """How long a writer is known alive without news, and how often it gives news."""

    seconds: float = 30.0
    """Length of the lease (``archive_writer_lease_seconds``)."""
    renew_seconds: float = 10.0
    """Interval of renewals and sweeps (``archive_writer_renew_seconds``)."""

    def __post_init__(self) -> None:
        if not 0 < self.renew_seconds * 2 <= self.seconds:
            raise ValueError("a lease is renewed at least twice within its length")


class Writer:
    """This process as a writer of the store: its identity, lease and pending writes."""

    def __init__(
        self,
        store: InstanceStore,
        sessions: sessionmaker[Session],
        clock: Callable[[], dt.datetime],
        lease: Lease,
        writer_id: str,
    ) -> None:
        self.id = writer_id
        """Random identity, the name of its temporary directory."""
        self.store = store
        self.sessions = sessions
        self.clock = clock
        self.lease = lease
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._expires: dt.datetime | None = None
        """The lease as last written by this writer; None while not registered."""
        self._fenced = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(16)

    # -- life ------------------------------------------------------------------------------

    @property
    def registered(self) -> bool:
        return self._expires is not None

    def register(self) -> None:
        """Record this writer with a fresh lease and renew it in a background thread until
        `close`; harmless when already registered."""
        with self._lock:
            if self._expires is not None:
                return
            if self._fenced:
                raise WriterFenced(self.id)
            now = self.clock()
            expires = now + dt.timedelta(seconds=self.lease.seconds)
            with transaction(self.sessions) as session:
                session.add(
                    ImagingWriter(
                        id=self.id,
                        host=socket.gethostname()[:255],
                        pid=os.getpid(),
                        started_at=now,
                        lease_expires_at=expires,
                    )
                )
            self._expires = expires
            self._stop.clear()
            self._thread = threading.Thread(
                target=_renew_until_stopped,
                args=(weakref.ref(self), self._stop, self.lease.renew_seconds),
                name=f"writer-lease-{self.id[:8]}",
                daemon=True,
            )
            self._thread.start()

    def renew(self) -> bool:
        """Push the lease forward; False (and fenced) when another process took it over."""
        with self._lock:
            if self._expires is None:
                return False
            expires = self.clock() + dt.timedelta(seconds=self.lease.seconds)
            with transaction(self.sessions) as session:
                changed = _changed(
                    session.execute(
                        update(ImagingWriter)
                        .where(
                            ImagingWriter.id == self.id,
                            ImagingWriter.lease_expires_at == self._expires,
                        )
                        .values(lease_expires_at=expires)
                    )
                )
            if changed != 1:
                log.error("the archive writer's lease was taken over; it no longer writes")
                self._fenced = True
                self._expires = None
                self._stop.set()
                return False
            self._expires = expires
            return True

    def close(self) -> None:
        """Stop renewing and leave: what is still pending is resolved now, as recovery would,
        and the writer's row and temporary files are removed."""
        with self._lock:
            if self._expires is None:
                return
            self._stop.set()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.lease.renew_seconds + 5)
        # Closing may happen on an event loop (an application's shutdown), where a database
        # write must not begin: the work is done in a thread of its own.
        done = threading.Thread(target=self._leave, name="writer-close")
        done.start()
        done.join()

    def _leave(self) -> None:
        try:
            self._resolve(self.id)
        except Exception:
            log.exception("the archive writer could not leave cleanly; recovery will")
        finally:
            with self._lock:
                self._expires = None

    # -- pending writes --------------------------------------------------------------------

    def begin(self, addresses: Sequence[str]) -> list[int]:
        """Record a pending write for each address (committed before it returns); returns the
        entries' numbers, in order. Registers the writer first if it is not yet."""
        if self._fenced:
            raise WriterFenced(self.id)
        if not self.registered:
            self.register()
        if not addresses:
            return []
        seqs = [next(self._seq) for _ in addresses]
        rows = [
            {"writer_id": self.id, "seq": seq, "address": address}
            for seq, address in zip(seqs, addresses, strict=True)
        ]
        with self.sessions() as session:
            bind = session.get_bind()
        assert isinstance(bind, Engine)
        # Committed without waiting for the disk: what protects the file from other
        # processes is that the entry is visible, which it is at once. Durability follows
        # with the next synced commit (the transaction indexing the file, at the latest,
        # since the log is written in order); a power cut before that can only lose an entry
        # whose file is then unnamed, which `concilium dicom fsck --repair` removes.
        with bind.connect() as connection:
            if connection.dialect.name == "sqlite":
                raw = connection.connection.driver_connection
                assert raw is not None
                raw.execute("PRAGMA synchronous=NORMAL")
                try:
                    with connection.begin():
                        connection.execute(insert(ImagingPendingWrite), rows)
                finally:
                    raw.execute("PRAGMA synchronous=FULL")
            else:
                with connection.begin():
                    if connection.dialect.name == "postgresql":
                        connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
                    connection.execute(insert(ImagingPendingWrite), rows)
        return seqs

    def journal(self, session: Session, addresses: Sequence[str]) -> list[int]:
        """Record pending writes within the caller's transaction (e.g. the one removing the
        index rows of files about to be removed); returns their numbers."""
        if self._fenced:
            raise WriterFenced(self.id)
        if not self.registered:
            self.register()
        seqs = [next(self._seq) for _ in addresses]
        if seqs:
            session.execute(
                insert(ImagingPendingWrite),
                [
                    {"writer_id": self.id, "seq": seq, "address": address}
                    for seq, address in zip(seqs, addresses, strict=True)
                ],
            )
        return seqs

    def settle(self, session: Session, seqs: Collection[int]) -> None:
        """Remove pending writes within the transaction indexing their files.

        Raises `WriterFenced` when one is no longer there: another process took it over, and
        may be removing its file, so the transaction must not commit.
        """
        ordered = sorted(seqs)
        for start in range(0, len(ordered), _IN_CHUNK):
            chunk = ordered[start : start + _IN_CHUNK]
            removed = _changed(
                session.execute(
                    delete(ImagingPendingWrite).where(
                        ImagingPendingWrite.writer_id == self.id, ImagingPendingWrite.seq.in_(chunk)
                    )
                )
            )
            if removed != len(chunk):
                self._fenced = True
                raise WriterFenced(self.id)

    def end(self, seqs: Collection[int]) -> None:
        """Remove pending writes that are over (their file indexed, removed or refused)."""
        if not seqs:
            return
        with transaction(self.sessions) as session:
            ordered = sorted(seqs)
            for start in range(0, len(ordered), _IN_CHUNK):
                session.execute(
                    delete(ImagingPendingWrite).where(
                        ImagingPendingWrite.writer_id == self.id,
                        ImagingPendingWrite.seq.in_(ordered[start : start + _IN_CHUNK]),
                    )
                )

    def forget(self, pending: Sequence[tuple[int, str]]) -> int:
        """Remove the files of these pending writes (number, address) that nothing names,
        then the entries; returns the number of files removed."""
        removed = 0
        for seq, address in pending:
            removed += self.remove_unnamed(address, seq)
        self.end([seq for seq, _ in pending])
        return removed

    # -- removal ---------------------------------------------------------------------------

    def remove_unnamed(self, address: str, seq: int, *, taken_over: str | None = None) -> bool:
        """Remove the file at ``address`` unless an index row, or a pending write other than
        this writer's entry ``seq`` (and those of the writer being ``taken_over``), names
        it; returns whether it was removed. The caller holds the entry ``seq``, so that a
        crash halfway is resolved by recovery."""
        aside = self.store.temporary_area_of(self.id) / f"{address}.{seq}.aside"
        if not self.store.set_aside(address, aside):
            return False
        with transaction(self.sessions) as session:
            named = _named(session, address, (self.id, seq), taken_over)
        if named:
            self.store.put_back(aside, address)
            return False
        self.store.discard_aside(aside, address)
        return True

    # -- recovery --------------------------------------------------------------------------

    def recover(self) -> int:
        """Resolve the pending writes of every writer whose lease has lapsed, then forget
        them; returns the number of files removed. Never looks at a live writer's."""
        self.register()
        now = self.clock()
        with transaction(self.sessions) as session:
            lapsed = session.execute(
                select(ImagingWriter.id, ImagingWriter.lease_expires_at).where(
                    ImagingWriter.lease_expires_at < now, ImagingWriter.id != self.id
                )
            ).all()
        removed = 0
        for writer_id, expires in lapsed:
            # Taken over with a compare-and-set on its lease: two processes starting at once
            # never resolve the same writer, and the writer, if it was merely paused, finds
            # its lease changed at its next renewal and stops.
            with transaction(self.sessions) as session:
                taken = _changed(
                    session.execute(
                        update(ImagingWriter)
                        .where(
                            ImagingWriter.id == writer_id, ImagingWriter.lease_expires_at == expires
                        )
                        .values(lease_expires_at=now + dt.timedelta(seconds=self.lease.seconds))
                    )
                )
            if taken == 1:
                removed += self._resolve(writer_id)
        if removed:
            log.warning("archive recovery removed %d unacknowledged files", removed)
        return removed

    def _resolve(self, writer_id: str) -> int:
        """Resolve every pending write of ``writer_id`` (this writer or one taken over),
        remove its temporary files and, when nothing of it is left, its row."""
        with transaction(self.sessions) as session:
            pending = session.execute(
                select(ImagingPendingWrite.seq, ImagingPendingWrite.address).where(
                    ImagingPendingWrite.writer_id == writer_id
                )
            ).all()
        own = writer_id == self.id
        tmp = self.store.temporary_area_of(writer_id)
        removed = 0
        for seq, address in pending:
            aside = tmp / f"{address}.{seq}.aside"
            if own:
                if aside.exists():
                    self._put_back_if_named(aside, address, seq)
                removed += self.remove_unnamed(address, seq)
                self.end([seq])
                continue
            with transaction(self.sessions) as session:
                # The entry moves to this writer in one transaction: the writer taken over,
                # if it still runs, fails to settle it and acknowledges nothing.
                session.execute(
                    delete(ImagingPendingWrite).where(
                        ImagingPendingWrite.writer_id == writer_id, ImagingPendingWrite.seq == seq
                    )
                )
                named = _named(session, address, None, writer_id)
                mine = [] if named else self.journal(session, [address])
            if aside.exists():
                self._put_back_if_named(aside, address, None, taken_over=writer_id)
            if mine:
                removed += self.remove_unnamed(address, mine[0], taken_over=writer_id)
                self.end(mine)
        shutil.rmtree(tmp, ignore_errors=True)
        with transaction(self.sessions) as session:
            left = session.execute(
                select(exists().where(ImagingPendingWrite.writer_id == writer_id))
            ).scalar_one()
            if not left:
                session.execute(delete(ImagingWriter).where(ImagingWriter.id == writer_id))
        if own:
            self.store.temporary_area.mkdir(parents=True, exist_ok=True)
        return removed

    def _put_back_if_named(
        self, aside: Path, address: str, seq: int | None, *, taken_over: str | None = None
    ) -> None:
        """A removal interrupted after its file was moved aside: the file goes back if
        something names it, else it stays aside, to go with the temporary files."""
        with transaction(self.sessions) as session:
            named = _named(session, address, (self.id, seq) if seq else None, taken_over)
        if named:
            self.store.put_back(aside, address)


def _changed(result: object) -> int:
    """Rows an UPDATE or DELETE changed."""
    return int(getattr(result, "rowcount", 0) or 0)


def _named(
    session: Session, address: str, own: tuple[str, int] | None, taken_over: str | None
) -> bool:
    """Whether an index row, or a pending write other than ``own`` (and other than those of
    the writer ``taken_over``), names ``address``."""
    if session.execute(select(exists().where(ImagingInstance.address == address))).scalar_one():
        return True
    pending = select(ImagingPendingWrite.seq).where(ImagingPendingWrite.address == address)
    if own is not None:
        pending = pending.where(
            ~((ImagingPendingWrite.writer_id == own[0]) & (ImagingPendingWrite.seq == own[1]))
        )
    if taken_over is not None:
        pending = pending.where(ImagingPendingWrite.writer_id != taken_over)
    return session.execute(pending.limit(1)).first() is not None


def _renew_until_stopped(
    ref: weakref.ReferenceType[Writer], stop: threading.Event, interval: float
) -> None:
    """Renew the lease, then sweep lapsed writers, every ``interval`` until stopped (or the
    writer is gone); a failure is logged and retried at the next tick."""
    while not stop.wait(interval):
        writer = ref()
        if writer is None:
            return
        try:
            if writer.renew():
                writer.recover()
        except Exception:
            log.exception("archive writer lease renewal failed; retrying")
        del writer
