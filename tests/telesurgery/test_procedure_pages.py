"""The procedure pages as their people use them: planning by the patient's hospital number and
the team by name, a link qualification run from the page with its progress and report, and
every reason blocking START leading to where it is fixed."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from concilium.platform import accounts, audit, patients
from concilium.platform.db import transaction
from concilium.platform.tables import AuditEvent
from concilium.telesurgery.tables import Procedure, QualificationRecord


@pytest.fixture
def people(world):
    """A surgeon at Metz, a coordinator planning at both sites, a nurse at the Briey robot,
    a Metz patient MTZ-000456 and a patient of Nancy, a hospital the planner cannot see."""
    surgeon = world.user("metz-surgeon", (world.metz, "specialist"), with_totp=True)
    planner = world.user(
        "planner", (world.metz, "coordinator"), (world.briey, "coordinator"), with_totp=True
    )
    nurse = world.user("briey-nurse", (world.briey, "technologist"), with_totp=True)
    engineer = world.user(
        "briey-engineer", (world.briey, "engineer"), (world.metz, "engineer"), with_totp=True
    )
    with transaction(world.runtime.sessions) as db:
        nancy = accounts.create_site(db, audit.SYSTEM, "CHRU Nancy", "540023264")
        patient = patients.create_patient(
            db, audit.SYSTEM, world.metz.id, "MTZ-000456", patients.Demographics("Durand", "Anne")
        )
        elsewhere = patients.create_patient(
            db, audit.SYSTEM, nancy.id, "NCY-000789", patients.Demographics("Martin", "Paul")
        )
        ids = {"patient": patient.id, "elsewhere": elsewhere.id}
    return {"surgeon": surgeon, "planner": planner, "nurse": nurse, "engineer": engineer, **ids}


def _form(world, csrf, **changes):
    return {
        "csrf_token": csrf,
        "title": "Remote nephrectomy",
        "console_site_id": world.metz.id,
        "robot_site_id": world.briey.id,
        "surgeon": "Metz-Surgeon",
        "local_team": "briey-nurse",
        "robot_name": "Arm-2",
        "patient": "MTZ-000456",
        **changes,
    }


def _procedures(world):
    with transaction(world.runtime.sessions) as db:
        return [
            (p.id, p.patient_id, p.surgeon_id, p.local_team_ids)
            for p in db.scalars(select(Procedure))
        ]


def _plan(app, world, people):
    browser = world.client(app)
    csrf = world.sign_in(browser, people["planner"])
    created = browser.post("/telesurgery", data=_form(world, csrf))
    assert created.status_code == 303, created.text
    return browser, csrf, int(created.headers["location"].rsplit("/", 1)[1])


def test_planning_finds_the_patient_by_hospital_number_and_the_team_by_name(app, world, people):
    browser = world.client(app)
    csrf = world.sign_in(browser, people["planner"])
    form = browser.get("/telesurgery").text
    # The people of the planner's hospitals are offered by name as one types.
    assert '<option value="metz-surgeon">Metz-Surgeon</option>' in form
    assert 'list="ts-people"' in form
    created = browser.post("/telesurgery", data=_form(world, csrf))
    assert created.status_code == 303, created.text
    [(procedure_id, patient_id, surgeon_id, team)] = _procedures(world)
    assert created.headers["location"] == f"/telesurgery/{procedure_id}"
    assert patient_id == people["patient"]
    assert surgeon_id == people["surgeon"].id
    assert team == [people["nurse"].id]


def test_an_unknown_hospital_number_is_told_in_the_form(app, world, people):
    browser = world.client(app)
    csrf = world.sign_in(browser, people["planner"])
    refused = browser.post("/telesurgery", data=_form(world, csrf, patient="MTZ-999999"))
    assert refused.status_code == 422
    assert (
        "no patient with the hospital number MTZ-999999 at the hospitals you may see"
        in refused.text
    )
    assert 'value="MTZ-999999"' in refused.text  # what was typed stays in the form
    unknown_person = browser.post("/telesurgery", data=_form(world, csrf, surgeon="Dr Nobody"))
    assert unknown_person.status_code == 422
    assert "nobody is named &#39;Dr Nobody&#39;" in unknown_person.text
    assert _procedures(world) == []


def test_a_patient_of_a_hospital_the_planner_cannot_see_is_not_found(app, world, people):
    browser = world.client(app)
    csrf = world.sign_in(browser, people["planner"])
    refused = browser.post("/telesurgery", data=_form(world, csrf, patient="NCY-000789"))
    assert refused.status_code == 422
    assert "no patient with the hospital number NCY-000789" in refused.text
    assert "Martin" not in refused.text
    assert _procedures(world) == []


def test_planning_pages_speak_french_by_default(app, world, people):
    browser = world.client(app)
    csrf = world.sign_in(browser, people["planner"])
    french = {"Accept-Language": "fr"}
    page = browser.get("/telesurgery", headers=french)
    assert "Planifier une intervention" in page.text
    assert "Numéro hospitalier du patient" in page.text
    refused = browser.post(
        "/telesurgery", data=_form(world, csrf, patient="MTZ-999999"), headers=french
    )
    assert "aucun patient de numéro hospitalier MTZ-999999" in refused.text


def test_each_reason_blocking_start_links_to_where_it_is_fixed(app, world, people):
    browser, _csrf, procedure_id = _plan(app, world, people)
    page = browser.get(f"/telesurgery/{procedure_id}").text
    base = f"/telesurgery/{procedure_id}"
    expected = {
        "the console and robot gateway is not enrolled": f"{base}#enrolment",
        "no link keys have been issued to the gateways": f"{base}#keys",
        "no passing link qualification": f"{base}#qualify",
        "the patient&#39;s consent for telesurgery is not recorded": (
            f"/patients/{people['patient']}"
        ),
    }
    for reason, href in expected.items():
        assert f'<li><a href="{href}">{reason}</a></li>' in page
    for anchor in ("enrolment", "keys", "qualify"):
        assert f'id="{anchor}"' in page  # where the links lead
    # Enrolling the gateways from the page clears their reason and shows each token once.
    engineer = world.client(app)
    engineer_csrf = world.sign_in(engineer, people["engineer"])
    for role, name in (("console", "console.metz:7000"), ("robot", "robot.briey:7000")):
        enrolled = engineer.post(
            f"{base}/gateways",
            data={"csrf_token": engineer_csrf, "role": role, "public_name": name},
        )
        assert enrolled.status_code == 200, enrolled.text
        assert 'id="gateway-token"' in enrolled.text
    keys = engineer.post(f"{base}/keys", data={"csrf_token": engineer_csrf})
    assert keys.status_code == 200
    assert 'id="key-files"' in keys.text
    page = browser.get(base).text
    assert f"{base}#enrolment" not in page
    assert f"{base}#keys" not in page
    assert f"{base}#qualify" in page


def test_a_qualification_runs_from_the_page_with_its_progress_and_report(app, world, people):
    _browser, _csrf, procedure_id = _plan(app, world, people)
    base = f"/telesurgery/{procedure_id}"
    engineer = world.client(app)
    csrf = world.sign_in(engineer, people["engineer"])
    page = engineer.get(base).text
    assert 'id="qualify-form"' in page
    assert '<option value="regional-500km">' in page
    bad = engineer.post(f"{base}/qualifications", data={"csrf_token": csrf, "profile": "orbital"})
    assert bad.status_code == 422
    assert "unknown network profile &#39;orbital&#39;" in bad.text
    too_long = engineer.post(
        f"{base}/qualifications",
        data={"csrf_token": csrf, "profile": "direct", "duration_s": "3600"},
    )
    assert too_long.status_code == 422
    run_url = f"/api/v1/telesurgery/procedures/{procedure_id}/qualification-run"
    assert engineer.get(run_url).json() == {"state": "none"}

    started = engineer.post(
        f"{base}/qualifications",
        data={"csrf_token": csrf, "profile": "direct", "duration_s": "1", "rate_hz": "50"},
    )
    assert started.status_code == 303, started.text
    assert started.headers["location"] == f"{base}#qualify"
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = engineer.get(run_url).json()
        seen.append(run["state"])
        if run["state"] != "running":
            break
        time.sleep(0.2)
    assert run["state"] == "done", run
    assert seen[0] in {"running", "done"}
    assert isinstance(run["passed"], bool)
    assert run["report_url"] == f"{base}/qualifications/{run['qualification_id']}"

    page = engineer.get(base).text
    assert 'id="qualification-run"' in page
    assert f'href="{run["report_url"]}"' in page
    report = engineer.get(run["report_url"])
    assert report.status_code == 200
    assert "Link qualification: " in report.text
    assert 'class="ts-plot"' in report.text and "viewBox=" in report.text
    assert "<style" not in report.text and "style=" not in report.text
    assert "/static/telesurgery/telesurgery.css" in report.text
    french = engineer.get(run["report_url"], headers={"Accept-Language": "fr"})
    assert "Qualification de la liaison" in french.text
    with transaction(world.runtime.sessions) as db:
        record = db.get(QualificationRecord, run["qualification_id"])
        assert record is not None and record.profile == "direct"
        trail = db.scalars(select(AuditEvent).where(AuditEvent.action == "procedure.qualify")).all()
    assert len(trail) == 2  # the start, then the report kept
    assert all(e.actor == "briey-engineer" for e in trail)


def test_qualifying_needs_the_right_to_manage_the_procedure(app, world, people):
    _browser, _csrf, procedure_id = _plan(app, world, people)
    reader = world.user("metz-radiologist", (world.metz, "radiologist"), with_totp=True)
    client = world.client(app)
    csrf = world.sign_in(client, reader)
    refused = client.post(
        f"/telesurgery/{procedure_id}/qualifications",
        data={"csrf_token": csrf, "profile": "direct", "duration_s": "1"},
    )
    assert refused.status_code == 403
    run_url = f"/api/v1/telesurgery/procedures/{procedure_id}/qualification-run"
    assert client.get(run_url).status_code == 403
