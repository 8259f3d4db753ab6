"""Searches: what a reader finds, page by page, and what the audit trail keeps of it."""

from __future__ import annotations

import json

from pydicom.dataset import Dataset
from sqlalchemy import select

from concilium.imaging.query import find, patient_studies, search_page
from concilium.imaging.synthetic import SyntheticPatient, SyntheticStudy, generate_ct_series
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.policy import Principal
from concilium.platform.tables import AuditEvent

from .helpers import ingest_path, sender_at


def test_a_page_of_studies_skips_what_the_reader_may_not_see(archive, world, tmp_path, runtime):
    import datetime as dt

    # Six studies on successive days, alternately sent by Metz and by Briey.
    for day in range(6):
        site = world.metz if day % 2 == 0 else world.briey
        study = SyntheticStudy(seed=f"page-{day}", study_date=dt.date(2026, 11, 1 + day))
        (path,) = generate_ct_series(tmp_path / f"ct{day}", 1, study=study, rows=16, columns=16)
        ingest_path(archive, sender_at(site.id), path)
    reader = Principal(user_id=99, username="r", roles={world.metz.id: frozenset({"radiologist"})})
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyDate = ""
    with transaction(archive.sessions) as db:
        every = find(db, reader, audit.SYSTEM, identifier, now=runtime.now())
        page = find(db, reader, audit.SYSTEM, identifier, now=runtime.now(), limit=2, offset=1)
    assert [m.StudyDate for m in every] == ["20261101", "20261103", "20261105"]
    assert [m.StudyDate for m in page] == ["20261103", "20261105"]


def test_a_page_says_whether_more_follow_and_the_audit_counts_what_it_returned(
    archive, world, tmp_path, runtime
):
    names = {"q1": "MÜLLER^ZOÉ", "q2": "MÜLLER^ZOÉ", "q3": "MÜLLER^ZOÉ", "q4": "MARTIN^PAUL"}
    for seed, name in names.items():
        study = SyntheticStudy(seed=seed, patient=SyntheticPatient(name, f"IPP-{seed}"))
        (path,) = generate_ct_series(tmp_path / seed, 1, study=study, rows=16, columns=16)
        ingest_path(archive, sender_at(world.metz.id), path)
    reader = Principal(user_id=99, username="r", roles={world.metz.id: frozenset({"radiologist"})})

    def page(limit, offset=0, **keys):
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "STUDY"
        identifier.StudyInstanceUID = ""
        for keyword, value in keys.items():
            setattr(identifier, keyword, value)
        with transaction(archive.sessions) as db:
            return search_page(
                db,
                reader,
                audit.SYSTEM,
                identifier,
                now=runtime.now(),
                limit=limit,
                offset=offset,
                fuzzy=True,
            )

    first = page(2, PatientName="muller")  # fuzzy: the names are compared after the query
    last = page(2, offset=2, PatientName="muller")
    every = page(3)  # no name: the database pages
    assert (len(first.matches), first.more) == (2, True)
    assert (len(last.matches), last.more) == (1, False)
    assert (len(every.matches), every.more) == (3, True)
    with transaction(archive.sessions) as db:
        details = [
            json.loads(detail)
            for detail in db.execute(
                select(AuditEvent.detail)
                .where(AuditEvent.action == "study.query")
                .order_by(AuditEvent.seq)
            ).scalars()
        ]
    assert [d["matches"] for d in details] == [2, 1, 3]
    for detail, found in zip(details, (first, last, every), strict=True):
        assert detail["studies"] == sorted(m.value("StudyInstanceUID") for m in found.matches)


def test_the_studies_of_a_patient_are_those_the_reader_may_see(archive, world, tmp_path, runtime):
    from datetime import timedelta

    from concilium.platform import sharing
    from concilium.platform.patients import Demographics, create_patient

    with transaction(archive.sessions) as db:
        jane = create_patient(db, audit.SYSTEM, world.metz.id, "MTZ-7", Demographics("Doe", "Jane"))
        briey_jane = create_patient(
            db, audit.SYSTEM, world.briey.id, "BRY-7", Demographics("Doe", "Jane")
        )
        other = create_patient(db, audit.SYSTEM, world.metz.id, "MTZ-8", Demographics("Roe", "Ann"))
    sent = {}
    for seed, site, patient_id in [
        ("pj-metz", world.metz, "MTZ-7"),
        ("pj-briey", world.briey, "BRY-7"),
        ("pj-other", world.metz, "MTZ-8"),
    ]:
        study = SyntheticStudy(seed=seed, patient=SyntheticPatient(patient_id=patient_id))
        (path,) = generate_ct_series(tmp_path / seed, 1, study=study, rows=16, columns=16)
        sent[seed] = ingest_path(archive, sender_at(site.id), path).study_instance_uid
    reader = Principal(user_id=99, username="r", roles={world.metz.id: frozenset({"radiologist"})})

    def studies_of(patient):
        with transaction(archive.sessions) as db:
            found = patient_studies(db, reader, audit.SYSTEM, patient.id, now=runtime.now())
        return [
            (m.value("StudyInstanceUID"), m.value("NumberOfStudyRelatedInstances")) for m in found
        ]

    assert studies_of(jane) == [(sent["pj-metz"], 1)]
    assert studies_of(other) == [(sent["pj-other"], 1)]
    # Briey's record of the patient is another platform patient, unseen until shared.
    assert studies_of(briey_jane) == []
    sharer = world.user("briey-sharer", (world.briey, "radiologist"))
    now = runtime.now()
    with transaction(archive.sessions) as db:
        sharing.create_share(
            db,
            audit.Actor(sharer.id, "briey-sharer"),
            resource_kind="patient",
            resource_id=str(briey_jane.id),
            to_site_id=world.metz.id,
            to_user_id=None,
            expires_at=now + timedelta(days=1),
            now=now,
            from_site_id=world.briey.id,
        )
    assert studies_of(briey_jane) == [(sent["pj-briey"], 1)]
    with transaction(archive.sessions) as db:
        lookups = db.execute(
            select(AuditEvent.patient_id).where(AuditEvent.action == "study.query")
        ).scalars()
        assert list(lookups) == [jane.id, other.id, briey_jane.id, briey_jane.id]
