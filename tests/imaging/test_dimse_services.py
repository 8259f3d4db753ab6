"""SOP classes other services add to the archive's DICOM listener (`DimseExtension`): served
to the nodes the listener admits, with the calling node's site, statuses passed through.

C-FIND is driven by DCMTK's ``findscu -W`` (the Modality Worklist SOP class, served here by a
test handler); N-CREATE and N-SET by pynetdicom as SCU, DCMTK having no tool for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import anyio
import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, evt

from concilium.imaging import (
    CallingNode,
    DimseExtension,
    FindRequest,
    ImagingProcess,
    InvalidQuery,
    NResult,
    nodes,
)
from concilium.imaging.archive import Archive
from concilium.imaging.dimse import DicomServer, DimseSettings
from concilium.platform import audit
from concilium.platform.db import transaction
from serving import free_port

from .dcmtk import require_dcmtk, run

WORKLIST = "1.2.840.10008.5.1.4.31"
MPPS = "1.2.840.10008.3.1.2.3.3"


class Recorder:
    """Handlers that answer from what they are given, and remember who called."""

    def __init__(self) -> None:
        self.callers: list[CallingNode] = []
        self.requests: list[tuple[str, str, Dataset]] = []

    def find(self, request: FindRequest) -> Iterable[Dataset]:
        self.callers.append(request.caller)
        wanted = str(request.identifier.get("PatientID", ""))
        if wanted == "BAD":
            raise InvalidQuery("refused")
        if wanted == "CRASH":
            raise RuntimeError("handler failed")
        for number in (1, 2):
            answer = Dataset()
            answer.PatientID = f"{request.caller.site_id}-{number}"
            yield answer

    def n_create(self, caller: CallingNode, uid: str, attributes: Dataset) -> NResult:
        self.callers.append(caller)
        self.requests.append(("create", uid, attributes))
        if str(attributes.get("Modality", "")) == "XX":
            return NResult(0x0106, error_comment="Modality: not known")
        return NResult(0x0000, affected_sop_instance_uid="" if uid else "1.2.3.4.5")

    def n_set(self, caller: CallingNode, uid: str, modification: Dataset) -> NResult:
        self.callers.append(caller)
        self.requests.append(("set", uid, modification))
        if uid == "1.2.3.999":
            raise RuntimeError("handler failed")
        return NResult(
            0x0110, error_comment="final", error_id=0xA710, attribute_identifiers=(0x00400252,)
        )


def extensions(recorder: Recorder) -> list[DimseExtension]:
    return [
        DimseExtension(WORKLIST, "worklist", find=recorder.find),
        DimseExtension(MPPS, "mpps", n_create=recorder.n_create, n_set=recorder.n_set),
    ]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def server(world, runtime, tmp_path: Path, recorder: Recorder) -> Iterator[DicomServer]:
    require_dcmtk()
    with transaction(runtime.sessions) as db:
        nodes.add_remote_ae(
            db,
            audit.SYSTEM,
            ae_title="BRIEY_CT",
            host="127.0.0.1",
            port=104,
            site_id=world.briey.id,
        )
    archive = Archive(tmp_path / "images", runtime.sessions, runtime.bus, clock=runtime.now)
    listener = DicomServer(
        archive, DimseSettings(port=0, network_timeout=10), extensions=extensions(recorder)
    )
    listener.start()
    yield listener
    listener.stop()


def findscu(port: int, calling: str, out: Path, *keys: str) -> tuple[int, str, list[Dataset]]:
    out.mkdir(parents=True, exist_ok=True)
    args: list[str | Path] = ["findscu", "-v", "-W", "-aet", calling, "-aec", "CONCILIUM"]
    args += ["-X", "-od", out]
    for key in keys:
        args += ["-k", key]
    result = run(*args, "127.0.0.1", str(port))
    found = [pydicom.dcmread(p) for p in sorted(out.glob("*.dcm"))]
    return result.returncode, (result.stdout + result.stderr).lower(), found


def test_find_is_answered_by_the_extension_with_the_callers_site(server, recorder, world, tmp_path):
    code, output, found = findscu(server.port, "BRIEY_CT", tmp_path / "a", "PatientID")
    assert code == 0, output
    assert sorted(str(f.PatientID) for f in found) == [f"{world.briey.id}-1", f"{world.briey.id}-2"]
    caller = recorder.callers[-1]
    assert (caller.ae_title, caller.site_id, caller.address) == (
        "BRIEY_CT",
        world.briey.id,
        "127.0.0.1",
    )
    assert caller.actor.username == "ae:BRIEY_CT"


def test_find_failures_become_statuses(server, tmp_path):
    _, output, found = findscu(server.port, "BRIEY_CT", tmp_path / "b", "PatientID=BAD")
    assert found == [] and "datasetdoesnotmatchsopclass" in output, output
    _, output, found = findscu(server.port, "BRIEY_CT", tmp_path / "c", "PatientID=CRASH")
    assert found == [] and "failed: unabletoprocess" in output, output


def test_unregistered_nodes_are_refused_before_any_handler(server, recorder, tmp_path):
    code, output, _ = findscu(server.port, "STRANGER", tmp_path / "d", "PatientID")
    assert code != 0 and "calling ae title not recognized" in output
    ae = AE(ae_title="STRANGER")
    ae.add_requested_context(MPPS)
    assoc = ae.associate("127.0.0.1", server.port, ae_title="CONCILIUM")
    assert assoc.is_rejected
    assert recorder.callers == []


def test_n_create_and_n_set_reach_the_extension_and_answer_its_status(server, recorder, world):
    ae = AE(ae_title="BRIEY_CT")
    ae.add_requested_context(MPPS)
    responded: list[str] = []

    def on_response(event: evt.Event) -> None:
        command = event.message.command_set  # type: ignore[attr-defined]
        responded.append(str(command.get("AffectedSOPInstanceUID", "")))

    assoc = ae.associate(
        "127.0.0.1",
        server.port,
        ae_title="CONCILIUM",
        evt_handlers=[(evt.EVT_DIMSE_RECV, on_response)],
    )
    assert assoc.is_established
    try:
        ds = Dataset()
        ds.Modality = "CT"
        status, _ = assoc.send_n_create(ds, MPPS, "1.2.3.1")
        assert status.Status == 0x0000
        assert recorder.requests[-1][:2] == ("create", "1.2.3.1")
        assert recorder.requests[-1][2].Modality == "CT"
        # No instance UID given: the one the handler gives is in the response.
        status, _ = assoc.send_n_create(ds, MPPS)
        assert status.Status == 0x0000
        assert recorder.requests[-1][1] == ""
        assert responded[-1] == "1.2.3.4.5"
        bad = Dataset()
        bad.Modality = "XX"
        status, _ = assoc.send_n_create(bad, MPPS, "1.2.3.2")
        assert (status.Status, status.ErrorComment) == (0x0106, "Modality: not known")
        change = Dataset()
        change.PerformedProcedureStepStatus = "COMPLETED"
        status, _ = assoc.send_n_set(change, MPPS, "1.2.3.1")
        assert (status.Status, status.ErrorID) == (0x0110, 0xA710)
        assert status.AttributeIdentifierList == 0x00400252
        status, _ = assoc.send_n_set(change, MPPS, "1.2.3.999")
        assert status.Status == 0x0110  # the handler's exception: processing failure
    finally:
        assoc.release()
    assert {c.site_id for c in recorder.callers} == {world.briey.id}


def test_an_extension_needs_a_handler_and_one_sop_class_one_extension(recorder, runtime, tmp_path):
    with pytest.raises(ValueError):
        DimseExtension(WORKLIST, "nothing")
    archive = Archive(tmp_path / "images", runtime.sessions, runtime.bus, clock=runtime.now)
    twice = [*extensions(recorder), DimseExtension(WORKLIST, "again", find=recorder.find)]
    with pytest.raises(ValueError):
        DicomServer(archive, DimseSettings(port=0), extensions=twice)


def test_the_process_serves_the_services_added_before_it_listens(
    world, settings, runtime, recorder, tmp_path
):
    require_dcmtk()
    settings.dicom_port = free_port()
    with transaction(runtime.sessions) as db:
        nodes.add_remote_ae(
            db,
            audit.SYSTEM,
            ae_title="BRIEY_CT",
            host="127.0.0.1",
            port=104,
            site_id=world.briey.id,
        )
    process = ImagingProcess(runtime, {})  # type: ignore[arg-type]
    for extension in extensions(recorder):
        process.add_dimse_service(extension)
    with pytest.raises(ValueError):
        process.add_dimse_service(DimseExtension(WORKLIST, "again", find=recorder.find))
    process.open()

    async def serve() -> None:
        async with process.serve():
            with pytest.raises(RuntimeError):
                process.add_dimse_service(DimseExtension("1.2.3", "late", find=recorder.find))
            outcome = await anyio.to_thread.run_sync(
                lambda: findscu(settings.dicom_port, "BRIEY_CT", tmp_path / "p", "PatientID")
            )
            assert outcome[0] == 0, outcome[1]
            assert len(outcome[2]) == 2

    try:
        anyio.run(serve)
    finally:
        process.close()
