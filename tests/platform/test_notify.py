"""Messages to people: composed in the recipient's language with times in their zone, queued
in the outbox, and received as such by a real SMTP server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

from concilium.platform import i18n
from concilium.platform.db import transaction
from concilium.platform.errors import InvalidInput
from concilium.platform.i18n import N_
from concilium.platform.notify import Recipient, compose, recipient_of, send_notice
from concilium.platform.tables import Site, User
from concilium.services import LOCALE_FOLDERS
from mail_delivery import deliver

EXPIRES = datetime(2026, 7, 1, 13, 30, tzinfo=UTC)  # 15:30 in Paris, 09:30 in Martinique


@pytest.fixture(autouse=True)
def catalogues():
    i18n.load_catalogues(LOCALE_FOLDERS)
    yield
    i18n.load_catalogues(LOCALE_FOLDERS)


def notice_values(**changes):
    values = {
        "name": "Dr Jeanne Martin",
        "subject": "Votre compte",
        "text": "Premier paragraphe.\n\nSecond <paragraphe>.",
        "link": "https://concilium.chr-metz.fr/login/enrol?t=abc&u=1",
        "link_label": "Choisir un mot de passe",
    }
    values.update(changes)
    return values


def test_a_notice_is_composed_in_the_recipients_language():
    french = compose("account.notice", Recipient("j@chr-metz.fr", "fr"), "notice", notice_values())
    english = compose("account.notice", Recipient("j@chr-metz.fr", "en"), "notice", notice_values())
    assert french.language == "fr" and english.language == "en"
    assert french.text.startswith("Bonjour Dr Jeanne Martin,\n\nPremier paragraphe.")
    assert "Ce message a été envoyé automatiquement." in french.text
    assert english.text.startswith("Hello Dr Jeanne Martin,")
    assert "This message was sent automatically." in english.text
    assert "Choisir un mot de passe: https://concilium.chr-metz.fr/login/enrol?t=abc&u=1" in (
        french.text
    )
    # The HTML alternative escapes what it is given, and links to the address.
    assert "<p>Second &lt;paragraphe&gt;.</p>" in french.html
    assert 'href="https://concilium.chr-metz.fr/login/enrol?t=abc&amp;u=1"' in french.html
    assert '<html lang="fr">' in french.html
    assert french.subject == "Votre compte"


def _person(runtime, world, *, email="j.martin@chr-metz.fr", locale=None, zone=None) -> User:
    user = world.user("jmartin", (world.metz, "radiologist"))
    with transaction(runtime.sessions) as db:
        found = db.get(User, user.id)
        found.full_name = "Jeanne Martin"
        found.email = email
        found.locale = locale
        found.timezone = zone
    with runtime.sessions() as db:
        return db.get(User, user.id)


def test_a_person_reads_in_their_language_and_zone_else_their_sites(runtime, world):
    person = _person(runtime, world, locale="en", zone="America/Martinique")
    with runtime.sessions() as db:
        assert recipient_of(db, person) == Recipient(
            "Jeanne Martin <j.martin@chr-metz.fr>", "en", "America/Martinique"
        )
        person.locale, person.timezone = None, None
        site = db.get(Site, world.metz.id)
        site.timezone = "Europe/Paris"
        assert recipient_of(db, person) == Recipient(
            "Jeanne Martin <j.martin@chr-metz.fr>", "fr", "Europe/Paris"
        )
        person.email = ""
        assert recipient_of(db, person) is None


@pytest.mark.parametrize(
    ("locale", "zone", "subject", "sentence"),
    [
        (
            "fr",
            "Europe/Paris",
            "Concilium : votre accès",
            "Bonjour Jeanne Martin,",
        ),
        ("en", "America/Martinique", "Concilium: your access", "Hello Jeanne Martin,"),
    ],
)
def test_send_notice_queues_a_message_the_relay_receives_in_their_words(
    runtime, world, tmp_path, locale, zone, subject, sentence
):
    person = _person(runtime, world, locale=locale, zone=zone)
    # The caller's words come from its own catalogue.
    catalogue = Catalog(locale="fr", domain="messages")
    catalogue.add("Concilium: your access", "Concilium : votre accès")
    catalogue.add(
        "Your link is valid until %(expires)s.", "Votre lien est valable jusqu'au %(expires)s."
    )
    po = tmp_path / "locale" / "fr" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    with po.open("wb") as handle:
        write_po(handle, catalogue)
    i18n.load_catalogues((*LOCALE_FOLDERS, tmp_path / "locale"))
    with transaction(runtime.sessions) as db:
        queued = send_notice(
            db,
            runtime,
            person,
            N_("Concilium: your access"),
            N_("Your link is valid until %(expires)s."),
            values={"expires": EXPIRES},
            link="https://concilium.chr-metz.fr/login/enrol?t=abc",
            kind="account.enrolment",
            site_id=world.metz.id,
        )
    assert queued.kind == "account.enrolment" and queued.recipients == ["j.martin@chr-metz.fr"]
    (message,) = deliver(runtime)
    assert message["Subject"] == subject
    assert message["To"] == "Jeanne Martin <j.martin@chr-metz.fr>"
    assert message["Content-Language"] == locale
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.startswith(sentence)
    expires = "01/07/2026 15:30" if locale == "fr" else "01/07/2026, 09:30"
    assert expires in text
    html = message.get_body(("html",)).get_content()
    assert 'href="https://concilium.chr-metz.fr/login/enrol?t=abc"' in html


def test_a_person_without_an_address_is_told_and_nothing_is_queued(runtime, world):
    person = _person(runtime, world, email="")
    with pytest.raises(InvalidInput), transaction(runtime.sessions) as db:
        send_notice(db, runtime, person, N_("Concilium: your access"), N_("Text."))
    with pytest.raises(ValueError, match="web address"), transaction(runtime.sessions) as db:
        send_notice(db, runtime, person, "S", "T", link="javascript:alert(1)")


@pytest.mark.parametrize("name", ["layout.txt", "layout.html", "notice.txt", "notice.html"])
def test_the_message_templates_show_no_text_outside_the_catalogues(name):
    from concilium.platform.notify import PLATFORM_MAIL
    from test_translations import _untranslated

    assert _untranslated((PLATFORM_MAIL / name).read_text(encoding="utf-8")) == []
