"""The platform's own pages as its people use them, on a phone (390 px) and a hospital
desktop (1366 px), in French and in English: a radiologist's home and patient page, an
administrator's audit log and users. Each page is accessible (axe-core, WCAG 2.1 A and AA),
logs no console error and never scrolls sideways; screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from clinical_world import KEYS, PASSWORD, Clinic, populate_served
from serving import RunningServer, running_server

from .browsing import signed_in_state
from .checks import assert_usable, person_browsing

ADMIN_KEY = "admin"


@pytest.fixture(scope="module")
def clinic_server(
    tmp_path_factory: pytest.TempPathFactory, browser: Any
) -> Iterator[tuple[RunningServer, Clinic, dict[str, Any]]]:
    with running_server(tmp_path_factory.mktemp("portal-pages")) as server:
        clinic, _ = populate_served(server.data_dir)
        admin_key = server.create_user("claire", "admin@570005165", password=PASSWORD, totp=True)
        states = {
            "jdoe": signed_in_state(browser, server.url, "jdoe", PASSWORD, KEYS["jdoe"]),
            "claire": signed_in_state(browser, server.url, "claire", PASSWORD, admin_key),
        }
        yield server, clinic, states


@pytest.mark.browser
@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_portal_pages_are_usable(clinic_server, browser, artifacts, width, language):
    server, clinic, states = clinic_server
    url = server.url
    with person_browsing(browser, width, language, storage_state=states["jdoe"]) as (
        page,
        errors,
    ):
        page.goto(f"{url}/")
        assert page.locator(f'#my-studies a[href="/imaging/studies/{clinic.metz_study}"]').count()
        # The session starts in five minutes: "today", unless those minutes cross midnight
        # in the reader's zone, when it is rightly listed with the later ones.
        soon = f'a[href="/live/{clinic.session_today}"]'
        assert page.locator(f"#sessions-today {soon}, #sessions-later {soon}").count()
        assert_usable(page, errors, "portal-home", artifacts)
        page.goto(f"{url}/patients/{clinic.patient}")
        assert page.locator(f'#patient-sessions a[href="/live/{clinic.session_today}"]').count()
        assert_usable(page, errors, "portal-patient", artifacts)
    with person_browsing(browser, width, language, storage_state=states["claire"]) as (
        page,
        errors,
    ):
        page.goto(f"{url}/")
        assert page.locator("#emergencies blockquote").count() == 1
        assert_usable(page, errors, "portal-admin-home", artifacts)
        page.goto(f"{url}/audit")
        assert page.locator("table.audit tbody tr").count() > 3
        if width == "phone":  # each entry a card: the column headings hidden
            assert page.locator("table.stack thead").bounding_box()["height"] <= 1
        assert_usable(page, errors, "portal-audit", artifacts)
        page.goto(f"{url}/admin/users")
        expected = "Créer un utilisateur" if language == "fr" else "Create a user"
        assert page.get_by_role("heading", name=expected).is_visible()
        assert_usable(page, errors, "portal-users", artifacts)
        page.locator('a[href^="/admin/users/"]', has_text="jdoe").first.click()
        page.wait_for_url(re.compile(r".*/admin/users/\d+$"))
        issue = "Émettre un lien de réinitialisation" if language == "fr" else "Issue a reset link"
        assert page.get_by_role("button", name=issue).is_visible()
        assert_usable(page, errors, "portal-user", artifacts)
