"""What an administrator does to a person's account reaches that person by e-mail, in their
language, through the outbox and a real SMTP server: a reset link (whose secret is in that
body only, and works once), a change of their roles, the disabling and enabling of their
account. The administrator's page says what was sent, and where to follow it."""

from __future__ import annotations

import logging
import re

import pyotp
import pytest
from sqlalchemy import select

from concilium.platform import i18n
from concilium.platform.tables import AuditEvent, Notification, OutboxMail, OutboxMailEvent, User
from concilium.services import LOCALE_FOLDERS
from mail_delivery import deliver, html_of, text_of

LINK = re.compile(r"http://127\.0\.0\.1:8000/account/setup/([A-Za-z0-9_-]+)")
NEW_PASSWORD = "a-better-secret-77"


@pytest.fixture(autouse=True)
def catalogues():
    i18n.load_catalogues(LOCALE_FOLDERS)


def person(world, username, email, locale="", roles=None):
    """A radiologist at Metz with a second factor, their address and language."""
    user = world.user(username, *(roles or [(world.metz, "radiologist")]), with_totp=True)
    with world.runtime.sessions() as db:
        found = db.get(User, user.id)
        found.full_name, found.email, found.locale = "Dr Paul Weber", email, locale or None
        db.commit()
    return user


def admin_browser(world, app, french=False):
    admin = world.user("metz-admin", (world.metz, "admin"), with_totp=True)
    with world.runtime.sessions() as db:
        db.get(User, admin.id).full_name = "Marc Henry"
        db.commit()
    browser = world.client(app)
    if french:
        browser.headers["Accept-Language"] = "fr"
    browser.headers["x-csrf-token"] = world.sign_in(browser, admin)
    return browser, admin


def use_link(world, app, secret):
    """Follow a link as its holder: choose a password, enrol the authenticator shown."""
    browser = world.client(app)
    page = browser.get(f"/account/setup/{secret}")
    if page.status_code != 200:
        return page
    key = page.text.split('class="secret" data-copy>')[1].split("<")[0]
    form = {
        "sealed": world.hidden(page.text, "sealed"),
        "password": NEW_PASSWORD,
        "password_again": NEW_PASSWORD,
        "code": pyotp.TOTP(key).at(world.runtime.now()),
    }
    return browser.post(f"/account/setup/{secret}", data=form)


def kept_everywhere_but_the_mail(world):
    with world.runtime.sessions() as db:
        return [
            *db.execute(select(AuditEvent.detail)).scalars(),
            *db.execute(select(Notification.message)).scalars(),
            *db.execute(select(OutboxMailEvent.detail)).scalars(),
            *db.execute(select(OutboxMail.recipients)).scalars(),
            *db.execute(select(OutboxMail.kind)).scalars(),
            *db.execute(select(OutboxMail.last_error)).scalars(),
        ]


def test_a_reset_link_is_e_mailed_to_its_holder_and_works_once(app, world, clock, caplog):
    caplog.set_level(logging.DEBUG)
    doctor = person(world, "pweber", "p.weber@chr-metz.fr")
    browser, admin = admin_browser(world, app, french=True)
    clock.advance(seconds=30)
    issued = browser.post(f"/admin/users/{doctor.id}/reset-link", data={"code": world.code(admin)})
    assert issued.status_code == 201, issued.text
    # The page says, in French, to whom the link was e-mailed and where to follow it.
    assert (
        "Un courriel contenant ce lien a été mis en file d'envoi pour p.weber@chr-metz.fr."
        in issued.text
    )
    assert '<a href="/admin/outbox">Suivez son envoi sur la page des courriels sortants.</a>' in (
        issued.text
    )
    assert "Aucun courriel n'a pu être envoyé" not in issued.text

    [message] = deliver(world.runtime)
    assert message["To"].addresses[0].addr_spec == "p.weber@chr-metz.fr"
    assert message["Subject"] == "Réinitialisation de votre mot de passe Concilium"
    text = text_of(message)
    assert text.startswith("Bonjour Dr Paul Weber,")
    assert (
        "Marc Henry a émis un lien de réinitialisation du mot de passe et du second facteur de "
        "votre compte Concilium (identifiant pweber)." in text
    )
    secret = LINK.search(text).group(1)
    assert f'href="http://127.0.0.1:8000/account/setup/{secret}"' in html_of(message)
    assert secret not in message["Subject"]

    # The link in the mail works once: the password is replaced, then it is spent.
    assert use_link(world, app, secret).status_code == 303
    assert world.start_login(world.client(app), "pweber", NEW_PASSWORD).status_code == 303
    again = use_link(world, app, secret)
    assert again.status_code == 404

    with world.runtime.sessions() as db:
        [row] = db.execute(select(OutboxMail)).scalars().all()
        assert row.kind == "account.reset" and row.state == "sent" and row.payload is None
    assert all(secret not in str(value) for value in kept_everywhere_but_the_mail(world))
    logged = [vars(r) for r in caplog.records if r.name.startswith("concilium")]
    assert logged and secret not in str(logged)


