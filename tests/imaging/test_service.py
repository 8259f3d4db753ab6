"""The archive's domain functions, without a network: receive, query, remove, recover."""

from __future__ import annotations

import json
import shutil
import uuid

import pydicom
import pytest
from pydicom.dataset import Dataset
from sqlalchemy import select

from concilium.imaging import ingest as ingest_module
from concilium.imaging import service
from concilium.imaging.service import Archive, DuplicatePolicy, IngestOutcome, Sender
from concilium.imaging.synthetic import SyntheticStudy, generate_ct_series
from concilium.imaging.tables import ImagingInstance
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.policy import Principal
from concilium.platform.tables import AuditEvent


@pytest.fixture
def archive(runtime, tmp_path):
    return Archive(tmp_path / "images", runtime.sessions, runtime.bus, clock=runtime.now)


def _sender(site_id, role="technologist"):
    principal = Principal(user_id=0, username="t", roles={site_id: frozenset({role})})
    return Sender(principal, audit.Actor(None, "t", site_id=site_id), site_id)


def _ingest(archive, sender, path):
    return service.ingest(archive, sender, [path.read_bytes()])


def test_received_instance_is_indexed_audited_and_announced(archive, world, tmp_path, runtime):
    events = []
    runtime.bus.subscribe("study.received", lambda topic, payload: events.append(payload))
    (path,) = generate_ct_series(tmp_path / "ct", 1, rows=32, columns=32)
    result = _ingest(archive, _sender(world.metz.id), path)
    assert result.outcome is IngestOutcome.STORED
    assert events[0]["study_instance_uid"] == result.study_instance_uid
    assert archive.store.read(result.address) == path.read_bytes()
    with transaction(archive.sessions) as db:
        actions = db.execute(select(AuditEvent.action)).scalars().all()
    assert "study.store" in actions


def test_changed_bytes_under_a_known_uid_are_kept_or_replaced_by_policy(archive, world, tmp_path):
    (path,) = generate_ct_series(tmp_path / "ct", 1, rows=32, columns=32)
    first = _ingest(archive, _sender(world.metz.id), path)
    ds = pydicom.dcmread(path)
    ds.SeriesDescription = "CORRECTED"
    changed = tmp_path / "changed.dcm"
    ds.save_as(changed)
    kept = _ingest(archive, _sender(world.metz.id), changed)
    assert kept.outcome is IngestOutcome.KEPT and kept.address == first.address
    assert set(archive.store.addresses()) == {first.address}
    archive.duplicate_policy = DuplicatePolicy.REPLACE
    replaced = _ingest(archive, _sender(world.metz.id), changed)
    assert replaced.outcome is IngestOutcome.REPLACED
    assert set(archive.store.addresses()) == {replaced.address} != {first.address}


def test_query_matching_rules(archive, world, tmp_path, runtime):
    study = SyntheticStudy(seed="q")
    for path in generate_ct_series(tmp_path / "ct", 2, study=study, rows=32, columns=32):
        _ingest(archive, _sender(world.metz.id), path)
    reader = Principal(user_id=99, username="r", roles={world.metz.id: frozenset({"radiologist"})})

    def query(**keys):
        identifier = Dataset()
        identifier.QueryRetrieveLevel = keys.pop("level", "STUDY")
        for keyword, value in keys.items():
            setattr(identifier, keyword, value)
        with transaction(archive.sessions) as db:
            return service.find(db, reader, audit.SYSTEM, identifier, now=runtime.now())

    assert len(query(PatientName="doe^jane")) == 1  # PN ignores case
    assert len(query(PatientName="D?E*")) == 1
    assert query(AccessionNumber="acc-0001") == []  # other text is case-sensitive
    assert len(query(StudyDate="20261120")) == 1
    assert query(StudyDate="20261121-") == []
    assert len(query(StudyTime="0800-0830")) == 1  # an upper bound covers its precision
    assert len(query(StudyInstanceUID=f"1.2.3\\{study.study_instance_uid}")) == 1
    assert len(query(level="IMAGE", InstanceNumber="2")) == 1
    with (
        pytest.raises(service.InvalidQuery),
        pytest.warns(UserWarning, match="Invalid value for VR DA"),
    ):
        query(StudyDate="2026-11-20")
    with pytest.raises(service.InvalidQuery):
        query(level="FRAME")


