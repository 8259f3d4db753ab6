"""The index against the store, in full: what ``concilium dicom fsck`` checks and repairs.

Start-up recovery only resolves the pending writes of dead writers
(`concilium.imaging.writers`); this walks everything, online, while other processes go on
ingesting, one slice at a time: the files of one first-level directory of the store against
the index's addresses of the same prefix (a range of its address index), so that only
1/256th of either is ever held in memory. What a slice shows is checked again before it is
reported: a file met unnamed may have been indexed since, a row met without its file may
have been deleted since.

Repair removes only files that nothing names (no row, no pending write of any writer) and
that are older than a grace period, through the same removal as recovery (moved aside, names
checked again, put back if one appeared). A missing file cannot be repaired: it is reported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import exists, select

from concilium.imaging.archive import Archive
from concilium.imaging.tables import ImagingInstance, ImagingPendingWrite

__all__ = ["Inconsistencies", "check"]

PROGRESS_EVERY = 10_000
"""Objects between two progress reports."""


@dataclass
class Inconsistencies:
    """What a check found, and what its repair did."""

    objects: int = 0
    """Files of the store examined."""
    indexed: int = 0
    """Distinct addresses the index names."""
    missing: list[str] = field(default_factory=list)
    """Addresses rows name whose file is not in the store."""
    unnamed: list[str] = field(default_factory=list)
    """Files no row and no pending write names (removed ones included)."""
    removed: list[str] = field(default_factory=list)
    """Those of ``unnamed`` that the repair removed."""
    recent: int = 0
    """Unnamed files left alone because they are younger than the grace period."""

    @property
    def consistent(self) -> bool:
        """Nothing missing, and every unnamed file removed."""
        return not self.missing and len(self.removed) == len(self.unnamed)


def _indexed_under(archive: Archive, prefix: str) -> set[str]:
    """The distinct addresses of the index beginning with ``prefix`` (a range of the
    address index; one slice of the store's, 1/256th of the archive)."""
    column = ImagingInstance.address
    query = select(column).distinct().where(column >= prefix)
    if prefix != "ff":
        query = query.where(column < f"{int(prefix, 16) + 1:02x}")
    with archive.sessions() as session:
        return set(session.execute(query).scalars())


def _named(archive: Archive, address: str) -> bool:
    with archive.sessions() as session:
        row = session.execute(select(exists().where(ImagingInstance.address == address)))
        if row.scalar_one():
            return True
        pending = exists().where(ImagingPendingWrite.address == address)
        return bool(session.execute(select(pending)).scalar_one())


def check(
    archive: Archive,
    *,
    repair: bool = False,
    grace: dt.timedelta = dt.timedelta(hours=1),
    progress: Callable[[int], None] | None = None,
) -> Inconsistencies:
    """Compare the index and the store; with ``repair``, remove the unnamed files older than
    ``grace``. ``progress`` is told the number of files examined every `PROGRESS_EVERY`."""
    found = Inconsistencies()
    missing: list[str] = []
    unnamed: list[str] = []
    reported = 0
    for prefix in (f"{i:02x}" for i in range(256)):
        indexed = _indexed_under(archive, prefix)
        found.indexed += len(indexed)
        stored = set(archive.store.addresses_under(prefix))
        found.objects += len(stored)
        missing.extend(sorted(indexed - stored))
        unnamed.extend(sorted(stored - indexed))
        if progress is not None and found.objects - reported >= PROGRESS_EVERY:
            reported = found.objects
            progress(found.objects)
    if progress is not None and found.objects != reported:
        progress(found.objects)

    found.missing = [
        a for a in missing if not archive.store.exists(a) and _still_indexed(archive, a)
    ]
    now = dt.datetime.now(dt.UTC)
    for address in unnamed:
        if not archive.store.exists(address) or _named(archive, address):
            continue  # removed or indexed since it was met
        found.unnamed.append(address)
        if not repair:
            continue
        try:
            modified = archive.store.path_of(address).stat().st_mtime
        except FileNotFoundError:
            continue
        if now - dt.datetime.fromtimestamp(modified, dt.UTC) < grace:
            found.recent += 1
            continue
        (seq,) = archive.writer.begin([address])
        try:
            if archive.writer.remove_unnamed(address, seq):
                found.removed.append(address)
            else:
                found.unnamed.pop()  # named, or removed, since it was checked
        finally:
            archive.writer.end([seq])
    return found


def _still_indexed(archive: Archive, address: str) -> bool:
    with archive.sessions() as session:
        return bool(
            session.execute(select(exists().where(ImagingInstance.address == address))).scalar_one()
        )
