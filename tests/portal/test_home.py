"""Each person's home page gathers what concerns them from every service, each item linking
to its page, and shows no block that is not for their role."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from clinical_world import JUSTIFICATION, PASSWORD, populate
from concilium.platform import audit, sharing
from concilium.platform.db import transaction
from concilium.platform.tables import User

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def clinic(world, clock):
    clock.now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # 10:00 in Paris
    return populate(world.runtime, world.metz, world.briey)


def home_of(world, app, username):
    browser = world.client(app)
    with world.runtime.sessions() as db:
        user = db.execute(select(User).where(User.username == username)).scalar_one()
    world.sign_in(browser, user, PASSWORD)
    page = browser.get("/")
    assert page.status_code == 200, page.text
    return page.text


def block(page: str, element_id: str) -> str:
    start = page.index(f'id="{element_id}"')
    return page[start : page.index("</ul>", start)]


def test_a_radiologist_sees_studies_shared_studies_and_invitations(app, world, clinic):
    page = home_of(world, app, "jdoe")
    mine = block(page, "my-studies")
    assert f'href="/imaging/studies/{clinic.metz_study}"' in mine
    assert "CT THORAX METZ" in mine
    assert "DURAND ANNE" in mine
    assert clinic.briey_study not in mine
    shared = block(page, "shared-studies")
    assert f'href="/imaging/studies/{clinic.briey_study}"' in shared
    assert "CT ABDOMEN BRIEY" in shared
    today = block(page, "sessions-today")
    assert f'href="/live/{clinic.session_today}"' in today
    assert "10:05" in today  # Paris time, 24-hour clock
    later = block(page, "sessions-later")
    assert f'href="/live/{clinic.session_later}"' in later
    assert "10 December 2026" in later
    assert clinic.session_later and f"/live/{clinic.session_later}" not in today
    # Not for a radiologist: telesurgery, and the review of emergency accesses.
    assert 'id="procedures"' not in page
    assert 'id="emergencies"' not in page


def test_a_surgeon_sees_their_procedure(app, world, clinic):
    page = home_of(world, app, "pmartin")
    procedures = block(page, "procedures")
    assert f'href="/telesurgery/{clinic.procedure}"' in procedures
    assert "Remote prostatectomy" in procedures
    assert 'id="emergencies"' not in page


def test_an_administrator_reviews_emergency_accesses_but_sees_no_patient_data(app, world, clinic):
    admin = world.user("claire", (world.metz, "admin"), with_totp=True)
    browser = world.client(app)
    world.sign_in(browser, admin)
    page = browser.get("/").text
    emergencies = block(page, "emergencies")
    assert "Dr Luc Bernard" in emergencies
    assert JUSTIFICATION in emergencies
    assert f'href="/audit?patient_id={clinic.patient}"' in emergencies
    # An administrator never reads patient data: no name, no link to the file.
    assert "Durand" not in emergencies.title() and "DURAND" not in emergencies
    assert f'href="/patients/{clinic.patient}"' not in emergencies
    for clinical in ("my-studies", "shared-studies", "sessions-today", "procedures"):
        assert f'id="{clinical}"' not in page
    # The alert to acknowledge, in the reader's words (not the operators' stored English).
    assert "Dr Luc Bernard opened emergency access to a patient of your hospitals." in page
    french = browser.get("/", headers={"Accept-Language": "fr"}).text
    assert "Dr Luc Bernard a ouvert un accès d&#39;urgence" in french


def test_the_briey_administrator_sees_no_emergency_of_metz_patients(app, world, clinic):
    admin = world.user("briey-admin", (world.briey, "admin"), with_totp=True)
    browser = world.client(app)
    world.sign_in(browser, admin)
    emergencies = block(browser.get("/").text, "emergencies")
    assert JUSTIFICATION not in emergencies
    assert "/audit?patient_id=" not in emergencies


def test_a_revoked_invitation_leaves_the_home_page(app, world, clinic):
    with transaction(world.runtime.sessions) as db:
        shares = sharing.shares_of(db, "live_session", str(clinic.session_later))
        (invitation,) = [s for s in shares if s.to_user_id == clinic.radiologist]
        sharing.revoke_share(db, audit.SYSTEM, invitation, world.runtime.now(), None)
    page = home_of(world, app, "jdoe")
    assert f"/live/{clinic.session_later}" not in block(page, "sessions-later")
    assert f'href="/live/{clinic.session_today}"' in block(page, "sessions-today")
