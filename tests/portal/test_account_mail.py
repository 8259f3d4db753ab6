"""A new account's holder gets their single-use set-up link by e-mail, in French unless they
read English, through the outbox and a real SMTP server; the link's secret is in that body
only: neither in the audit trail, nor the outbox's rows, nor the logs."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select

from concilium.platform import i18n
from concilium.platform.tables import AuditEvent, Notification, OutboxMail, OutboxMailEvent, User
from concilium.services import LOCALE_FOLDERS
from mail_delivery import deliver, html_of, text_of

SETUP_LINK = re.compile(r"http://127\.0\.0\.1:8000/account/setup/([A-Za-z0-9_-]+)")


@pytest.fixture(autouse=True)
def catalogues():
    i18n.load_catalogues(LOCALE_FOLDERS)


def admin_browser(world, app):
    admin = world.user("metz-admin", (world.metz, "admin"), with_totp=True)
    with world.runtime.sessions() as db:
        found = db.get(User, admin.id)
        found.full_name = "Marc Henry"
        db.commit()
    browser = world.client(app)
    browser.headers["x-csrf-token"] = world.sign_in(browser, admin)
    return browser


def create(browser, world, username, email):
    return browser.post(
        "/admin/users",
        data={
            "username": username,
            "full_name": "Dr Anne Roux",
            "site_id": str(world.metz.id),
            "role": "radiologist",
            "email": email,
        },
    )


def test_a_new_account_gets_its_set_up_link_by_e_mail_and_nowhere_else(app, world, caplog):
    caplog.set_level(logging.DEBUG)
    browser = admin_browser(world, app)
    created = create(browser, world, "aroux", "a.roux@chr-metz.fr")
    assert created.status_code == 201, created.text
    [message] = deliver(world.runtime)
    assert message["To"].addresses[0].addr_spec == "a.roux@chr-metz.fr"
    assert message["Subject"] == "Votre compte Concilium"
    assert message["Content-Language"] == "fr"
    text = text_of(message)
    assert text.startswith("Bonjour Dr Anne Roux,")
    assert "Marc Henry vous a ouvert un compte Concilium. Votre identifiant est aroux." in text
    assert "Il ne sert qu'une fois, jusqu'au " in text
    secret = SETUP_LINK.search(text).group(1)
    assert f'href="http://127.0.0.1:8000/account/setup/{secret}"' in html_of(message)
    # The administrator was shown the same link, once.
    assert f"/account/setup/{secret}" in created.text

    # The link opens the set-up page for whoever holds the message.
    holder = world.client(app)
    page = holder.get(f"/account/setup/{secret}")
    assert page.status_code == 200
    # ... and works once: the holder chooses a password and enrols the authenticator shown.
    key = page.text.split('class="secret" data-copy>')[1].split("<")[0]
    done = holder.post(
        f"/account/setup/{secret}",
        data={
            "sealed": world.hidden(page.text, "sealed"),
            "password": "a-better-secret-77",
            "password_again": "a-better-secret-77",
            "code": pyotp.TOTP(key).at(world.runtime.now()),
        },
    )
    assert done.status_code == 303, done.text
    assert world.start_login(world.client(app), "aroux", "a-better-secret-77").status_code == 303
    assert world.client(app).get(f"/account/setup/{secret}").status_code == 404

    with world.runtime.sessions() as db:
        [row] = db.execute(select(OutboxMail)).scalars().all()
        assert row.kind == "account.setup" and row.state == "sent"
        assert row.payload is None  # erased once sent
        kept = [
            *db.execute(select(AuditEvent.detail)).scalars(),
            *db.execute(select(Notification.message)).scalars(),
            *db.execute(select(OutboxMailEvent.detail)).scalars(),
            row.last_error,
        ]
    assert all(secret not in str(value) for value in kept)
    # Concilium's own logs (the test's HTTP client logs the address it fetched, as a
    # browser's history would) never hold it, nor does any of their fields.
    logged = [vars(r) for r in caplog.records if r.name.startswith("concilium")]
    assert logged and secret not in str(logged)


def test_an_account_without_an_address_is_created_and_no_mail_is_queued(app, world):
    browser = admin_browser(world, app)
    # An address no mail can reach is refused on the form, and nothing is created.
    mistyped = create(browser, world, "typo", "anne.roux-chr-metz.fr")
    assert mistyped.status_code == 422
    assert "anne.roux-chr-metz.fr is not an e-mail address such as name@hospital.fr." in (
        mistyped.text
    )
    created = create(browser, world, "nomail", "")
    assert created.status_code == 201, created.text
    with world.runtime.sessions() as db:
        assert db.execute(select(User).where(User.username == "nomail")).scalar_one()
        assert db.execute(select(User).where(User.username == "typo")).first() is None
        assert db.execute(select(OutboxMail)).scalars().all() == []


@pytest.mark.parametrize(
    "name", ["account_setup.txt", "account_setup.html", "account_reset.txt", "account_reset.html"]
)
def test_the_account_templates_show_no_text_outside_the_catalogues(name):
    from concilium.portal import account_mail
    from test_translations import _untranslated

    folder = Path(account_mail.__file__).with_name("templates") / "mail"
    assert _untranslated((folder / name).read_text(encoding="utf-8")) == []
