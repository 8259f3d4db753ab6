"""A server killed in the middle of a transfer loses nothing it acknowledged, keeps nothing
it did not, and serves again after a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom
from sqlalchemy import select

from concilium.imaging import nodes
from concilium.imaging.storage import InstanceStore
from concilium.imaging.synthetic import SyntheticStudy, generate_ct_series
from concilium.imaging.tables import ImagingInstance
from concilium.platform import accounts, audit
from concilium.platform.db import make_engine, make_sessionmaker, transaction
from concilium.services import migrate_database
from serving import free_port

from .dcmtk import require_dcmtk, run

KILL_AFTER = 25
SLICES = 150


def _serve(data_dir: Path, url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CONCILIUM_DATA_DIR": str(data_dir),
        "CONCILIUM_DATABASE_URL": url,
        "CONCILIUM_LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "concilium", "dicom", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90  # a loaded machine starts slowly
    while time.monotonic() < deadline:
        echo = run("echoscu", "-aet", "CRASH_CT", "-aec", "CONCILIUM", "127.0.0.1", str(port))
        if echo.returncode == 0:
            return server
        time.sleep(0.2)
    server.kill()
    raise AssertionError("the DICOM server did not come up")


def _acknowledged(storescu_log: str) -> list[str]:
    """Files storescu saw acknowledged with Success, from its verbose log."""
    done, current = [], None
    for line in storescu_log.splitlines():
        if "Sending file: " in line:
            current = line.split("Sending file: ", 1)[1].strip()
        elif "Received Store Response (Success)" in line and current:
            done.append(current)
            current = None
    return done


def test_kill_during_ingest_keeps_every_acknowledged_instance_and_nothing_else(tmp_path):
    require_dcmtk()
    data_dir = tmp_path / "var"
    url = f"sqlite:///{data_dir / 'concilium.db'}"
    migrate_database(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as db:
        site = accounts.create_site(db, audit.SYSTEM, "CHR Metz-Thionville", "570005165")
        nodes.add_remote_ae(
            db,
            audit.SYSTEM,
            ae_title="CRASH_CT",
            host="127.0.0.1",
            port=104,
            site_id=site.id,
            allow_query=True,
        )
    files = generate_ct_series(
        tmp_path / "ct", SLICES, study=SyntheticStudy(seed="crash"), rows=64, columns=64
    )
    port = free_port()
    server = _serve(data_dir, url, port)
    sender = subprocess.Popen(
        ["storescu", "-v", "-aet", "CRASH_CT", "-aec", "CONCILIUM", "127.0.0.1", str(port)]
        + [str(f) for f in files],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert sender.stderr is not None
    log_lines, successes = [], 0
    for line in sender.stderr:
        log_lines.append(line)
        if "Received Store Response (Success)" in line:
            successes += 1
            if successes == KILL_AFTER:
                server.send_signal(signal.SIGKILL)
    sender.wait(timeout=30)
    server.wait(timeout=10)
    acknowledged = _acknowledged("".join(log_lines))
    assert KILL_AFTER <= len(acknowledged) < SLICES, "the kill did not interrupt the transfer"

    # Restart: recovery runs, and the archive serves the acknowledged instances.
    server = _serve(data_dir, url, port)
    try:
        retrieved = tmp_path / "retrieved"
        retrieved.mkdir()
        got = run(
            "getscu",
            "-S",
            "-aet",
            "CRASH_CT",
            "-aec",
            "CONCILIUM",
            "-od",
            retrieved,
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            f"StudyInstanceUID={SyntheticStudy(seed='crash').study_instance_uid}",
            "127.0.0.1",
            str(port),
        )
        assert got.returncode == 0, got.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)

    with transaction(sessions) as db:
        rows = {
            r.sop_instance_uid: r.address for r in db.execute(select(ImagingInstance)).scalars()
        }
    engine.dispose()
    store = InstanceStore(data_dir / "images")
    acknowledged_uids = {
        pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in acknowledged
    }
    assert acknowledged_uids <= set(rows)
    retrieved_uids = {pydicom.dcmread(p).SOPInstanceUID for p in retrieved.iterdir()}
    assert retrieved_uids == set(rows)
    # No file without its index row, no index row without its file, no half-written file.
    assert set(store.addresses()) == set(rows.values())
    assert [p for p in (store.root / "tmp").rglob("*") if p.is_file()] == []
