"""The archive of one process: the content-addressed store, the index and the event bus.

Receiving (`concilium.imaging.ingest`) commits files to the store before it indexes them, so
that an acknowledged instance is never lost and a refused one leaves nothing behind (PS3.4
B.2.2). Each file is recorded as a pending write of this process (its `Writer`, registered
in the database with a lease) before it enters the store, and the transaction indexing it
removes that record: a crash in between leaves a pending write, which `Archive.recover`, in
this process or any other sharing the store, resolves once the lease has lapsed.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from concilium.imaging.storage import InstanceStore
from concilium.imaging.tables import ImagingInstance, ImagingSeries, ImagingStudy
from concilium.imaging.writers import Lease, Writer
from concilium.platform.db import utcnow
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
        lease: Lease | None = None,
        lease_clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        writer_id = Writer.new_id()
        self.store = InstanceStore(root, writer=writer_id)
        """Content-addressed files; its temporary area is this process's own."""
        self.sessions = sessions
        """Database sessions."""
        self.bus = bus
        """Where `STUDY_RECEIVED` and `STUDY_DELETED` are published."""
        self.duplicate_policy = duplicate_policy
        """What a re-sent instance with different bytes does."""
        self.clock = clock
        """Current time, for share and grant expiry."""
        # Liveness is a matter of real time, whatever time the domain is told (tests move
        # ``clock`` by hours): processes on one store judge each other's leases alike.
        self.writer = Writer(self.store, sessions, lease_clock, lease or Lease(), writer_id)
        """This process as a writer of the store: identity, lease, pending writes."""

    def recover(self) -> int:
        """Resolve what writers that died (on any host sharing the store) left pending;
        returns the number of files removed.

        Only the pending writes of writers whose lease has lapsed are looked at: the time it
        takes depends on the work that was in flight, not on the size of the archive, and a
        live writer's files are never touched. The whole store is checked by ``concilium
        dicom fsck`` (`concilium.imaging.consistency`).
        """
        return self.writer.recover()

    def open_for_writing(self) -> None:
        """Register this process as a writer, its lease renewed until `close`. A write
        registers it too if this was not done (tests, embedding)."""
        self.writer.register()

    def close(self) -> None:
        """Stop writing: what is pending is resolved and the writer is forgotten."""
        self.writer.close()


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
