"""Receiving instances, one (C-STORE) or a batch (STOW-RS) through the same pipeline: stored,
indexed, audited and announced, or refused leaving nothing behind."""

from __future__ import annotations

import json

import pydicom
import pytest
from sqlalchemy import select

from concilium.imaging import ingest as ingest_module
from concilium.imaging.access import NotAuthorized
from concilium.imaging.archive import STUDY_RECEIVED, DuplicatePolicy
from concilium.imaging.dimse import DicomServer, DimseSettings
from concilium.imaging.ingest import (
    IngestOutcome,
    InvalidInstanceInStudy,
    ingest_batch,
    receive_files,
)
from concilium.imaging.nodes import add_remote_ae
from concilium.imaging.synthetic import generate_ct_series
from concilium.imaging.tables import ImagingStudy
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.tables import AuditEvent

from .helpers import ct_files, indexed_uids, ingest_path, received_parts, sender_at, store_audit


def test_received_instance_is_indexed_audited_and_announced(archive, world, tmp_path, runtime):
    events = []
    runtime.bus.subscribe("study.received", lambda topic, payload: events.append(payload))
    (path,) = generate_ct_series(tmp_path / "ct", 1, rows=32, columns=32)
    result = ingest_path(archive, sender_at(world.metz.id), path)
    assert result.outcome is IngestOutcome.STORED
    assert events[0]["study_instance_uid"] == result.study_instance_uid
    assert archive.store.read(result.address) == path.read_bytes()
    with transaction(archive.sessions) as db:
        actions = db.execute(select(AuditEvent.action)).scalars().all()
    assert "study.store" in actions


def test_changed_bytes_under_a_known_uid_are_kept_or_replaced_by_policy(archive, world, tmp_path):
    (path,) = generate_ct_series(tmp_path / "ct", 1, rows=32, columns=32)
    first = ingest_path(archive, sender_at(world.metz.id), path)
    ds = pydicom.dcmread(path)
    ds.SeriesDescription = "CORRECTED"
    changed = tmp_path / "changed.dcm"
    ds.save_as(changed)
    kept = ingest_path(archive, sender_at(world.metz.id), changed)
    assert kept.outcome is IngestOutcome.KEPT and kept.address == first.address
    assert set(archive.store.addresses()) == {first.address}
    archive.duplicate_policy = DuplicatePolicy.REPLACE
    replaced = ingest_path(archive, sender_at(world.metz.id), changed)
    assert replaced.outcome is IngestOutcome.REPLACED
    assert set(archive.store.addresses()) == {replaced.address} != {first.address}


def test_a_batch_is_indexed_with_one_audit_entry_per_study(archive, world, tmp_path):
    from concilium.platform.patients import Demographics, create_patient

    with transaction(archive.sessions) as db:
        patient = create_patient(
            db, audit.SYSTEM, world.metz.id, "CONC-000001", Demographics("Doe", "Jane")
        )
    first, second = ct_files(tmp_path, "batch-a", 3), ct_files(tmp_path, "batch-b", 2)
    results = ingest_batch(
        archive, sender_at(world.metz.id), received_parts(archive, first + second)
    )
    assert [r.outcome for r in results] == [IngestOutcome.STORED] * 5
    assert indexed_uids(archive) == {r.sop_instance_uid for r in results}
    assert {archive.store.read(r.address) for r in results} == {
        p.read_bytes() for p in first + second
    }
    assert list(archive.store.temporary_area.iterdir()) == []
    entries = store_audit(archive)
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
    sender = sender_at(world.metz.id)
    paths = ct_files(tmp_path, "mixed", 2)
    known = ingest_path(archive, sender, paths[0])
    ds = pydicom.dcmread(paths[0])
    ds.SeriesDescription = "CHANGED"
    changed = tmp_path / "changed.dcm"
    ds.save_as(changed)
    batch = [paths[0], paths[1], paths[1], changed]
    results = ingest_batch(archive, sender, received_parts(archive, batch))
    assert [r.outcome for r in results] == [
        IngestOutcome.DUPLICATE,
        IngestOutcome.STORED,
        IngestOutcome.DUPLICATE,
        IngestOutcome.KEPT,
    ]
    assert results[3].address == known.address
    assert set(archive.store.addresses()) == {known.address, results[1].address}
    assert len(indexed_uids(archive)) == 2
    detail = json.loads(store_audit(archive)[-1].detail)
    assert detail["instances"] == 4
    assert detail["outcomes"] == {"duplicate": 2, "stored": 1, "kept": 1}


