"""Fuzz the DICOM receive path: `parse_instance`, then `ingest_instance` into an archive.

The archive sits on a SQLite database of its own, migrated at start. A refused object
raises only `InvalidInstance` (and its subclasses) or a storage error (`StorageError`);
a refusal leaves no row in the index and no file in the store; an accepted object is
indexed once under the UIDs its header gives.
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
import zlib
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["concilium.imaging"]):
    from concilium.imaging.archive import Archive
    from concilium.imaging.ingest import Sender, ingest_instance
    from concilium.imaging.parsing import InvalidInstance, parse_instance
    from concilium.imaging.storage import StorageError


from sqlalchemy import func, select

from concilium.config import Settings
from concilium.imaging.tables import ImagingInstance
from concilium.platform import accounts, audit
from concilium.platform.db import transaction
from concilium.platform.policy import Principal
from concilium.platform.runtime import Runtime
from concilium.services import migrate_database

_ROOT = Path(tempfile.mkdtemp(prefix="concilium-fuzz-dicom-"))
atexit.register(shutil.rmtree, _ROOT, True)
_DATABASE = f"sqlite:///{_ROOT / 'concilium.db'}"
migrate_database(_DATABASE)
_RUNTIME = Runtime.start(Settings(data_dir=_ROOT / "var", database_url=_DATABASE))
with transaction(_RUNTIME.sessions) as _db:
    _SITE = accounts.create_site(_db, audit.SYSTEM, "Fuzz", "570000000").id
_ARCHIVE = Archive(_ROOT / "images", _RUNTIME.sessions, _RUNTIME.bus)
_SENDER = Sender(
    Principal(user_id=0, username="modality", roles={_SITE: frozenset({"technologist"})}),
    audit.Actor(None, "modality", site_id=_SITE),
    _SITE,
)
_SCRATCH = _ROOT / "input.dcm"


def _instances() -> int:
    with _RUNTIME.sessions() as db:
        return db.scalar(select(func.count()).select_from(ImagingInstance)) or 0


def _stored_files() -> set[Path]:
    return {p for p in _ARCHIVE.store.root.rglob("*") if p.is_file() and p.suffix != ".lock"}


def test_one_input(data: bytes) -> None:
    _SCRATCH.write_bytes(data)
    try:
        parse_instance(_SCRATCH)
    except InvalidInstance:
        # An ingest costs a hundred parses (staging, fsync, a transaction): of the objects
        # the parser refuses, which the ingest refuses the same way, one in 16 goes on to
        # check that a refusal leaves nothing behind.
        if zlib.crc32(data) % 16:
            return
    before, files = _instances(), _stored_files()
    try:
        result = ingest_instance(_ARCHIVE, _SENDER, [data])
    except (InvalidInstance, StorageError):
        assert _instances() == before, "a refused object left a row in the index"
        assert _stored_files() == files, "a refused object left a file in the store"
        return
    assert result.sop_instance_uid
    assert _instances() in (before, before + 1)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
