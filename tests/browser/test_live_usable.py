"""The live pages people use to find, join and watch a session, on a phone (390 px) and a
hospital desktop (1366 px), in French and in English, against a real server running Janus:
the list of sessions, a session's page (a scheduled one moved, then called off), the join
page (one's own picture, the microphone and camera switches acting on the tracks sent) and
the watch page (a sentence while nothing is live, then the picture, never a paused tile
with the browser's controls). Each page is accessible (axe-core, WCAG 2.1 A and AA), logs
no console error and never scrolls sideways; screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from serving import RunningServer, running_server

from . import browsing
from .browsing import CHROMIUM_MEDIA_ARGS, STAGE, launch_chromium, wait_until
from .checks import LOCALES, assert_usable, person_browsing
from .test_live_pages import invite, schedule_live_session, write_live_people

pytestmark = pytest.mark.browser

PASSWORD = "live-usable-pass-1"
CASES = [(w, lang) for w in ("phone", "desktop") for lang in ("fr", "en")]
"""Each screen and language gets a session of its own, so that a feed published for one
never shows on another's watch page."""
WORDS = {
    "fr": {
        "list": "Sessions en direct",
        "join": "Rejoindre avec la caméra",
        "microphone": "Couper le micro",
        "camera": "Couper la caméra",
        "self": "Afficher ma propre image",
        "nothing": "Rien n'est encore en direct",
        "live": "en direct",
        "leave": "Quitter",
        "move": "Déplacer",
        "moved": "15 juin 2031",
        "call off": "Annuler la session",
        "confirm": "Annuler cette session ? Les invités en seront prévenus par courriel.",
        "ended": "terminée",
    },
    "en": {
        "list": "Live sessions",
        "join": "Join with camera",
        "microphone": "Mute microphone",
        "camera": "Turn camera off",
        "self": "Show my own picture",
        "nothing": "Nothing is live yet",
        "live": "live",
        "leave": "Leave",
        "move": "Move",
        "moved": "15 June 2031",
        "call off": "Call off the session",
        "confirm": "Call off this session? The invitees will be told by e-mail.",
        "ended": "ended",
    },
}
SELF_VIEW = "document.querySelector('[data-self-view]')"
BRIGHTEST = f"""(() => {{
    const c = document.createElement('canvas');
    c.width = 64; c.height = 48;
    const g = c.getContext('2d');
    g.drawImage({STAGE}, 0, 0, 64, 48);
    const d = g.getImageData(0, 0, 64, 48).data;
    let most = 0;
    for (let i = 0; i < d.length; i += 4) most = Math.max(most, d[i], d[i + 1], d[i + 2]);
    return most;
}})()"""
"""The brightest channel value of the stage's picture now (0 for a black picture)."""


@pytest.fixture(scope="module")
def media_browser() -> Iterator[Any]:
    """Chromium with a fake camera and microphone and loopback WebRTC allowed."""
    yield from launch_chromium(CHROMIUM_MEDIA_ARGS)


@pytest.fixture(scope="module")
def live_site(
    tmp_path_factory: pytest.TempPathFactory, media_browser: Any
) -> Iterator[tuple[RunningServer, dict[str, Any], dict[tuple[str, str], str]]]:
    """A server with Janus, the three people signed in (their browser states), and one live
    session per screen and language, Théo presenting and Léa watching."""
    with running_server(
        tmp_path_factory.mktemp("live-usable"), CONCILIUM_LIVE_ENABLED="true"
    ) as server:
        write_live_people(server.data_dir, PASSWORD)
        states: dict[str, Any] = {}
        for username in ("chloe", "theo", "lea"):
            context = media_browser.new_context(base_url=server.url, locale=LOCALES["en"])
            page = context.new_page()
            browsing.sign_in(page, username, PASSWORD)
            if username == "chloe":
                sessions = {}
                for width, language in CASES:
                    path = schedule_live_session(page, f"Cath lab, {width} {language}")
                    invite(page, path, theo="presenter", lea="viewer")
                    sessions[(width, language)] = path
            states[username] = context.storage_state()
            context.close()
        yield server, states, sessions


def _pressed(page: Any, selector: str) -> str:
    return str(page.locator(selector).get_attribute("aria-pressed"))


def _tracks_enabled(page: Any, kind: str) -> list[bool]:
    """Whether each local track of ``kind`` ("Audio" or "Video") is enabled: these are the
    tracks the peer connection sends, the self-view shows the same stream."""
    return list(page.evaluate(f"{SELF_VIEW}.srcObject.get{kind}Tracks().map((t) => t.enabled)"))


