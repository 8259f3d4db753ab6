"""A server killed while STOW-RS batches arrive loses nothing it acknowledged, keeps no file
it did not index, and serves again after a restart."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pydicom
from dicomweb_client import DICOMwebClient

from concilium.imaging.synthetic import SyntheticStudy, generate_ct_series
from serving import running_server

BATCH = 10
BATCHES = 20
KILL_AFTER = 4
SETTINGS = {"CONCILIUM_LIVE_ENABLED": "false", "CONCILIUM_DICOM_PORT": "0"}


def _client(url: str, token: str) -> DICOMwebClient:
    client = DICOMwebClient(f"{url}/dicomweb", headers={"Authorization": f"Bearer {token}"})
    client.set_http_retry_params(retry=False)
    return client


def test_kill_during_stow_keeps_every_acknowledged_instance_and_nothing_else(tmp_path: Path):
    files = generate_ct_series(
        tmp_path / "ct", BATCH * BATCHES, study=SyntheticStudy(seed="stow-crash"), rows=64,
        columns=64,
    )  # fmt: skip
    datasets = [pydicom.dcmread(f) for f in files]
    acknowledged: list[str] = []
    with running_server(tmp_path, **SETTINGS) as server:
        server.create_site("CHR Metz-Thionville", "570005165")
        server.create_user("tech", "technologist@570005165", password="stow-crash-pass-1")
        token = server.create_token("tech", "stow", "imaging:read", "imaging:write")
        client = _client(server.url, token)

        def send() -> None:
            for start in range(0, len(datasets), BATCH):
                batch = datasets[start : start + BATCH]
                try:
                    client.store_instances(batch)
                except Exception:  # the server was killed under this request
                    return
                acknowledged.extend(str(ds.SOPInstanceUID) for ds in batch)

        sender = threading.Thread(target=send)
        sender.start()
        deadline = time.monotonic() + 120
        while len(acknowledged) < KILL_AFTER * BATCH and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(server.pid, signal.SIGKILL)
        sender.join(timeout=60)
    assert KILL_AFTER * BATCH <= len(acknowledged) < len(datasets), "the kill came too late"

    # Restart: recovery runs, and the archive serves every acknowledged instance.
    with running_server(tmp_path, **SETTINGS) as server:
        client = _client(server.url, token)
        study_uid = SyntheticStudy(seed="stow-crash").study_instance_uid
        found = {
            str(item["00080018"]["Value"][0])
            for item in client.search_for_instances(study_instance_uid=study_uid)
        }
        assert set(acknowledged) <= found
        for uid in acknowledged[:: BATCH // 2]:
            series = next(str(d.SeriesInstanceUID) for d in datasets if d.SOPInstanceUID == uid)
            ds = client.retrieve_instance(study_uid, series, uid)
            assert str(ds.SOPInstanceUID) == uid

    # Nothing half-present: every stored file is indexed and every indexed file is there.
    with sqlite3.connect(tmp_path / "var" / "concilium.db") as db:
        indexed = {row[0] for row in db.execute("SELECT address FROM imaging_instances")}
        uids = {row[0] for row in db.execute("SELECT sop_instance_uid FROM imaging_instances")}
    stored = {p.name for p in (tmp_path / "var" / "images" / "objects").rglob("*") if p.is_file()}
    assert stored == indexed
    assert set(acknowledged) <= uids
    # A batch is indexed whole or not at all.
    assert len(uids) % BATCH == 0
