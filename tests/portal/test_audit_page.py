"""The audit log as people read it: names of people, studies and sessions by description,
actions in words, repeated retrievals told once with their count, filters by person, kind
of action and patient; and the e-mail alerting administrators of an emergency access."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from clinical_world import JUSTIFICATION, PASSWORD, populate
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.outbox import open_payload
from concilium.platform.tables import OutboxMail, User

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
def clinic(world, clock):
    clock.now = START
    return populate(world.runtime, world.metz, world.briey)


def retrievals(world, clinic, count, at, monkeypatch):
    """``count`` retrievals of the Metz study by its radiologist, 20 seconds apart from
    ``at`` (the trail stamps entries with the time of the machine: set here)."""
    with transaction(world.runtime.sessions) as db:
        doctor = db.get(User, clinic.radiologist)
        actor = audit.Actor(doctor.id, doctor.username, role="radiologist", site_id=clinic.metz)
        for n in range(count):
            monkeypatch.setattr(audit, "utcnow", lambda n=n: at + timedelta(seconds=20 * n))
            audit.record(
                db,
                actor,
                "study.retrieve",
                "success",
                object_kind="study",
                object_id=clinic.metz_study,
                patient_id=clinic.patient,
            )


def admin_browser(world, app):
    admin = world.user("claire", (world.metz, "admin"), with_totp=True)
    browser = world.client(app)
    world.sign_in(browser, admin)
    return browser


def rows(page: str) -> list[str]:
    body = page[page.index("<tbody>") : page.index("</tbody>")]
    return re.findall(r"<tr .*?</tr>", body, re.S)


def test_entries_are_told_in_words_and_repeated_retrievals_once(app, world, clinic, monkeypatch):
    retrievals(world, clinic, 5, START + timedelta(minutes=1), monkeypatch)
    retrievals(world, clinic, 1, START + timedelta(minutes=40), monkeypatch)  # another sitting
    monkeypatch.undo()
    browser = admin_browser(world, app)
    page = browser.get("/audit", params={"actor": "jdoe", "action": "study."})
    assert page.status_code == 200, page.text
    lines = [r for r in rows(page.text) if "Retrieved images" in r]
    assert len(lines) == 2, lines
    newest, grouped = lines
    assert "5 times" in grouped
    assert "times" not in newest
    for line in lines:
        assert "Dr Jeanne Doe" in line
        assert "jdoe" not in line
        assert f'href="/imaging/studies/{clinic.metz_study}">CT THORAX METZ' in line
        assert "user/" not in line and "study/" not in line
        # An administrator reads no patient data: the patient by number only.
        assert f"patient #{clinic.patient}" in line
        assert "DURAND" not in line
    # Times in Paris on the 24-hour clock: the grouped sitting ran 10:01 to 10:02.
    assert "07/12/2026, 10:01 to 10:02" in grouped


def test_filters_by_person_kind_of_action_and_patient(app, world, clinic, monkeypatch):
    retrievals(world, clinic, 2, START + timedelta(minutes=1), monkeypatch)
    monkeypatch.undo()
    browser = admin_browser(world, app)
    page = browser.get("/audit").text
    assert '<option value="jdoe">Dr Jeanne Doe (jdoe)</option>' in page
    assert '<option value="live.">Live sessions</option>' in page
    sessions = browser.get("/audit", params={"action": "live."}).text
    assert all("live session" in r.lower() for r in rows(sessions)), rows(sessions)
    assert f'href="/live/{clinic.session_today}">Cath lab supervision' in sessions
    mine = rows(browser.get("/audit", params={"actor": "lbernard"}).text)
    assert mine and all("Dr Luc Bernard" in r for r in mine)
    assert not any("Dr Jeanne Doe" in r for r in mine)
    about = rows(browser.get("/audit", params={"patient_id": str(clinic.patient)}).text)
    assert about and all(f"patient #{clinic.patient}" in r for r in about)
    # Another hospital's emergency access to a Metz patient is Metz's to review.
    assert any("Opened emergency access" in r and "Dr Luc Bernard" in r for r in about)
    # A Briey patient's entries are not Metz's.
    assert rows(browser.get("/audit", params={"patient_id": str(clinic.briey_patient)}).text) == []
    # In French, actions in French too.
    french = browser.get("/audit", params={"actor": "jdoe"}, headers={"Accept-Language": "fr"})
    assert "A récupéré des images" in french.text
    assert "2 fois" in french.text


def test_breaking_the_glass_mails_the_administrators_the_justification_and_links(
    app, world, clinic
):
    admin = world.user("claire", (world.metz, "admin"), with_totp=True)
    with transaction(world.runtime.sessions) as db:
        db.get(User, admin.id).email = "claire@chr-metz.fr"
    briey = world.client(app)
    with world.runtime.sessions() as db:
        doctor = db.execute(select(User).where(User.username == "lbernard")).scalar_one()
    csrf = world.sign_in(briey, doctor, PASSWORD)
    reason = "unconscious at Briey, allergies and treatments needed now"
    opened = briey.post(
        "/emergency",
        data={
            "csrf_token": csrf,
            "site_id": str(clinic.metz),
            "identifier": "MTZ-1",
            "justification": reason,
        },
    )
    assert opened.status_code == 303, opened.text
    with world.runtime.sessions() as db:
        queued = db.execute(select(OutboxMail).where(OutboxMail.kind == "emergency.alert"))
        mails = [open_payload(world.runtime.box, row) for row in queued.scalars()]
    assert len(mails) == 1
    (mail,) = mails
    assert mail.to == ("Claire <claire@chr-metz.fr>",)
    assert mail.language == "fr"
    assert mail.subject == "Accès d'urgence ouvert par Dr Luc Bernard"
    assert reason in mail.text and reason in mail.html
    audit_link = f"/audit?patient_id={clinic.patient}"
    assert audit_link in mail.text and audit_link in mail.html
    # The administrator may not read the patient: no name, no link to the file.
    assert "DURAND" not in mail.text and f"/patients/{clinic.patient}" not in mail.text
    assert f"patient n° {clinic.patient}" in mail.text
    assert JUSTIFICATION not in mail.text  # the earlier access is not this one


def test_days_of_the_filter_are_the_reader_days(app, world, clinic, monkeypatch):
    # 23:30 UTC on 7 December is half past midnight on 8 December in Paris.
    retrievals(world, clinic, 1, datetime(2026, 12, 7, 23, 30, tzinfo=UTC), monkeypatch)
    monkeypatch.undo()
    browser = admin_browser(world, app)
    late = {"actor": "jdoe", "action": "study.retrieve"}
    on_the_8th = browser.get("/audit", params={**late, "since": "2026-12-08"}).text
    assert len(rows(on_the_8th)) == 1
    assert "08/12/2026, 00:30" in on_the_8th
    on_the_7th = browser.get("/audit", params={**late, "until": "2026-12-07"}).text
    assert rows(on_the_7th) == []
