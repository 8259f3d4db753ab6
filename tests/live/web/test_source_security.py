"""Attacks on a session's sources through the API and the pages: showing a study one may
not read or a patient who has not consented, pointing the server's ffmpeg or VISCA anywhere,
reading a camera's password."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from concilium import imaging
from concilium.imaging import ImagingProcess
from concilium.imaging.synthetic import SyntheticPatient, SyntheticStudy, generate_xa_cine
from concilium.live import LiveProcess, lifecycle, source_registry
from concilium.live.tables import LiveCamera, LiveSource
from concilium.platform import audit, patients
from concilium.platform.audit import AuditEvent
from concilium.platform.db import transaction
from concilium.platform.policy import Principal
from concilium.web.context import process_of

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

PROBLEM = "application/problem+json"


def _patient(world, doctor, identifier: str, family: str, *, teaching: bool = False) -> int:
    with transaction(world.runtime.sessions) as db:
        actor = audit.Actor(doctor.id, doctor.username)
        patient = patients.create_patient(
            db, actor, world.metz.id, identifier, patients.Demographics(family, "Anne")
        )
        if teaching:
            patients.record_consent(db, actor, patient, "teaching", "granted", world.metz.id)
        return patient.id


def _cine(app, world, tmp_path, identifier: str, seed: str) -> str:
    """A small XA loop of the Metz patient ``identifier``, stored in the app's archive."""
    path = generate_xa_cine(
        tmp_path / seed,
        3,
        study=SyntheticStudy(seed, SyntheticPatient("CINE^PATIENT", identifier)),
        rows=16,
        columns=16,
    )
    cathlab = Principal(0, "cathlab", {world.metz.id: frozenset({"technologist"})})
    sender = imaging.Sender(cathlab, audit.Actor(None, "cathlab"), world.metz.id)
    archive = process_of(app, ImagingProcess).archive
    stored = imaging.ingest_instance(archive, sender, [path.read_bytes()])
    return f"{stored.study_instance_uid}/{stored.series_instance_uid}"


@pytest.fixture
def cine_case(app, world, people, tmp_path):
    """A Metz supervision of patient A, organised by a specialist; a loop of A's, a loop of
    B's (no teaching consent) and of C's (consent)."""
    doctor = people["doctor"]
    a = _patient(world, doctor, "MTZ-A", "Alpha")
    _patient(world, doctor, "MTZ-B", "Bravo")
    _patient(world, doctor, "MTZ-C", "Charlie", teaching=True)
    now = world.runtime.now()
    with transaction(world.runtime.sessions) as db:
        live = lifecycle.create_session(
            db,
            audit.Actor(doctor.id, doctor.username),
            kind="supervision",
            title="Angioplasty, cath lab 2",
            site_id=world.metz.id,
            scheduled_at=now,
            now=now,
            patient_id=a,
        )
        session_id = live.id
    return {
        "session": session_id,
        "own": _cine(app, world, tmp_path, "MTZ-A", "own"),
        "other": _cine(app, world, tmp_path, "MTZ-B", "other"),
        "consented": _cine(app, world, tmp_path, "MTZ-C", "consented"),
    }


def _sources(world, session_id: int) -> list[LiveSource]:
    with world.runtime.sessions() as db:
        return list(
            db.execute(select(LiveSource).where(LiveSource.session_id == session_id)).scalars()
        )


def _retrievals(world) -> list[tuple[str, str]]:
    with world.runtime.sessions() as db:
        rows = db.execute(
            select(AuditEvent.actor, AuditEvent.outcome).where(
                AuditEvent.action == "study.retrieve"
            )
        ).all()
    return [(a, o) for a, o in rows]


def test_a_director_who_may_not_read_a_study_cannot_show_it(signed_in, world, people, cine_case):
    # An engineer directs the cameras by role but reads no patient data; the organiser could.
    engineer = signed_in(world.user("metz-eng", (world.metz, "engineer"), with_totp=True))
    session_id = cine_case["session"]
    body = {"name": "LAO", "kind": "dicom_cine", "reference": cine_case["own"]}
    refused = engineer.post(f"/api/v1/live/sessions/{session_id}/sources", json=body)
    assert refused.status_code in (403, 404), refused.text
    assert refused.headers["content-type"] == PROBLEM
    page = engineer.post(f"/live/{session_id}/sources", data=body)
    assert page.status_code in (403, 404)
    assert _sources(world, session_id) == []
    # The attempt is on record under the engineer's name, not the organiser's.
    retrievals = _retrievals(world)
    assert retrievals and all(r == ("metz-eng", "failure") for r in retrievals)


