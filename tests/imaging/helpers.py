"""What the archive's domain tests share: who sends, sending a file, querying as a reader,
the parts of a STOW-RS request, and what the index and the audit trail hold."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from sqlalchemy import select

from concilium.imaging.archive import Archive
from concilium.imaging.ingest import (
    IngestResult,
    ReceivedInstance,
    Sender,
    ingest_instance,
    receive_files,
)
from concilium.imaging.query import find
from concilium.imaging.synthetic import SyntheticStudy, generate_ct_series
from concilium.imaging.tables import ImagingInstance
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.policy import Principal
from concilium.platform.tables import AuditEvent


def sender_at(site_id: int, role: str = "technologist") -> Sender:
    """A person holding ``role`` at the site, sending for it."""
    principal = Principal(user_id=0, username="t", roles={site_id: frozenset({role})})
    return Sender(principal, audit.Actor(None, "t", site_id=site_id), site_id)


def ingest_path(archive: Archive, sender: Sender, path: Path) -> IngestResult:
    """The file, received as one C-STORE is."""
    return ingest_instance(archive, sender, [path.read_bytes()])


def reader_query(archive: Archive, principal: Principal, runtime: Any, **keys: str) -> list[Any]:
    """C-FIND responses to an identifier of these keys (``level`` STUDY unless given)."""
    identifier = Dataset()
    identifier.QueryRetrieveLevel = keys.pop("level", "STUDY")
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    with transaction(archive.sessions) as db:
        return find(db, principal, audit.SYSTEM, identifier, now=runtime.now())


def received_parts(archive: Archive, paths: list[Path]) -> list[ReceivedInstance]:
    """Each file as a STOW-RS part: copied into the receiving area, then received."""
    parts: list[tuple[Path, str | None]] = []
    for path in paths:
        part = archive.store.temporary_area / f"part-{uuid.uuid4().hex}.bin"
        shutil.copyfile(path, part)
        parts.append((part, None))
    received = receive_files(archive, parts)
    assert all(isinstance(r, ReceivedInstance) for r in received), received
    return [r for r in received if isinstance(r, ReceivedInstance)]


def ct_files(tmp_path: Path, seed: str, count: int) -> list[Path]:
    """``count`` small CT slices of one study."""
    study = SyntheticStudy(seed=seed)
    return generate_ct_series(tmp_path / seed, count, study=study, rows=16, columns=16)


def store_audit(archive: Archive, outcome: str = "success") -> list[AuditEvent]:
    """The ``study.store`` entries with this outcome, in order."""
    with transaction(archive.sessions) as db:
        return list(
            db.execute(
                select(AuditEvent)
                .where(AuditEvent.action == "study.store", AuditEvent.outcome == outcome)
                .order_by(AuditEvent.seq)
            ).scalars()
        )


def indexed_uids(archive: Archive) -> set[str]:
    """SOP Instance UIDs of every indexed instance."""
    with transaction(archive.sessions) as db:
        return set(db.execute(select(ImagingInstance.sop_instance_uid)).scalars())
