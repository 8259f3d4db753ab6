"""One's own account as a person uses it: changing the password, and the set-up and reset
links by which a person chooses their password and enrols their authenticator."""

from __future__ import annotations

import re

import pyotp
from sqlalchemy import select

from concilium.platform.tables import AccountLink, AuditEvent, Notification, User, WebSession

PASSWORD = "correct-horse-42"  # as tests/conftest.py gives every user

NEW_PASSWORD = "a-better-secret-77"


def signed_in(world, app, user):
    browser = world.client(app)
    browser.headers["x-csrf-token"] = world.sign_in(browser, user)
    return browser


def link_in(page):
    found = re.search(r'class="secret" data-copy>(https?://[^<]+/account/setup/[^<]+)<', page)
    assert found, page
    return found.group(1)


def use_link(world, browser, url, password=NEW_PASSWORD, code=None):
    """Open a set-up or reset link, choose ``password``, scan the QR code (read the key
    shown beside it) and send its code; the answer and the authenticator key."""
    path = url.split("://", 1)[1].split("/", 1)[1]
    page = browser.get(f"/{path}")
    assert page.status_code == 200, page.text
    assert "<svg" in page.text  # the QR code, inline
    key = page.text.split('class="secret" data-copy>')[1].split("<")[0]
    form = {
        "sealed": world.hidden(page.text, "sealed"),
        "password": password,
        "password_again": password,
        "code": pyotp.TOTP(key).at(world.runtime.now()) if code is None else code,
    }
    return browser.post(f"/{path}", data=form), key


def audit_actions(world):
    with world.runtime.sessions() as db:
        return db.execute(select(AuditEvent.action).order_by(AuditEvent.seq)).scalars().all()


def test_a_person_changes_their_password_with_the_current_one_and_their_second_factor(
    app, world, clock
):
    user = world.user("dr-pw", (world.metz, "radiologist"), with_totp=True)
    browser = signed_in(world, app, user)
    clock.advance(seconds=30)
    phone = signed_in(world, app, user)
    clock.advance(seconds=30)
    form = {
        "current_password": PASSWORD,
        "new_password": NEW_PASSWORD,
        "new_password_again": NEW_PASSWORD,
        "code": world.code(user),
    }
    wrong_password = browser.post("/account/password", data={**form, "current_password": "x" * 12})
    assert wrong_password.status_code == 422 and "current password is wrong" in wrong_password.text
    no_code = browser.post("/account/password", data={**form, "code": ""})
    assert no_code.status_code == 422
    differ = browser.post("/account/password", data={**form, "new_password_again": "other-one-99"})
    assert differ.status_code == 422
    changed = browser.post("/account/password", data={**form, "code": world.code(user)})
    assert changed.status_code == 303, changed.text
    assert browser.get("/account").status_code == 200  # this browser stays signed in
    assert phone.get("/").status_code == 303  # the other session ended
    other = world.client(app)
    assert world.start_login(other, user.username).status_code == 401
    clock.advance(seconds=30)
    world.sign_in(other, user, NEW_PASSWORD)
    with world.runtime.sessions() as db:
        stored = db.get(User, user.id)
        assert stored is not None and stored.failed_logins == 0
        notices = (
            db.execute(select(Notification.kind).where(Notification.user_id == user.id))
            .scalars()
            .all()
        )
    assert "account.password" in notices
    assert "auth.password.change" in audit_actions(world)


