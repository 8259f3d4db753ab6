"""The pages of cases: a referring physician starts a case from the patient's hospital
number, attaches a document and a study of the archive, sees what is missing and submits;
the coordinator lists it and plans the agenda; a member of another board is refused (403,
audited) and every view is audited. Bad input shows the form again (422), in French."""

from __future__ import annotations

import json
import re

from sqlalchemy import select

from concilium import imaging
from concilium.boards.tables import BoardCase, BoardCaseStudy
from concilium.imaging.synthetic import SyntheticPatient, SyntheticStudy, generate_ct_series
from concilium.platform import audit
from concilium.platform.audit import AuditEvent
from concilium.platform.policy import Principal

from .cases_world import PDF, build, consent, listed

CASE_FORM = {
    "patient": "BRY-1",
    "question": "Traitement de première ligne ?",
    "diagnosis": "Lymphome diffus à grandes cellules B",
    "histology": "DLBCL, CD20+",
    "stage": "Ann Arbor IIA",
    "performance_status": "1",
    "history": "aucun",
    "current_treatment": "aucun",
}


def signed_in(app, world, user, language: str = "en"):
    browser = world.client(app)
    browser.headers["Accept-Language"] = language
    browser.headers["x-csrf-token"] = world.sign_in(browser, user)
    return browser


def _briey_study(world) -> str:
    """A CT of the patient sent by Briey, linked to the platform patient by its number."""
    rt = world.runtime
    radiologist = world.user("briey-radio", (world.briey, "radiologist"))
    study = SyntheticStudy("rcp-case", SyntheticPatient("LEMOINE^CLAIRE", "BRY-1"))
    (first,) = generate_ct_series(rt.settings.data_dir / "ct", 1, study=study, rows=16, columns=16)
    archive = imaging.Archive(rt.settings.data_dir / "images", rt.sessions, rt.bus)
    principal = Principal(
        radiologist.id, radiologist.username, {world.briey.id: frozenset({"radiologist"})}
    )
    sender = imaging.Sender(
        principal, audit.Actor(radiologist.id, radiologist.username), world.briey.id
    )
    return imaging.ingest_instance(archive, sender, [first.read_bytes()]).study_instance_uid


def test_a_referring_physician_prepares_and_submits_a_case(app, world, clock):
    cw = build(world, clock)
    uid = _briey_study(world)
    browser = signed_in(app, world, cw.referrer, "fr")
    assert f'href="/boards/{cw.board_id}/cases/new"' in browser.get("/boards").text
    new = browser.get(f"/boards/{cw.board_id}/cases/new")
    assert new.status_code == 200 and "numéro" in new.text.lower()
    created = browser.post(f"/boards/{cw.board_id}/cases", data=CASE_FORM)
    assert created.status_code == 303, created.text
    url = created.headers["location"]
    page = browser.get(url)
    assert page.status_code == 200
    missing = page.text[page.text.index('id="missing-list"') :]
    assert "non-opposition" in missing and "au moins un document" in missing
    # Submitting an incomplete case is refused with the reasons, in French.
    refused = browser.post(f"{url}/submit")
    assert refused.status_code == 422
    assert "ne peut pas encore être soumis" in refused.text
    attached = browser.post(
        f"{url}/documents",
        data={"kind": "pathology_report"},
        files={"file": ("compte-rendu.pdf", PDF, "application/pdf")},
    )
    assert attached.status_code == 303, attached.text
    bad_file = browser.post(
        f"{url}/documents",
        data={"kind": "pathology_report"},
        files={"file": ("virus.pdf", b"MZ\x90\x00", "application/pdf")},
    )
    assert bad_file.status_code == 422 and "PDF, PNG ou JPEG" in bad_file.text
    page = browser.get(url)
    assert "compte-rendu.pdf" in page.text
    assert f'value="{uid}"' in page.text  # the patient's study, found through the archive
    assert browser.post(f"{url}/studies", data={"study": uid}).status_code == 303
    assert browser.post(f"{url}/studies", data={"study": "1.2.3.4"}).status_code == 422
    document = re.search(rf'href="({re.escape(url)}/documents/\d+)"', browser.get(url).text)
    assert document is not None
    opened = browser.get(document.group(1))
    assert opened.status_code == 200 and opened.content == PDF
    assert opened.headers["content-type"] == "application/pdf"
    consent(world, cw)
    submitted = browser.post(f"{url}/submit")
    assert submitted.status_code == 303
    page = browser.get(url)
    assert 'id="complete"' in page.text and "soumis" in page.text
    with world.runtime.sessions() as db:
        case = db.scalars(select(BoardCase)).one()
        assert (case.status, case.referrer_id, case.performance_status) == (
            "submitted",
            cw.referrer.id,
            1,
        )
        assert [s.study_instance_uid for s in db.scalars(select(BoardCaseStudy))] == [uid]
        views = db.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "board_case.read", AuditEvent.object_id == str(case.id)
            )
        ).all()
        assert len(views) >= 5 and {v.patient_id for v in views} == {cw.patient_id}
        assert any(json.loads(v.detail)["viewed"].startswith("document") for v in views)


