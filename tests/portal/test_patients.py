"""Patients across hospitals: identifiers, merge, consent, shares with expiry, break-the-glass."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from concilium.platform.errors import InvalidInput
from concilium.platform.tables import Alert, AuditEvent, Patient, PatientIdentifier


def bearer(world, user, *scopes):
    return {"authorization": f"Bearer {world.token(user, *scopes)}"}


def create(client, headers, site, identifier, family="DUPONT", given="Jeanne", **extra):
    body = {
        "site_id": site.id,
        "identifier": identifier,
        "family_name": family,
        "given_name": given,
        **extra,
    }
    return client.post("/api/v1/patients", json=body, headers=headers)


def audit_rows(world, **where):
    with world.runtime.sessions() as db:
        query = select(AuditEvent).order_by(AuditEvent.seq)
        for key, value in where.items():
            query = query.where(getattr(AuditEvent, key) == value)
        return db.execute(query).scalars().all()


def test_create_read_update_and_cross_reference(client, world):
    coord = world.user("coord", (world.metz, "coordinator"), (world.briey, "coordinator"))
    h = bearer(world, coord, "patients:read", "patients:write")
    created = create(client, h, world.metz, "MTZ-1", birth_date="1948-03-14", sex="F")
    assert created.status_code == 201
    pid = created.json()["id"]
    assert client.get(f"/api/v1/patients/{pid}", headers=h).json()["birth_date"] == "1948-03-14"
    updated = client.put(
        f"/api/v1/patients/{pid}",
        headers=h,
        json={"family_name": "DUPONT-MARTIN", "given_name": "Jeanne", "sex": "F"},
    )
    assert updated.json()["family_name"] == "DUPONT-MARTIN"
    added = client.post(
        f"/api/v1/patients/{pid}/identifiers",
        headers=h,
        json={"site_id": world.briey.id, "value": "BRY-7"},
    )
    assert {(i["site_id"], i["value"]) for i in added.json()["identifiers"]} == {
        (world.metz.id, "MTZ-1"),
        (world.briey.id, "BRY-7"),
    }
    found = client.get("/api/v1/patients?q=bry-7", headers=h).json()
    assert [p["id"] for p in found] == [pid]
    reads = audit_rows(world, action="patient.read", patient_id=pid)
    assert reads and reads[-1].actor == "coord" and reads[-1].outcome == "success"
    assert audit_rows(world, action="patient.query")


def test_identifier_is_unique_per_site(client, world):
    coord = world.user("coord", (world.metz, "coordinator"))
    h = bearer(world, coord, "patients:read", "patients:write")
    assert create(client, h, world.metz, "MTZ-1").status_code == 201
    dup = create(client, h, world.metz, "MTZ-1", family="OTHER")
    assert dup.status_code == 409
    assert dup.headers["content-type"] == "application/problem+json"
    assert dup.json()["status"] == 409


def test_merge_moves_identifiers_and_consent(client, world):
    coord = world.user("coord", (world.metz, "coordinator"), (world.briey, "coordinator"))
    h = bearer(world, coord, "patients:read", "patients:write")
    a = create(client, h, world.metz, "MTZ-1").json()["id"]
    b = create(client, h, world.briey, "BRY-1").json()["id"]
    consent = client.post(
        f"/api/v1/patients/{b}/consents",
        headers=h,
        json={"purpose": "mdt_presentation", "decision": "granted", "site_id": world.briey.id},
    )
    assert consent.status_code == 201
    # Identity vigilance is the administrators' of both sites, who read no clinical data.
    admin = world.user("adm", (world.metz, "admin"), (world.briey, "admin"))
    ha = bearer(world, admin, "patients:write")
    assert (
        client.post(f"/api/v1/patients/{a}/merge", headers=h, json={"duplicate_id": b}).status_code
        == 403
    )
    merged = client.post(f"/api/v1/patients/{a}/merge", headers=ha, json={"duplicate_id": b})
    assert merged.status_code == 200
    assert len(merged.json()["identifiers"]) == 2
    assert client.get(f"/api/v1/patients/{a}/consents", headers=ha).status_code == 403
    standing = client.get(f"/api/v1/patients/{a}/consents", headers=h).json()["standing"]
    assert standing["mdt_presentation"] == "granted"
    assert client.get(f"/api/v1/patients/{b}", headers=h).json()["merged_into"] == a
    again = client.post(f"/api/v1/patients/{a}/merge", headers=ha, json={"duplicate_id": b})
    assert again.status_code == 409


def test_consent_latest_decision_wins_and_records_who(client, world):
    doc = world.user("dr", (world.metz, "referring_physician"))
    h = bearer(world, doc, "patients:read", "patients:write")
    pid = create(client, h, world.metz, "MTZ-1").json()["id"]
    for decision in ("granted", "withdrawn"):
        r = client.post(
            f"/api/v1/patients/{pid}/consents",
            headers=h,
            json={"purpose": "teaching", "decision": decision, "site_id": world.metz.id},
        )
        assert r.status_code == 201 and r.json()["recorded_by"] == doc.id
    summary = client.get(f"/api/v1/patients/{pid}/consents", headers=h).json()
    assert summary["standing"]["teaching"] == "withdrawn"
    assert summary["standing"]["remote_reading"] == "none"
    assert [c["decision"] for c in summary["history"]] == ["withdrawn", "granted"]
    bad = client.post(
        f"/api/v1/patients/{pid}/consents",
        headers=h,
        json={"purpose": "marketing", "decision": "granted", "site_id": world.metz.id},
    )
    assert bad.status_code == 422


def test_share_to_another_site_expires_and_can_be_revoked(client, world, clock):
    coord = world.user("coord", (world.metz, "coordinator"))
    reader = world.user("briey-radio", (world.briey, "radiologist"))
    h = bearer(world, coord, "patients:read", "patients:write")
    hr = bearer(world, reader, "patients:read")
    pid = create(client, h, world.metz, "MTZ-1").json()["id"]
    assert client.get(f"/api/v1/patients/{pid}", headers=hr).status_code == 403
    assert client.get("/api/v1/patients", headers=hr).json() == []
    share = client.post(
        f"/api/v1/patients/{pid}/shares",
        headers=h,
        json={
            "to_site_id": world.briey.id,
            "reason": "night reading",
            "expires_at": (clock.now + timedelta(hours=12)).isoformat(),
        },
    )
    assert share.status_code == 201
    assert client.get(f"/api/v1/patients/{pid}", headers=hr).status_code == 200
    assert [p["id"] for p in client.get("/api/v1/patients", headers=hr).json()] == [pid]
    # The receiving site reads, but cannot re-share or change the patient.
    assert (
        client.post(
            f"/api/v1/patients/{pid}/shares",
            headers=hr,
            json={
                "to_site_id": world.metz.id,
                "expires_at": (clock.now + timedelta(hours=1)).isoformat(),
            },
        ).status_code
        == 403
    )
    clock.advance(hours=13)
    assert client.get(f"/api/v1/patients/{pid}", headers=hr).status_code == 403
    share2 = client.post(
        f"/api/v1/patients/{pid}/shares",
        headers=h,
        json={"to_user_id": reader.id, "expires_at": (clock.now + timedelta(days=1)).isoformat()},
    )
    assert client.get(f"/api/v1/patients/{pid}", headers=hr).status_code == 200
    revoked = client.delete(f"/api/v1/shares/{share2.json()['id']}", headers=h)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert client.get(f"/api/v1/patients/{pid}", headers=hr).status_code == 403
    assert {e.action for e in audit_rows(world, patient_id=pid)} >= {"share.create", "share.revoke"}


def test_share_needs_timezone_and_future_expiry(client, world, clock):
    coord = world.user("coord", (world.metz, "coordinator"))
    h = bearer(world, coord, "patients:read", "patients:write")
    pid = create(client, h, world.metz, "MTZ-1").json()["id"]
    naive = client.post(
        f"/api/v1/patients/{pid}/shares",
        headers=h,
        json={"to_site_id": world.briey.id, "expires_at": "2099-01-01T00:00:00"},
    )
    assert naive.status_code == 422
    past = client.post(
        f"/api/v1/patients/{pid}/shares",
        headers=h,
        json={
            "to_site_id": world.briey.id,
            "expires_at": (clock.now - timedelta(hours=1)).isoformat(),
        },
    )
    assert past.status_code == 422
    both = client.post(
        f"/api/v1/patients/{pid}/shares",
        headers=h,
        json={
            "to_site_id": world.briey.id,
            "to_user_id": coord.id,
            "expires_at": (clock.now + timedelta(hours=1)).isoformat(),
        },
    )
    assert both.status_code == 422


def test_break_the_glass_is_justified_time_boxed_alerted_and_audited(client, world, clock):
    coord = world.user("coord", (world.metz, "coordinator"))
    metz_admin = world.user("metz-admin", (world.metz, "admin"))
    er = world.user("briey-er", (world.briey, "specialist"))
    h = bearer(world, coord, "patients:read", "patients:write")
    her = bearer(world, er, "patients:read")
    pid = create(client, h, world.metz, "MTZ-1").json()["id"]
    short = client.post(
        "/api/v1/emergency-access",
        headers=her,
        json={"site_id": world.metz.id, "identifier": "MTZ-1", "justification": "urgent"},
    )
    assert short.status_code == 422
    assert client.get(f"/api/v1/patients/{pid}", headers=her).status_code == 403
    opened = client.post(
        "/api/v1/emergency-access",
        headers=her,
        json={
            "site_id": world.metz.id,
            "identifier": "MTZ-1",
            "justification": "unconscious patient transferred, allergies unknown",
        },
    )
    assert opened.status_code == 201
    assert client.get(f"/api/v1/patients/{pid}", headers=her).status_code == 200
    reads = audit_rows(world, action="patient.read", patient_id=pid, actor="briey-er")
    assert reads[-1].outcome == "emergency-override"
    assert audit_rows(world, action="emergency.open")[-1].outcome == "emergency-override"
    alerts = client.get("/api/v1/alerts", headers=bearer(world, metz_admin, "admin")).json()
    assert len(alerts) == 1 and alerts[0]["kind"] == "break-the-glass"
    clock.advance(minutes=world.runtime.settings.emergency_access_minutes + 1)
    assert client.get(f"/api/v1/patients/{pid}", headers=her).status_code == 403
    # The learner role cannot break the glass (nor hold a token for it).
    learner = world.user("learner", (world.briey, "learner"))
    with pytest.raises(InvalidInput):
        bearer(world, learner, "patients:read")
    browser = world.client(client.app)
    browser.headers["x-csrf-token"] = world.sign_in(browser, learner)
    refused = browser.post(
        "/api/v1/emergency-access",
        json={
            "site_id": world.metz.id,
            "identifier": "MTZ-1",
            "justification": "just curious about this case really",
        },
    )
    assert refused.status_code == 403


def test_platform_admin_does_not_read_patients(client, world):
    coord = world.user("coord", (world.metz, "coordinator"))
    it = world.user("it", platform_admin=True, with_totp=True)
    pid = create(
        client, bearer(world, coord, "patients:read", "patients:write"), world.metz, "MTZ-1"
    ).json()["id"]
    # Not through a session, and not even a token for it can be issued.
    browser = world.client(client.app)
    world.sign_in(browser, it)
    assert browser.get(f"/api/v1/patients/{pid}").status_code == 403
    assert browser.get(f"/patients/{pid}").status_code == 403
    with pytest.raises(InvalidInput):
        bearer(world, it, "patients:read", "admin")
    assert client.get("/api/v1/users", headers=bearer(world, it, "admin")).status_code == 200


def test_bad_input_is_a_problem_and_writes_nothing(client, world):
    coord = world.user("coord", (world.metz, "coordinator"))
    h = bearer(world, coord, "patients:read", "patients:write")
    with world.runtime.sessions() as db:
        before = db.execute(select(func.count()).select_from(Patient)).scalar_one()
        seq_before = db.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    cases = [
        ({"site_id": world.metz.id}, 422),  # missing fields
        (
            {
                "site_id": world.metz.id,
                "identifier": "bad id!",
                "family_name": "A",
                "given_name": "B",
            },
            422,
        ),
        (
            {
                "site_id": world.metz.id,
                "identifier": "X1",
                "family_name": "A",
                "given_name": "B",
                "birth_date": "2999-01-01",
            },
            422,
        ),
        (
            {
                "site_id": world.metz.id,
                "identifier": "X1",
                "family_name": "A",
                "given_name": "B",
                "sex": "Q",
            },
            422,
        ),
        (
            {
                "site_id": world.metz.id,
                "identifier": "X1",
                "family_name": "A",
                "given_name": "B",
                "unknown": 1,
            },
            422,
        ),
        ({"site_id": 999, "identifier": "X1", "family_name": "A", "given_name": "B"}, 403),
    ]
    for body, status in cases:
        r = client.post("/api/v1/patients", json=body, headers=h)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert {"type", "title", "status", "detail"} <= problem.keys()
    broken = client.post(
        "/api/v1/patients", content=b"{not json", headers={**h, "content-type": "application/json"}
    )
    assert (
        broken.status_code == 422 and broken.headers["content-type"] == "application/problem+json"
    )
    assert client.get("/api/v1/patients/abc", headers=h).status_code == 422
    assert client.get("/api/v1/nothing-here", headers=h).status_code == 404
    assert client.patch("/api/v1/patients", headers=h).status_code == 405
    with world.runtime.sessions() as db:
        assert db.execute(select(func.count()).select_from(Patient)).scalar_one() == before
        assert db.execute(select(func.count()).select_from(PatientIdentifier)).scalar_one() == 0
        # Only the refusal (403) was recorded; failed validations leave no trace of a write.
        new = db.execute(select(AuditEvent).where(AuditEvent.seq > seq_before)).scalars().all()
    assert {e.outcome for e in new} <= {"refused"}


def test_patient_pages_register_consent_share_and_emergency(client, world, clock):
    coord = world.user("coord", (world.metz, "coordinator"))
    csrf = world.sign_in(client, coord)
    r = client.post(
        "/patients",
        data={
            "csrf_token": csrf,
            "site_id": world.metz.id,
            "identifier": "MTZ-42",
            "family_name": "KLEIN",
            "given_name": "Amandine",
            "birth_date": "1979-06-25",
            "sex": "F",
        },
    )
    assert r.status_code == 303
    page = client.get(r.headers["location"])
    assert "KLEIN Amandine" in page.text and "MTZ-42" in page.text
    pid = int(r.headers["location"].rsplit("/", 1)[1])
    client.post(
        f"/patients/{pid}/consents",
        data={
            "csrf_token": csrf,
            "purpose": "teaching",
            "decision": "refused",
            "site_id": world.metz.id,
        },
    )
    assert 'class="badge refused">refused' in client.get(f"/patients/{pid}").text
    bad = client.post(
        "/patients",
        data={
            "csrf_token": csrf,
            "site_id": world.metz.id,
            "identifier": "MTZ-43",
            "family_name": "X",
            "given_name": "Y",
            "birth_date": "14/03/1948",
        },
    )
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.text
    shared = client.post(
        f"/patients/{pid}/shares",
        data={
            "csrf_token": csrf,
            "to_site_id": world.briey.id,
            "expires_on": (clock.now + timedelta(days=2)).date().isoformat(),
            "reason": "2nd opinion",
        },
    )
    assert shared.status_code == 303
    assert "2nd opinion" in client.get(f"/patients/{pid}").text
    er = world.user("briey-er", (world.briey, "referring_physician"))
    other = world.client(client.app)
    csrf2 = world.sign_in(other, er)
    opened = other.post(
        "/emergency",
        data={
            "csrf_token": csrf2,
            "site_id": world.metz.id,
            "identifier": "MTZ-42",
            "justification": "patient in shock at Briey ER now",
        },
    )
    assert opened.status_code == 303
    assert "Emergency access" in other.get(opened.headers["location"]).text
    with world.runtime.sessions() as db:
        assert db.execute(select(func.count()).select_from(Alert)).scalar_one() == 1


def test_audit_entries_name_role_and_site_of_the_actor(client, world):
    coord = world.user("coord-audit", (world.metz, "coordinator"))
    h = bearer(world, coord, "patients:read", "patients:write")
    pid = create(client, h, world.metz, "MTZ-5").json()["id"]
    client.get(f"/api/v1/patients/{pid}", headers=h)
    entry = audit_rows(world, action="patient.read", patient_id=pid)[-1]
    assert (entry.actor, entry.role, entry.site_id) == ("coord-audit", "coordinator", world.metz.id)
    assert entry.ip == "testclient"


def test_break_the_glass_reads_only_and_access_ends_with_the_grant(client, world, clock):
    """An emergency grant lets a physician read; it never lets them write the patient into
    their own site (an identifier there would make the access permanent), record consent,
    share or change the record. Once it expires, nothing is left."""
    coord = world.user("coord", (world.metz, "coordinator"))
    er = world.user("briey-er", (world.briey, "referring_physician"))
    pid = create(
        client, bearer(world, coord, "patients:read", "patients:write"), world.metz, "MTZ-1"
    ).json()["id"]
    her = bearer(world, er, "patients:read", "patients:write")
    opened = client.post(
        "/api/v1/emergency-access",
        headers=her,
        json={
            "site_id": world.metz.id,
            "identifier": "MTZ-1",
            "justification": "unconscious patient transferred, allergies unknown",
        },
    )
    assert opened.status_code == 201
    assert client.get(f"/api/v1/patients/{pid}", headers=her).status_code == 200
    assert client.get(f"/api/v1/patients/{pid}/consents", headers=her).status_code == 200
    writes = {
        "identifier at the physician's own site": client.post(
            f"/api/v1/patients/{pid}/identifiers",
            headers=her,
            json={"site_id": world.briey.id, "value": "BRY-1"},
        ),
        "demographics": client.put(
            f"/api/v1/patients/{pid}",
            headers=her,
            json={"family_name": "DUPONT", "given_name": "Jeanne", "sex": "F"},
        ),
        "consent": client.post(
            f"/api/v1/patients/{pid}/consents",
            headers=her,
            json={"purpose": "teaching", "decision": "granted", "site_id": world.briey.id},
        ),
        "share to the physician's site": client.post(
            f"/api/v1/patients/{pid}/shares",
            headers=her,
            json={
                "to_site_id": world.briey.id,
                "expires_at": (clock.now + timedelta(days=300)).isoformat(),
            },
        ),
    }
    assert {what: r.status_code for what, r in writes.items()} == dict.fromkeys(writes, 403)
    with world.runtime.sessions() as db:
        kept = db.execute(select(PatientIdentifier.site_id)).scalars().all()
    assert kept == [world.metz.id]
    # The emergency page shows the record without a form that writes.
    browser = world.client(client.app)
    world.sign_in(browser, er)
    page = browser.get(f"/patients/{pid}").text
    assert "Emergency access" in page
    assert f"/patients/{pid}/identifiers" not in page and f"/patients/{pid}/consents" not in page
    clock.advance(minutes=world.runtime.settings.emergency_access_minutes + 1)
    assert client.get(f"/api/v1/patients/{pid}", headers=her).status_code == 403
    assert client.get("/api/v1/patients", headers=her).json() == []
    world.sign_in(browser, er)  # the earlier session has gone idle meanwhile
    assert browser.get(f"/patients/{pid}").status_code == 403


def _store_study(world, site, tmp_path, patient_name, patient_id):
    """A one-image CT study sent by a modality of ``site``; its Study Instance UID."""
    from concilium.imaging import Archive, Sender, ingest_instance
    from concilium.imaging.synthetic import SyntheticPatient, SyntheticStudy, generate_ct_series
    from concilium.platform import audit
    from concilium.platform.policy import Principal

    rt = world.runtime
    study = SyntheticStudy("admin-reads", SyntheticPatient(patient_name, patient_id))
    (path,) = generate_ct_series(tmp_path / "ct", 1, study=study, rows=16, columns=16)
    archive = Archive(rt.settings.data_dir / "images", rt.sessions, rt.bus, clock=rt.now)
    modality = Principal(0, "modality", {site.id: frozenset({"technologist"})})
    ingest_instance(
        archive,
        Sender(modality, audit.Actor(None, "modality"), site.id),
        [path.read_bytes()],
    )
    return study.study_instance_uid


def test_a_site_administrator_reads_no_patient_data(client, world, tmp_path):
    """Administering a hospital's accounts opens neither its patients' files nor their
    images: reading patient data needs a clinical role."""
    coord = world.user("coord", (world.metz, "coordinator"))
    pid = create(
        client, bearer(world, coord, "patients:read", "patients:write"), world.metz, "MTZ-1"
    ).json()["id"]
    uid = _store_study(world, world.metz, tmp_path, "SECRET^NAME", "MTZ-1")
    metz_admin = world.user("metz-admin", (world.metz, "admin"), with_totp=True)
    browser = world.client(client.app)
    browser.headers["x-csrf-token"] = world.sign_in(browser, metz_admin)
    assert browser.get(f"/patients/{pid}").status_code == 403
    assert browser.get(f"/api/v1/patients/{pid}").status_code == 403
    assert browser.get(f"/api/v1/patients/{pid}/consents").status_code == 403
    assert browser.get("/api/v1/patients").json() == []
    assert "DUPONT" not in browser.get("/patients?q=dupont").text
    assert browser.get(f"/imaging/studies/{uid}").status_code == 404
    assert browser.get(f"/imaging/studies/{uid}/viewer").status_code in (403, 404)
    assert "SECRET" not in browser.get("/dicomweb/studies").text
    assert browser.get(f"/dicomweb/studies/{uid}/metadata").status_code in (403, 404)
    # Nor does it write them: registering, consent and shares belong to the clinical staff.
    assert create(browser, {}, world.metz, "MTZ-2").status_code == 403
    consent = browser.post(
        f"/api/v1/patients/{pid}/consents",
        json={"purpose": "teaching", "decision": "granted", "site_id": world.metz.id},
    )
    assert consent.status_code == 403
    # The same person with a clinical role at the site reads, as that role.
    world_doctor = world.user(
        "metz-radio", (world.metz, "admin"), (world.metz, "radiologist"), with_totp=True
    )
    doctor = world.client(client.app)
    world.sign_in(doctor, world_doctor)
    assert doctor.get(f"/patients/{pid}").status_code == 200


def test_an_identifier_beyond_64_bits_is_a_problem_and_writes_nothing(client, world):
    # Found by schemathesis (tests/test_openapi_fuzz.py): a patient id of 2^63 in the URL
    # failed inside the driver (SQLite: OverflowError; PostgreSQL: out of range), a 500.
    coord = world.user("coord", (world.metz, "coordinator"))
    h = bearer(world, coord, "patients:read", "patients:write")
    with world.runtime.sessions() as db:
        before = db.execute(select(func.count()).select_from(PatientIdentifier)).scalar_one()
    huge = 2**63
    added = client.post(
        f"/api/v1/patients/{huge}/identifiers",
        json={"site_id": world.metz.id, "value": "0"},
        headers=h,
    )
    read = client.get(f"/api/v1/patients/{huge}", headers=h)
    created = create(client, h, world.metz, "X2", site_id=huge)
    for response in (added, read):
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == "A number is out of range."
    assert created.status_code == 403  # no reach at a site of that number
    assert created.headers["content-type"] == "application/problem+json"
    with world.runtime.sessions() as db:
        after = db.execute(select(func.count()).select_from(PatientIdentifier)).scalar_one()
    assert after == before