def test_a_refused_study_leaves_no_row_no_file_and_one_refusal(archive, world, tmp_path):
    theirs, ours = ct_files(tmp_path, "briey-owned", 3), ct_files(tmp_path, "metz-owned", 1)
    owned = ingest_path(archive, sender_at(world.briey.id), theirs[0])
    results = ingest_batch(
        archive, sender_at(world.metz.id), received_parts(archive, theirs[1:] + ours)
    )
    assert [type(r) for r in results[:2]] == [NotAuthorized] * 2
    assert results[2].outcome is IngestOutcome.STORED
    assert indexed_uids(archive) == {owned.sop_instance_uid, results[2].sop_instance_uid}
    assert set(archive.store.addresses()) == {owned.address, results[2].address}
    (refusal,) = store_audit(archive, "refused")
    assert refusal.object_id == owned.study_instance_uid


def test_an_instance_of_a_series_of_another_study_fails_alone(archive, world, tmp_path):
    sender = sender_at(world.metz.id)
    elsewhere = ingest_path(archive, sender, ct_files(tmp_path, "series-owner", 1)[0])
    paths = ct_files(tmp_path, "series-thief", 2)
    ds = pydicom.dcmread(paths[0])
    ds.SeriesInstanceUID = elsewhere.series_instance_uid
    ds.save_as(paths[0])
    misplaced, fine = ingest_batch(archive, sender, received_parts(archive, paths))
    assert isinstance(misplaced, InvalidInstanceInStudy)
    assert fine.outcome is IngestOutcome.STORED
    assert indexed_uids(archive) == {elsewhere.sop_instance_uid, fine.sop_instance_uid}
    assert set(archive.store.addresses()) == {elsewhere.address, fine.address}


def test_a_study_another_association_indexes_after_the_lookup_takes_the_instance(
    archive, world, tmp_path, monkeypatch
):
    # Two modalities send one new study at once: this batch looked the study up before the
    # other association committed it with its series. The series is in this very study,
    # not in another one: the instance is stored in it, never refused.
    sender = sender_at(world.metz.id)
    first, second = ct_files(tmp_path, "two-senders", 2)
    other = ingest_path(archive, sender, first)
    real = ingest_module.study_by_uid
    lookups: list[str] = []

    def before_the_other_commit(session, study_instance_uid):
        lookups.append(study_instance_uid)
        return None if len(lookups) == 1 else real(session, study_instance_uid)

    monkeypatch.setattr(ingest_module, "study_by_uid", before_the_other_commit)
    [result] = ingest_batch(archive, sender, received_parts(archive, [second]))
    assert not isinstance(result, Exception), result
    assert result.outcome is IngestOutcome.STORED
    assert result.study_instance_uid == other.study_instance_uid
    assert result.series_instance_uid == other.series_instance_uid
    with transaction(archive.sessions) as db:
        assert len(db.execute(select(ImagingStudy)).scalars().all()) == 1


def test_a_failed_batch_insert_leaves_nothing_and_each_instance_is_indexed_alone(
    archive, world, tmp_path, monkeypatch
):
    real = ingest_module._insert_new

    def racing(session, sender, study, indexes, items, now):
        # Another writer indexes the first instance between the lookup and the INSERT.
        study, _ = real(session, sender, study, indexes[:1], items, now)
        return real(session, sender, study, indexes, items, now)

    monkeypatch.setattr(ingest_module, "_insert_new", racing)
    paths = ct_files(tmp_path, "race", 3)
    results = ingest_batch(archive, sender_at(world.metz.id), received_parts(archive, paths))
    assert [r.outcome for r in results] == [IngestOutcome.STORED] * 3
    assert len(indexed_uids(archive)) == 3
    (entry,) = store_audit(archive)
    assert json.loads(entry.detail)["instances"] == 3


