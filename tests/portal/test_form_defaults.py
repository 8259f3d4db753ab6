"""Forms registering something at a site start on the person's own hospital, not on the
first hospital in alphabetical order ("CH Briey" sorts before "CHR Metz-Thionville")."""

from __future__ import annotations

import re

import pytest

from concilium.platform.db import transaction
from concilium.platform.tables import Membership

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def two_hospital_coordinator(world, username):
    """A coordinator at Metz first, given Briey later (roles given together have no order)."""
    user = world.user(username, (world.metz, "coordinator"))
    with transaction(world.runtime.sessions) as db:
        db.add(Membership(user_id=user.id, site_id=world.briey.id, role="coordinator"))
    return user


def selected(page: str, select_id: str) -> list[str]:
    """The values of the options selected in the select ``select_id``."""
    found = re.search(rf'<select id="{select_id}"[^>]*>(.*?)</select>', page, re.S)
    assert found, f"no select {select_id}"
    return re.findall(r'<option value="([^"]*)" selected>', found.group(1))


def test_creating_a_user_starts_on_the_administrator_hospital(app, world):
    # The region's administrator, who is also Metz's: every site is offered, Metz first chosen.
    admin = world.user("claire", (world.metz, "admin"), platform_admin=True, with_totp=True)
    browser = world.client(app)
    csrf = world.sign_in(browser, admin)
    page = browser.get("/admin/users").text
    assert page.index("CH Briey") < page.index("CHR Metz-Thionville", page.index('id="f-site"'))
    assert selected(page, "f-site") == [str(world.metz.id)]
    # A refused form keeps the site the administrator chose.
    refused = browser.post(
        "/admin/users",
        data={
            "csrf_token": csrf,
            "username": "x",
            "full_name": "X",
            "site_id": str(world.briey.id),
            "role": "no-such-role",
        },
    )
    assert refused.status_code == 422, refused.text
    assert selected(refused.text, "f-site") == [str(world.briey.id)]


def test_registering_a_patient_and_recording_consent_start_on_the_carer_hospital(app, world):
    carer = two_hospital_coordinator(world, "marc")
    browser = world.client(app)
    csrf = world.sign_in(browser, carer)
    page = browser.get("/patients").text
    assert selected(page, "f-site") == [str(world.metz.id)]
    created = browser.post(
        "/patients",
        data={
            "csrf_token": csrf,
            "site_id": str(world.briey.id),
            "identifier": "B-1",
            "family_name": "Durand",
            "given_name": "Anne",
            "sex": "F",
        },
    )
    assert created.status_code == 303, created.text
    patient = browser.get(created.headers["location"]).text
    assert selected(patient, "f-csite") == [str(world.metz.id)]
    assert selected(patient, "f-idsite") == [str(world.metz.id)]


def test_registering_a_dicom_node_or_a_live_session_starts_on_the_own_hospital(app, world):
    admin = world.user("claire", (world.metz, "admin"), platform_admin=True, with_totp=True)
    browser = world.client(app)
    world.sign_in(browser, admin)
    nodes = browser.get("/admin/imaging/aes")
    assert nodes.status_code == 200, nodes.text
    assert str(world.briey.id) in re.findall(r'<option value="(\d+)"', nodes.text)
    assert selected(nodes.text, "f-site") == [str(world.metz.id)]
    organiser = two_hospital_coordinator(world, "marc")
    carer = world.client(app)
    world.sign_in(carer, organiser)
    sessions = carer.get("/live")
    assert sessions.status_code == 200, sessions.text
    assert selected(sessions.text, "f-site") == [str(world.metz.id)]