def test_bad_input_shows_the_case_form_again_in_french_and_saves_nothing(app, world, clock):
    cw = build(world, clock)
    browser = signed_in(app, world, cw.referrer, "fr")
    for data, message in [
        ({**CASE_FORM, "patient": "BRY-404"}, "Aucun patient avec le numéro BRY-404"),
        ({**CASE_FORM, "patient": ""}, "numéro de dossier"),
        ({**CASE_FORM, "performance_status": "7"}, "OMS/ECOG 0 à 4"),
    ]:
        response = browser.post(f"/boards/{cw.board_id}/cases", data=data)
        assert response.status_code == 422, data
        assert message in response.text, message
        assert "Lymphome diffus" in response.text  # what was typed is kept
    with world.runtime.sessions() as db:
        assert db.scalars(select(BoardCase)).first() is None


def test_the_coordinator_lists_cases_and_sees_which_would_miss_their_quorum(app, world, clock):
    cw = build(world, clock)
    consent(world, cw)
    first = listed(world, cw)
    waiting = listed(world, cw, meeting=1)
    coordinator = signed_in(app, world, cw.coordinator, "fr")
    board_page = coordinator.get(f"/boards/{cw.board_id}").text
    agenda_url = f"/boards/meetings/{cw.meetings[0]}/agenda"
    assert f'href="{agenda_url}"' in board_page
    page = coordinator.get(agenda_url)
    assert page.status_code == 200
    summary = page.text[page.text.index('id="quorum-summary"') :]
    assert "1 dossier n'aurait pas son quorum" in summary[: summary.index("</p>")]
    assert "LEMOINE Claire" in page.text
    saved = coordinator.post(
        agenda_url,
        data={"case": [str(first)], "place": ["1"], "minutes": ["25"], "specialties": ["surgery"]},
    )
    assert saved.status_code == 303, saved.text
    page = coordinator.get(agenda_url).text
    assert 'value="25"' in page and 'value="surgery"' in page
    bad = coordinator.post(
        agenda_url,
        data={"case": [str(first)], "place": ["1"], "minutes": ["dix"], "specialties": [""]},
    )
    assert bad.status_code == 422 and "nombres entiers" in bad.text
    bad_code = coordinator.post(
        agenda_url,
        data={"case": [str(first)], "place": ["1"], "minutes": ["5"], "specialties": ["Chir!"]},
    )
    assert bad_code.status_code == 422 and "code de spécialité" in bad_code.text
    # Postponed from the case page: onto the next meeting, where the other case already is.
    postponed = coordinator.post(f"/boards/cases/{first}/postpone", data={"reason": "TEP attendue"})
    assert postponed.status_code == 303
    with world.runtime.sessions() as db:
        case = db.get(BoardCase, first)
        assert (case.meeting_id, case.minutes, case.specialties_needed) == (
            cw.meetings[1],
            25,
            ["surgery"],
        )
        assert db.get(BoardCase, waiting).meeting_id == cw.meetings[1]
    # Members plan nothing; the referring physician neither.
    member = signed_in(app, world, cw.haematologist)
    assert member.get(agenda_url).status_code == 403
    assert member.get(f"/boards/cases/{first}").status_code == 200


def test_a_member_of_another_board_cannot_open_the_case(app, world, clock):
    cw = build(world, clock)
    consent(world, cw)
    case_id = listed(world, cw)
    outsider = signed_in(app, world, cw.outsider)
    assert outsider.get(f"/boards/cases/{case_id}").status_code == 403
    assert outsider.get(f"/boards/cases/{case_id}/documents/1").status_code == 403
    assert outsider.get(f"/boards/meetings/{cw.meetings[0]}/agenda").status_code == 403
    assert (
        outsider.post(f"/boards/cases/{case_id}/withdraw", data={"reason": "x"}).status_code == 403
    )
    # A member may read it but not withdraw it: that is the referring physician's.
    member = signed_in(app, world, cw.pathologist)
    assert member.post(f"/boards/cases/{case_id}/withdraw", data={"reason": "x"}).status_code == 403
    with world.runtime.sessions() as db:
        refused = db.scalars(
            select(AuditEvent).where(
                AuditEvent.outcome == "refused", AuditEvent.object_kind == "board_case"
            )
        ).all()
        assert {(r.actor, r.action, r.object_id, r.patient_id) for r in refused} >= {
            ("dr-digest", "board_case.read", str(case_id), cw.patient_id),
            ("dr-path", "board_case.edit", str(case_id), cw.patient_id),
        }
        assert db.get(BoardCase, case_id).status == "on_agenda"


def test_the_referrer_records_the_gp_who_gets_the_fiche(app, world, clock):
    cw = build(world, clock)
    consent(world, cw)
    browser = signed_in(app, world, cw.referrer, "fr")
    created = browser.post(f"/boards/{cw.board_id}/cases", data=CASE_FORM)
    url = created.headers["location"].split("#")[0]
    refused = browser.post(url, data={**CASE_FORM, "gp_email": "pas une adresse"})
    assert refused.status_code == 422 and "médecin traitant" in refused.text
    saved = browser.post(url, data={**CASE_FORM, "gp_email": "dr.martin@exemple.fr"})
    assert saved.status_code == 303, saved.text
    assert 'value="dr.martin@exemple.fr"' in browser.get(url).text
    with world.runtime.sessions() as db:
        case_id = int(url.rsplit("/", 1)[1])
        assert db.get(BoardCase, case_id).gp_email == "dr.martin@exemple.fr"
