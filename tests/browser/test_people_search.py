"""Sharing a patient's file with a colleague of another hospital found by typing part of their
name, on a phone (390 px) and a desktop (1366 px), in French and in English: the list of
people found is a listbox the keyboard and the finger can use, the choice fills in the user
name the form expects, and the share is created."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from clinical_world import KEYS, PASSWORD, Clinic, populate_served
from serving import RunningServer, running_server

from .browsing import signed_in_state
from .checks import assert_usable, person_browsing

# One colleague at Briey for each screen and language: each run shares with its own.
COLLEAGUES = {
    ("phone", "fr"): "helene.lefevre",
    ("phone", "en"): "marc.dubois",
    ("desktop", "fr"): "sophie.girard",
    ("desktop", "en"): "paul.moreau",
}


@pytest.fixture(scope="module")
def clinic_server(
    tmp_path_factory: pytest.TempPathFactory, browser: Any
) -> Iterator[tuple[RunningServer, Clinic, dict[str, Any]]]:
    with running_server(tmp_path_factory.mktemp("people-search")) as server:
        clinic, _ = populate_served(server.data_dir)
        for username in COLLEAGUES.values():
            server.create_user(username, "specialist@540000049", password=PASSWORD)
        yield server, clinic, signed_in_state(browser, server.url, "jdoe", PASSWORD, KEYS["jdoe"])


@pytest.mark.browser
@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_share_with_a_person_found_by_name(clinic_server, browser, artifacts, width, language):
    server, clinic, state = clinic_server
    username = COLLEAGUES[(width, language)]
    family = username.split(".")[1].title()
    with person_browsing(browser, width, language, storage_state=state) as (page, errors):
        page.goto(f"{server.url}/patients/{clinic.patient}")
        person = page.locator("#f-touser")
        assert person.get_attribute("role") == "combobox"
        assert person.get_attribute("aria-expanded") == "false"
        person.press_sequentially(family[:4].lower(), delay=40)
        listbox = page.locator(f"#{person.get_attribute('aria-controls')}")
        option = listbox.get_by_role("option", name=re.compile(rf"\({re.escape(username)}\)"))
        option.wait_for()
        assert person.get_attribute("aria-expanded") == "true"
        assert "CH Briey" in option.inner_text()
        assert_usable(page, errors, "people-search", artifacts)
        if width == "phone":
            option.tap()
        else:  # the keyboard: down to the option, Enter chooses it
            count = listbox.get_by_role("option").count()
            names = [listbox.get_by_role("option").nth(i).inner_text() for i in range(count)]
            index = next(i for i, text in enumerate(names) if f"({username})" in text)
            for _ in range(index + 1):
                person.press("ArrowDown")
            assert person.get_attribute("aria-activedescendant") == option.get_attribute("id")
            person.press("Enter")
        assert person.input_value() == username
        assert person.get_attribute("aria-expanded") == "false"
        share = "Partager" if language == "fr" else "Share"
        person.locator("xpath=ancestor::form").get_by_role("button", name=share).click()
        page.wait_for_load_state()
        shown = page.locator("main .card ul.plain li").filter(has_text=family)
        shown.first.wait_for()
        assert shown.count() == 1
        assert errors == []
