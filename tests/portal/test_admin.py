"""Administering accounts as an attacker would try it: a site administrator reaching for the
platform administrator's account, granting themselves roles, minting tokens for others."""

from __future__ import annotations

from sqlalchemy import select

from concilium.platform.tables import ApiToken, AuditEvent, User


def signed_in(world, app, user):
    """A browser signed in as ``user`` (password and second factor), sending its CSRF token."""
    browser = world.client(app)
    browser.headers["x-csrf-token"] = world.sign_in(browser, user)
    return browser


def tokens_of(world, user):
    with world.runtime.sessions() as db:
        return db.execute(select(ApiToken).where(ApiToken.user_id == user.id)).scalars().all()


def test_a_site_administrator_cannot_become_platform_administrator(app, world, clock):
    """The platform administrator is also administrator at Metz; Metz's own administrator
    tries to mint a token for them (skipping their second factor), to change their roles
    and to disable them."""
    it = world.user("it-region", (world.metz, "admin"), platform_admin=True, with_totp=True)
    metz_admin = world.user("metz-admin", (world.metz, "admin"), with_totp=True)
    browser = signed_in(world, app, metz_admin)
    backdoor = {"name": "backdoor", "scopes": ["admin"], "user_id": it.id}
    minted = browser.post("/api/v1/tokens", json=backdoor)
    assert minted.status_code == 403, minted.text
    assert minted.headers["content-type"] == "application/problem+json"
    # Not even with the minter's own fresh second factor.
    clock.advance(seconds=30)
    minted = browser.post("/api/v1/tokens", json={**backdoor, "code": world.code(metz_admin)})
    assert minted.status_code == 403, minted.text
    assert tokens_of(world, it) == []
    roles = browser.put(
        f"/api/v1/users/{it.id}/roles",
        json={"roles": [{"site_id": world.metz.id, "role": "learner"}]},
    )
    assert roles.status_code == 403
    assert browser.post(f"/api/v1/users/{it.id}/disable").status_code == 403
    # Nor through the pages: the account page offers no management and refuses it.
    page = browser.get(f"/admin/users/{it.id}")
    assert page.status_code == 200 and f"/admin/users/{it.id}/disable" not in page.text
    form = browser.post(f"/admin/users/{it.id}/disable")
    assert form.status_code == 403
    with world.runtime.sessions() as db:
        stored = db.get(User, it.id)
        assert stored is not None and not stored.disabled
        assert {(m.site_id, m.role) for m in stored.memberships} == {(world.metz.id, "admin")}
        refused = (
            db.execute(
                select(AuditEvent.action).where(
                    AuditEvent.outcome == "refused", AuditEvent.actor == "metz-admin"
                )
            )
            .scalars()
            .all()
        )
    assert {"token.manage", "user.manage"} <= set(refused)