def test_delete_study_removes_rows_and_files_and_is_audited(archive, world, tmp_path):
    paths = generate_ct_series(
        tmp_path / "ct", 2, study=SyntheticStudy(seed="d"), rows=32, columns=32
    )
    results = [_ingest(archive, _sender(world.metz.id), p) for p in paths]
    with pytest.raises(service.NotAuthorized):
        service.delete_study(
            archive, _sender(world.metz.id).principal, audit.SYSTEM, results[0].study_instance_uid
        )
    admin = _sender(world.metz.id, "admin")
    removed = service.delete_study(
        archive, admin.principal, admin.actor, results[0].study_instance_uid
    )
    assert removed == 2
    assert list(archive.store.addresses()) == []
    with transaction(archive.sessions) as db:
        assert db.execute(select(ImagingInstance)).first() is None
        outcomes = (
            db.execute(select(AuditEvent.outcome).where(AuditEvent.action == "study.delete"))
            .scalars()
            .all()
        )
    assert sorted(outcomes) == ["refused", "success"]


def test_recovery_removes_unindexed_files_only(archive, world, tmp_path):
    (path,) = generate_ct_series(tmp_path / "ct", 1, rows=32, columns=32)
    kept = _ingest(archive, _sender(world.metz.id), path)
    orphan = archive.store.store_bytes(b"written, never indexed")
    (archive.store.root / "tmp" / "in-x.part").write_bytes(b"half")
    assert archive.recover() == 2
    assert set(archive.store.addresses()) == {kept.address}
    assert orphan.address not in set(archive.store.addresses())


def _reader_query(archive, principal, runtime, **keys):
    identifier = Dataset()
    identifier.QueryRetrieveLevel = keys.pop("level", "STUDY")
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    with transaction(archive.sessions) as db:
        return service.find(db, principal, audit.SYSTEM, identifier, now=runtime.now())


def test_accented_names_match_without_regard_to_case(archive, world, tmp_path, runtime):
    from concilium.imaging.synthetic import SyntheticPatient

    study = SyntheticStudy(seed="accents", patient=SyntheticPatient("MÜLLER^HÉLÈNE", "IPP-9"))
    (path,) = generate_ct_series(tmp_path / "ct", 1, study=study, rows=32, columns=32)
    _ingest(archive, _sender(world.metz.id), path)
    reader = Principal(user_id=99, username="r", roles={world.metz.id: frozenset({"radiologist"})})
    (match,) = _reader_query(archive, reader, runtime, PatientName="müller^hél*")
    assert str(match.PatientName) == "MÜLLER^HÉLÈNE"
    assert match.SpecificCharacterSet == "ISO_IR 192"
    assert _reader_query(archive, reader, runtime, PatientName="muller*") == []


def test_rejected_series_disappears_from_queries_and_retrievals(archive, world, tmp_path, runtime):
    study = SyntheticStudy(seed="reject")
    paths = generate_ct_series(tmp_path / "ct", 2, study=study, rows=32, columns=32)
    results = [_ingest(archive, _sender(world.metz.id), p) for p in paths]
    reader = Principal(user_id=99, username="r", roles={world.metz.id: frozenset({"radiologist"})})
    (before,) = _reader_query(
        archive, reader, runtime, StudyInstanceUID="", NumberOfStudyRelatedInstances=""
    )
    assert before.NumberOfStudyRelatedInstances == 2
    admin = _sender(world.metz.id, "admin")
    rejected = service.reject(
        archive,
        admin.principal,
        admin.actor,
        study.study_instance_uid,
        service.RejectionReason.QUALITY,
        series_instance_uid=results[0].series_instance_uid,
    )
    assert rejected == 2
    assert _reader_query(archive, reader, runtime, StudyInstanceUID="") == []
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = study.study_instance_uid
    with transaction(archive.sessions) as db:
        found = service.locate(archive, db, reader, audit.SYSTEM, identifier, now=runtime.now())
    assert found == []
    # The files stay until deletion.
    assert len(list(archive.store.addresses())) == 2


def test_patient_share_and_break_the_glass_open_the_patients_studies(
    archive, world, tmp_path, runtime
):
    from datetime import timedelta

    from concilium.platform import sharing
    from concilium.platform.patients import Demographics, create_patient

    with transaction(archive.sessions) as db:
        patient = create_patient(
            db, audit.SYSTEM, world.metz.id, "CONC-000001", Demographics("Doe", "Jane")
        )
    (path,) = generate_ct_series(tmp_path / "ct", 1, rows=32, columns=32)
    _ingest(archive, _sender(world.metz.id), path)
    briey = Principal(user_id=98, username="b", roles={world.briey.id: frozenset({"radiologist"})})
    assert _reader_query(archive, briey, runtime, StudyInstanceUID="") == []
    glass = Principal(
        user_id=98,
        username="b",
        roles={world.briey.id: frozenset({"radiologist"})},
        emergency_patient_ids=frozenset({patient.id}),
    )
    assert len(_reader_query(archive, glass, runtime, StudyInstanceUID="")) == 1
    sharer = world.user("sharer", (world.metz, "radiologist"))
    now = runtime.now()
    with transaction(archive.sessions) as db:
        sharing.create_share(
            db,
            audit.Actor(sharer.id, "sharer"),
            resource_kind="patient",
            resource_id=str(patient.id),
            to_site_id=world.briey.id,
            to_user_id=None,
            expires_at=now + timedelta(days=1),
            now=now,
        )
    assert len(_reader_query(archive, briey, runtime, StudyInstanceUID="")) == 1


