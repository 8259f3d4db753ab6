"""The director and moderator consoles speak French unless the reader asks for English, and
the live service's refusals reach them in the reader's language."""

from __future__ import annotations

import pytest

from concilium.live import lifecycle, source_registry
from concilium.live.sources import SourceState, SourceStatus, Words
from concilium.platform import audit, i18n
from concilium.platform.db import transaction
from concilium.services import LOCALE_FOLDERS


@pytest.fixture
def console(app, world):  # type: ignore[no-untyped-def]
    """A live Metz conference with a named screen source; its director signed in, asking
    for no language in particular."""
    coord = world.user("metz-director", (world.metz, "coordinator"))
    now = world.runtime.now()
    with transaction(world.runtime.sessions) as db:
        actor = audit.Actor(coord.id, coord.username)
        live = lifecycle.create_session(
            db, actor, kind="conference", title="Tumour board", site_id=world.metz.id,
            scheduled_at=now, now=now,
        )  # fmt: skip
        source_registry.add_source(db, actor, live, name="Slides", kind="screen", reference="")
        lifecycle.start(db, actor, live, now, teaching_consent=False)
        live_id = live.id
    browser = world.client(app)
    browser.csrf = world.sign_in(browser, coord)
    del browser.headers["accept-language"]
    return browser, live_id


def test_the_director_console_is_in_french_by_default(console) -> None:  # type: ignore[no-untyped-def]
    browser, live_id = console
    page = browser.get(f"/live/{live_id}/director")
    assert page.status_code == 200
    text = page.text
    assert '<html lang="fr"' in text
    for french in (
        "console de réalisation",
        "Prendre la main",
        "Rendre la main",
        "Mettez un flux à l",
        'aria-label="Écran du programme"',
        "Slides (écran)",
        f'<a href="/live/{live_id}">page de la session</a>',
        "Discussion",
        "Effacer les annotations",
    ):
        assert french in text, french
    for english in ("Take control", "Release", "director console", "Clear drawings", "(screen)"):
        assert english not in text, english


def test_the_director_console_is_in_english_on_request(console) -> None:  # type: ignore[no-untyped-def]
    browser, live_id = console
    text = browser.get(f"/live/{live_id}/director", headers={"accept-language": "en"}).text
    assert '<html lang="en"' in text
    for english in ("director console", "Take control", "Slides (screen)", "Clear drawings"):
        assert english in text, english
    assert "Prendre la main" not in text


def test_the_moderator_console_and_its_scripts_messages_follow_the_reader(console) -> None:  # type: ignore[no-untyped-def]
    browser, live_id = console
    french = browser.get(f"/live/{live_id}/moderator").text
    assert "<small>questions</small>" in french and "Votre question" not in french
    assert ">Envoyer<" in french and ">Send<" not in french
    # The page hands its scripts their messages in the reader's language.
    assert '"Approve": "Approuver"' in french
    assert '"Merge question %(id)s into question number": "Fusionner la question' in french
    english = browser.get(f"/live/{live_id}/moderator", headers={"accept-language": "en"}).text
    assert ">Send<" in english and '"Approve": "Approve"' in english


def test_the_services_refusals_reach_the_page_in_the_readers_language(console, world) -> None:  # type: ignore[no-untyped-def]
    browser, _live_id = console
    form = {
        "kind": "supervision", "title": "ab", "site_id": world.metz.id,
        "scheduled_at": "2030-05-01T08:30", "csrf_token": browser.csrf,
    }  # fmt: skip
    refused = browser.post("/live", data=form)
    assert refused.status_code == 422 and "Un titre compte de 3 à 200 caractères." in refused.text
    refused = browser.post("/live", data=form, headers={"accept-language": "en"})
    assert refused.status_code == 422 and "A title has 3 to 200 characters." in refused.text


def test_a_sources_state_is_read_in_each_readers_language() -> None:
    i18n.load_catalogues(LOCALE_FOLDERS)
    status = SourceStatus(3, "Ceiling", "ip_camera", SourceState.UNREACHABLE)
    status.words = Words(
        "%(reason)s; next attempt in %(delay)s s",
        {"reason": Words("no picture from the camera within %(seconds)s s", {"seconds": "5"}),
         "delay": "2"},
    )  # fmt: skip
    status.detail = status.words.english()
    assert status.detail == "no picture from the camera within 5 s; next attempt in 2 s"
    with i18n.using_locale("fr"):
        assert status.shown_detail() == (
            "aucune image de la caméra en 5 s ; nouvelle tentative dans 2 s"
        )
    with i18n.using_locale("en"):
        assert status.shown_detail() == status.detail
    # A refusal is kept as it was written for the person who added the source.
    refused = SourceStatus(4, "Loop", "dicom_cine", SourceState.REFUSED, "Refus écrit")
    assert refused.shown_detail() == "Refus écrit"