def test_wrong_current_passwords_count_towards_the_lockout(app, world):
    user = world.user("coord-pw", (world.metz, "coordinator"))
    browser = signed_in(world, app, user)
    form = {"new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD}
    for _ in range(world.runtime.settings.login_max_failures):
        wrong = browser.post("/account/password", data={**form, "current_password": "x1" * 6})
        assert wrong.status_code == 422
    # The account is locked: the session ended, the right password no longer signs in.
    assert browser.get("/account").status_code == 303
    assert world.start_login(world.client(app), user.username).status_code == 401


def test_an_api_token_cannot_change_its_users_password(client, world):
    user = world.user("coord-tok", (world.metz, "coordinator"))
    refused = client.post(
        "/account/password",
        headers={"authorization": f"Bearer {world.token(user, 'patients:read')}"},
        data={
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_again": NEW_PASSWORD,
        },
    )
    assert refused.status_code == 403
    assert world.start_login(world.client(client.app), user.username).status_code == 303


def test_a_new_account_sets_its_password_and_second_factor_through_its_link(app, world, clock):
    admin = world.user("metz-admin", (world.metz, "admin"), with_totp=True)
    browser = signed_in(world, app, admin)
    created = browser.post(
        "/admin/users",
        data={
            "username": "jdoe",
            "full_name": "Jeanne Doe",
            "site_id": str(world.metz.id),
            "role": "specialist",
        },
    )
    assert created.status_code == 201, created.text
    url = link_in(created.text)
    assert url.startswith(world.runtime.settings.public_url)
    # Shown once: the user's page does not show it again, and only its hash is stored.
    with world.runtime.sessions() as db:
        jdoe = db.execute(select(User).where(User.username == "jdoe")).scalar_one()
        stored = db.execute(select(AccountLink.secret_hash)).scalars().all()
    assert url not in browser.get(f"/admin/users/{jdoe.id}").text
    assert stored and all(url.rsplit("/", 1)[1] not in h for h in stored)
    # No password works before the link is used.
    newcomer = world.client(app)
    assert world.start_login(newcomer, "jdoe", NEW_PASSWORD).status_code == 401
    # A specialist must enrol an authenticator: the link refuses a missing code.
    refused, _ = use_link(world, newcomer, url, code="")
    assert refused.status_code == 422
    done, key = use_link(world, newcomer, url)
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert "Welcome, Jeanne Doe" in newcomer.get("/").text
    # The link worked once.
    again = newcomer.get("/" + url.split("/", 3)[3])
    assert again.status_code == 404
    # Signing in again takes the new password and the authenticator just enrolled.
    clock.advance(seconds=30)
    later = world.client(app)
    assert (
        world.start_login(later, "jdoe", NEW_PASSWORD).headers["location"].startswith("/login/totp")
    )
    csrf = world.csrf(later, "/login/totp")
    code = pyotp.TOTP(key).at(world.runtime.now())
    assert later.post("/login/totp", data={"code": code, "csrf_token": csrf}).status_code == 303
    assert {"account.setup_link", "account.setup"} <= set(audit_actions(world))


def test_a_reset_link_replaces_password_and_second_factor(app, world, clock):
    """A radiologist lost their phone: their administrator issues a reset link (with a code
    of their own authenticator); until it is used nothing changes; then the old password
    and the old authenticator stop working."""
    doctor = world.user("dr-lost", (world.metz, "radiologist"), with_totp=True)
    old_key = world.totp_secret(doctor)
    old_session = signed_in(world, app, doctor)
    admin = world.user("metz-admin", (world.metz, "admin"), with_totp=True)
    browser = signed_in(world, app, admin)
    refused = browser.post(f"/admin/users/{doctor.id}/reset-link", data={"code": "000000"})
    assert refused.status_code == 403
    clock.advance(seconds=30)
    issued = browser.post(f"/admin/users/{doctor.id}/reset-link", data={"code": world.code(admin)})
    assert issued.status_code == 201, issued.text
    first = link_in(issued.text)
    clock.advance(seconds=30)
    issued = browser.post(f"/admin/users/{doctor.id}/reset-link", data={"code": world.code(admin)})
    url = link_in(issued.text)
    # Only the latest link works; the old password still does until it is used.
    assert world.client(app).get("/" + first.split("/", 3)[3]).status_code == 404
    assert world.start_login(world.client(app), doctor.username).status_code == 303
    browser_of_doctor = world.client(app)
    done, new_key = use_link(world, browser_of_doctor, url)
    assert done.status_code == 303
    assert new_key != old_key
    assert old_session.get("/").status_code == 303
    assert world.start_login(world.client(app), doctor.username).status_code == 401
    clock.advance(seconds=30)
    other = world.client(app)
    world.start_login(other, doctor.username, NEW_PASSWORD)
    csrf = world.csrf(other, "/login/totp")
    stale = pyotp.TOTP(old_key).at(world.runtime.now())
    assert other.post("/login/totp", data={"code": stale, "csrf_token": csrf}).status_code == 401
    fresh = pyotp.TOTP(new_key).at(world.runtime.now())
    assert other.post("/login/totp", data={"code": fresh, "csrf_token": csrf}).status_code == 303
    with world.runtime.sessions() as db:
        kinds = (
            db.execute(select(Notification.kind).where(Notification.user_id == doctor.id))
            .scalars()
            .all()
        )
    assert "account.reset_link" in kinds and "account.password" in kinds


def test_a_link_expires_and_reaches_no_further_than_its_issuer(app, world, clock):
    it = world.user("it-region", (world.metz, "admin"), platform_admin=True, with_totp=True)
    coord = world.user("metz-coord", (world.metz, "coordinator"))
    admin = world.user("metz-admin", (world.metz, "admin"), with_totp=True)
    browser = signed_in(world, app, admin)
    clock.advance(seconds=30)
    beyond = browser.post(f"/api/v1/users/{it.id}/reset-link", json={"code": world.code(admin)})
    assert beyond.status_code == 403
    assert (
        browser.post(
            f"/api/v1/users/{admin.id}/reset-link", json={"code": world.code(admin)}
        ).status_code
        == 403
    )  # nobody issues one for themselves
    clock.advance(seconds=30)
    issued = browser.post(f"/api/v1/users/{coord.id}/reset-link", json={"code": world.code(admin)})
    assert issued.status_code == 201, issued.text
    url = issued.json()["url"]
    clock.advance(hours=world.runtime.settings.account_link_hours, seconds=1)
    page = world.client(app).get("/" + url.split("/", 3)[3])
    assert page.status_code == 404 and "no longer works" in page.text
    assert world.client(app).get("/account/setup/made-up-secret").status_code == 404


def test_the_api_creates_an_account_with_a_set_up_link(client, world):
    admin = world.user("metz-admin", (world.metz, "admin"))
    created = client.post(
        "/api/v1/users",
        headers={"authorization": f"Bearer {world.token(admin, 'admin')}"},
        json={
            "username": "tech2",
            "full_name": "Tech Two",
            "roles": [{"site_id": world.metz.id, "role": "technologist"}],
        },
    )
    assert created.status_code == 201, created.text
    link = created.json()["setup_link"]
    assert link["purpose"] == "setup" and "/account/setup/" in link["url"]
    # A technologist's role needs no second factor: the code may be left empty.
    done, _ = use_link(world, world.client(client.app), link["url"], code="")
    assert done.status_code == 303
    assert world.start_login(world.client(client.app), "tech2", NEW_PASSWORD).status_code == 303
    with world.runtime.sessions() as db:
        assert db.execute(select(WebSession)).first() is not None