def test_a_page_of_studies_skips_what_the_reader_may_not_see(archive, world, tmp_path, runtime):
    import datetime as dt

    # Six studies on successive days, alternately sent by Metz and by Briey.
    for day in range(6):
        site = world.metz if day % 2 == 0 else world.briey
        study = SyntheticStudy(seed=f"page-{day}", study_date=dt.date(2026, 11, 1 + day))
        (path,) = generate_ct_series(tmp_path / f"ct{day}", 1, study=study, rows=16, columns=16)
        _ingest(archive, _sender(site.id), path)
    reader = Principal(user_id=99, username="r", roles={world.metz.id: frozenset({"radiologist"})})
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyDate = ""
    with transaction(archive.sessions) as db:
        every = service.find(db, reader, audit.SYSTEM, identifier, now=runtime.now())
        page = service.find(
            db, reader, audit.SYSTEM, identifier, now=runtime.now(), limit=2, offset=1
        )
    assert [m.StudyDate for m in every] == ["20261101", "20261103", "20261105"]
    assert [m.StudyDate for m in page] == ["20261103", "20261105"]


# --------------------------------------------------------------------------------------------
# Batches (the parts of a STOW-RS request)


def _received(archive, paths):
    """Each file as a STOW-RS part: copied into the store's temporary area, then received."""
    parts = []
    for path in paths:
        part = archive.store.root / "tmp" / f"part-{uuid.uuid4().hex}.bin"
        shutil.copyfile(path, part)
        parts.append((part, None))
    received = service.receive_files(archive, parts)
    assert all(isinstance(r, service.ReceivedInstance) for r in received), received
    return received


def _ct(tmp_path, seed, count):
    study = SyntheticStudy(seed=seed)
    return generate_ct_series(tmp_path / seed, count, study=study, rows=16, columns=16)


def _store_audit(archive, outcome="success"):
    with transaction(archive.sessions) as db:
        return (
            db.execute(
                select(AuditEvent)
                .where(AuditEvent.action == "study.store", AuditEvent.outcome == outcome)
                .order_by(AuditEvent.seq)
            )
            .scalars()
            .all()
        )


def _indexed_uids(archive):
    with transaction(archive.sessions) as db:
        return set(db.execute(select(ImagingInstance.sop_instance_uid)).scalars())


def test_a_batch_is_indexed_with_one_audit_entry_per_study(archive, world, tmp_path):
    from concilium.platform.patients import Demographics, create_patient

    with transaction(archive.sessions) as db:
        patient = create_patient(
            db, audit.SYSTEM, world.metz.id, "CONC-000001", Demographics("Doe", "Jane")
        )
    first, second = _ct(tmp_path, "batch-a", 3), _ct(tmp_path, "batch-b", 2)
    results = service.ingest_batch(
        archive, _sender(world.metz.id), _received(archive, first + second)
    )
    assert [r.outcome for r in results] == [IngestOutcome.STORED] * 5
    assert _indexed_uids(archive) == {r.sop_instance_uid for r in results}
    assert {archive.store.read(r.address) for r in results} == {
        p.read_bytes() for p in first + second
    }
    assert list((archive.store.root / "tmp").iterdir()) == []
    entries = _store_audit(archive)
    assert sorted((e.object_id, json.loads(e.detail)["instances"]) for e in entries) == sorted(
        [(results[0].study_instance_uid, 3), (results[3].study_instance_uid, 2)]
    )
    # Who, which patient, what: the sender, the platform patient, the count and bytes.
    assert {(e.actor, e.patient_id) for e in entries} == {("t", patient.id)}
    sizes = {
        results[0].study_instance_uid: sum(p.stat().st_size for p in first),
        results[3].study_instance_uid: sum(p.stat().st_size for p in second),
    }
    for entry in entries:
        detail = json.loads(entry.detail)
        assert detail["bytes"] == sizes[entry.object_id]
        assert detail["outcomes"] == {"stored": detail["instances"]}


