"""One process, assembled once: one event bus, one archive, one ordered life."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from concilium.app import application
from concilium.assembly import Assembly
from concilium.boards.process import BoardsProcess
from concilium.imaging import nodes
from concilium.imaging.process import ImagingProcess
from concilium.imaging.synthetic import SyntheticPatient, SyntheticStudy, generate_ct_series
from concilium.live.process import LiveProcess
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.portal.process import PlatformProcess
from concilium.reading.process import ReadingProcess
from concilium.services import SERVICES
from concilium.telesurgery.process import TelesurgeryProcess
from serving import free_port

from .imaging.dcmtk import require_dcmtk, run


def test_every_registered_service_has_its_runtime_in_registry_order(settings, runtime):
    assembly = Assembly.build(settings, runtime)
    kinds = [type(p) for p in assembly.processes]
    assert kinds == [
        PlatformProcess,
        ImagingProcess,
        LiveProcess,
        ReadingProcess,
        BoardsProcess,
        TelesurgeryProcess,
    ]
    assert [s.name for s in assembly.services] == [s.name for s in SERVICES]
    # Every service of the process reaches the same bus and database as the platform.
    assert assembly.service(ImagingProcess).archive.bus is runtime.bus
    assert assembly.service(ImagingProcess).archive.sessions is runtime.sessions
    assert assembly.service(TelesurgeryProcess).board is not None
    with pytest.raises(LookupError):
        assembly.service(Path)


def test_services_open_in_order_and_close_in_reverse(settings, runtime):
    events: list[str] = []

    class Probe:
        def __init__(self, name: str) -> None:
            self.name = name

        def open(self) -> None:
            events.append(f"open {self.name}")

        def close(self) -> None:
            events.append(f"close {self.name}")

    assembly = Assembly(runtime, (), [Probe("a"), Probe("b"), Probe("c")])  # type: ignore[list-item]
    assembly.open()
    assembly.close()
    assert events == ["open a", "open b", "open c", "close c", "close b", "close a"]


def test_one_subscriber_sees_study_received_from_c_store_and_stow_rs(
    world, settings, runtime, tmp_path
):
    """Without Redis, a C-STORE and a STOW-RS into one serving process reach one bus."""
    require_dcmtk()
    settings.dicom_port = free_port()
    settings.live_enabled = False
    with transaction(runtime.sessions) as db:
        nodes.add_remote_ae(
            db,
            audit.SYSTEM,
            ae_title="METZ_CT",
            host="127.0.0.1",
            port=104,
            site_id=world.metz.id,
            allow_store=True,
        )
    technologist = world.user("tech", (world.metz, "technologist"))
    token = world.token(technologist, "imaging:write")
    received: list[str] = []
    arrived = threading.Event()

    def on_study(_topic: str, payload: dict[str, object]) -> None:
        received.append(str(payload["study_instance_uid"]))
        if len(received) >= 2:
            arrived.set()

    runtime.bus.subscribe("study.received", on_study)
    by_dimse = SyntheticStudy("assembly-dimse", SyntheticPatient("DIMSE^Patient", "MTZ-A1"))
    by_web = SyntheticStudy("assembly-stow", SyntheticPatient("STOW^Patient", "MTZ-A2"))
    (dimse_file,) = generate_ct_series(tmp_path / "dimse", 1, study=by_dimse, rows=16)
    (web_file,) = generate_ct_series(tmp_path / "stow", 1, study=by_web, rows=16)

    assembly = Assembly.build(settings, runtime)
    assembly.open()
    try:
        with TestClient(application(assembly, serve=True), base_url="https://testserver") as web:
            # The listener was started by the application's life, on the process's archive.
            sent = run(
                "storescu",
                "-aet",
                "METZ_CT",
                "-aec",
                "CONCILIUM",
                "127.0.0.1",
                str(settings.dicom_port),
                dimse_file,
            )
            assert sent.returncode == 0, sent.stderr
            boundary = "assembly-boundary"
            body = (
                f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
                + web_file.read_bytes()
                + f"\r\n--{boundary}--\r\n".encode()
            )
            stored = web.post(
                "/dicomweb/studies",
                content=body,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": f'multipart/related; type="application/dicom"; '
                    f"boundary={boundary}",
                    "Accept": "application/dicom+json",
                },
            )
            assert stored.status_code == 200, stored.text
            assert arrived.wait(10), received
    finally:
        assembly.close()
    assert sorted(received) == sorted([by_dimse.study_instance_uid, by_web.study_instance_uid])