def test_without_an_address_the_page_shows_the_link_once_and_says_no_mail_was_sent(
    app, world, clock
):
    doctor = person(world, "nomail", "")
    typo = person(world, "typo", "p.weber-chr-metz.fr")
    browser, admin = admin_browser(world, app)
    clock.advance(seconds=30)
    issued = browser.post(f"/admin/users/{doctor.id}/reset-link", data={"code": world.code(admin)})
    assert issued.status_code == 201, issued.text
    assert "No e-mail could be sent: no address is known for this account." in issued.text
    assert "was queued to" not in issued.text
    secret = re.search(r"data-copy>https?://[^<]+/account/setup/([^<]+)<", issued.text).group(1)
    assert use_link(world, app, secret).status_code == 303
    # A mistyped address does not stop the reset: the page says the address cannot be used.
    clock.advance(seconds=30)
    issued = browser.post(f"/admin/users/{typo.id}/reset-link", data={"code": world.code(admin)})
    assert issued.status_code == 201, issued.text
    assert "No e-mail could be sent: p.weber-chr-metz.fr is not an address mail can reach." in (
        issued.text
    )
    assert "/account/setup/" in issued.text
    with world.runtime.sessions() as db:
        assert db.execute(select(OutboxMail)).scalars().all() == []


@pytest.mark.parametrize(
    ("french", "said", "follow"),
    [
        (
            True,
            "Un courriel contenant ce lien a été mis en file d'envoi pour a.roux@chr-metz.fr.",
            '<a href="/admin/outbox">Suivez son envoi sur la page des courriels sortants.</a>',
        ),
        (
            False,
            "An e-mail with this link was queued to a.roux@chr-metz.fr.",
            '<a href="/admin/outbox">Follow it on the outgoing mail page.</a>',
        ),
    ],
)
def test_the_page_of_a_new_account_says_where_its_set_up_link_was_sent(
    app, world, french, said, follow
):
    browser, _admin = admin_browser(world, app, french=french)
    form = {
        "username": "aroux",
        "full_name": "Dr Anne Roux",
        "site_id": str(world.metz.id),
        "role": "radiologist",
    }
    created = browser.post("/admin/users", data={**form, "email": "a.roux@chr-metz.fr"})
    assert created.status_code == 201, created.text
    assert said in created.text and follow in created.text
    bare = browser.post("/admin/users", data={**form, "username": "aroux2"})
    assert bare.status_code == 201, bare.text
    nothing = (
        "Aucun courriel n'a pu être envoyé : ce compte n'a pas d'adresse électronique."
        if french
        else "No e-mail could be sent: no address is known for this account."
    )
    assert nothing in bare.text and follow not in bare.text and said not in bare.text


def test_a_change_of_roles_is_told_to_the_person_in_their_language(app, world):
    doctor = person(world, "pweber", "p.weber@chr-metz.fr", locale="en")
    browser, _admin = admin_browser(world, app)
    changed = browser.post(
        f"/admin/users/{doctor.id}/roles",
        data={"grant": [f"{world.metz.id}:radiologist", f"{world.metz.id}:specialist"]},
    )
    assert changed.status_code == 303, changed.text
    # Saving the same roles again changes nothing, and tells nothing.
    browser.post(
        f"/admin/users/{doctor.id}/roles",
        data={"grant": [f"{world.metz.id}:radiologist", f"{world.metz.id}:specialist"]},
    )
    [message] = deliver(world.runtime)
    assert message["Subject"] == "Your roles on Concilium changed"
    assert message["Content-Language"] == "en"
    text = text_of(message)
    assert "Marc Henry changed your roles on Concilium. You now hold: " in text
    assert f"Radiologist ({world.metz.name})" in text and f"Specialist ({world.metz.name})" in text
    with world.runtime.sessions() as db:
        assert db.execute(select(OutboxMail.kind)).scalars().all() == ["account.roles"]


def test_disabling_and_enabling_an_account_are_told_to_the_person_in_french(app, world):
    doctor = person(world, "pweber", "p.weber@chr-metz.fr")
    quiet = person(world, "quiet", "")
    browser, _admin = admin_browser(world, app)
    assert browser.post(f"/admin/users/{doctor.id}/disable").status_code == 303
    assert browser.post(f"/admin/users/{quiet.id}/disable").status_code == 303
    disabled = deliver(world.runtime)
    assert [m["Subject"] for m in disabled] == ["Votre compte Concilium a été désactivé"]
    assert (
        "Marc Henry a désactivé votre compte Concilium : vous ne pouvez plus vous connecter"
        in text_of(disabled[0])
    )
    assert browser.post(f"/admin/users/{doctor.id}/enable").status_code == 303
    [enabled] = deliver(world.runtime)
    assert enabled["Subject"] == "Votre compte Concilium est réactivé"
    assert enabled["To"].addresses[0].addr_spec == "p.weber@chr-metz.fr"
    assert "Marc Henry a réactivé votre compte Concilium" in text_of(enabled)
    assert "Ouvrir Concilium: http://127.0.0.1:8000/" in text_of(enabled)
