"""The teleradiology circuit's modality side on a served ``concilium serve``, with outside
clients only: the hospital system sends the admission and the order over MLLP
(python-hl7's ``mllp_send``), the modality reads its worklist (DCMTK ``findscu -W``),
reports the exam with MPPS N-CREATE and N-SET and sends the images (``storescu``), on each
database of the suite.

DCMTK has no MPPS client (no N-CREATE/N-SET tool), so the performed procedure step comes
from pynetdicom as SCU, over a real association to the served DICOM port.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from concilium.imaging.synthetic import SyntheticPatient, SyntheticStudy, generate_ct_series
from concilium.platform.tables import AuditEvent
from concilium.reading import hl7v2
from concilium.reading.mllp import FrameReceived, MllpDecoder, frame
from concilium.reading.mpps import MODALITY_PERFORMED_PROCEDURE_STEP
from concilium.reading.tables import ImagingOrderRecord, PerformedStepRecord
from concilium.reading.worklist_source import WORKLIST_QUERY
from imaging.dcmtk import find, require_dcmtk, run
from serving import RunningServer, running_server

from .hl7_orders import adt_a01, orm_o01

MLLP_SEND = Path(sys.executable).parent / "mllp_send"
BRIEY = "540000049"
METZ = "570005165"
ACCESSION = "ACC-NUIT-1"


def send_hl7(server: RunningServer, tmp: Path, *messages: bytes) -> list[str]:
    """The acknowledgment codes (MSA-1) of the messages, sent with ``mllp_send``."""
    path = tmp / "batch.hl7"
    path.write_bytes(b"".join(frame(m) for m in messages))
    result = subprocess.run(
        [str(MLLP_SEND), "-p", server.env["CONCILIUM_HL7_PORT"], "-f", str(path), "127.0.0.1"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    events = MllpDecoder(1 << 20).feed(result.stdout)
    acks = [hl7v2.parse_message(e.payload) for e in events if isinstance(e, FrameReceived)]
    return [ack.require("MSA").get(1) for ack in acks]


def worklist(server: RunningServer, calling: str, out: Path) -> list[pydicom.Dataset]:
    """What ``findscu -W`` of node ``calling`` sees of Saturday 7 March 2026."""
    args = ["findscu", "-W", "-aet", calling, "-aec", "CONCILIUM", "-X", "-od", str(out)]
    out.mkdir(parents=True)
    for key in (
        "PatientName",
        "PatientID",
        "AccessionNumber",
        "RequestedProcedureID",
        "StudyInstanceUID",
        "(0040,0100)[0].ScheduledStationAETitle",
        "(0040,0100)[0].ScheduledProcedureStepStartDate=20260307",
        "(0040,0100)[0].ScheduledProcedureStepStartTime",
        "(0040,0100)[0].ScheduledProcedureStepID",
        "(0040,0100)[0].Modality",
    ):
        args += ["-k", key]
    result = run(*args, "127.0.0.1", server.env["CONCILIUM_DICOM_PORT"])
    assert result.returncode == 0, result.stdout + result.stderr
    return [pydicom.dcmread(p) for p in sorted(out.glob("*.dcm"))]


def in_progress(study_uid: str) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    reference = Dataset()
    reference.StudyInstanceUID = study_uid
    reference.AccessionNumber = ACCESSION
    reference.RequestedProcedureID = "RP-1"
    reference.ScheduledProcedureStepID = "SPS-1"
    ds.ScheduledStepAttributesSequence = [reference]
    ds.PatientName = "Lefèvre^Hélène"
    ds.PatientID = "IPP001"
    ds.PerformedProcedureStepID = "PPS-1"
    ds.PerformedStationAETitle = "BRIEY_CT"
    ds.PerformedProcedureStepStartDate = "20260307"
    ds.PerformedProcedureStepStartTime = "021000"
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.PerformedProcedureStepEndDate = ""
    ds.PerformedProcedureStepEndTime = ""
    ds.Modality = "CT"
    ds.PerformedSeriesSequence = []
    return ds


def completed(series_uid: str, instances: list[str]) -> Dataset:
    ds = Dataset()
    ds.PerformedProcedureStepStatus = "COMPLETED"
    ds.PerformedProcedureStepEndDate = "20260307"
    ds.PerformedProcedureStepEndTime = "022000"
    series = Dataset()
    series.SeriesInstanceUID = series_uid
    series.RetrieveAETitle = ""
    series.SeriesDescription = ""
    series.PerformingPhysicianName = ""
    series.OperatorsName = ""
    series.ProtocolName = "Thorax"
    images = []
    for uid in instances:
        image = Dataset()
        image.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        image.ReferencedSOPInstanceUID = uid
        images.append(image)
    series.ReferencedImageSequence = images
    ds.PerformedSeriesSequence = [series]
    return ds


def test_order_to_worklist_to_mpps_to_archive(tmp_path: Path, database_url: str):
    require_dcmtk()
    with running_server(tmp_path, CONCILIUM_DATABASE_URL=database_url) as server:
        server.create_site("CH Briey", BRIEY)
        server.create_site("CHR Metz-Thionville", METZ)
        server.cli(
            "hl7", "node", "add", "--site", BRIEY, "--application", "HIS", "--facility", "CHBRIEY"
        )
        node = ("--host", "127.0.0.1", "--port", "104", "--query")
        server.cli("dicom", "ae", "add", "BRIEY_CT", *node, "--site", BRIEY)
        server.cli("dicom", "ae", "add", "METZ_CT", *node, "--site", METZ)

        # The hospital admits the patient and orders a CT for 02:00 on Saturday night.
        order = orm_o01("ORM-1", accession=ACCESSION, start="20260307020000")
        assert send_hl7(server, tmp_path, adt_a01("ADT-1"), order) == ["AA", "AA"]

        # The scanner of Briey finds it at 02:00 local time; a node of Metz sees nothing.
        [item] = worklist(server, "BRIEY_CT", tmp_path / "mwl-1")
        assert str(item.PatientName) == "Lefèvre^Hélène"
        assert (item.PatientID, item.AccessionNumber) == ("IPP001", ACCESSION)
        assert item.RequestedProcedureID == "RP-1"
        step = item.ScheduledProcedureStepSequence[0]
        assert (step.ScheduledStationAETitle, step.ScheduledProcedureStepID) == (
            "BRIEY_CT",
            "SPS-1",
        )
        assert (step.ScheduledProcedureStepStartDate, step.ScheduledProcedureStepStartTime) == (
            "20260307",
            "020000",
        )
        assert step.Modality == "CT"
        assert worklist(server, "METZ_CT", tmp_path / "mwl-metz") == []

        # The exam: MPPS IN PROGRESS, the images, MPPS COMPLETED.
        study = SyntheticStudy(
            seed="night-ct",
            patient=SyntheticPatient("LEFEVRE^HELENE", "IPP001", "19850523", "F"),
            accession_number=ACCESSION,
        )
        files = generate_ct_series(tmp_path / "ct", 3, study=study, rows=32, columns=32)
        images = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
        ae = AE(ae_title="BRIEY_CT")
        ae.add_requested_context(MODALITY_PERFORMED_PROCEDURE_STEP)
        assoc = ae.associate(
            "127.0.0.1", int(server.env["CONCILIUM_DICOM_PORT"]), ae_title="CONCILIUM"
        )
        assert assoc.is_established
        uid = generate_uid()
        try:
            status, _ = assoc.send_n_create(
                in_progress(study.study_instance_uid), MODALITY_PERFORMED_PROCEDURE_STEP, uid
            )
            assert status.Status == 0x0000
            [started] = worklist(server, "BRIEY_CT", tmp_path / "mwl-2")
            assert started.AccessionNumber == ACCESSION

            sent = run(
                "storescu",
                "-aet",
                "BRIEY_CT",
                "-aec",
                "CONCILIUM",
                "127.0.0.1",
                server.env["CONCILIUM_DICOM_PORT"],
                *files,
            )
            assert sent.returncode == 0, sent.stdout + sent.stderr

            modification = completed(
                str(images[0].SeriesInstanceUID), [str(i.SOPInstanceUID) for i in images]
            )
            status, _ = assoc.send_n_set(modification, MODALITY_PERFORMED_PROCEDURE_STEP, uid)
            assert status.Status == 0x0000
        finally:
            assoc.release()

        # Done: no longer on the worklist; the step and the order are completed.
        assert worklist(server, "BRIEY_CT", tmp_path / "mwl-3") == []
        engine = create_engine(database_url)
        try:
            with Session(engine) as db:
                record = db.scalars(select(ImagingOrderRecord)).one()
                assert record.status == "COMPLETED"
                assert [s.status for s in record.steps] == ["COMPLETED"]
                performed = db.scalars(select(PerformedStepRecord)).one()
                assert (performed.sop_instance_uid, performed.status) == (uid, "COMPLETED")
                actors = db.scalars(
                    select(AuditEvent.actor).where(AuditEvent.action == WORKLIST_QUERY)
                ).all()
                assert set(actors) == {"ae:BRIEY_CT", "ae:METZ_CT"}
        finally:
            engine.dispose()

        # The images are in the archive under the order's accession number.
        [found] = find(
            int(server.env["CONCILIUM_DICOM_PORT"]),
            "BRIEY_CT",
            {
                "QueryRetrieveLevel": "STUDY",
                "AccessionNumber": ACCESSION,
                "StudyInstanceUID": "",
                "NumberOfStudyRelatedInstances": "",
            },
            tmp_path / "study",
        )
        assert found.StudyInstanceUID == study.study_instance_uid
        assert int(found.NumberOfStudyRelatedInstances) == 3

    log = server.log_path.read_text()
    assert "Lef" not in log and "IPP001" not in log
