"""The archive's pages as its people use them, on a phone (390 px) and a hospital desktop
(1366 px), in French and in English: a radiologist's study list and study page, an
administrator's DICOM nodes. Each page is accessible (axe-core, WCAG 2.1 A and AA), logs no
console error and never scrolls sideways; screenshots go to ``test-artifacts/``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from clinical_world import KEYS, PASSWORD, Clinic, populate_served
from concilium.imaging import nodes
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.runtime import Runtime
from serving import RunningServer, running_server

from .browsing import signed_in_state
from .checks import assert_usable, person_browsing


def _scanner(runtime: Runtime, clinic: Clinic) -> None:
    """A scanner registered at Metz, for the DICOM nodes page."""
    with transaction(runtime.sessions) as db:
        nodes.add_remote_ae(
            db, audit.SYSTEM, ae_title="MTZ_CT_SALLE2", host="10.20.30.40", port=104,
            site_id=clinic.metz, allow_store=True, allow_query=True,
            description="Scanner, salle 2",
        )  # fmt: skip


@pytest.fixture(scope="module")
def imaging_server(
    tmp_path_factory: pytest.TempPathFactory, browser: Any
) -> Iterator[tuple[RunningServer, Clinic, dict[str, Any]]]:
    with running_server(tmp_path_factory.mktemp("imaging-pages")) as server:
        clinic, _ = populate_served(server.data_dir, _scanner)
        admin_key = server.create_user("claire", "admin@570005165", password=PASSWORD, totp=True)
        states = {
            "jdoe": signed_in_state(browser, server.url, "jdoe", PASSWORD, KEYS["jdoe"]),
            "claire": signed_in_state(browser, server.url, "claire", PASSWORD, admin_key),
        }
        yield server, clinic, states


@pytest.mark.browser
@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_imaging_pages_are_usable(imaging_server, browser, artifacts, width, language):
    server, clinic, states = imaging_server
    url = server.url
    with person_browsing(browser, width, language, storage_state=states["jdoe"]) as (
        page,
        errors,
    ):
        page.goto(f"{url}/imaging")
        assert page.locator(f'#studies a[href="/imaging/studies/{clinic.metz_study}"]').count()
        heading = "Examens d\u2019imagerie" if language == "fr" else "Imaging studies"
        assert page.get_by_role("heading", name=heading).is_visible()
        if width == "phone":  # each study a card: the column headings hidden
            assert page.locator("#studies thead").bounding_box()["height"] <= 1
        assert_usable(page, errors, "imaging-studies", artifacts)
        page.goto(f"{url}/imaging/studies/{clinic.metz_study}")
        page.locator("#series img").first.wait_for()
        assert_usable(page, errors, "imaging-study", artifacts)
    with person_browsing(browser, width, language, storage_state=states["claire"]) as (
        page,
        errors,
    ):
        page.goto(f"{url}/admin/imaging/aes")
        assert page.locator("#own-ae").is_visible()
        assert page.locator("#aes code", has_text="MTZ_CT_SALLE2").is_visible()
        test = "Tester (C-ECHO)" if language == "fr" else "Test (C-ECHO)"
        assert (
            page.get_by_role("button", name=test).count() == 1
            or page.locator("#aes button", has_text=test).is_visible()
        )
        assert_usable(page, errors, "imaging-nodes", artifacts)
