"""A person something is shared with is told by e-mail, in their language and zone: what
(never which patient), by whom, from which hospital, until when, and the link to it; sent
through the outbox to a real SMTP server. Shares to a site, and failed shares, send nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from concilium.imaging.archive import Archive
from concilium.imaging.ingest import Sender, ingest_instance
from concilium.imaging.synthetic import SyntheticPatient, SyntheticStudy, generate_ct_series
from concilium.platform import audit, i18n, patients
from concilium.platform.db import transaction
from concilium.platform.policy import Principal
from concilium.platform.tables import OutboxMail, User
from concilium.services import LOCALE_FOLDERS
from mail_delivery import deliver, html_of, text_of

NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def catalogues():
    i18n.load_catalogues(LOCALE_FOLDERS)


def signed_in(world, app, username, *roles):
    user = world.user(username, *roles, with_totp=True)
    browser = world.client(app)
    browser.headers["x-csrf-token"] = world.sign_in(browser, user)
    browser.user = user
    return browser


def _reader(world, user, name, email, locale, zone):
    with transaction(world.runtime.sessions) as db:
        found = db.get(User, user.id)
        found.full_name, found.email, found.locale, found.timezone = name, email, locale, zone


def _queued(world):
    with world.runtime.sessions() as db:
        return db.execute(select(OutboxMail.kind)).scalars().all()


def test_a_patient_shared_with_a_person_is_told_to_them_without_naming_the_patient(
    app, world, clock
):
    clock.now = NOW
    coordinator = signed_in(world, app, "coord", (world.metz, "coordinator"))
    _reader(world, coordinator.user, "Dr Claire Weber", "c.weber@chr-metz.fr", "fr", None)
    expert = world.user("expert", (world.briey, "specialist"))
    _reader(world, expert, "Dr Anne Roux", "a.roux@ch-briey.fr", "fr", None)
    with transaction(world.runtime.sessions) as db:
        patient = patients.create_patient(
            db,
            audit.Actor(coordinator.user.id, "coord"),
            world.metz.id,
            "MTZ-42",
            patients.Demographics("Klein", "Amandine"),
        )
        patient_id = patient.id

    # A share to a site tells nobody by e-mail; a refused share queues nothing.
    to_site = coordinator.post(
        f"/patients/{patient_id}/shares",
        data={"to_site_id": str(world.briey.id), "expires_on": "2026-12-20"},
    )
    assert to_site.status_code == 303, to_site.text
    refused = coordinator.post(
        f"/patients/{patient_id}/shares",
        data={"to_user_id": str(expert.id), "expires_on": "2001-01-01"},
    )
    assert refused.status_code == 422
    assert _queued(world) == []

    shared = coordinator.post(
        f"/patients/{patient_id}/shares",
        data={
            "to_user_id": str(expert.id),
            "expires_on": "2026-12-20",
            "reason": "Mme KLEIN, avis sur la coronarographie",
        },
    )
    assert shared.status_code == 303, shared.text
    [message] = deliver(world.runtime)
    assert message["To"].addresses[0].addr_spec == "a.roux@ch-briey.fr"
    assert message["Subject"] == "Dr Claire Weber a partagé avec vous le dossier d'un patient"
    text = text_of(message)
    assert text.startswith("Bonjour Dr Anne Roux,")
    # Shared until 23:59 UTC that day: 00:59 the next day in Paris.
    assert (
        "Dr Claire Weber (CHR Metz-Thionville) a partagé avec vous le dossier d'un patient "
        "sur Concilium, jusqu'au 21/12/2026 00:59." in text
    )
    link = f"http://127.0.0.1:8000/patients/{patient_id}"
    assert f"Connectez-vous pour le consulter : {link}" in text
    assert f'href="{link}"' in html_of(message)
    # Neither the patient's name, nor their number, nor the reason given leave the hospital.
    whole = message.as_string()
    for secret in ("KLEIN", "Klein", "Amandine", "MTZ-42", "coronarographie"):
        assert secret not in whole


def _store(world, tmp: Path) -> str:
    rt = world.runtime
    study = SyntheticStudy("share-mail", SyntheticPatient("DOE^JANE", "MTZ-100"))
    paths = generate_ct_series(tmp / "share-mail", 2, study=study, rows=32, columns=32)
    archive = Archive(rt.settings.data_dir / "images", rt.sessions, rt.bus, clock=rt.now)
    principal = Principal(0, "modality", {world.metz.id: frozenset({"technologist"})})
    sender = Sender(principal, audit.Actor(None, "modality"), world.metz.id)
    for path in paths:
        ingest_instance(archive, sender, [path.read_bytes()])
    return study.study_instance_uid


def test_a_study_shared_with_a_person_is_told_to_them_in_their_language_and_zone(
    app, world, clock, tmp_path
):
    clock.now = NOW
    uid = _store(world, tmp_path)
    radiologist = signed_in(world, app, "metz-radio", (world.metz, "radiologist"))
    _reader(world, radiologist.user, "Dr Paul Lefèvre", "p.lefevre@chr-metz.fr", "fr", None)
    expert = world.user("expert", (world.briey, "specialist"))
    _reader(world, expert, "Sam Baker", "s.baker@chu-martinique.fr", "en", "America/Martinique")

    shared = radiologist.post(
        f"/imaging/studies/{uid}/shares",
        data={"to_user_id": str(expert.id), "expires_on": "2026-12-20"},
    )
    assert shared.status_code == 303, shared.text
    [message] = deliver(world.runtime)
    assert message["Content-Language"] == "en"
    assert message["Subject"] == "Dr Paul Lefèvre shared an imaging study with you"
    text = text_of(message)
    assert text.startswith("Hello Sam Baker,")
    # 23:59 UTC is 19:59 in Martinique.
    assert "on Concilium, until 20/12/2026, 19:59." in text
    assert f"Sign in to see it: http://127.0.0.1:8000/imaging/studies/{uid}" in text
    assert "DOE" not in message.as_string() and "MTZ-100" not in message.as_string()


@pytest.mark.parametrize("name", ["share.txt", "share.html"])
def test_the_share_templates_show_no_text_outside_the_catalogues(name):
    from concilium.platform.notify import PLATFORM_MAIL
    from test_translations import _untranslated

    assert _untranslated((PLATFORM_MAIL / name).read_text(encoding="utf-8")) == []
