"""The patient page lists the patient's studies, live sessions and procedures the reader may
open, each linking to its page; the study page links back to the patient for those who may
read them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from clinical_world import PASSWORD, populate
from concilium.platform.tables import User

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def clinic(world, clock):
    clock.now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    return populate(world.runtime, world.metz, world.briey)


def signed_in(world, app, username):
    browser = world.client(app)
    with world.runtime.sessions() as db:
        user = db.execute(select(User).where(User.username == username)).scalar_one()
    world.sign_in(browser, user, PASSWORD)
    return browser


def block(page: str, element_id: str) -> str:
    start = page.index(f'id="{element_id}"')
    return page[start : page.index("</ul>", start)]


def test_the_patient_page_links_to_studies_sessions_and_procedures(app, world, clinic):
    radiologist = signed_in(world, app, "jdoe")
    page = radiologist.get(f"/patients/{clinic.patient}")
    assert page.status_code == 200, page.text
    studies = block(page.text, "patient-studies")
    assert f'href="/imaging/studies/{clinic.metz_study}"' in studies
    assert "CT THORAX METZ" in studies
    assert clinic.briey_study not in studies  # another patient's
    sessions = block(page.text, "patient-sessions")
    assert f'href="/live/{clinic.session_today}"' in sessions
    assert f'href="/live/{clinic.session_later}"' not in sessions  # shows no patient
    # A radiologist is not of the telesurgery team.
    assert "/telesurgery/" not in block(page.text, "patient-procedures")
    surgeon = signed_in(world, app, "pmartin")
    procedures = block(surgeon.get(f"/patients/{clinic.patient}").text, "patient-procedures")
    assert f'href="/telesurgery/{clinic.procedure}"' in procedures
    assert "Remote prostatectomy" in procedures


def test_the_study_page_links_back_to_the_patient_for_who_may_read_them(app, world, clinic):
    radiologist = signed_in(world, app, "jdoe")
    own = radiologist.get(f"/imaging/studies/{clinic.metz_study}")
    assert own.status_code == 200, own.text
    assert f'href="/patients/{clinic.patient}" id="patient-link"' in own.text
    # A study shared with her alone: its patient's file is not hers to open.
    shared = radiologist.get(f"/imaging/studies/{clinic.briey_study}")
    assert shared.status_code == 200, shared.text
    assert 'id="patient-link"' not in shared.text
    assert radiologist.get(f"/patients/{clinic.briey_patient}").status_code in (403, 404)
