"""The archive's DICOM services, driven by DCMTK's command-line tools as real peers would."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from sqlalchemy import func, select

from concilium.imaging import nodes
from concilium.imaging.archive import Archive, DuplicatePolicy
from concilium.imaging.dimse import DicomServer, DimseSettings
from concilium.imaging.synthetic import SyntheticPatient, SyntheticStudy, generate_ct_series
from concilium.imaging.tables import ImagingInstance, ImagingStudy
from concilium.platform import audit, sharing
from concilium.platform.db import transaction
from concilium.platform.tables import AuditEvent
from serving import free_port

from .dcmtk import find, require_dcmtk, run

SAMPLES = [
    "CT_small.dcm",  # explicit VR little endian
    "MR_small_implicit.dcm",  # implicit VR little endian
    "MR_small_bigendian.dcm",  # explicit VR big endian
    "image_dfl.dcm",  # deflated explicit VR little endian
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline
    "JPGExtended.dcm",  # JPEG extended
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless
    "MR_small_jp2klossless.dcm",  # JPEG 2000 lossless
    "JPEG2000.dcm",  # JPEG 2000
    "MR_small_RLE.dcm",  # RLE lossless
    "SC_rgb_rle_2frame.dcm",  # multi-frame
    "test-SR.dcm",  # structured report
]


@dataclass
class Rig:
    archive: Archive
    server: DicomServer
    world: object
    tmp: Path

    @property
    def port(self) -> int:
        return self.server.port

    def store(
        self, calling: str, *files: Path, propose: str = "-x="
    ) -> subprocess.CompletedProcess[str]:
        return run(
            "storescu",
            "-v",
            "-R",
            propose,
            "-aet",
            calling,
            "-aec",
            "CONCILIUM",
            "127.0.0.1",
            str(self.port),
            *files,
        )

    def count(self, model: type) -> int:
        with transaction(self.archive.sessions) as db:
            return int(db.execute(select(func.count()).select_from(model)).scalar_one())


@pytest.fixture
def rig(world, runtime, tmp_path: Path) -> Iterator[Rig]:
    require_dcmtk()
    with transaction(runtime.sessions) as db:
        for title, site, flags in (
            ("METZ_CT", world.metz, {"allow_store": True, "allow_query": True}),
            ("BRIEY_WS", world.briey, {"allow_store": False, "allow_query": True}),
            ("METZ_ARCHIVE", world.metz, {"allow_store": False}),
        ):
            nodes.add_remote_ae(
                db,
                audit.SYSTEM,
                ae_title=title,
                host="127.0.0.1",
                port=104,
                site_id=site.id,
                **flags,
            )
    archive = Archive(tmp_path / "images", runtime.sessions, runtime.bus, clock=runtime.now)
    server = DicomServer(archive, DimseSettings(port=0, network_timeout=10))
    server.start()
    yield Rig(archive, server, world, tmp_path)
    server.stop()


def test_echo_from_a_registered_node(rig):
    result = run("echoscu", "-aet", "METZ_CT", "-aec", "CONCILIUM", "127.0.0.1", str(rig.port))
    assert result.returncode == 0, result.stderr


def test_unknown_calling_ae_title_is_rejected_at_association(rig):
    result = run("echoscu", "-aet", "STRANGER", "-aec", "CONCILIUM", "127.0.0.1", str(rig.port))
    assert result.returncode != 0
    assert "Calling AE Title Not Recognized" in result.stdout + result.stderr


# storescu's option proposing each transfer syntax, so that it sends files unconverted.
STORESCU_PROPOSAL = {
    "1.2.840.10008.1.2": "-xi",
    "1.2.840.10008.1.2.1": "-xe",
    "1.2.840.10008.1.2.2": "-xb",
    "1.2.840.10008.1.2.1.99": "-xd",
    "1.2.840.10008.1.2.4.50": "-xy",
    "1.2.840.10008.1.2.4.51": "-xx",
    "1.2.840.10008.1.2.4.70": "-xs",
    "1.2.840.10008.1.2.4.80": "-xt",
    "1.2.840.10008.1.2.4.90": "-xv",
    "1.2.840.10008.1.2.4.91": "-xw",
    "1.2.840.10008.1.2.5": "-xr",
}


def test_samples_of_every_transfer_syntax_are_stored_as_received(rig, sample):
    # Several samples are one MR image in different syntaxes, under one SOP Instance UID:
    # with the replace policy each one becomes the stored version in turn.
    rig.archive.duplicate_policy = DuplicatePolicy.REPLACE
    for name in SAMPLES:
        path = sample(name)
        full = pydicom.dcmread(path)
        syntax = full.file_meta.TransferSyntaxUID
        result = rig.store("METZ_CT", path, propose=STORESCU_PROPOSAL[syntax])
        assert "Received Store Response (Success)" in result.stderr, result.stderr
        with transaction(rig.archive.sessions) as db:
            row = db.execute(
                select(ImagingInstance).where(
                    ImagingInstance.sop_instance_uid == full.SOPInstanceUID
                )
            ).scalar_one()
        assert row.transfer_syntax_uid == syntax, name
        stored = pydicom.dcmread(rig.archive.store.path_of(row.address))
        # Kept in the syntax it was sent in: compressed pixel data is untouched.
        assert stored.file_meta.TransferSyntaxUID == syntax
        if "PixelData" in full:
            assert stored.PixelData == full.PixelData, name
        if name == "SC_rgb_rle_2frame.dcm":
            assert row.number_of_frames == 2
    # Replaced versions leave no file behind: one file per indexed instance.
    assert len(list(rig.archive.store.addresses())) == rig.count(ImagingInstance)


@pytest.fixture
def ct_study(rig) -> tuple[SyntheticStudy, list[Path]]:
    study = SyntheticStudy(seed="dimse", patient=SyntheticPatient("MARTIN^ALICE", "IPP-4242"))
    files = generate_ct_series(rig.tmp / "ct", 4, study=study, rows=64, columns=64)
    result = rig.store("METZ_CT", *files)
    assert result.returncode == 0, result.stderr
    return study, files


def test_find_at_every_level_with_wildcards_and_date_ranges(rig, ct_study, sample):
    study, _ = ct_study
    assert rig.store("METZ_CT", sample("CT_small.dcm")).returncode == 0
    out = rig.tmp / "find"

    patients = find(
        rig.port,
        "METZ_CT",
        {
            "QueryRetrieveLevel": "PATIENT",
            "PatientName": "martin*",
            "PatientID": "",
            "NumberOfPatientRelatedInstances": "",
        },
        out,
        model="-P",
    )
    assert [(p.PatientID, p.NumberOfPatientRelatedInstances) for p in patients] == [("IPP-4242", 4)]

    studies = find(
        rig.port,
        "METZ_CT",
        {
            "QueryRetrieveLevel": "STUDY",
            "PatientID": "IPP-42?2",
            "StudyDate": "20261101-20261130",
            "StudyInstanceUID": "",
            "ModalitiesInStudy": "",
            "NumberOfStudyRelatedInstances": "",
        },
        out,
    )
    assert [s.StudyInstanceUID for s in studies] == [study.study_instance_uid]
    assert studies[0].ModalitiesInStudy == "CT" and studies[0].NumberOfStudyRelatedInstances == 4

    assert (
        find(
            rig.port,
            "METZ_CT",
            {"QueryRetrieveLevel": "STUDY", "StudyDate": "-20261119", "PatientID": "IPP-4242"},
            out,
        )
        == []
    )
    every = find(rig.port, "METZ_CT", {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": ""}, out)
    assert len(every) == 2
    # Patient ID is matched case-sensitively (PS3.4 C.2.2.2.1), names are not.
    assert (
        find(rig.port, "METZ_CT", {"QueryRetrieveLevel": "STUDY", "PatientID": "ipp-*"}, out) == []
    )

    series = find(
        rig.port,
        "METZ_CT",
        {
            "QueryRetrieveLevel": "SERIES",
            "StudyInstanceUID": study.study_instance_uid,
            "SeriesInstanceUID": "",
            "Modality": "CT",
            "NumberOfSeriesRelatedInstances": "",
        },
        out,
    )
    assert len(series) == 1 and series[0].NumberOfSeriesRelatedInstances == 4

    images = find(
        rig.port,
        "METZ_CT",
        {
            "QueryRetrieveLevel": "IMAGE",
            "StudyInstanceUID": study.study_instance_uid,
            "SeriesInstanceUID": series[0].SeriesInstanceUID,
            "SOPInstanceUID": "",
            "InstanceNumber": "",
        },
        out,
    )
    assert [int(i.InstanceNumber) for i in images] == [1, 2, 3, 4]


def test_move_sends_to_a_registered_destination_of_the_owning_site(rig, ct_study):
    study, files = ct_study
    port = free_port()
    received = rig.tmp / "received"
    received.mkdir()
    with transaction(rig.archive.sessions) as db:
        nodes.add_remote_ae(
            db,
            audit.SYSTEM,
            ae_title="METZ_VIEW",
            host="127.0.0.1",
            port=port,
            site_id=rig.world.metz.id,
            allow_store=False,
            allow_move_destination=True,
        )
        nodes.add_remote_ae(
            db,
            audit.SYSTEM,
            ae_title="BRIEY_VIEW",
            host="127.0.0.1",
            port=port,
            site_id=rig.world.briey.id,
            allow_store=False,
            allow_move_destination=True,
        )
    scp = subprocess.Popen(
        ["storescp", "-aet", "METZ_VIEW", "-od", str(received), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        keys = [
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            f"StudyInstanceUID={study.study_instance_uid}",
        ]
        moved = run(
            "movescu",
            "-v",
            "-S",
            "-aet",
            "METZ_CT",
            "-aec",
            "CONCILIUM",
            "-aem",
            "METZ_VIEW",
            *keys,
            "127.0.0.1",
            str(rig.port),
        )
        assert moved.returncode == 0, moved.stdout + moved.stderr
        arrived = sorted(received.iterdir())
        assert len(arrived) == 4
        assert {pydicom.dcmread(p).SOPInstanceUID for p in arrived} == {
            pydicom.dcmread(f).SOPInstanceUID for f in files
        }
        for p in arrived:
            p.unlink()
        # Briey has no right to Metz's study: its viewer is no destination for it.
        refused = run(
            "movescu",
            "-v",
            "-S",
            "-aet",
            "METZ_CT",
            "-aec",
            "CONCILIUM",
            "-aem",
            "BRIEY_VIEW",
            *keys,
            "127.0.0.1",
            str(rig.port),
        )
        assert "Refused: MoveDestinationUnknown" in refused.stderr
        assert list(received.iterdir()) == []
    finally:
        scp.terminate()
        scp.wait(timeout=10)


def test_get_returns_the_series_on_the_same_association(rig, ct_study):
    study, _ = ct_study
    out = rig.tmp / "got"
    out.mkdir()
    got = run(
        "getscu",
        "-S",
        "-aet",
        "METZ_CT",
        "-aec",
        "CONCILIUM",
        "-od",
        out,
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study.study_instance_uid}",
        "127.0.0.1",
        str(rig.port),
    )
    assert got.returncode == 0, got.stdout + got.stderr
    assert len(list(out.iterdir())) == 4


def test_malformed_data_set_is_refused_and_leaves_nothing(rig, ct_study):
    _, files = ct_study
    ds = pydicom.dcmread(files[0])
    del ds.StudyInstanceUID
    ds.SOPInstanceUID = "1.2.3.4.5.6.7.8.9"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    bad = rig.tmp / "bad.dcm"
    ds.save_as(bad)
    before_files = set(rig.archive.store.addresses())
    before_rows = rig.count(ImagingInstance)
    result = rig.store("METZ_CT", bad)
    assert "Error: DataSetDoesNotMatchSOPClass" in result.stderr  # 0xA900
    assert set(rig.archive.store.addresses()) == before_files
    assert rig.count(ImagingInstance) == before_rows
    assert list(rig.archive.store.temporary_area.iterdir()) == []
    # The server keeps serving.
    echo = run("echoscu", "-aet", "METZ_CT", "-aec", "CONCILIUM", "127.0.0.1", str(rig.port))
    assert echo.returncode == 0


def test_node_without_store_permission_is_refused(rig, sample):
    result = rig.store("BRIEY_WS", sample("CT_small.dcm"))
    assert "Status: 0x124" in result.stderr  # Refused: Not Authorized
    assert rig.count(ImagingInstance) == 0
    with transaction(rig.archive.sessions) as db:
        refusals = (
            db.execute(
                select(AuditEvent).where(
                    AuditEvent.action == "study.store", AuditEvent.outcome == "refused"
                )
            )
            .scalars()
            .all()
        )
    assert [r.actor for r in refusals] == ["ae:BRIEY_WS"]


def test_study_of_one_site_is_invisible_to_another_until_shared(rig, ct_study, world):
    study, _ = ct_study
    out = rig.tmp / "find"
    keys = {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": "", "PatientName": ""}
    assert len(find(rig.port, "METZ_CT", keys, out)) == 1
    assert find(rig.port, "BRIEY_WS", keys, out) == []
    sharer = world.user("dr_share", (world.metz, "radiologist"))
    now = rig.archive.clock()
    with transaction(rig.archive.sessions) as db:
        sharing.create_share(
            db,
            audit.Actor(sharer.id, sharer.username),
            resource_kind="study",
            resource_id=study.study_instance_uid,
            to_site_id=world.briey.id,
            to_user_id=None,
            expires_at=now + timedelta(days=2),
            now=now,
        )
    shared = find(rig.port, "BRIEY_WS", keys, out)
    assert [s.StudyInstanceUID for s in shared] == [study.study_instance_uid]
    # The share expires, and the study is gone from Briey's view again.
    world.runtime.clock.advance(days=3)
    assert find(rig.port, "BRIEY_WS", keys, out) == []


def test_resending_the_same_instance_is_a_success_without_a_second_copy(rig, ct_study):
    _, files = ct_study
    before = rig.count(ImagingInstance)
    result = rig.store("METZ_CT", files[0])
    assert "Received Store Response (Success)" in result.stderr
    assert rig.count(ImagingInstance) == before
    assert len(list(rig.archive.store.addresses())) == before


def test_study_is_linked_to_the_platform_patient_of_the_sending_site(rig, world, sample):
    from concilium.platform.patients import Demographics, create_patient

    with transaction(rig.archive.sessions) as db:
        patient = create_patient(
            db, audit.SYSTEM, world.metz.id, "IPP-4242", Demographics("Martin", "Alice")
        )
    study = SyntheticStudy(seed="linked", patient=SyntheticPatient("MARTIN^ALICE", "IPP-4242"))
    files = generate_ct_series(rig.tmp / "linked", 1, study=study, rows=32, columns=32)
    assert rig.store("METZ_CT", *files).returncode == 0
    with transaction(rig.archive.sessions) as db:
        row = db.execute(select(ImagingStudy)).scalar_one()
    assert row.patient_id == patient.id and row.site_id == world.metz.id


def test_two_modalities_sending_one_new_study_at_once_lose_nothing(rig):
    # Both associations race to create the same study and series rows.
    study = SyntheticStudy(seed="race")
    files = generate_ct_series(rig.tmp / "race", 12, study=study, rows=32, columns=32)
    senders = [
        subprocess.Popen(
            ["storescu", "-aet", "METZ_CT", "-aec", "CONCILIUM", "127.0.0.1", str(rig.port)]
            + [str(f) for f in part],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for part in (files[0::2], files[1::2])
    ]
    for sender in senders:
        assert sender.wait(timeout=60) == 0
    assert rig.count(ImagingStudy) == 1
    assert rig.count(ImagingInstance) == 12


def test_serve_starts_the_dicom_server_from_the_settings(settings, runtime):
    require_dcmtk()
    from concilium.imaging.cli import start_dicom_server

    # No node registered yet: nobody gets in...
    server = start_dicom_server(settings, port=0)
    try:
        echo = run("echoscu", "-aet", "ANY", "-aec", "CONCILIUM", "127.0.0.1", str(server.port))
        assert "Calling AE Title Not Recognized" in echo.stderr
    finally:
        server.stop()
    # ...unless unknown nodes are let in, to echo only.
    settings.dicom_allow_unknown_ae = True
    server = start_dicom_server(settings, port=0)
    try:
        echo = run("echoscu", "-aet", "ANY", "-aec", "CONCILIUM", "127.0.0.1", str(server.port))
        assert echo.returncode == 0, echo.stderr
    finally:
        server.stop()


def test_a_query_the_model_cannot_answer_gets_a900(rig):
    # DCMTK names status A900 "DataSetDoesNotMatchSOPClass".
    for keys in (
        # The Study Root model has no patient level (PS3.4 C.6.2.1).
        ["-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID"],
        ["-k", "QueryRetrieveLevel=STUDY", "-k", "StudyDate=yesterday"],
        ["-k", "QueryRetrieveLevel=FRAME"],
    ):
        result = run(
            "findscu",
            "-v",
            "-S",
            "-aet",
            "METZ_CT",
            "-aec",
            "CONCILIUM",
            *keys,
            "127.0.0.1",
            str(rig.port),
        )
        assert "Final Find Response (Error: DataSetDoesNotMatchSOPClass)" in result.stderr


def _find_names(rig, name: str, *, fuzzy: bool) -> list[str]:
    """Patient names a Study Root C-FIND for ``name`` matches, from pynetdicom as the peer,
    asking for fuzzy semantic matching of person names (PS3.4 C.5.1.1) or not."""
    from pynetdicom import AE
    from pynetdicom.pdu_primitives import SOPClassExtendedNegotiation

    model = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Query/Retrieve - FIND
    ae = AE(ae_title="METZ_CT")
    ae.add_requested_context(model)
    negotiation = SOPClassExtendedNegotiation()
    negotiation.sop_class_uid = model
    # Relational queries no, combined date-time no, fuzzy semantic matching yes or no.
    negotiation.service_class_application_information = bytes([0, 0, int(fuzzy)])
    assoc = ae.associate("127.0.0.1", rig.port, ae_title="CONCILIUM", ext_neg=[negotiation])
    assert assoc.is_established
    agreed = assoc.acceptor.sop_class_extended.get(model)
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.PatientName = name
    identifier.StudyInstanceUID = ""
    try:
        assert agreed is not None and agreed[2] == int(fuzzy)
        responses = list(assoc.send_c_find(identifier, model))
    finally:
        assoc.release()
    return [str(found.PatientName) for status, found in responses if status.Status == 0xFF00]


def test_c_find_matches_person_names_fuzzily_once_negotiated(rig):
    study = SyntheticStudy(seed="fuzzy", patient=SyntheticPatient("MÜLLER^ZOÉ", "IPP-5151"))
    files = generate_ct_series(rig.tmp / "fuzzy", 1, study=study, rows=32, columns=32)
    assert rig.store("METZ_CT", *files).returncode == 0
    # Without the option, names match as PS3.4 C.2.2.2.1 says: case aside, letter for letter.
    assert _find_names(rig, "muller^zoe", fuzzy=False) == []
    assert _find_names(rig, "müller^zoé", fuzzy=False) == ["MÜLLER^ZOÉ"]
    # With it, accents do not count and a component given begins the name's (C.2.2.2.1.1).
    assert _find_names(rig, "muller^zoe", fuzzy=True) == ["MÜLLER^ZOÉ"]
    assert _find_names(rig, "mull", fuzzy=True) == ["MÜLLER^ZOÉ"]
    assert _find_names(rig, "martin", fuzzy=True) == []
    # The audit trail counts what each search returned.
    with transaction(rig.archive.sessions) as db:
        details = db.execute(
            select(AuditEvent.detail)
            .where(AuditEvent.action == "study.query")
            .order_by(AuditEvent.seq)
        ).scalars()
        assert [json.loads(d)["matches"] for d in details] == [0, 1, 1, 1, 0]
