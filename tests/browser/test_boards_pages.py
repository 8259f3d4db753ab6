"""A coordinator creates a board and its meetings in the pages, in French, and a physician
of another hospital finds the coming meetings on their own page, on a phone and a desktop.
Each page is accessible (axe-core), logs no console error and never scrolls sideways."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from serving import RunningServer, running_server

from .browsing import main_menu, signed_in_state
from .checks import assert_usable, person_browsing

PASSWORD = "correct-horse-42"
RENNES, VANNES = "350005179", "560008799"


@pytest.fixture(scope="module")
def boards_server(
    tmp_path_factory: pytest.TempPathFactory, browser: Any
) -> Iterator[tuple[RunningServer, dict[str, Any]]]:
    with running_server(tmp_path_factory.mktemp("boards-pages")) as server:
        server.create_site("CHU de Rennes", RENNES)
        server.create_site("CHBA Vannes", VANNES)
        coordinator = server.create_user(
            "coord", f"coordinator@{RENNES}", password=PASSWORD, totp=True
        )
        doctor = server.create_user(
            "dr-hemato", f"specialist@{VANNES}", password=PASSWORD, totp=True
        )
        states = {
            "coord": signed_in_state(browser, server.url, "coord", PASSWORD, coordinator),
            "dr-hemato": signed_in_state(browser, server.url, "dr-hemato", PASSWORD, doctor),
        }
        yield server, states


@pytest.mark.browser
@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_a_board_is_created_and_its_member_sees_the_meetings(
    boards_server, browser, artifacts, width
):
    server, states = boards_server
    code = f"rcp-hemato-{width}"
    with person_browsing(browser, width, "fr", storage_state=states["coord"]) as (page, errors):
        page.goto(f"{server.url}/")
        main_menu(page, "Menu principal").get_by_role("link", name="RCP", exact=True).click()
        page.wait_for_url("**/admin/boards")
        assert page.get_by_role("heading", name="Réunions de concertation pluridisciplinaire")
        assert_usable(page, errors, "boards-admin", artifacts)
        page.get_by_label("Code", exact=True).fill(code)
        page.get_by_label("Nom", exact=True).fill(f"RCP régionale d'hématologie ({width})")
        page.get_by_label("Type de RCP").select_option(label="Hématologie")
        page.get_by_label("Jour de la semaine").select_option(label="vendredi")
        page.get_by_label("Heure de début").fill("14:00")
        page.get_by_role("button", name="Créer la RCP").click()
        page.wait_for_url(re.compile(r".*/admin/boards/\d+$"))
        assert page.get_by_role("heading", name=re.compile("RCP régionale")).is_visible()
        # A haematology board requires a haematologist and a pathologist.
        assert page.get_by_label("Spécialités requises").input_value() == "haematology, pathology"

        page.get_by_label("Identifiant").fill("dr-hemato")
        page.get_by_label("Spécialités", exact=True).fill("haematology")
        page.get_by_label("Rôle dans la RCP").select_option(label="Animateur")
        page.get_by_role("button", name="Ajouter le membre").click()
        page.wait_for_url(re.compile(r".*/admin/boards/\d+#members$"))
        members = page.locator("#member-list")
        assert "Dr-Hemato" in members.inner_text() and "Animateur" in members.inner_text()

        page.get_by_label("Semaines à venir").fill("6")
        page.get_by_role("button", name="Générer les réunions").click()
        page.wait_for_url(re.compile(r".*#meetings$"))
        rows = page.locator("#meeting-list tbody tr")
        assert rows.count() >= 3  # six Fridays, less public holidays
        assert "vendredi" in rows.first.inner_text() and "14:00" in rows.first.inner_text()
        assert_usable(page, errors, "boards-board", artifacts)

    with person_browsing(browser, width, "fr", storage_state=states["dr-hemato"]) as (
        page,
        errors,
    ):
        page.goto(f"{server.url}/")
        main_menu(page, "Menu principal").get_by_role("link", name="Mes RCP").click()
        page.wait_for_url("**/boards")
        coming = page.locator("#coming tbody tr")
        assert coming.count() >= 3
        first = coming.first.inner_text()
        assert "vendredi" in first and "14:00" in first
        ours = coming.filter(has_text=f"({width})")
        assert ours.count() >= 3
        assert_usable(page, errors, "boards-mine", artifacts)
        ours.first.get_by_role("link").click()
        assert page.get_by_role("heading", name=re.compile(width)).is_visible()
        assert "Animateur" in page.locator("#member-list").inner_text()
