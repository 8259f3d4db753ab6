"""Signing in as a person does: password, second factor, sessions that end, forms that need
their CSRF token, API tokens that expire."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta

import psycopg
from sqlalchemy import select
from sqlalchemy.engine import make_url

from concilium.platform.db import transaction
from concilium.platform.tables import Alert, AuditEvent, Notification, User, WebSession


def audit_actions(world, outcome=None):
    with world.runtime.sessions() as db:
        query = select(AuditEvent.action, AuditEvent.outcome).order_by(AuditEvent.seq)
        rows = db.execute(query).all()
    return [a for a, o in rows if outcome is None or o == outcome]


def test_password_then_totp_signs_in_and_is_audited(client, world):
    user = world.user("dr-reader", (world.metz, "radiologist"), with_totp=True)
    response = world.start_login(client, user.username)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login/totp")
    # Half signed in: nothing but the second-factor page is reachable.
    assert client.get("/").status_code == 303
    csrf = world.csrf(client, "/login/totp")
    wrong = client.post("/login/totp", data={"code": "000000", "csrf_token": csrf})
    assert wrong.status_code == 401
    ok = client.post("/login/totp", data={"code": world.code(user), "csrf_token": csrf})
    assert ok.status_code == 303
    home = client.get("/")
    assert home.status_code == 200
    assert "Welcome, Dr-Reader" in home.text
    assert audit_actions(world, "failure")[-1] == "auth.totp"
    successes = audit_actions(world, "success")
    assert successes[-2:] == ["auth.login", "study.query"]  # her home lists her studies


def test_totp_code_cannot_be_replayed(client, world):
    user = world.user("dr-replay", (world.metz, "radiologist"), with_totp=True)
    code = world.code(user)
    world.start_login(client, user.username)
    csrf = world.csrf(client, "/login/totp")
    assert client.post("/login/totp", data={"code": code, "csrf_token": csrf}).status_code == 303
    other = world.client(client.app)
    world.start_login(other, user.username)
    csrf = world.csrf(other, "/login/totp")
    assert other.post("/login/totp", data={"code": code, "csrf_token": csrf}).status_code == 401


def test_no_second_factor_is_enrolled_at_a_first_sign_in(client, world):
    """Whoever knows an account's first password (its administrator, a shoulder) cannot
    enrol their own authenticator on it: a second factor comes through a set-up link."""
    user = world.user("dr-new", (world.metz, "radiologist"))
    response = world.start_login(client, user.username)
    assert response.status_code == 401
    assert "set-up link" in response.text
    assert client.get("/login/enrol").status_code in (303, 404)
    assert client.get("/").status_code == 303
    with world.runtime.sessions() as db:
        stored = db.get(User, user.id)
        assert stored is not None and stored.totp_secret is None
        assert db.execute(select(WebSession)).first() is None


def error_of(page):
    start = page.index('role="alert">') + len('role="alert">')
    return page[start : page.index("<", start)]


def test_user_without_mfa_role_signs_in_with_password_only(client, world):
    user = world.user("coord", (world.metz, "coordinator"))
    world.sign_in(client, user)
    assert client.get("/").status_code == 200


def test_lockout_after_repeated_failures(client, world, clock):
    user = world.user("coord-lock", (world.metz, "coordinator"))
    for _ in range(world.runtime.settings.login_max_failures):
        assert world.start_login(client, user.username, "wrong-password-1").status_code == 401
    # Even the right password is refused while locked, with the answer an unknown user
    # gets: the refusal tells nobody that the account exists.
    locked = world.start_login(client, user.username)
    unknown = world.start_login(client, "nobody-here", "wrong-password-1")
    assert locked.status_code == unknown.status_code == 401
    assert "locked" not in locked.text
    assert error_of(locked.text) == error_of(unknown.text) == "unknown user name or wrong password"
    clock.advance(minutes=world.runtime.settings.lockout_minutes + 1)
    assert world.start_login(client, user.username).status_code == 303
    assert "auth.login" in audit_actions(world, "refused")


def test_address_throttling(client, world):
    limit = world.runtime.settings.login_ip_limit_per_minute
    for _ in range(limit):
        world.start_login(client, "nobody", "wrong-password-1")
    assert world.start_login(client, "nobody", "wrong-password-1").status_code == 429


def test_idle_timeout_ends_session(client, world, clock):
    user = world.user("coord-idle", (world.metz, "coordinator"))
    world.sign_in(client, user)
    clock.advance(minutes=29)
    assert client.get("/").status_code == 200  # activity resets the idle timer
    clock.advance(minutes=29)
    assert client.get("/").status_code == 200
    clock.advance(minutes=31)
    response = client.get("/")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_absolute_timeout_ends_active_session(client, world, clock):
    user = world.user("coord-abs", (world.metz, "coordinator"))
    world.sign_in(client, user)
    for _ in range(12 * 3 - 1):
        clock.advance(minutes=20)
        assert client.get("/").status_code == 200
    clock.advance(minutes=21)
    # Just over 12 h after sign-in: ended, despite activity every 20 minutes.
    assert client.get("/").status_code == 303


def test_session_cookie_attributes(client, world):
    user = world.user("coord-cookie", (world.metz, "coordinator"))
    response = world.start_login(client, user.username)
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie


def test_logout_ends_every_session(client, world):
    user = world.user("coord-out", (world.metz, "coordinator"))
    csrf = world.sign_in(client, user)
    phone = world.client(client.app)
    world.sign_in(phone, user)
    assert phone.get("/").status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 303
    assert phone.get("/").status_code == 303
    with world.runtime.sessions() as db:
        assert db.execute(select(WebSession).where(WebSession.user_id == user.id)).first() is None


def test_state_changing_forms_need_csrf_token(client, world):
    admin = world.user("site-admin", (world.metz, "admin"), with_totp=True)
    csrf = world.sign_in(client, admin)
    form = {
        "username": "newbie",
        "full_name": "New Bie",
        "site_id": str(world.metz.id),
        "role": "learner",
    }
    assert client.post("/admin/users", data=form).status_code == 403
    assert client.post("/admin/users", data={**form, "csrf_token": "forged"}).status_code == 403
    assert client.post("/logout", data={}).status_code == 403
    created = client.post("/admin/users", data={**form, "csrf_token": csrf})
    assert created.status_code == 201
    # JSON calls with the session cookie need the header instead.
    assert client.post("/api/v1/users/1/disable").status_code == 403


def test_login_form_needs_its_csrf_token(client, world):
    user = world.user("coord-csrf", (world.metz, "coordinator"))
    response = client.post("/login", data={"username": user.username, "password": "x" * 12})
    assert response.status_code == 403


def test_disabled_user_cannot_sign_in_and_loses_sessions(client, world):
    admin = world.user("site-admin2", (world.metz, "admin"), with_totp=True)
    user = world.user("coord-gone", (world.metz, "coordinator"))
    other = world.client(client.app)
    world.sign_in(other, user)
    csrf = world.sign_in(client, admin)
    assert (
        client.post(f"/admin/users/{user.id}/disable", data={"csrf_token": csrf}).status_code == 303
    )
    assert other.get("/").status_code == 303
    assert world.start_login(other, user.username).status_code == 401


def test_api_token_scopes_expiry_and_revocation(client, world, clock):
    admin = world.user("api-admin", (world.metz, "admin"))
    secret = world.token(admin, "admin", days=1)
    headers = {"authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/users", headers=headers).status_code == 200
    # The token carries no patients scope, whatever its user's roles.
    refused = client.get("/api/v1/patients", headers=headers)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    clock.advance(days=2)
    assert client.get("/api/v1/users", headers=headers).status_code == 401
    fresh = world.token(admin, "admin")
    token_id = fresh.split("_")[1]
    fresh_headers = {"authorization": f"Bearer {fresh}"}
    assert client.delete(f"/api/v1/tokens/{token_id}", headers=fresh_headers).status_code == 204
    assert client.get("/api/v1/users", headers=fresh_headers).status_code == 401
    assert (
        client.get("/api/v1/users", headers={"authorization": "Bearer nonsense"}).status_code == 401
    )


def test_tokens_are_stored_hashed(client, world):
    admin = world.user("hash-admin", (world.metz, "admin"))
    secret = world.token(admin, "admin")
    with world.runtime.sessions() as db:
        from concilium.platform.tables import ApiToken

        stored = db.execute(select(ApiToken)).scalars().all()
    assert stored and all(secret not in t.secret_hash for t in stored)
    assert all(secret.split("_", 2)[2] not in repr(vars(t)) for t in stored)


def test_token_created_through_the_page_is_shown_once(client, world):
    user = world.user("coord-tok", (world.metz, "coordinator"))
    csrf = world.sign_in(client, user)
    created = client.post(
        "/tokens",
        data={"name": "script", "days": "10", "scopes": ["patients:read"], "csrf_token": csrf},
    )
    assert created.status_code == 201
    secret = created.text.split('class="secret" data-copy>')[1].split("<")[0]
    assert secret.startswith("cnc_")
    assert secret not in client.get("/tokens").text
    me = client.get("/api/v1/me", headers={"authorization": f"Bearer {secret}"})
    assert me.json()["scopes"] == ["patients:read"]


def test_next_parameter_never_leaves_the_site(client, world):
    user = world.user("coord-next", (world.metz, "coordinator"))
    page = client.get("/login?next=https://evil.example/")
    response = client.post(
        "/login",
        data={
            "username": user.username,
            "password": "correct-horse-42",
            "csrf_token": world.hidden(page.text),
            "next": "//evil.example/",
        },
    )
    assert response.headers["location"] == "/"


def test_transaction_helper_rolls_back(world):
    with world.runtime.sessions() as db:
        before = db.execute(select(User)).scalars().all()
    try:
        with transaction(world.runtime.sessions) as db:
            db.add(User(username="ghost", full_name="G", password_hash="x"))
            db.flush()
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with world.runtime.sessions() as db:
        assert len(db.execute(select(User)).scalars().all()) == len(before)


def wrong_code(world, user):
    """A six-digit code the authenticator shows at no step accepted now."""
    now = world.runtime.now()
    accepted = {world.code(user, now + timedelta(seconds=s)) for s in (-30, 0, 30)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in accepted)


def second_factor(client, world, code):
    csrf = world.csrf(client, "/login/totp")
    return client.post("/login/totp", data={"code": code, "csrf_token": csrf})


def test_second_factor_failures_count_across_sign_ins_and_lock(client, world, clock):
    """Someone who knows the password signs in again before every guess of the code: the
    failures still add up, lock the account, and lock it longer each time."""
    user = world.user("dr-brute", (world.metz, "radiologist"), with_totp=True)
    limit = world.runtime.settings.login_max_failures
    for _ in range(limit):
        assert world.start_login(client, user.username).status_code == 303
        assert second_factor(client, world, wrong_code(world, user)).status_code == 401
    # Locked: the password no longer leads to the second factor, and the right code is
    # refused even from a session opened before.
    refused = world.start_login(client, user.username)
    assert refused.status_code == 401
    assert client.get("/login/totp").status_code == 303
    clock.advance(minutes=world.runtime.settings.lockout_minutes - 1)
    assert world.start_login(client, user.username).status_code == 401
    clock.advance(minutes=2)
    # Unlocked, but the count goes on: the next run of failures locks twice as long.
    for _ in range(limit):
        assert world.start_login(client, user.username).status_code == 303
        assert second_factor(client, world, wrong_code(world, user)).status_code == 401
    clock.advance(minutes=world.runtime.settings.lockout_minutes + 1)
    assert world.start_login(client, user.username).status_code == 401
    clock.advance(minutes=world.runtime.settings.lockout_minutes)
    assert world.start_login(client, user.username).status_code == 303
    assert second_factor(client, world, world.code(user)).status_code == 303
    with world.runtime.sessions() as db:
        alerts = db.execute(select(Alert.kind)).scalars().all()
        notices = (
            db.execute(select(Notification.kind).where(Notification.user_id == user.id))
            .scalars()
            .all()
        )
    # The administrators and the person learn that someone holds the password.
    assert alerts.count("second-factor-lock") == 2
    assert notices.count("second-factor-lock") == 2


def test_second_factor_attempts_are_throttled_per_address(client, world, clock):
    world.runtime.settings.login_ip_limit_per_minute = 3
    user = world.user("dr-spread", (world.metz, "radiologist"), with_totp=True)
    assert world.start_login(client, user.username).status_code == 303
    for _ in range(3):
        assert second_factor(client, world, wrong_code(world, user)).status_code == 401
    # Refused before the code is even looked at: the right one too.
    throttled = second_factor(client, world, world.code(user))
    assert throttled.status_code == 429
    clock.advance(minutes=1)
    assert second_factor(client, world, world.code(user)).status_code == 303


@contextmanager
def row_held(database_url, table, row_id):
    """Hold a write lock on one row (PostgreSQL) or on the whole database (SQLite) from
    another connection; yields a function waiting until ``n`` requests queue behind it."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        conn = psycopg.connect(host=url.host, port=url.port, user=url.username, dbname=url.database)
        conn.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE", (row_id,))
        watcher = psycopg.connect(
            host=url.host, port=url.port, user=url.username, dbname=url.database, autocommit=True
        )

        def queued(n):
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                waiting = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                ).fetchone()[0]
                if waiting >= n:
                    return
                time.sleep(0.05)
            raise AssertionError(f"{n} requests never queued behind the held row")

        try:
            yield queued
        finally:
            conn.rollback()
            conn.close()
            watcher.close()
        return
    conn = sqlite3.connect(url.database, isolation_level=None, timeout=30)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield lambda n: time.sleep(0.5)
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def test_one_code_signs_in_once_from_two_concurrent_requests(app, world, database_url):
    """Two browsers past the password send the same code at the same instant: one wins.
    On PostgreSQL both requests are held at the user's row until both are in flight."""
    user = world.user("dr-race", (world.metz, "radiologist"), with_totp=True)
    browsers = [world.client(app) for _ in range(2)]
    forms = []
    for browser in browsers:
        assert world.start_login(browser, user.username).status_code == 303
        forms.append(world.csrf(browser, "/login/totp"))
    code = world.code(user)
    with ThreadPoolExecutor(2) as pool, row_held(database_url, "users", user.id) as queued:
        sent = [
            pool.submit(b.post, "/login/totp", data={"code": code, "csrf_token": csrf})
            for b, csrf in zip(browsers, forms, strict=True)
        ]
        queued(2)
    assert sorted(f.result().status_code for f in sent) == [303, 401]
