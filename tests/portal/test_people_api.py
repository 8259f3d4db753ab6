"""GET /api/v1/people: who may search the directory, its filters, bad parameters."""

from __future__ import annotations

from sqlalchemy import delete

from concilium.platform import accounts, audit
from concilium.platform.accounts import RoleGrant
from concilium.platform.db import transaction
from concilium.platform.tables import Membership


def bearer(world, user, scope="patients:read"):
    """The directory needs no particular scope: any token of its user will do."""
    return {"authorization": f"Bearer {world.token(user, scope)}"}


def colleague(world, username, full_name, site, role, specialty=""):
    with transaction(world.runtime.sessions) as db:
        accounts.create_user(
            db,
            audit.SYSTEM,
            username=username,
            full_name=full_name,
            password=None,
            roles=[RoleGrant(site.id, role)],
            specialty=specialty,
        )


def test_a_colleague_of_any_hospital_is_found_with_where_they_work(client, world):
    asker = world.user("coord", (world.metz, "coordinator"))
    colleague(world, "mdupont", "Marie Dupont", world.briey, "specialist", "Cardiologie")
    found = client.get("/api/v1/people?q=dupont", headers=bearer(world, asker))
    assert found.status_code == 200
    [marie] = found.json()
    assert marie["username"] == "mdupont"
    assert marie["full_name"] == "Marie Dupont"
    assert marie["specialty"] == "Cardiologie"
    assert marie["hospitals"] == [{"id": world.briey.id, "name": "CH Briey"}]


def test_filters_by_hospital_and_specialty(client, world):
    asker = world.user("coord", (world.metz, "coordinator"))
    colleague(world, "mdupont", "Marie Dupont", world.briey, "specialist", "Cardiologie")
    colleague(world, "pdupuis", "Paul Dupuis", world.metz, "radiologist", "Radiologie")
    h = bearer(world, asker)

    def usernames(query):
        response = client.get(f"/api/v1/people?{query}", headers=h)
        assert response.status_code == 200, response.text
        return [p["username"] for p in response.json()]

    assert usernames("q=dup") == ["mdupont", "pdupuis"]
    assert usernames(f"q=dup&site_id={world.metz.id}") == ["pdupuis"]
    assert usernames("q=dup&specialty=cardio") == ["mdupont"]
    assert usernames("q=dup&limit=1") == ["mdupont"]


def test_disabled_people_are_not_found(client, world):
    asker = world.user("coord", (world.metz, "coordinator"))
    colleague(world, "mdupont", "Marie Dupont", world.briey, "specialist")
    h = bearer(world, asker)
    [marie] = client.get("/api/v1/people?q=dupont", headers=h).json()
    with transaction(world.runtime.sessions) as db:
        accounts.get_user(db, marie["id"]).disabled = True
    assert client.get("/api/v1/people?q=dupont", headers=h).json() == []


def test_only_people_with_a_role_may_search(client, world):
    asker = world.user("coord", (world.metz, "coordinator"))
    assert client.get("/api/v1/people?q=co").status_code == 401
    # An account holding no role at any site (a platform administrator's is the only kind)
    # finds people through its office; one that lost every role finds nobody.
    admin = world.user("root", platform_admin=True)
    by_admin = client.get("/api/v1/people?q=coord", headers=bearer(world, admin, "admin"))
    assert [p["username"] for p in by_admin.json()] == ["coord"]
    h = bearer(world, asker)
    with transaction(world.runtime.sessions) as db:
        db.execute(delete(Membership).where(Membership.user_id == asker.id))
    refused = client.get("/api/v1/people?q=co", headers=h)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"


def test_bad_parameters_are_a_problem(client, world):
    h = bearer(world, world.user("coord", (world.metz, "coordinator")))
    for query in ("site_id=metz", "limit=0", "limit=51", "q=" + "x" * 101, "site_id=0"):
        response = client.get(f"/api/v1/people?{query}", headers=h)
        assert response.status_code == 422, query
        assert response.headers["content-type"] == "application/problem+json"


def test_the_share_form_names_the_person_by_user_name(client, app, world, clock):
    coord = world.user("coord", (world.metz, "coordinator"), with_totp=True)
    colleague(world, "mdupont", "Marie Dupont", world.briey, "specialist")
    api = bearer(world, coord, "patients:write")
    body = {"site_id": world.metz.id, "identifier": "MTZ-1", "family_name": "X", "given_name": "Y"}
    pid = client.post("/api/v1/patients", json=body, headers=api).json()["id"]
    browser = world.client(app)
    world.sign_in(browser, coord)
    page = browser.get(f"/patients/{pid}")
    assert 'name="to_user"' in page.text and 'data-people-search="/api/v1/people"' in page.text
    csrf = world.hidden(page.text)
    until = (clock.now.date()).isoformat()
    unknown = browser.post(
        f"/patients/{pid}/shares",
        data={"csrf_token": csrf, "to_user": "mdupond", "expires_on": until},
    )
    assert unknown.status_code == 422
    assert "Nobody has the user name mdupond." in unknown.text
    shared = browser.post(
        f"/patients/{pid}/shares",
        data={"csrf_token": csrf, "to_user": "mdupont", "expires_on": until},
    )
    assert shared.status_code == 303, shared.text
    shares = client.get(f"/api/v1/patients/{pid}/shares", headers=api).json()
    marie = client.get("/api/v1/people?q=mdupont", headers=api).json()[0]
    assert [s["to_user_id"] for s in shares] == [marie["id"]]
