"""The main menu on a phone (390 px) is a Menu button that opens the links one a line; on a
desktop (1366 px) the links are shown as before, without the button."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest

from clinical_world import PASSWORD
from serving import RunningServer, running_server

from .checks import accessibility_violations, assert_usable, person_browsing


@pytest.fixture(scope="module")
def admin_server(
    tmp_path_factory: pytest.TempPathFactory, browser: Any
) -> Iterator[tuple[RunningServer, dict[str, Any]]]:
    with running_server(tmp_path_factory.mktemp("phone-menu")) as server:
        server.create_site("CHR Metz-Thionville", "570005165")
        key = server.create_user("claire", "admin@570005165", password=PASSWORD, totp=True)
        context = browser.new_context(locale="en-GB")
        page = context.new_page()
        page.goto(f"{server.url}/login")
        page.locator("#f-username").fill("claire")
        page.locator("#f-password").fill(PASSWORD)
        page.locator("button[type=submit]").click()
        page.wait_for_url("**/login/totp**")
        page.locator("#f-code").fill(pyotp.TOTP(key).now())
        page.locator("main button[type=submit]").click()
        page.wait_for_url(re.compile(r".*/$"))
        state: dict[str, Any] = context.storage_state()
        context.close()
        yield server, state


@pytest.mark.browser
@pytest.mark.parametrize("language", ["fr", "en"])
def test_on_a_phone_the_menu_opens_from_a_button(admin_server, browser, artifacts, language):
    server, state = admin_server
    with person_browsing(browser, "phone", language, storage_state=state) as (page, errors):
        page.goto(f"{server.url}/")
        button = page.get_by_role("button", name="Menu")
        assert button.is_visible()
        assert button.get_attribute("aria-expanded") == "false"
        menu = page.locator(f"#{button.get_attribute('aria-controls')}")
        links = menu.locator("a")
        count = links.count()
        assert count >= 5
        assert all(not links.nth(i).is_visible() for i in range(count))
        assert_usable(page, errors, "menu-closed", artifacts)
        button.tap()
        assert button.get_attribute("aria-expanded") == "true"
        boxes = [links.nth(i).bounding_box() for i in range(count)]
        assert all(links.nth(i).is_visible() for i in range(count))
        # One link a line, each inside the screen.
        assert all(b is not None and b["x"] >= 0 and b["x"] + b["width"] <= 390 for b in boxes)
        tops = [b["y"] for b in boxes if b is not None]
        assert tops == sorted(tops) and len(set(tops)) == count
        assert accessibility_violations(page) == []
        assert_usable(page, errors, "menu-open", artifacts)
        menu.locator('a[href="/audit"]').tap()  # the last links are reachable too
        page.wait_for_url("**/audit")
        button = page.get_by_role("button", name="Menu")
        assert button.get_attribute("aria-expanded") == "false"
        button.tap()
        button.tap()
        assert button.get_attribute("aria-expanded") == "false"
        assert not menu.locator("a").first.is_visible()


@pytest.mark.browser
@pytest.mark.parametrize("language", ["fr", "en"])
def test_on_a_desktop_the_links_are_shown_without_a_button(
    admin_server, browser, artifacts, language
):
    server, state = admin_server
    with person_browsing(browser, "desktop", language, storage_state=state) as (page, errors):
        page.goto(f"{server.url}/")
        assert page.get_by_role("button", name="Menu").count() == 0
        links = page.locator("#main-menu").get_by_role("link")
        assert links.count() >= 5
        assert all(links.nth(i).is_visible() for i in range(links.count()))
        # All on one line, in the header, as before.
        assert len({links.nth(i).bounding_box()["y"] for i in range(links.count())}) == 1
        assert_usable(page, errors, "menu-desktop", artifacts)
