"""The archive of one process: the content-addressed store, the index and the event bus.

Receiving (`concilium.imaging.ingest`) commits files to the store before it indexes them, so
that an acknowledged instance is never lost and a refused one leaves nothing behind (PS3.4
B.2.2); a crash between the two leaves files no index row points at, which `Archive.recover`
removes at the next start, when no other process writes.
"""

from __future__ import annotations

import datetime as dt
import enum
import fcntl
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from concilium.imaging.storage import InstanceStore
from concilium.imaging.tables import ImagingInstance, ImagingSeries, ImagingStudy
from concilium.platform.db import transaction, utcnow
from concilium.platform.events import EventBus

__all__ = [
    "STUDY_DELETED",
    "STUDY_RECEIVED",
    "Archive",
    "ArchiveStatistics",
    "DuplicatePolicy",
    "statistics",
    "study_by_uid",
]

log = logging.getLogger(__name__)

STUDY_RECEIVED = "study.received"
"""Topic published once an instance is stored and indexed (new, or replacing other bytes)."""
STUDY_DELETED = "study.deleted"
"""Topic published once a study is removed from the index and the store."""


class DuplicatePolicy(enum.StrEnum):
    """What to do when a SOP Instance UID arrives again with different bytes."""

    KEEP = "keep"
    """Keep the stored instance, answer success and log a warning."""
    REPLACE = "replace"
    """Index the new bytes in place of the old ones."""


class Archive:
    """The stored files, the index and the event bus of one Concilium process."""

    def __init__(
        self,
        root: Path | str,
        sessions: sessionmaker[Session],
        bus: EventBus,
        *,
        duplicate_policy: DuplicatePolicy = DuplicatePolicy.KEEP,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.store = InstanceStore(root)
        """Content-addressed files."""
        self.sessions = sessions
        """Database sessions."""
        self.bus = bus
        """Where `STUDY_RECEIVED` and `STUDY_DELETED` are published."""
        self.duplicate_policy = duplicate_policy
        """What a re-sent instance with different bytes does."""
        self.clock = clock
        """Current time, for share and grant expiry."""
        self._lock_file: int | None = None

    def recover(self) -> int:
        """Remove what an interrupted write left behind; returns the number of files removed.

        Runs only when no other process is writing to this store (the writers' shared lock
        is free): a file committed by a live writer is unindexed for a few milliseconds, and
        must not be mistaken for debris.
        """
        fd = os.open(self.store.root / "writers.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("another process writes to the archive; recovery skipped")
                return 0
            removed = self.store.clean_temporary()
            with transaction(self.sessions) as session:
                indexed = set(session.execute(select(ImagingInstance.address)).scalars())
            for address in list(self.store.addresses()):
                if address not in indexed:
                    self.store.delete(address)
                    removed += 1
            if removed:
                log.warning("archive recovery removed %d unacknowledged files", removed)
            return removed
        finally:
            os.close(fd)

    def open_for_writing(self) -> None:
        """Take the writers' shared lock for the life of the process (see `recover`)."""
        if self._lock_file is None:
            fd = os.open(self.store.root / "writers.lock", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_SH)
            self._lock_file = fd

    def close(self) -> None:
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None


@dataclass(frozen=True)
class ArchiveStatistics:
    """Totals of the index."""

    studies: int
    series: int
    instances: int
    bytes: int
    """Sum of the stored sizes of indexed instances."""


def statistics(session: Session, site_id: int | None = None) -> ArchiveStatistics:
    """Counts and volume, for one site or the whole archive."""
    studies = select(func.count(ImagingStudy.id))
    series = select(func.count(ImagingSeries.id)).join(ImagingStudy)
    instances = (
        select(func.count(ImagingInstance.id), func.coalesce(func.sum(ImagingInstance.size), 0))
        .select_from(ImagingInstance)
        .join(ImagingSeries)
        .join(ImagingStudy)
    )
    if site_id is not None:
        studies = studies.where(ImagingStudy.site_id == site_id)
        series = series.where(ImagingStudy.site_id == site_id)
        instances = instances.where(ImagingStudy.site_id == site_id)
    count, size = session.execute(instances).one()
    return ArchiveStatistics(
        studies=session.execute(studies).scalar_one(),
        series=session.execute(series).scalar_one(),
        instances=int(count),
        bytes=int(size),
    )


def study_by_uid(session: Session, study_instance_uid: str) -> ImagingStudy | None:
    """The indexed study with this Study Instance UID (no access decision: see
    `concilium.imaging.access.study_target`)."""
    return session.execute(
        select(ImagingStudy).where(ImagingStudy.study_instance_uid == study_instance_uid)
    ).scalar_one_or_none()