@pytest.mark.parametrize(("width", "language"), CASES)
def test_live_pages_are_usable(live_site, media_browser, artifacts, width, language):
    server, states, sessions = live_site
    url = server.url
    words = WORDS[language]
    session_path = sessions[(width, language)]

    with person_browsing(media_browser, width, language, storage_state=states["chloe"]) as (
        page,
        errors,
    ):
        page.goto(f"{url}/live")
        assert page.get_by_role("heading", name=words["list"], exact=True).is_visible()
        assert page.locator(f'a[href="{session_path}"]').count() == 1
        # The start is shown on the 24-hour clock in Paris, not in UTC.
        assert not page.locator("main").get_by_text("UTC").count()
        assert_usable(page, errors, "live-list", artifacts)
        page.goto(f"{url}{session_path}")
        assert page.locator(".badge.live-live").first.inner_text() == words["live"]
        people = page.locator("#f-username")
        assert people.get_attribute("data-people-search") == "/api/v1/people"
        assert_usable(page, errors, "live-session", artifacts)

    with (
        person_browsing(media_browser, width, language, storage_state=states["lea"]) as (
            watcher,
            watch_errors,
        ),
        person_browsing(media_browser, width, language, storage_state=states["theo"]) as (
            sender,
            join_errors,
        ),
    ):
        # Before anyone sends: a sentence, not a black box with a paused player.
        watcher.goto(f"{url}{session_path}/watch")
        nothing = watcher.locator("[data-nothing-live]")
        assert words["nothing"] in nothing.inner_text()
        wait_until(watcher, "document.querySelector('[data-status]').textContent !== ''")
        assert nothing.is_visible()
        assert watcher.locator("[data-tiles] figure:not([hidden])").count() == 0
        assert_usable(watcher, watch_errors, "live-watch-waiting", artifacts)

        sender.goto(f"{url}{session_path}/join")
        assert sender.locator("[data-self]").is_hidden()
        assert_usable(sender, join_errors, "live-join-choose", artifacts)
        sender.get_by_role("button", name=words["join"]).click()
        wait_until(sender, "document.body.dataset.publishedFeed !== undefined", 20_000)
        wait_until(sender, f"{SELF_VIEW}.currentTime > 0.2", 10_000)
        assert sender.locator("[data-self-view]").get_attribute("muted") is not None
        assert sender.evaluate(f"{SELF_VIEW}.muted") is True

        # Léa receives Théo's moving picture before he switches anything off.
        wait_until(watcher, f"{STAGE}.currentTime > 0.5 && {BRIGHTEST} > 100", 20_000)

        microphone = sender.get_by_role("button", name=words["microphone"])
        camera = sender.get_by_role("button", name=words["camera"])
        self_view = sender.get_by_role("button", name=words["self"])
        assert _tracks_enabled(sender, "Audio") == [True]
        assert _tracks_enabled(sender, "Video") == [True]
        microphone.click()
        assert _pressed(sender, "[data-toggle-microphone]") == "true"
        assert _tracks_enabled(sender, "Audio") == [False]
        assert _tracks_enabled(sender, "Video") == [True]
        camera.click()
        assert _pressed(sender, "[data-toggle-camera]") == "true"
        assert _tracks_enabled(sender, "Video") == [False]
        assert sender.locator("[data-camera-off-note]").is_visible()
        # The track itself is off: what reaches Léa through Janus is a black picture.
        wait_until(watcher, f"{BRIGHTEST} < 20", 10_000)
        assert _pressed(sender, "[data-toggle-self-view]") == "true"
        self_view.click()
        assert _pressed(sender, "[data-toggle-self-view]") == "false"
        assert sender.locator("[data-self-view]").is_hidden()
        assert_usable(sender, join_errors, "live-join-muted", artifacts)
        microphone.click()
        camera.click()
        self_view.click()
        assert _pressed(sender, "[data-toggle-microphone]") == "false"
        assert _pressed(sender, "[data-toggle-camera]") == "false"
        assert _tracks_enabled(sender, "Audio") == [True]
        assert _tracks_enabled(sender, "Video") == [True]
        assert sender.locator("[data-self-view]").is_visible()
        wait_until(watcher, f"{BRIGHTEST} > 100", 10_000)

        # Léa sees his picture; no video carries the browser's controls and every tile
        # shown plays.
        assert watcher.locator("[data-nothing-live]").is_hidden()
        assert watcher.locator("video[controls]").count() == 0
        shown = watcher.locator("[data-tiles] figure:not([hidden]) video")
        for index in range(shown.count()):
            assert shown.nth(index).evaluate("(v) => !v.paused && v.readyState >= 2")
        assert re.search(r"\S", watcher.locator("[data-status]").inner_text())
        assert_usable(watcher, watch_errors, "live-watch", artifacts)
        assert_usable(sender, join_errors, "live-join", artifacts)
        sender.get_by_role("button", name=words["leave"]).click()
        sender.wait_for_url(f"**{session_path}")


@pytest.mark.parametrize(("width", "language"), CASES)
def test_a_scheduled_session_is_moved_and_called_off(
    live_site, media_browser, artifacts, width, language
):
    """Chloé moves a session she scheduled, then calls it off after confirming."""
    server, states, _sessions = live_site
    words = WORDS[language]
    with person_browsing(media_browser, width, language, storage_state=states["chloe"]) as (
        page,
        errors,
    ):
        page.goto(f"{server.url}/live")
        page.locator("#f-title").fill(f"Staff, {width} {language}")
        page.locator('form[action="/live"] button[type="submit"]').click()
        page.wait_for_url(re.compile(r".*/live/\d+$"))
        session_url = page.url
        assert_usable(page, errors, "live-session-scheduled", artifacts)

        page.locator("#f-scheduled_at").fill("2031-06-15T14:30")
        page.get_by_role("button", name=words["move"], exact=True).click()
        page.wait_for_url(session_url)
        starts = page.locator("dl.facts time").first.inner_text()
        assert words["moved"] in starts and "14:30" in starts

        asked: list[str] = []

        def confirm(dialog: Any) -> None:
            asked.append(dialog.message)
            dialog.accept()

        page.once("dialog", confirm)
        page.get_by_role("button", name=words["call off"]).click()
        page.wait_for_url(session_url)
        assert asked == [words["confirm"]]
        assert page.locator(".badge.live-ended").first.inner_text() == words["ended"]
        assert page.locator("#f-scheduled_at").count() == 0
        assert_usable(page, errors, "live-session-called-off", artifacts)
