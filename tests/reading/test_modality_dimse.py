"""The modality worklist and MPPS on the archive's DICOM listener, with real peers.

Worklist queries come from DCMTK's ``findscu -W``. DCMTK has no MPPS SCU tool, so the
N-CREATE and N-SET requests come from pynetdicom as SCU, over a real association.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE

from concilium.imaging import nodes
from concilium.imaging.archive import Archive
from concilium.imaging.dimse import DicomServer, DimseSettings
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.reading.modality import mpps_service, worklist_service
from concilium.reading.mpps import MODALITY_PERFORMED_PROCEDURE_STEP, InMemoryMpps
from concilium.reading.worklist import MODALITY_WORKLIST_FIND, InMemoryWorklist, StepStatus
from imaging.dcmtk import require_dcmtk, run

from .worklist_items import items

DAY = dt.date(2026, 12, 12)


@dataclass
class Rig:
    server: DicomServer
    source: InMemoryWorklist
    sink: InMemoryMpps
    tmp: Path
    world: object

    @property
    def port(self) -> int:
        return self.server.port

    def findscu(self, calling: str, *keys: str) -> list[Dataset]:
        out = self.tmp / f"find-{calling}-{len(list(self.tmp.iterdir()))}"
        out.mkdir()
        args: list[str] = ["findscu", "-W", "-aet", calling, "-aec", "CONCILIUM", "-X"]
        args += ["-od", str(out)]
        for key in keys:
            args += ["-k", key]
        result = run(*args, "127.0.0.1", str(self.port))
        assert result.returncode == 0, result.stdout + result.stderr
        return [pydicom.dcmread(p) for p in sorted(out.glob("*.dcm"))]


@pytest.fixture
def rig(world, runtime, tmp_path: Path) -> Iterator[Rig]:
    require_dcmtk()
    with transaction(runtime.sessions) as db:
        for title, site in (("BRIEY_CT", world.briey), ("METZ_CT", world.metz)):
            nodes.add_remote_ae(
                db, audit.SYSTEM, ae_title=title, host="127.0.0.1", port=104, site_id=site.id
            )
    source = InMemoryWorklist()
    source.add(world.briey.id, *items(DAY))
    sink = InMemoryMpps()
    archive = Archive(tmp_path / "images", runtime.sessions, runtime.bus, clock=runtime.now)
    server = DicomServer(
        archive,
        DimseSettings(port=0, network_timeout=10),
        extensions=[worklist_service(source), mpps_service(sink)],
    )
    server.start()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    yield Rig(server, source, sink, scratch, world)
    server.stop()


def _ids(responses: list[Dataset]) -> list[str]:
    return sorted(str(r.PatientID) for r in responses)


def test_each_modality_sees_its_own_list(rig):
    responses = rig.findscu(
        "BRIEY_CT",
        "PatientName",
        "PatientID",
        "AccessionNumber",
        "(0040,0100)[0].ScheduledStationAETitle=AA2",
        f"(0040,0100)[0].ScheduledProcedureStepStartDate={DAY:%Y%m%d}",
        "(0040,0100)[0].ScheduledProcedureStepStartTime",
        "(0040,0100)[0].Modality",
    )
    assert _ids(responses) == ["AV35674", "BR2001"]
    first = next(r for r in responses if r.PatientID == "AV35674")
    assert first.AccessionNumber == "ACC0001"
    step = first.ScheduledProcedureStepSequence[0]
    assert (step.ScheduledStationAETitle, step.Modality) == ("AA2", "CT")
    assert step.ScheduledProcedureStepStartTime == "085607"
    # Only the keys asked for come back.
    assert {
        e.keyword for e in first if e.tag.group != 0x0008 or e.keyword != "SpecificCharacterSet"
    } == {
        "AccessionNumber",
        "PatientName",
        "PatientID",
        "ScheduledProcedureStepSequence",
    }
    assert rig.source.disclosures[-1] == ("BRIEY_CT", (rig.world.briey.id,), 2)


def test_a_node_of_another_site_sees_nothing_of_briey(rig):
    assert rig.findscu("METZ_CT", "PatientName", "(0040,0100)[0].Modality") == []


def test_unregistered_node_is_refused(rig):
    result = run(
        "findscu",
        "-W",
        "-aet",
        "STRANGER",
        "-aec",
        "CONCILIUM",
        "-k",
        "PatientName",
        "127.0.0.1",
        str(rig.port),
    )
    assert result.returncode != 0
    assert "Calling AE Title Not Recognized" in result.stdout + result.stderr


def test_wildcards_ranges_and_names_without_regard_to_case(rig):
    by_name = rig.findscu("BRIEY_CT", "PatientName=m*", "PatientID")
    assert _ids(by_name) == ["BR2001", "BR2003"]
    afternoon = rig.findscu(
        "BRIEY_CT",
        "PatientID",
        "(0040,0100)[0].ScheduledProcedureStepStartTime=1200-1400",
    )
    assert _ids(afternoon) == ["BR2001", "BR2002", "BR2005"]
    one_character = rig.findscu("BRIEY_CT", "PatientID=BR200?", "AccessionNumber=ACC000?")
    assert _ids(one_character) == ["BR2001", "BR2002", "BR2003", "BR2004", "BR2005"]
    uids = rig.findscu(
        "BRIEY_CT",
        "PatientID",
        "StudyInstanceUID=1.2.276.0.7230010.3.2.101\\1.2.276.0.7230010.3.2.104",
    )
    assert _ids(uids) == ["AV35674", "BR2003"]


def test_non_ascii_names_come_back_in_utf8(rig):
    responses = rig.findscu("BRIEY_CT", "PatientName", "PatientID=BR2001")
    assert len(responses) == 1
    assert responses[0].SpecificCharacterSet == "ISO_IR 192"
    assert str(responses[0].PatientName) == "MÜLLER^HÉLÈNE"


def test_a_bad_date_range_is_refused_with_a900(rig):
    result = run(
        "findscu",
        "-W",
        "-v",
        "-aet",
        "BRIEY_CT",
        "-aec",
        "CONCILIUM",
        "-k",
        "(0040,0100)[0].ScheduledProcedureStepStartDate=2026-13-45",
        "127.0.0.1",
        str(rig.port),
    )
    output = (result.stdout + result.stderr).lower()
    # Status A900, "Identifier does not match SOP Class" (PS3.4 C.4.1.1.4).
    assert "error: datasetdoesnotmatchsopclass" in output, output


# -- MPPS -------------------------------------------------------------------------------


def _associate(rig: Rig, calling: str = "BRIEY_CT"):  # type: ignore[no-untyped-def]
    ae = AE(ae_title=calling)
    ae.add_requested_context(MODALITY_PERFORMED_PROCEDURE_STEP)
    assoc = ae.associate("127.0.0.1", rig.port, ae_title="CONCILIUM")
    assert assoc.is_established
    return assoc


def _in_progress(study_uid: str = "1.2.276.0.7230010.3.2.101") -> Dataset:
    ds = Dataset()
    reference = Dataset()
    reference.StudyInstanceUID = study_uid
    reference.AccessionNumber = "ACC0001"
    reference.RequestedProcedureID = "RP454G234"
    reference.ScheduledProcedureStepID = "SPD3445"
    ds.ScheduledStepAttributesSequence = [reference]
    ds.PatientName = "VIVALDI^ANTONIO"
    ds.PatientID = "AV35674"
    ds.PerformedProcedureStepID = "PPS1"
    ds.PerformedStationAETitle = "AA2"
    ds.PerformedStationName = "A2"
    ds.PerformedLocation = "B34F56"
    ds.PerformedProcedureStepStartDate = f"{DAY:%Y%m%d}"
    ds.PerformedProcedureStepStartTime = "090000"
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.PerformedProcedureStepEndDate = ""
    ds.PerformedProcedureStepEndTime = ""
    ds.Modality = "CT"
    ds.StudyID = "1"
    ds.PerformedSeriesSequence = []
    return ds


def _completed() -> Dataset:
    ds = Dataset()
    ds.PerformedProcedureStepStatus = "COMPLETED"
    ds.PerformedProcedureStepEndDate = f"{DAY:%Y%m%d}"
    ds.PerformedProcedureStepEndTime = "091500"
    series = Dataset()
    series.SeriesInstanceUID = "1.2.276.0.7230010.3.3.1"
    series.PerformingPhysicianName = ""
    series.ProtocolName = "AVC"
    series.OperatorsName = ""
    series.SeriesDescription = ""
    series.RetrieveAETitle = ""
    image = Dataset()
    image.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    image.ReferencedSOPInstanceUID = "1.2.276.0.7230010.3.4.1"
    series.ReferencedImageSequence = [image]
    ds.PerformedSeriesSequence = [series]
    return ds


def test_mpps_in_progress_then_completed_updates_the_scheduled_step(rig):
    uid = generate_uid()
    assoc = _associate(rig)
    try:
        status, _ = assoc.send_n_create(_in_progress(), MODALITY_PERFORMED_PROCEDURE_STEP, uid)
        assert status.Status == 0x0000
        key = (rig.world.briey.id, "1.2.276.0.7230010.3.2.101", "SPD3445")
        assert rig.sink.scheduled[key] is StepStatus.STARTED
        status, _ = assoc.send_n_set(_completed(), MODALITY_PERFORMED_PROCEDURE_STEP, uid)
        assert status.Status == 0x0000
        assert rig.sink.scheduled[key] is StepStatus.COMPLETED
        performed = rig.sink.steps[(rig.world.briey.id, uid)]
        assert performed.series[0].sop_instance_uids == ("1.2.276.0.7230010.3.4.1",)
        assert performed.accession_numbers == ("ACC0001",)
        # A final step is never changed again (PS3.4 F.7.2.2.2): 0110 with Error ID A710.
        again = Dataset()
        again.PerformedProcedureStepStatus = "DISCONTINUED"
        status, _ = assoc.send_n_set(again, MODALITY_PERFORMED_PROCEDURE_STEP, uid)
        assert status.Status == 0x0110
        assert status.ErrorID == 0xA710
        assert rig.sink.steps[(rig.world.briey.id, uid)].status == "COMPLETED"
    finally:
        assoc.release()


def test_mpps_errors_answer_with_their_status(rig):
    assoc = _associate(rig)
    try:
        unknown = generate_uid()
        status, _ = assoc.send_n_set(_completed(), MODALITY_PERFORMED_PROCEDURE_STEP, unknown)
        assert status.Status == 0x0112
        created_done = _in_progress()
        created_done.PerformedProcedureStepStatus = "COMPLETED"
        status, _ = assoc.send_n_create(
            created_done, MODALITY_PERFORMED_PROCEDURE_STEP, generate_uid()
        )
        assert status.Status == 0x0106
        # pynetdicom's N-CREATE response carries no Attribute Identifier List: the comment
        # names the attribute.
        assert "PerformedProcedureStepStatus" in status.ErrorComment
        missing = _in_progress()
        del missing.Modality
        status, _ = assoc.send_n_create(missing, MODALITY_PERFORMED_PROCEDURE_STEP, generate_uid())
        assert status.Status == 0x0120
        bad_day = _in_progress()
        bad_day.PerformedProcedureStepStartDate = "20261332"
        status, _ = assoc.send_n_create(bad_day, MODALITY_PERFORMED_PROCEDURE_STEP, generate_uid())
        assert status.Status == 0x0116
        uid = generate_uid()
        status, _ = assoc.send_n_create(_in_progress(), MODALITY_PERFORMED_PROCEDURE_STEP, uid)
        assert status.Status == 0x0000
        status, _ = assoc.send_n_create(_in_progress(), MODALITY_PERFORMED_PROCEDURE_STEP, uid)
        assert status.Status == 0x0111
        not_here = Dataset()
        not_here.PerformedStationAETitle = "OTHER"
        status, _ = assoc.send_n_set(not_here, MODALITY_PERFORMED_PROCEDURE_STEP, uid)
        assert status.Status == 0x0106
        assert status.AttributeIdentifierList == 0x00400241
        assert not rig.sink.scheduled.get((rig.world.briey.id, "x", "x"))
    finally:
        assoc.release()
    assert len(rig.sink.steps) == 1


def test_mpps_of_another_site_is_unknown_to_a_node(rig):
    uid = generate_uid()
    assoc = _associate(rig)
    try:
        status, _ = assoc.send_n_create(_in_progress(), MODALITY_PERFORMED_PROCEDURE_STEP, uid)
        assert status.Status == 0x0000
    finally:
        assoc.release()
    other = _associate(rig, "METZ_CT")
    try:
        status, _ = other.send_n_set(_completed(), MODALITY_PERFORMED_PROCEDURE_STEP, uid)
        assert status.Status == 0x0112
    finally:
        other.release()
    assert rig.sink.steps[(rig.world.briey.id, uid)].status == "IN PROGRESS"


def test_the_scp_gives_a_uid_when_the_modality_gives_none(rig):
    assoc = _associate(rig)
    try:
        status, _ = assoc.send_n_create(_in_progress(), MODALITY_PERFORMED_PROCEDURE_STEP)
        assert status.Status == 0x0000
    finally:
        assoc.release()
    [(site, uid)] = rig.sink.steps
    assert site == rig.world.briey.id and pydicom.uid.UID(uid).is_valid


def test_worklist_sop_class_is_negotiated(rig):
    ae = AE(ae_title="BRIEY_CT")
    ae.add_requested_context(MODALITY_WORKLIST_FIND)
    assoc = ae.associate("127.0.0.1", rig.port, ae_title="CONCILIUM")
    try:
        assert assoc.is_established
        assert [c.abstract_syntax for c in assoc.accepted_contexts] == [MODALITY_WORKLIST_FIND]
    finally:
        assoc.release()


def test_combined_date_time_matching_when_the_modality_negotiates_it(rig):
    from pynetdicom.pdu_primitives import SOPClassExtendedNegotiation

    identifier = Dataset()
    identifier.PatientID = ""
    step = Dataset()
    step.ScheduledProcedureStepStartDate = f"{DAY:%Y%m%d}-{DAY + dt.timedelta(days=1):%Y%m%d}"
    step.ScheduledProcedureStepStartTime = "1300-0930"
    identifier.ScheduledProcedureStepSequence = [step]

    def ask(combined: bool) -> list[str]:
        ae = AE(ae_title="BRIEY_CT")
        ae.add_requested_context(MODALITY_WORKLIST_FIND)
        negotiation = []
        if combined:
            item = SOPClassExtendedNegotiation()
            item.sop_class_uid = MODALITY_WORKLIST_FIND
            item.service_class_application_information = b"\x00\x01"
            negotiation.append(item)
        assoc = ae.associate("127.0.0.1", rig.port, ae_title="CONCILIUM", ext_neg=negotiation)
        assert assoc.is_established
        try:
            found = [
                str(ds.PatientID)
                for status, ds in assoc.send_c_find(identifier, MODALITY_WORKLIST_FIND)
                if status and status.Status == 0xFF00 and ds is not None
            ]
        finally:
            assoc.release()
        return sorted(found)

    # From the 12th at 13:00 to the 13th at 09:30 (PS3.4 C.2.2.2.5)...
    assert ask(combined=True) == ["BR2001", "BR2002", "BR2004"]
    # ...and without the negotiation, 13:00-09:30 is an empty range of times.
    assert ask(combined=False) == []
