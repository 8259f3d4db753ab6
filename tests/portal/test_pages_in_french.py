"""The platform's own pages speak French by default, English on request, and show times in
the reader's zone on the 24-hour clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from concilium.platform import audit, notifications
from concilium.platform.db import transaction

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_pages_are_in_french_by_default_and_in_english_on_request(app, world, clock):
    admin = world.user("claire", (world.metz, "admin"), with_totp=True)
    world.user("jdoe", (world.metz, "radiologist"))
    clock.now = datetime(2026, 12, 7, 13, 5, tzinfo=UTC)  # 14:05 in Paris
    with transaction(world.runtime.sessions) as db:
        notifications.notify(db, admin.id, "account.notice", "Note", clock.now)
        audit.record(db, audit.SYSTEM, "site.create", "success")
    browser = world.client(app)
    world.sign_in(browser, admin)
    browser.headers.pop("Accept-Language")
    users = browser.get("/admin/users").text
    assert "Créer un utilisateur" in users
    assert "Radiologue (CHR Metz-Thionville)" in users
    assert "Create a user" not in users
    home = browser.get("/").text
    assert "Bienvenue, Claire" in home
    assert "07/12/2026 14:05" in home  # the notification, in Paris time, 24-hour clock
    assert "UTC" not in home
    assert "Journal d'audit" in browser.get("/audit").text
    english = browser.get("/admin/users", headers={"Accept-Language": "en"}).text
    assert "Create a user" in english
    assert "Radiologist (CHR Metz-Thionville)" in english


def test_a_refusal_raised_by_the_portal_is_in_the_reader_language(app, world):
    admin = world.user("claire", (world.metz, "admin"), with_totp=True)
    browser = world.client(app)
    csrf = world.sign_in(browser, admin)
    browser.headers.pop("Accept-Language")
    answer = browser.get("/audit?patient_id=x")
    assert answer.status_code == 422
    assert "Le numéro de patient doit être un nombre entier." in answer.text
    refused = browser.post(
        f"/admin/users/{admin.id}/roles", data={"csrf_token": csrf, "grant": "x:admin"}
    )
    assert refused.status_code == 422
    assert "Choix de rôle mal formé." in refused.text


def test_a_refused_sign_in_is_told_in_french(app, world):
    world.user("claire", (world.metz, "admin"), with_totp=True)
    browser = world.client(app)
    browser.headers.pop("Accept-Language")
    refused = world.start_login(browser, "claire", "not-her-password-1")
    assert refused.status_code == 401
    assert "identifiant inconnu ou mot de passe erroné" in refused.text
    assert "wrong password" not in refused.text