def test_a_batch_answers_known_repeated_and_new_instances_each_on_its_own(archive, world, tmp_path):
    sender = _sender(world.metz.id)
    paths = _ct(tmp_path, "mixed", 2)
    known = _ingest(archive, sender, paths[0])
    ds = pydicom.dcmread(paths[0])
    ds.SeriesDescription = "CHANGED"
    changed = tmp_path / "changed.dcm"
    ds.save_as(changed)
    batch = [paths[0], paths[1], paths[1], changed]
    results = service.ingest_batch(archive, sender, _received(archive, batch))
    assert [r.outcome for r in results] == [
        IngestOutcome.DUPLICATE,
        IngestOutcome.STORED,
        IngestOutcome.DUPLICATE,
        IngestOutcome.KEPT,
    ]
    assert results[3].address == known.address
    assert set(archive.store.addresses()) == {known.address, results[1].address}
    assert len(_indexed_uids(archive)) == 2
    detail = json.loads(_store_audit(archive)[-1].detail)
    assert detail["instances"] == 4
    assert detail["outcomes"] == {"duplicate": 2, "stored": 1, "kept": 1}


def test_a_refused_study_leaves_no_row_no_file_and_one_refusal(archive, world, tmp_path):
    theirs, ours = _ct(tmp_path, "briey-owned", 3), _ct(tmp_path, "metz-owned", 1)
    owned = _ingest(archive, _sender(world.briey.id), theirs[0])
    results = service.ingest_batch(
        archive, _sender(world.metz.id), _received(archive, theirs[1:] + ours)
    )
    assert [type(r) for r in results[:2]] == [service.NotAuthorized] * 2
    assert results[2].outcome is IngestOutcome.STORED
    assert _indexed_uids(archive) == {owned.sop_instance_uid, results[2].sop_instance_uid}
    assert set(archive.store.addresses()) == {owned.address, results[2].address}
    (refusal,) = _store_audit(archive, "refused")
    assert refusal.object_id == owned.study_instance_uid


def test_an_instance_of_a_series_of_another_study_fails_alone(archive, world, tmp_path):
    sender = _sender(world.metz.id)
    elsewhere = _ingest(archive, sender, _ct(tmp_path, "series-owner", 1)[0])
    paths = _ct(tmp_path, "series-thief", 2)
    ds = pydicom.dcmread(paths[0])
    ds.SeriesInstanceUID = elsewhere.series_instance_uid
    ds.save_as(paths[0])
    misplaced, fine = service.ingest_batch(archive, sender, _received(archive, paths))
    assert isinstance(misplaced, service.InvalidInstanceInStudy)
    assert fine.outcome is IngestOutcome.STORED
    assert _indexed_uids(archive) == {elsewhere.sop_instance_uid, fine.sop_instance_uid}
    assert set(archive.store.addresses()) == {elsewhere.address, fine.address}


def test_a_failed_batch_insert_leaves_nothing_and_each_instance_is_indexed_alone(
    archive, world, tmp_path, monkeypatch
):
    real = ingest_module._insert_new

    def racing(session, sender, study, indexes, items, now):
        # Another writer indexes the first instance between the lookup and the INSERT.
        study, _ = real(session, sender, study, indexes[:1], items, now)
        return real(session, sender, study, indexes, items, now)

    monkeypatch.setattr(ingest_module, "_insert_new", racing)
    paths = _ct(tmp_path, "race", 3)
    results = service.ingest_batch(archive, _sender(world.metz.id), _received(archive, paths))
    assert [r.outcome for r in results] == [IngestOutcome.STORED] * 3
    assert len(_indexed_uids(archive)) == 3
    (entry,) = _store_audit(archive)
    assert json.loads(entry.detail)["instances"] == 3


def test_received_files_are_each_validated_and_synced_in_order(
    archive, world, tmp_path, monkeypatch
):
    import hashlib

    from concilium.imaging import storage
    from concilium.imaging.parsing import MalformedObject

    good = _ct(tmp_path, "receive", 2)
    tmp = archive.store.root / "tmp"
    files = []
    for name, data in [
        ("a", good[0].read_bytes()),
        ("b", b"not DICOM"),
        ("c", good[1].read_bytes()),
    ]:
        (tmp / name).write_bytes(data)
        files.append((tmp / name, hashlib.sha256(data).hexdigest() if name == "c" else None))
    synced = []
    real_fdatasync = storage.os.fdatasync
    monkeypatch.setattr(
        storage.os, "fdatasync", lambda fd: (synced.append(fd), real_fdatasync(fd))[1]
    )
    first, refused, third = service.receive_files(archive, files)
    assert isinstance(refused, MalformedObject)
    assert (tmp / "b").exists()  # a refused file stays the caller's to remove
    assert len(synced) == 2
    assert first.record.instance.sop_instance_uid == pydicom.dcmread(good[0]).SOPInstanceUID
    assert first.staged.address == hashlib.sha256(good[0].read_bytes()).hexdigest()
    assert third.staged.address == files[2][1]
    results = service.ingest_batch(archive, _sender(world.metz.id), [first, third])
    assert [r.outcome for r in results] == [IngestOutcome.STORED] * 2
