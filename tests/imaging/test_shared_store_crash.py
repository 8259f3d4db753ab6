"""Two servers on one PostgreSQL database and one data dir: one is killed in the middle of an
ingest while the other goes on ingesting, then restarts. Nothing acknowledged is lost, by
either, and nothing unacknowledged is left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import func, select

from concilium.imaging import nodes
from concilium.imaging.storage import InstanceStore
from concilium.imaging.synthetic import SyntheticStudy, generate_ct_series
from concilium.imaging.tables import ImagingInstance, ImagingPendingWrite, ImagingWriter
from concilium.platform import accounts, audit
from concilium.platform.db import make_engine, make_sessionmaker, transaction
from serving import free_port

from .dcmtk import require_dcmtk, run
from .test_dimse_crash import _acknowledged

KILL_AFTER = 10
SLICES = 60
OTHER_SLICES = 30
LEASE = {
    "CONCILIUM_ARCHIVE_WRITER_LEASE_SECONDS": "2",
    "CONCILIUM_ARCHIVE_WRITER_RENEW_SECONDS": "0.5",
}


def _serve(data_dir: Path, url: str, *ports: int) -> list[subprocess.Popen[bytes]]:
    """A ``concilium dicom serve`` on each port, started side by side; once all answer."""
    env = {
        **os.environ,
        "CONCILIUM_DATA_DIR": str(data_dir),
        "CONCILIUM_DATABASE_URL": url,
        "CONCILIUM_LOG_LEVEL": "WARNING",
        **LEASE,
    }
    servers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "concilium",
                "dicom",
                "serve",
                "--no-migrate",
                "--port",
                f"{port}",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    deadline = time.monotonic() + 60
    for port in ports:
        while run(
            "echoscu", "-aet", "SHARED_CT", "-aec", "CONCILIUM", "127.0.0.1", str(port)
        ).returncode:
            if time.monotonic() > deadline:
                for server in servers:
                    server.kill()
                raise AssertionError("the DICOM servers did not come up")
            time.sleep(0.1)
    return servers


def _send(port: int, files: list[Path]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["storescu", "-v", "-aet", "SHARED_CT", "-aec", "CONCILIUM", "127.0.0.1", str(port)]
        + [str(f) for f in files],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _retrieve(port: int, study_uid: str, into: Path) -> set[str]:
    into.mkdir(parents=True)
    got = run(
        "getscu",
        "-S",
        "-aet",
        "SHARED_CT",
        "-aec",
        "CONCILIUM",
        "-od",
        into,
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study_uid}",
        "127.0.0.1",
        str(port),
    )
    assert got.returncode == 0, got.stderr
    return {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in into.iterdir()}


def test_one_of_two_servers_killed_mid_ingest_loses_nothing_acknowledged(database_url, tmp_path):
    if not database_url.startswith("postgresql"):
        pytest.skip("several servers share a store on PostgreSQL")
    require_dcmtk()
    data_dir = tmp_path / "var"
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as db:
        site = accounts.create_site(db, audit.SYSTEM, "CHR Metz-Thionville", "570005165")
        nodes.add_remote_ae(
            db,
            audit.SYSTEM,
            ae_title="SHARED_CT",
            host="127.0.0.1",
            port=104,
            site_id=site.id,
            allow_query=True,
        )
    # Two series of one study, one sent to each server.
    study = SyntheticStudy(seed="shared")
    files = generate_ct_series(tmp_path / "a", SLICES, study=study, rows=32, columns=32)
    other = generate_ct_series(
        tmp_path / "b", OTHER_SLICES, study=study, rows=32, columns=32, series_number=3
    )
    port_a, port_b = free_port(), free_port()
    servers = _serve(data_dir, database_url, port_a, port_b)
    server_a = servers[0]
    try:
        to_a, to_b = _send(port_a, files), _send(port_b, other)
        assert to_a.stderr is not None
        lines, successes = [], 0
        for line in to_a.stderr:
            lines.append(line)
            if "Received Store Response (Success)" in line:
                successes += 1
                if successes == KILL_AFTER:
                    server_a.send_signal(signal.SIGKILL)
        to_a.wait(timeout=30)
        server_a.wait(timeout=10)
        acknowledged = _acknowledged("".join(lines))
        assert KILL_AFTER <= len(acknowledged) < SLICES, "the kill did not interrupt the transfer"
        _, b_log = to_b.communicate(timeout=60)
        assert to_b.returncode == 0, b_log  # the other server went on ingesting, all of it

        # The killed server restarts; its lease has lapsed by then, or lapses soon after.
        (server_a,) = _serve(data_dir, database_url, port_a)
        servers[0] = server_a
        deadline = time.monotonic() + 15
        while True:
            with transaction(sessions) as db:
                writers = db.execute(select(func.count()).select_from(ImagingWriter)).scalar()
                pending = db.execute(select(func.count()).select_from(ImagingPendingWrite)).scalar()
            if writers == 2 and pending == 0:
                break  # the dead writer resolved; the two live ones idle
            assert time.monotonic() < deadline, (writers, pending)
            time.sleep(0.2)

        acknowledged_uids = {
            pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in acknowledged
        }
        other_uids = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in other}
        with transaction(sessions) as db:
            rows = {
                r.sop_instance_uid: r.address for r in db.execute(select(ImagingInstance)).scalars()
            }
        assert acknowledged_uids | other_uids <= set(rows)
        for name, port in (("a", port_a), ("b", port_b)):
            assert _retrieve(port, study.study_instance_uid, tmp_path / f"got-{name}") == set(rows)
    finally:
        for server in servers:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=20)
        engine.dispose()
    # Every file is named by a row, and no temporary file is left.
    store = InstanceStore(data_dir / "images")
    assert set(store.addresses()) == set(rows.values())
    assert [p for p in (data_dir / "images" / "tmp").rglob("*") if p.is_file()] == []