def test_a_cine_loop_is_authorised_and_audited_as_the_person_adding_it(
    signed_in, world, people, cine_case
):
    tech = signed_in(people["tech"])
    session_id = cine_case["session"]
    body = {"name": "LAO", "kind": "dicom_cine", "reference": cine_case["own"]}
    added = tech.post(f"/api/v1/live/sessions/{session_id}/sources", json=body)
    assert added.status_code == 201, added.text
    assert _retrievals(world) == [("metz-tech", "success")]
    [source] = _sources(world, session_id)
    assert source.added_by_id == people["tech"].id


def test_another_patients_loop_needs_their_teaching_consent(signed_in, world, people, cine_case):
    tech = signed_in(people["tech"])
    session_id = cine_case["session"]
    url = f"/api/v1/live/sessions/{session_id}/sources"
    other = {"name": "B", "kind": "dicom_cine", "reference": cine_case["other"]}
    refused = tech.post(url, json=other)
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == PROBLEM
    assert "consented to teaching" in refused.json()["detail"]
    in_french = tech.post(url, json=other, headers={"accept-language": "fr"})
    assert "consenti à l'enseignement" in in_french.json()["detail"]
    assert _sources(world, session_id) == []
    with world.runtime.sessions() as db:
        refusal = db.execute(
            select(AuditEvent).where(
                AuditEvent.action == "live.source.add", AuditEvent.outcome == "refused"
            )
        ).scalars()
        assert {r.actor for r in refusal} == {"metz-tech"}
    allowed = tech.post(
        url, json={"name": "C", "kind": "dicom_cine", "reference": cine_case["consented"]}
    )
    assert allowed.status_code == 201, allowed.text


