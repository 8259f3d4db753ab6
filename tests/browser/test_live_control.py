"""The director and moderator consoles as their people use them, against a real ``concilium
serve`` running Janus, on a phone (390 px) and a hospital desktop (1366 px), in French and in
English: each is accessible (axe-core, WCAG 2.1 A and AA), logs no console error, never
scrolls sideways and speaks the reader's language down to what its scripts write.
Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from concilium.live import invitations, lifecycle, source_registry
from concilium.live.tables import LiveCamera
from concilium.platform import accounts, audit
from concilium.platform.db import make_engine, make_sessionmaker, transaction
from concilium.platform.demo import SITES
from serving import RunningServer, free_port

from . import browsing
from .browsing import wait_until
from .checks import assert_usable, person_browsing

pytestmark = pytest.mark.browser

PASSWORD = "live-control-pass-1"
TEXT = {
    "fr": {
        "director": ("console de réalisation", "Prendre la main", "Caméras dirigées par"),
        "moderator": ("Discussion", "Envoyer", "Modération de la session"),
    },
    "en": {
        "director": ("director console", "Take control", "Cameras directed by"),
        "moderator": ("Chat", "Send", "Moderating session"),
    },
}
"""What each console says in each language: a heading, a button, what its script writes."""


@pytest.fixture
def janus_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ports of this test's own Janus, inherited by the server the ``server`` fixture starts."""
    monkeypatch.setenv("CONCILIUM_LIVE_ENABLED", "true")
    monkeypatch.setenv("CONCILIUM_LIVE_JANUS_HTTP_PORT", str(free_port()))
    monkeypatch.setenv("CONCILIUM_LIVE_JANUS_ADMIN_PORT", str(free_port()))


@pytest.fixture
def live_session(janus_ports: None, server: RunningServer) -> tuple[RunningServer, int]:
    """A live Metz conference directed by its coordinator, with a PTZ camera and a named
    source, written straight into the server's database; the server and the session id."""
    (metz_name, metz_finess) = SITES[0]
    data_dir = Path(server.env["CONCILIUM_DATA_DIR"])
    engine = make_engine(f"sqlite:///{data_dir / 'concilium.db'}")
    try:
        with transaction(make_sessionmaker(engine)) as db:
            metz = accounts.create_site(db, audit.SYSTEM, metz_name, metz_finess)
            chloe = accounts.create_user(
                db, audit.SYSTEM, username="chloe", full_name="Dr Chloé Lambert",
                password=PASSWORD, roles=[accounts.RoleGrant(metz.id, "coordinator")],
            )  # fmt: skip
            db.flush()
            actor = audit.Actor(chloe.id, chloe.username)
            now = datetime.now(UTC)
            live = lifecycle.create_session(
                db, actor, kind="conference",
                title="Réunion de concertation pluridisciplinaire en cancérologie thoracique",
                site_id=metz.id, scheduled_at=now, now=now,
            )  # fmt: skip
            source_registry.add_source(
                db, actor, live, name="Diapositives", kind="screen", reference=""
            )
            db.add(LiveCamera(session_id=live.id, name="Plafonnier", host="127.0.0.1", port=52381))
            invitations.invite(db, actor, live, user_id=chloe.id, role="director", now=now)
            lifecycle.start(db, actor, live, now, teaching_consent=False)
            live_id = live.id
    finally:
        engine.dispose()
    return server, live_id


def _signed_in(browser: Any, url: str) -> dict[str, Any]:
    context = browser.new_context(locale="en-GB", base_url=url)
    page = context.new_page()
    browsing.sign_in(page, "chloe", PASSWORD)
    state: dict[str, Any] = context.storage_state()
    context.close()
    return state


def test_the_consoles_are_usable_on_a_phone_and_a_desktop_in_french_and_english(
    live_session: tuple[RunningServer, int], browser: Any, artifacts: Path
) -> None:
    server, live_id = live_session
    state = _signed_in(browser, server.url)
    for language in ("fr", "en"):
        for width in ("phone", "desktop"):
            for console in ("director", "moderator"):
                with person_browsing(
                    browser, width, language, storage_state=state, base_url=server.url
                ) as (page, errors):
                    page.goto(f"/live/{live_id}/{console}")
                    heading, button, scripted = TEXT[language][console]
                    main = page.locator("main")
                    assert heading in main.inner_text() and button in main.inner_text()
                    if console == "director":
                        # What the script writes once the server answered.
                        page.get_by_role("button", name=button).click()
                        wait_until(
                            page,
                            "document.querySelector('[data-control]').textContent"
                            f".includes({scripted!r})",
                        )
                        assert "chloe" in page.locator("[data-control]").inner_text()
                    else:
                        wait_until(
                            page,
                            "document.querySelector('[data-status]').textContent"
                            f".includes({scripted!r})",
                        )
                    other = "en" if language == "fr" else "fr"
                    assert TEXT[other][console][1] not in main.inner_text()
                    assert_usable(page, errors, f"live-{console}-{width}", artifacts)
