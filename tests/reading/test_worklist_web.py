"""The radiologist's worklist, page and API: the on-call radiologist of CHR Metz sees a
Briey exam routed at 02:00 on a Saturday, opens it (audited) and claims it; a radiologist
outside the routed group is refused (403, audited); two concurrent claims, one winner."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.tables import AuditEvent, User
from concilium.reading import groups
from concilium.reading.tables import ImagingOrderRecord, ReadingAssignment

from .reading_groups import Groups, on_call_groups
from .test_worklist_source import briey, order  # noqa: F401 - the fixture


@pytest.fixture
def routed(runtime, world, briey) -> tuple[Groups, int]:  # noqa: F811 - the fixture
    """The on-call groups, Dr Garde (Metz) reading for Briey in the on-call group, and a
    Briey STAT CT at 02:00 on Saturday 7 March 2026 routed to it."""
    rota = on_call_groups(runtime, world)
    for name in ("garde", "garde2"):
        user = world.user(name, (world.metz, "radiologist"), with_totp=True)
        with transaction(runtime.sessions) as db:
            group = groups.group_by_name(db, "Garde Metz")
            assert group is not None
            member = groups.add_member(db, audit.SYSTEM, group, user.id)
            groups.add_credential(db, audit.SYSTEM, member, world.briey.id)
    world.user("autre", (world.metz, "radiologist"))
    order(runtime, "ACC-SAT", "20260307020000")
    with transaction(runtime.sessions) as db:
        exam = db.execute(select(ReadingAssignment.id)).scalar_one()
    return rota, exam


def bearer(world, username: str) -> dict[str, str]:
    with transaction(world.runtime.sessions) as db:
        user = db.execute(select(User).where(User.username == username)).scalar_one()
        db.expunge(user)
    return {"Authorization": f"Bearer {world.token(user, 'reading:read')}"}


def test_the_on_call_radiologist_sees_opens_and_claims_the_exam(client, world, routed):
    rota, exam = routed
    garde = bearer(world, "garde")
    listed = client.get("/api/v1/reading/worklist", headers=garde)
    assert listed.status_code == 200, listed.text
    [entry] = listed.json()
    assert entry["id"] == exam
    assert entry["accession_number"] == "ACC-SAT"
    assert (entry["priority"], entry["modality"]) == ("STAT", "CT")
    assert entry["site"]["name"] == "CH Briey"
    assert entry["group"]["id"] == rota.metz
    # Scheduled 02:00 in Paris; the STAT target is an hour later, in the site's zone.
    assert entry["scheduled_at"] == "2026-03-07T02:00:00+01:00"
    assert entry["due_at"] == "2026-03-07T03:00:00+01:00"
    assert entry["claimed_by"] is None
    # The filters.
    assert client.get("/api/v1/reading/worklist?priority=routine", headers=garde).json() == []
    assert client.get("/api/v1/reading/worklist?modality=MR", headers=garde).json() == []
    assert len(client.get("/api/v1/reading/worklist?modality=ct", headers=garde).json()) == 1
    metz_only = client.get(f"/api/v1/reading/worklist?site_id={world.metz.id}", headers=garde)
    assert metz_only.json() == []
    assert client.get(f"/api/v1/reading/worklist?group_id={rota.briey}", headers=garde).json() == []

    opened = client.get(f"/api/v1/reading/exams/{exam}", headers=garde)
    assert opened.status_code == 200, opened.text
    body = opened.json()
    assert body["patient"]["family_name"] == "Lefèvre"
    assert body["site"]["name"] == "CH Briey"
    assert body["priors"] == []

    claimed = client.post(f"/api/v1/reading/exams/{exam}/claim", headers=garde)
    assert claimed.status_code == 200, claimed.text
    [entry] = client.get("/api/v1/reading/worklist", headers=garde).json()
    assert (entry["claimed_by"], entry["mine"]) == ("garde", True)
    other = client.post(f"/api/v1/reading/exams/{exam}/claim", headers=bearer(world, "garde2"))
    assert other.status_code == 409
    assert other.headers["content-type"].startswith("application/problem+json")

    with world.runtime.sessions() as db:
        actions = db.execute(
            select(AuditEvent.action, AuditEvent.patient_id).where(
                AuditEvent.action.like("reading.exam.%")
            )
        ).all()
    assert [a for a, _ in actions] == ["reading.exam.read", "reading.exam.claim"]
    assert all(patient for _, patient in actions)


def test_a_radiologist_outside_the_routed_group_is_refused_and_audited(client, world, routed):
    _, exam = routed
    autre = bearer(world, "autre")
    assert client.get("/api/v1/reading/worklist", headers=autre).json() == []
    for method, path in [
        ("GET", f"/api/v1/reading/exams/{exam}"),
        ("POST", f"/api/v1/reading/exams/{exam}/claim"),
    ]:
        response = client.request(method, path, headers=autre)
        assert response.status_code == 403, path
        assert response.headers["content-type"].startswith("application/problem+json")
    with world.runtime.sessions() as db:
        refused = (
            db.execute(select(AuditEvent.action).where(AuditEvent.outcome == "refused"))
            .scalars()
            .all()
        )
        holder = db.execute(select(ReadingAssignment.claimed_by_id)).scalar_one()
    assert refused.count("reading.exam.read") == 2
    assert holder is None


def test_the_grant_ends_when_the_order_is_completed(client, world, runtime, routed):
    _, exam = routed
    garde = bearer(world, "garde")
    with transaction(runtime.sessions) as db:
        db.execute(select(ImagingOrderRecord)).scalar_one().status = "COMPLETED"
    assert client.get("/api/v1/reading/worklist", headers=garde).json() == []
    assert client.get(f"/api/v1/reading/exams/{exam}", headers=garde).status_code == 403


def test_two_concurrent_claims_over_http_one_wins(app, world, routed):
    _, exam = routed
    headers = [bearer(world, name) for name in ("garde", "garde2")]
    clients = [world.client(app) for _ in headers]
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def attempt(index: int) -> None:
        barrier.wait(timeout=10)
        response = clients[index].post(
            f"/api/v1/reading/exams/{exam}/claim", headers=headers[index]
        )
        codes.append(response.status_code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(codes) == [200, 409]


def test_the_page_lists_the_exam_in_french_and_claims_it(app, world, routed):
    _, exam = routed
    browser = world.client(app)
    browser.headers["Accept-Language"] = "fr"
    with world.runtime.sessions() as db:
        garde = db.execute(select(User).where(User.username == "garde")).scalar_one()
        db.expunge(garde)
    csrf = world.sign_in(browser, garde)
    page = browser.get("/reading")
    assert page.status_code == 200, page.text
    assert "Liste de lecture" in page.text
    assert "ACC-SAT" in page.text and "CH Briey" in page.text
    assert "07/03/2026 03:00" in page.text
    opened = browser.get(f"/reading/exams/{exam}")
    assert opened.status_code == 200, opened.text
    assert "LEFÈVRE Hélène" in opened.text
    assert "Aucun examen antérieur." in opened.text and "Pas encore d'images." in opened.text
    assert f'action="/reading/exams/{exam}/claim"' in opened.text
    claimed = browser.post(f"/reading/exams/{exam}/claim", data={"csrf_token": csrf})
    assert claimed.status_code == 303
    page = browser.get("/reading")
    assert "Libérer l'examen" in page.text