def test_received_files_are_each_validated_and_synced_in_order(
    archive, world, tmp_path, monkeypatch
):
    import hashlib

    from concilium.imaging import storage
    from concilium.imaging.parsing import MalformedObject

    good = ct_files(tmp_path, "receive", 2)
    tmp = archive.store.temporary_area
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
    first, refused, third = receive_files(archive, files)
    assert isinstance(refused, MalformedObject)
    assert (tmp / "b").exists()  # a refused file stays the caller's to remove
    assert len(synced) == 2
    assert first.record.instance.sop_instance_uid == pydicom.dcmread(good[0]).SOPInstanceUID
    assert first.staged.address == hashlib.sha256(good[0].read_bytes()).hexdigest()
    assert third.staged.address == files[2][1]
    results = ingest_batch(archive, sender_at(world.metz.id), [first, third])
    assert [r.outcome for r in results] == [IngestOutcome.STORED] * 2


def test_a_c_store_is_a_batch_of_one_audited_as_any_batch(archive, world, tmp_path):
    (path,) = ct_files(tmp_path, "batch-of-one", 1)
    result = ingest_path(archive, sender_at(world.metz.id), path)
    (entry,) = store_audit(archive)
    assert entry.object_id == result.study_instance_uid
    detail = json.loads(entry.detail)
    assert detail["instances"] == 1 and detail["bytes"] == path.stat().st_size
    assert detail["outcomes"] == {"stored": 1}


def test_an_instance_of_a_series_of_another_study_creates_no_study(archive, world, tmp_path):
    sender = sender_at(world.metz.id)
    elsewhere = ingest_path(archive, sender, ct_files(tmp_path, "series-owner", 1)[0])
    (path,) = ct_files(tmp_path, "series-thief", 1)
    ds = pydicom.dcmread(path)
    ds.SeriesInstanceUID = elsewhere.series_instance_uid
    ds.save_as(path)
    with pytest.raises(InvalidInstanceInStudy):
        ingest_path(archive, sender, path)
    with transaction(archive.sessions) as db:
        studies = set(db.execute(select(ImagingStudy.study_instance_uid)).scalars())
    assert studies == {elsewhere.study_instance_uid}
    assert set(archive.store.addresses()) == {elsewhere.address}


def test_one_archive_announces_what_c_store_and_stow_rs_receive(
    app, client, archive, world, tmp_path
):
    """The DICOM server and the DICOMweb routes share the process's archive: whichever way an
    instance comes, a subscriber of that archive hears ``study.received``."""
    from pynetdicom import AE
    from pynetdicom.sop_class import CTImageStorage

    heard: list[str] = []
    archive.bus.subscribe(
        STUDY_RECEIVED, lambda _, payload: heard.append(payload["sop_instance_uid"])
    )
    app.state.archive = archive
    with transaction(archive.sessions) as db:
        add_remote_ae(
            db, audit.SYSTEM, ae_title="METZ_CT", host="127.0.0.1", port=104, site_id=world.metz.id
        )
    (by_dimse,) = ct_files(tmp_path, "by-c-store", 1)
    (by_web,) = ct_files(tmp_path, "by-stow-rs", 1)
    technologist = world.user("metz-tech", (world.metz, "technologist"))
    token = world.token(technologist, "imaging:write")
    with DicomServer(archive, DimseSettings(port=0, network_timeout=10)) as server:
        peer = AE(ae_title="METZ_CT")
        peer.add_requested_context(CTImageStorage)
        assoc = peer.associate("127.0.0.1", server.port, ae_title="CONCILIUM")
        assert assoc.is_established
        try:
            status = assoc.send_c_store(pydicom.dcmread(by_dimse))
        finally:
            assoc.release()
        assert status.Status == 0x0000
        body = b"--b\r\nContent-Type: application/dicom\r\n\r\n" + by_web.read_bytes()
        response = client.post(
            "/dicomweb/studies",
            content=body + b"\r\n--b--\r\n",
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": 'multipart/related; type="application/dicom"; boundary=b',
            },
        )
        assert response.status_code == 200, response.text
    assert heard == [pydicom.dcmread(p).SOPInstanceUID for p in (by_dimse, by_web)]
