"""The telesurgery pages as their people use them, on a phone (390 px) and a hospital desktop
(1366 px), in French and in English: the list of procedures, the planning form, a procedure
page and a qualification report. Each page is accessible (axe-core, WCAG 2.1 A and AA), logs
no console error and never scrolls sideways; screenshots go to ``test-artifacts/``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from clinical_world import KEYS, PASSWORD, Clinic, populate_served
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.runtime import Runtime
from concilium.telesurgery import procedures, readiness
from serving import RunningServer, running_server

from .browsing import signed_in_state
from .checks import assert_usable, person_browsing


def _qualified(runtime: Runtime, clinic: Clinic) -> int:
    """The planned procedure with a long title and a recorded qualification; its id."""
    with transaction(runtime.sessions) as db:
        procedure = procedures.get_procedure(db, clinic.procedure)
        # A long title: the cards and headings must wrap it on a phone.
        procedure.title = "Remote robot-assisted laparoscopic radical prostatectomy"
    with transaction(runtime.sessions) as db:
        procedure = procedures.get_procedure(db, clinic.procedure)
        db.expunge(procedure)
    report = readiness.run_qualification(procedure, "direct", 1.0, rate_hz=50)
    with transaction(runtime.sessions) as db:
        procedure = procedures.get_procedure(db, clinic.procedure)
        record = readiness.record_qualification(
            db,
            audit.SYSTEM,
            procedure,
            report,
            runtime.settings.data_dir,
            datetime.now(UTC),
        )
        return record.id


@pytest.fixture(scope="module")
def surgery_server(
    tmp_path_factory: pytest.TempPathFactory, browser: Any
) -> Iterator[tuple[RunningServer, Clinic, int, dict[str, Any]]]:
    with running_server(tmp_path_factory.mktemp("telesurgery-ui")) as server:
        clinic, qualification = populate_served(server.data_dir, _qualified)
        state = signed_in_state(browser, server.url, "pmartin", PASSWORD, KEYS["pmartin"])
        yield server, clinic, qualification, state


@pytest.mark.browser
@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_telesurgery_pages_are_usable(surgery_server, browser, artifacts, width, language):
    server, clinic, qualification, state = surgery_server
    url = server.url
    with person_browsing(browser, width, language, storage_state=state) as (page, errors):
        page.goto(f"{url}/telesurgery")
        card = page.locator(f'#procedures a[href="/telesurgery/{clinic.procedure}"]')
        assert card.count() == 1
        box = page.locator("#procedures .ts-card").first.bounding_box()
        assert box is not None and box["x"] + box["width"] <= page.viewport_size["width"]
        heading = "Planifier une intervention" if language == "fr" else "Plan a procedure"
        assert page.get_by_role("heading", name=heading).is_visible()
        assert page.locator("#f-patient").is_visible()
        assert_usable(page, errors, "telesurgery-list", artifacts)
        # A bad hospital number is told in the form, in the reader's language.
        page.locator("#f-title").fill("Remote nephrectomy")
        page.locator("#f-patient").fill("MTZ-999999")
        page.locator("#f-surgeon").fill("pmartin")
        page.locator("#f-robot_name").fill("Arm-2")
        page.locator("#plan-h ~ form button[type=submit]").click()
        alert = page.get_by_role("alert")
        expected = "aucun patient" if language == "fr" else "no patient with the hospital number"
        assert expected in alert.inner_text()
        # The browser logs the form's answer, 422, as a failed load: that status is the
        # answer the form is meant to give, not an error of the page.
        assert all("422" in e for e in errors), errors
        errors.clear()
        assert_usable(page, errors, "telesurgery-plan-error", artifacts)
        page.goto(f"{url}/telesurgery/{clinic.procedure}")
        assert page.locator(f'#start-reasons a[href="/patients/{clinic.patient}"]').count() == 1
        assert page.locator(f'#qualifications a[href$="/qualifications/{qualification}"]').count()
        assert_usable(page, errors, "telesurgery-procedure", artifacts)
        page.goto(f"{url}/telesurgery/{clinic.procedure}/qualifications/{qualification}")
        plot = page.locator("svg.ts-plot").first
        plot_box = plot.bounding_box()
        assert plot_box is not None and plot_box["width"] <= page.viewport_size["width"]
        assert_usable(page, errors, "telesurgery-report", artifacts)