def test_an_account_reaching_another_site_is_managed_by_who_administers_both(app, world, clock):
    both = world.user("dr-both", (world.metz, "radiologist"), (world.briey, "radiologist"))
    metz_admin = world.user("metz-admin", (world.metz, "admin"), with_totp=True)
    browser = signed_in(world, app, metz_admin)
    clock.advance(seconds=30)
    minted = browser.post(
        "/api/v1/tokens",
        json={
            "name": "x",
            "scopes": ["patients:read"],
            "user_id": both.id,
            "code": world.code(metz_admin),
        },
    )
    assert minted.status_code == 403
    changed = browser.put(
        f"/api/v1/users/{both.id}/roles",
        json={"roles": [{"site_id": world.metz.id, "role": "learner"}]},
    )
    assert changed.status_code == 403
    # The administrator of both sites may.
    regional = world.user(
        "admin-both", (world.metz, "admin"), (world.briey, "admin"), with_totp=True
    )
    other = signed_in(world, app, regional)
    changed = other.put(
        f"/api/v1/users/{both.id}/roles",
        json={"roles": [{"site_id": world.metz.id, "role": "radiologist"}]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["roles"] == [{"site_id": world.metz.id, "role": "radiologist"}]


def test_nobody_grants_themselves_a_role(app, world):
    metz_admin = world.user("metz-admin", (world.metz, "admin"), with_totp=True)
    browser = signed_in(world, app, metz_admin)
    own = browser.put(
        f"/api/v1/users/{metz_admin.id}/roles",
        json={
            "roles": [
                {"site_id": world.metz.id, "role": "admin"},
                {"site_id": world.metz.id, "role": "radiologist"},
            ]
        },
    )
    assert own.status_code == 403
    page = browser.post(
        f"/admin/users/{metz_admin.id}/roles", data={"grant": f"{world.metz.id}:radiologist"}
    )
    assert page.status_code == 403
    it = world.user("it-region", platform_admin=True, with_totp=True)
    platform = signed_in(world, app, it)
    clinical = platform.put(
        f"/api/v1/users/{it.id}/roles",
        json={"roles": [{"site_id": world.metz.id, "role": "radiologist"}]},
    )
    assert clinical.status_code == 403
    with world.runtime.sessions() as db:
        assert {m.role for m in db.get(User, metz_admin.id).memberships} == {"admin"}
        assert db.get(User, it.id).memberships == []


def test_a_platform_administrator_holds_no_clinical_role(app, world):
    """Administrators administer, never read patient data: not even by a colleague's grant."""
    it = world.user("it-region", platform_admin=True, with_totp=True)
    colleague = world.user("it-deputy", platform_admin=True, with_totp=True)
    browser = signed_in(world, app, colleague)
    clinical = browser.put(
        f"/api/v1/users/{it.id}/roles",
        json={"roles": [{"site_id": world.metz.id, "role": "specialist"}]},
    )
    assert clinical.status_code == 422
    assert "clinical" in clinical.json()["detail"]
    administrative = browser.put(
        f"/api/v1/users/{it.id}/roles",
        json={"roles": [{"site_id": world.metz.id, "role": "admin"}]},
    )
    assert administrative.status_code == 200


def test_a_token_for_someone_else_needs_the_minters_second_factor_and_is_notified(
    app, world, clock
):
    coord = world.user("metz-coord", (world.metz, "coordinator"))
    metz_admin = world.user("metz-admin", (world.metz, "admin"), with_totp=True)
    browser = signed_in(world, app, metz_admin)
    body = {"name": "ward screen", "scopes": ["patients:read"], "user_id": coord.id}
    assert browser.post("/api/v1/tokens", json=body).status_code == 403
    assert browser.post("/api/v1/tokens", json={**body, "code": "000000"}).status_code == 403
    # The code that signed the administrator in was used once already.
    clock.advance(seconds=30)
    fresh = world.code(metz_admin)
    # A token never carries more than its user: a coordinator has no use for audit:read.
    beyond = browser.post("/api/v1/tokens", json={**body, "scopes": ["audit:read"], "code": fresh})
    assert beyond.status_code == 422 and "audit:read" in beyond.json()["detail"]
    clock.advance(seconds=30)
    minted = browser.post("/api/v1/tokens", json={**body, "code": world.code(metz_admin)})
    assert minted.status_code == 201, minted.text
    assert minted.json()["user_id"] == coord.id
    # The coordinator learns of it on their home page.
    home = signed_in(world, app, coord).get("/").text
    assert "ward screen" in home and "metz-admin" in home
    with world.runtime.sessions() as db:
        failures = (
            db.execute(
                select(AuditEvent.detail).where(
                    AuditEvent.action == "token.create", AuditEvent.outcome == "refused"
                )
            )
            .scalars()
            .all()
        )
    assert len(failures) == 2  # no code, wrong code: both recorded


def test_a_token_is_bound_by_its_users_rights(client, world):
    it = world.user("it-region", platform_admin=True)
    refused = client.post(
        "/api/v1/tokens",
        headers={"authorization": f"Bearer {world.token(it, 'admin')}"},
        json={"name": "reader", "scopes": ["patients:read"]},
    )
    assert refused.status_code == 422
    assert tokens_of(world, it)[0].scopes == ["admin"]
