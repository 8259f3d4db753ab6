"""Who sees which study (`concilium.imaging.access`): a search filters in SQL on facts the
policy decided once per request, and must show exactly the studies `decide` grants one at a
time — no more, no fewer."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from pydicom.dataset import Dataset
from sqlalchemy import select

from concilium.imaging.access import study_target
from concilium.imaging.actions import ImagingAction
from concilium.imaging.ingest import Sender, ingest_instance
from concilium.imaging.query import search
from concilium.imaging.retrieve import locate
from concilium.imaging.synthetic import SyntheticPatient, SyntheticStudy, generate_ct_series
from concilium.imaging.tables import ImagingStudy
from concilium.platform import accounts, audit, sharing
from concilium.platform.db import transaction
from concilium.platform.patients import Demographics, create_patient
from concilium.platform.policy import Principal, decide
from concilium.platform.tables import Share, User

from .helpers import ingest_path, reader_query, sender_at


def _store(archive, tmp_path, site_id, seed, patient_id):
    study = SyntheticStudy(seed=seed, patient=SyntheticPatient(patient_id=patient_id))
    (path,) = generate_ct_series(tmp_path / seed, 1, study=study, rows=16, columns=16)
    node = Principal(0, "node", {site_id: frozenset({"technologist"})})
    sender = Sender(node, audit.Actor(None, "node", site_id=site_id), site_id)
    return ingest_instance(archive, sender, [path.read_bytes()]).study_instance_uid


def _share(runtime, by, uid, *, kind="study", site=None, user=None, days=2, origin=None):
    now = runtime.now()
    with transaction(runtime.sessions) as db:
        share = sharing.create_share(
            db,
            audit.Actor(by.id, by.username),
            resource_kind=kind,
            resource_id=uid,
            to_site_id=site,
            to_user_id=user,
            expires_at=now + timedelta(days=days),
            now=now,
            from_site_id=origin,
        )
        return share.id


def _principal(runtime, user):
    with transaction(runtime.sessions) as db:
        return accounts.principal_for(db, db.get(User, user.id), runtime.now())


def _searched(runtime, principal):
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = ""
    with transaction(runtime.sessions) as db:
        found = search(db, principal, audit.SYSTEM, identifier, now=runtime.now())
    return {m.value("StudyInstanceUID") for m in found}


def _granted(runtime, principal):
    """The studies `decide` lets ``principal`` read, asked about one study at a time."""
    now = runtime.now()
    with transaction(runtime.sessions) as db:
        return {
            study.study_instance_uid
            for study in db.execute(select(ImagingStudy)).scalars()
            if decide(principal, ImagingAction.STUDY_READ, study_target(db, study, now)).allowed
        }


def test_a_search_shows_exactly_what_the_policy_grants(archive, world, runtime, clock, tmp_path):
    metz, briey = world.metz, world.briey
    metz_radiologist = world.user("metz-radio", (metz, "radiologist"))
    briey_radiologist = world.user("briey-radio", (briey, "radiologist"))
    briey_engineer = world.user("briey-engineer", (briey, "engineer"))
    outsider = world.user("outsider", (metz, "engineer"))
    specialist = world.user("specialist", (metz, "specialist"))
    with transaction(runtime.sessions) as db:
        patient = create_patient(
            db, audit.SYSTEM, briey.id, "BRY-P", Demographics("Martin", "Paul")
        ).id
    mine = _store(archive, tmp_path, metz.id, "m1", "MTZ-1")
    of_patient = _store(archive, tmp_path, briey.id, "b1", "BRY-P")
    shared = _store(archive, tmp_path, briey.id, "b2", "BRY-2")
    expired = _store(archive, tmp_path, briey.id, "b3", "BRY-3")
    revoked = _store(archive, tmp_path, briey.id, "b4", "BRY-4")

    _share(runtime, briey_radiologist, shared, site=metz.id, days=30)
    _share(runtime, briey_radiologist, expired, site=metz.id, days=1)
    gone = _share(runtime, briey_radiologist, revoked, site=metz.id, days=30)
    with transaction(runtime.sessions) as db:
        sharing.revoke_share(db, audit.SYSTEM, db.get(Share, gone), runtime.now(), None)
    # A share to a site grants its readers only, not an engineer working there.
    _share(runtime, metz_radiologist, mine, site=briey.id, days=30)
    # A patient shared with one person shares with that person the images the site it is
    # shared from holds of them.
    _share(
        runtime,
        briey_radiologist,
        str(patient),
        kind="patient",
        user=outsider.id,
        days=30,
        origin=briey.id,
    )
    clock.advance(days=2)

    emergency = dataclasses.replace(
        _principal(runtime, specialist), emergency_patient_ids=frozenset({patient})
    )
    node = Principal(0, "ae:METZ_WS", {metz.id: frozenset({"technologist"})}, scopes=None)
    expected = {
        "metz radiologist": (_principal(runtime, metz_radiologist), {mine, shared}),
        "briey radiologist": (
            _principal(runtime, briey_radiologist),
            {mine, of_patient, shared, expired, revoked},
        ),
        "briey engineer": (_principal(runtime, briey_engineer), set()),
        "outsider": (_principal(runtime, outsider), {of_patient}),
        "emergency": (emergency, {mine, shared, of_patient}),
        "metz node": (node, {mine, shared}),
    }
    for who, (principal, studies) in expected.items():
        assert _granted(runtime, principal) == studies, who
        assert _searched(runtime, principal) == studies, who


def test_a_retrieval_audits_the_basis_of_each_study(archive, world, runtime, tmp_path):
    reader = world.user("metz-reader", (world.metz, "radiologist"))
    owner = world.user("briey-owner", (world.briey, "radiologist"))
    theirs = _store(archive, tmp_path, world.briey.id, "r1", "BRY-R1")
    hidden = _store(archive, tmp_path, world.briey.id, "r2", "BRY-R2")
    _share(runtime, owner, theirs, site=world.metz.id)
    principal = _principal(runtime, reader)
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = [theirs, hidden]
    with transaction(runtime.sessions) as db:
        found = locate(archive, db, principal, audit.SYSTEM, identifier, now=runtime.now())
    assert {i.study_instance_uid for i in found} == {theirs}
    assert all(i.path.stat().st_size == i.size for i in found)
    with transaction(runtime.sessions) as db:
        entries = db.execute(
            select(audit.AuditEvent).where(audit.AuditEvent.action == "study.retrieve")
        ).scalars()
        assert [(e.object_id, e.outcome) for e in entries] == [(theirs, "success")]


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
    ingest_path(archive, sender_at(world.metz.id), path)
    briey = Principal(user_id=98, username="b", roles={world.briey.id: frozenset({"radiologist"})})
    assert reader_query(archive, briey, runtime, StudyInstanceUID="") == []
    glass = Principal(
        user_id=98,
        username="b",
        roles={world.briey.id: frozenset({"radiologist"})},
        emergency_patient_ids=frozenset({patient.id}),
    )
    assert len(reader_query(archive, glass, runtime, StudyInstanceUID="")) == 1
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
            from_site_id=world.metz.id,
        )
    assert len(reader_query(archive, briey, runtime, StudyInstanceUID="")) == 1