# --- where the server connects --------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "tcp://10.1.2.3:554?listen",
        "udp://10.1.2.3:5000",
        "rtp://10.1.2.3:5004",
        "rtsp://10.1.2.3:554/live?listen",
        "rtsp://10.1.2.3:554/live?rtsp_flags=listen",
        "srt://10.1.2.3:9000?mode=listener",
        "srt://10.1.2.3:9000?mode=rendezvous",
        "srt://10.1.2.3:9000?localport=9000",
        "rtsp://127.0.0.1:8288/janus",
        "rtsp://169.254.169.254/latest",
        "rtsp://8.8.8.8/live",
        "concat:rtsp://10.1.2.3/a|file:///etc/passwd",
        "/etc/passwd",
        "RTSP://10.1.2.3/live -f",
    ],
)
def test_the_server_calls_only_cameras_of_the_device_networks_in_client_mode(
    signed_in, world, people, live_id, url
):
    tech = signed_in(people["tech"])
    body = {"name": "Camera", "kind": "ip_camera", "reference": url}
    refused = tech.post(f"/api/v1/live/sessions/{live_id}/sources", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == PROBLEM
    assert tech.post(f"/live/{live_id}/sources", data=body).status_code == 422
    assert _sources(world, live_id) == []


def test_an_ip_camera_and_a_ptz_camera_on_the_device_networks_are_accepted(
    signed_in, world, people, live_id
):
    tech = signed_in(people["tech"])
    added = tech.post(
        f"/api/v1/live/sessions/{live_id}/sources",
        json={"name": "Ceiling", "kind": "ip_camera", "reference": "rtsp://10.1.2.3:554/live"},
    )
    assert added.status_code == 201, added.text
    srt = tech.post(
        f"/api/v1/live/sessions/{live_id}/sources",
        json={
            "name": "Lamp",
            "kind": "ip_camera",
            "reference": "srt://192.168.4.2:9000?mode=caller",
        },
    )
    assert srt.status_code == 201, srt.text
    # VISCA: the same networks.
    for host, expected in (("10.1.2.4", 303), ("127.0.0.1", 422), ("8.8.8.8", 422)):
        answer = tech.post(
            f"/live/{live_id}/cameras", data={"name": "PTZ", "host": host, "port": 52381}
        )
        assert answer.status_code == expected, (host, answer.status_code)
    with world.runtime.sessions() as db:
        hosts = db.execute(select(LiveCamera.host)).scalars().all()
    assert hosts == ["10.1.2.4"]


def test_a_ptz_command_goes_only_to_a_camera_still_on_the_device_networks(
    signed_in, world, people, live_id
):
    # A camera written before the networks were restricted (or whose name now resolves there).
    with transaction(world.runtime.sessions) as db:
        camera = LiveCamera(session_id=live_id, name="Old", host="127.0.0.1", port=52381)
        db.add(camera)
        db.flush()
        camera_id = camera.id
    tech = signed_in(people["tech"])
    assert tech.post(f"/api/v1/live/sessions/{live_id}/control").status_code == 200
    moved = tech.post(
        f"/api/v1/live/sessions/{live_id}/ptz", json={"camera_id": camera_id, "move": "up"}
    )
    assert moved.status_code == 422 and "live_device_networks" in moved.json()["detail"]


# --- camera credentials -----------------------------------------------------------------------


def test_camera_credentials_are_sealed_and_never_shown(signed_in, app, world, people, live_id):
    secret = "Zq7-s3cret-pw"
    tech = signed_in(people["tech"])
    added = tech.post(
        f"/api/v1/live/sessions/{live_id}/sources",
        json={
            "name": "Ceiling",
            "kind": "ip_camera",
            "reference": f"rtsp://admin:{secret}@10.1.2.3:554/live",
        },
    )
    assert added.status_code == 201, added.text
    assert added.json()["reference"] == "rtsp://admin:***@10.1.2.3:554/live"
    assert secret not in added.text
    page_added = tech.post(
        f"/live/{live_id}/sources",
        data={"name": "Lamp", "kind": "ip_camera", "reference": f"rtsp://op:{secret}@10.1.2.5/"},
    )
    assert page_added.status_code == 303

    # Everyone who reads the session: its pages and its API answers.
    viewer = signed_in(people["viewer"])
    answers = [
        viewer.get(f"/live/{live_id}"),
        viewer.get(f"/live/{live_id}/watch"),
        viewer.get(f"/live/{live_id}/join"),
        viewer.get(f"/api/v1/live/sessions/{live_id}"),
        viewer.get(f"/api/v1/live/sessions/{live_id}/sources"),
        tech.get(f"/live/{live_id}"),
        tech.get(f"/live/{live_id}/director"),
        tech.get(f"/api/v1/live/sessions/{live_id}/sources"),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.url
        assert secret not in answer.text, answer.url
    assert "rtsp://admin:***@10.1.2.3:554/live" in answers[5].text
    # At rest: sealed, the readable column masked; the server still opens it.
    with world.runtime.sessions() as db:
        rows = db.execute(
            select(LiveSource.reference, LiveSource.sealed_url).where(
                LiveSource.session_id == live_id
            )
        ).all()
        for reference, sealed in rows:
            assert secret not in reference and sealed and secret not in sealed
        source = db.execute(select(LiveSource).where(LiveSource.name == "Ceiling")).scalar_one()
        assert source_registry.source_url(source, world.runtime.box) == (
            f"rtsp://admin:{secret}@10.1.2.3:554/live"
        )
        events = db.execute(select(AuditEvent.detail)).scalars().all()
    assert all(secret not in str(detail) for detail in events)


def test_camera_credentials_written_in_clear_are_sealed_when_the_service_opens(app, world, live_id):
    clear = "rtsp://admin:Old-pw-42@10.0.0.9/x"
    with transaction(world.runtime.sessions) as db:
        db.add(LiveSource(session_id=live_id, name="Old", kind="ip_camera", reference=clear))
    process_of(app, LiveProcess).open()  # as at the next start of the server
    with world.runtime.sessions() as db:
        source = db.execute(select(LiveSource).where(LiveSource.name == "Old")).scalar_one()
        assert source.reference == "rtsp://admin:***@10.0.0.9/x"
        assert source.sealed_url and "Old-pw-42" not in source.sealed_url
        assert source_registry.source_url(source, world.runtime.box) == clear
