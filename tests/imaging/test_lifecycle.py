"""Rejection and deletion of studies: gone from queries and retrievals, files kept or removed,
every action audited."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from sqlalchemy import select

from concilium.imaging.access import NotAuthorized
from concilium.imaging.lifecycle import RejectionReason, delete_study, reject
from concilium.imaging.retrieve import locate
from concilium.imaging.synthetic import SyntheticStudy, generate_ct_series
from concilium.imaging.tables import ImagingInstance
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.policy import Principal
from concilium.platform.tables import AuditEvent

from .helpers import ingest_path, reader_query, sender_at


def test_delete_study_removes_rows_and_files_and_is_audited(archive, world, tmp_path):
    paths = generate_ct_series(
        tmp_path / "ct", 2, study=SyntheticStudy(seed="d"), rows=32, columns=32
    )
    results = [ingest_path(archive, sender_at(world.metz.id), p) for p in paths]
    with pytest.raises(NotAuthorized):
        delete_study(
            archive, sender_at(world.metz.id).principal, audit.SYSTEM, results[0].study_instance_uid
        )
    admin = sender_at(world.metz.id, "admin")
    removed = delete_study(archive, admin.principal, admin.actor, results[0].study_instance_uid)
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


def test_rejected_series_disappears_from_queries_and_retrievals(archive, world, tmp_path, runtime):
    study = SyntheticStudy(seed="reject")
    paths = generate_ct_series(tmp_path / "ct", 2, study=study, rows=32, columns=32)
    results = [ingest_path(archive, sender_at(world.metz.id), p) for p in paths]
    reader = Principal(user_id=99, username="r", roles={world.metz.id: frozenset({"radiologist"})})
    (before,) = reader_query(
        archive, reader, runtime, StudyInstanceUID="", NumberOfStudyRelatedInstances=""
    )
    assert before.NumberOfStudyRelatedInstances == 2
    admin = sender_at(world.metz.id, "admin")
    rejected = reject(
        archive,
        admin.principal,
        admin.actor,
        study.study_instance_uid,
        RejectionReason.QUALITY,
        series_instance_uid=results[0].series_instance_uid,
    )
    assert rejected == 2
    assert reader_query(archive, reader, runtime, StudyInstanceUID="") == []
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = study.study_instance_uid
    with transaction(archive.sessions) as db:
        found = locate(archive, db, reader, audit.SYSTEM, identifier, now=runtime.now())
    assert found == []
    # The files stay until deletion.
    assert len(list(archive.store.addresses())) == 2
