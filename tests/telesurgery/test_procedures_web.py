"""The telesurgery JSON API and pages: planning, enrolment, refused START with its reasons,
the gateways' timeline ingest (audited, scoped) and the pages that show it all."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from concilium.platform import audit, patients
from concilium.platform.db import transaction
from concilium.platform.tables import AuditEvent
from concilium.telesurgery.web.state import status_board


@pytest.fixture
def team(world):
    """A surgeon at Metz, an engineer at Briey with a gateway token, a Briey patient."""
    surgeon = world.user("metz-surgeon", (world.metz, "specialist"), with_totp=True)
    engineer = world.user("briey-engineer", (world.briey, "engineer"), with_totp=True)
    gateway_account = world.user("briey-gateway", (world.briey, "engineer"))
    with transaction(world.runtime.sessions) as db:
        patient = patients.create_patient(
            db,
            audit.Actor(surgeon.id, surgeon.username),
            world.briey.id,
            "BRY-1",
            patients.Demographics("Durand", "Anne"),
        )
    return {
        "surgeon": surgeon,
        "engineer": engineer,
        "gateway_token": world.token(gateway_account, "telesurgery:gateway"),
        "manage_token": world.token(engineer, "telesurgery:manage", "telesurgery:read"),
        "patient_id": patient.id,
    }


def plan(client, world, team):
    auth = {"authorization": f"Bearer {team['manage_token']}"}
    # The engineer holds a role at Briey only: planning needs the right at both sites.
    refused = client.post("/api/v1/telesurgery/procedures", json=body(world, team), headers=auth)
    assert refused.status_code == 403
    with transaction(world.runtime.sessions) as db:
        from concilium.platform.tables import Membership

        db.add(Membership(user_id=team["engineer"].id, site_id=world.metz.id, role="engineer"))
    created = client.post("/api/v1/telesurgery/procedures", json=body(world, team), headers=auth)
    assert created.status_code == 201, created.text
    return created.json(), auth


def body(world, team):
    return {
        "title": "Remote nephrectomy",
        "console_site_id": world.metz.id,
        "robot_site_id": world.briey.id,
        "surgeon_id": team["surgeon"].id,
        "robot_name": "Arm-2",
        "patient_id": team["patient_id"],
        "thresholds": {"safety": {"latency_halt_ms": 180.0}},
    }


def test_bad_input_is_answered_with_problem_json(client, world, team):
    auth = {"authorization": f"Bearer {team['manage_token']}"}
    for bad in (
        {**body(world, team), "thresholds": {"safety": {"latency_halt_ms": -1}}},
        {**body(world, team), "title": ""},
        {"title": "no sites"},
    ):
        response = client.post("/api/v1/telesurgery/procedures", json=bad, headers=auth)
        assert response.status_code in (403, 422), response.text
        assert response.headers["content-type"] == "application/problem+json"
    created, auth = plan(client, world, team)
    gateway = client.post(
        f"/api/v1/telesurgery/procedures/{created['id']}/gateways",
        json={"role": "surgeon-side", "public_name": "x"},
        headers=auth,
    )
    assert gateway.status_code == 422
    assert gateway.headers["content-type"] == "application/problem+json"
    keys = client.post(f"/api/v1/telesurgery/procedures/{created['id']}/keys", headers=auth)
    assert keys.status_code == 409
    assert "enrol the console and robot gateway first" in keys.json()["detail"]


def test_start_is_refused_with_reasons_and_the_refusal_is_audited(client, world, team):
    created, auth = plan(client, world, team)
    assert created["thresholds"]["safety"]["latency_halt_ms"] == 180.0
    assert created["link_class"] == "lan"
    assert "no passing link qualification" in created["start_refused_because"]
    surgeon_token = world.token(team["surgeon"], "telesurgery:manage")
    response = client.post(
        f"/api/v1/telesurgery/procedures/{created['id']}/start",
        headers={"authorization": f"Bearer {surgeon_token}"},
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert "no passing link qualification" in problem["reasons"]
    assert "the patient's consent for telesurgery is not recorded" in problem["reasons"]
    assert "the console and robot gateway is not enrolled" in problem["reasons"]
    # The engineer may manage but never start: that is the surgeon's act.
    by_engineer = client.post(f"/api/v1/telesurgery/procedures/{created['id']}/start", headers=auth)
    assert by_engineer.status_code == 403
    with world.runtime.sessions() as db:
        refused = (
            db.execute(
                select(AuditEvent).where(
                    AuditEvent.action == "procedure.start", AuditEvent.outcome == "refused"
                )
            )
            .scalars()
            .all()
        )
    assert len(refused) == 2
    assert "no passing link qualification" in refused[0].detail


def test_timeline_ingest_needs_the_gateway_scope_and_its_enrolment_token(client, world, team):
    created, auth = plan(client, world, team)
    url = f"/api/v1/telesurgery/procedures/{created['id']}"
    enrolled = client.post(
        f"{url}/gateways", json={"role": "robot", "public_name": "203.0.113.7:18950"}, headers=auth
    )
    assert enrolled.status_code == 201
    gateway_token = enrolled.json()["token"]
    report = {
        "events": [
            {"at": "2026-11-22T08:00:00Z", "kind": "transition", "state": "ENGAGED"},
            {
                "at": "2026-11-22T08:00:05Z",
                "kind": "transition",
                "state": "HOLD",
                "detail": "watchdog: no command for 50 ms",
            },
        ],
        "status": {"state": "HOLD", "latency_ms": 76.2, "jitter_ms": 0.8},
    }
    as_gateway = {"authorization": f"Bearer {team['gateway_token']}"}
    # A token without the gateway scope is refused, even the engineer's.
    assert client.post(f"{url}/timeline", json=report, headers=auth).status_code == 403
    # The right scope without the enrolment token is refused too.
    missing = client.post(f"{url}/timeline", json=report, headers=as_gateway)
    assert missing.status_code == 403
    assert "X-Gateway-Token" in missing.json()["detail"]
    headers = {**as_gateway, "x-gateway-token": gateway_token}
    ingested = client.post(f"{url}/timeline", json=report, headers=headers)
    assert ingested.status_code == 201, ingested.text
    assert [e["source"] for e in ingested.json()] == ["robot", "robot"]
    bad = client.post(
        f"{url}/timeline",
        json={"events": [{"at": "2026-11-22T08:00:00Z", "kind": "transition", "state": "FLY"}]},
        headers=headers,
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    read = client.get(url, headers=auth).json()
    assert read["state"] == "HOLD"
    timeline = client.get(f"{url}/timeline", headers=auth).json()
    assert [e["state"] for e in timeline if e["kind"] == "transition"] == ["ENGAGED", "HOLD"]
    with world.runtime.sessions() as db:
        audited = (
            db.execute(select(AuditEvent).where(AuditEvent.action == "procedure.transition"))
            .scalars()
            .all()
        )
    assert [json.loads(e.detail)["state"] for e in audited] == ["ENGAGED", "HOLD"]
    assert all(e.actor == "briey-gateway" for e in audited)
    assert gateway_token not in " ".join(e.detail for e in audited)
    board = status_board(client.app)
    assert board.latest(created["id"])[1]["latency_ms"] == 76.2


def test_the_procedure_page_shows_start_blocked_with_its_reasons(app, client, world, team):
    created, _ = plan(client, world, team)
    browser = world.client(app)
    world.sign_in(browser, team["engineer"])
    listing = browser.get("/telesurgery")
    assert "Remote nephrectomy" in listing.text
    page = browser.get(f"/telesurgery/{created['id']}")
    assert page.status_code == 200
    assert 'id="start-button" disabled' in page.text
    assert "no passing link qualification" in page.text
    assert "not recorded" in page.text
    assert f"/telesurgery/{created['id']}/supervise" in page.text
    supervise = browser.get(f"/telesurgery/{created['id']}/supervise")
    assert supervise.status_code == 200
    assert 'data-field="latency_ms"' in supervise.text
    assert browser.get(f"/telesurgery/{created['id']}/surgeon").status_code == 200


def test_planning_from_the_page_reports_bad_input_in_the_form(app, world, team):
    form = {
        "title": "Remote nephrectomy",
        "console_site_id": world.metz.id,
        "robot_site_id": world.briey.id,
        "surgeon": "nobody",
        "robot_name": "Arm",
        "patient": "BRY-1",
    }
    # The surgeon holds a role at Metz only: refused before any name is looked up, so the
    # answer says nothing of who exists at Briey.
    outsider = world.client(app)
    csrf = world.sign_in(outsider, team["surgeon"])
    refused = outsider.post("/telesurgery", data={"csrf_token": csrf, **form})
    assert refused.status_code == 403
    assert "nobody" not in refused.text
    with transaction(world.runtime.sessions) as db:
        from concilium.platform.tables import Membership

        db.add(Membership(user_id=team["engineer"].id, site_id=world.metz.id, role="engineer"))
    browser = world.client(app)
    csrf = world.sign_in(browser, team["engineer"])
    response = browser.post("/telesurgery", data={"csrf_token": csrf, **form})
    assert response.status_code == 422
    assert "nobody is named &#39;nobody&#39;" in response.text


def test_planning_from_the_page_records_the_chosen_link_class(app, world, team):
    with transaction(world.runtime.sessions) as db:
        from concilium.platform.tables import Membership

        db.add(Membership(user_id=team["engineer"].id, site_id=world.metz.id, role="engineer"))
        # The planner finds the patient among those they may see: a coordinator at Briey.
        db.add(Membership(user_id=team["engineer"].id, site_id=world.briey.id, role="coordinator"))
    browser = world.client(app)
    csrf = world.sign_in(browser, team["engineer"])
    form = browser.get("/telesurgery").text
    assert '<select id="f-link-class" name="link_class"' in form
    assert '<option value="intercontinental">' in form
    assert '<option value="lan" selected>' in form
    data = {
        "csrf_token": csrf,
        "title": "Remote nephrectomy",
        "console_site_id": world.metz.id,
        "robot_site_id": world.briey.id,
        "surgeon": team["surgeon"].username,
        "robot_name": "Arm",
        "patient": "BRY-1",
    }
    unknown = browser.post("/telesurgery", data={**data, "link_class": "orbital"})
    assert unknown.status_code == 422
    assert "unknown link class &#39;orbital&#39;" in unknown.text
    created = browser.post("/telesurgery", data={**data, "link_class": "intercontinental"})
    assert created.status_code == 303, created.text
    page = browser.get(created.headers["location"])
    assert "Planned for the link class intercontinental;" in page.text
    assert "<dt>command_freshness_ms</dt><dd>250.0</dd>" in page.text
    procedure_id = int(created.headers["location"].rsplit("/", 1)[1])
    token = world.token(team["engineer"], "telesurgery:read")
    api = browser.get(
        f"/api/v1/telesurgery/procedures/{procedure_id}",
        headers={"authorization": f"Bearer {token}"},
    ).json()
    assert api["link_class"] == "intercontinental"
    assert api["thresholds"]["limits"]["max_velocity_mm_s"] == 120.0


def test_a_blocked_start_from_the_page_lands_in_the_timeline(app, client, world, team):
    created, _ = plan(client, world, team)
    browser = world.client(app)
    csrf = world.sign_in(browser, team["surgeon"])
    page = browser.get(f"/telesurgery/{created['id']}")
    assert 'id="start-button" disabled' in page.text
    response = browser.post(f"/telesurgery/{created['id']}/start", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert response.headers["location"] == f"/telesurgery/{created['id']}"
    after = browser.get(f"/telesurgery/{created['id']}")
    assert "START refused: " in after.text
    assert ">planned</span>" in after.text


def test_a_coordinator_of_the_robot_site_links_a_video_the_surgeon_may_watch(
    app, client, world, team
):
    created, _ = plan(client, world, team)
    procedure_id = created["id"]
    coordinator = world.user("briey-coord", (world.briey, "coordinator"), with_totp=True)
    browser = world.client(app)
    csrf = world.sign_in(browser, coordinator)
    bad = browser.post(
        f"/telesurgery/{procedure_id}/video", data={"csrf_token": csrf, "live_session_id": "x1"}
    )
    assert bad.status_code == 422
    assert "a live session is given by its number" in bad.text
    missing = browser.post(
        f"/telesurgery/{procedure_id}/video", data={"csrf_token": csrf, "live_session_id": "999"}
    )
    assert missing.status_code == 404
    created_video = browser.post(f"/telesurgery/{procedure_id}/video", data={"csrf_token": csrf})
    assert created_video.status_code == 303, created_video.text
    page = browser.get(f"/telesurgery/{procedure_id}")
    found = re.search(r'href="/live/(\d+)">live session \1</a> \(live\)', page.text)
    assert found, page.text
    live_id = int(found.group(1))
    assert f"video: live session {live_id}" in page.text  # in the timeline

    # The surgeon (another site) was invited to watch: the page carries the live player.
    surgeon = world.client(app)
    world.sign_in(surgeon, team["surgeon"])
    view = surgeon.get(f"/telesurgery/{procedure_id}/surgeon")
    assert f'data-live-session="{live_id}"' in view.text
    assert "/static/telesurgery/surgeon-video.js" in view.text
    assert 'data-field="latency_badge"' in view.text
    # An engineer of the console site reads the procedure but was not invited: no picture.
    metz_engineer = world.user("metz-engineer", (world.metz, "engineer"), with_totp=True)
    outsider = world.client(app)
    world.sign_in(outsider, metz_engineer)
    other = outsider.get(f"/telesurgery/{procedure_id}/surgeon")
    assert other.status_code == 200
    assert "data-live-session" not in other.text
    assert f"live session {live_id}) is not shared with you" in other.text
    # The robot site's engineer manages the procedure but organises no live session.
    engineer = world.client(app)
    engineer_csrf = world.sign_in(engineer, team["engineer"])
    refused = engineer.post(
        f"/telesurgery/{procedure_id}/video", data={"csrf_token": engineer_csrf}
    )
    assert refused.status_code == 403
    with world.runtime.sessions() as db:
        linked = (
            db.execute(select(AuditEvent).where(AuditEvent.action == "procedure.video"))
            .scalars()
            .all()
        )
    assert len(linked) == 1
