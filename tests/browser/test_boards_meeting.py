"""The facilitator runs a meeting in the pages, in French, as a person would: the members'
arrivals recorded, the case taken up, its live quorum shown, the decision written and
validated with a fresh code of the authenticator; the case page then shows the decision
and its fiche RCP. The meeting page is accessible (axe-core) and logs no console error."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pyotp
import pytest
from playwright.sync_api import expect

from serving import RunningServer, running_server

from .browsing import signed_in_state
from .checks import assert_usable, person_browsing

PASSWORD = "correct-horse-42"
RENNES = "350005179"
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def fresh_code(key: str) -> str:
    """A code of a time step after any used to sign in (a code is accepted once)."""
    step = int(time.time()) // 30
    while int(time.time()) // 30 == step:
        time.sleep(0.5)
    return str(pyotp.TOTP(key).now())


@pytest.fixture(scope="module")
def meeting_server(
    tmp_path_factory: pytest.TempPathFactory, browser: Any
) -> Iterator[tuple[RunningServer, dict[str, Any], dict[str, str]]]:
    with running_server(tmp_path_factory.mktemp("boards-meeting")) as server:
        server.create_site("CHU de Rennes", RENNES)
        keys = {
            name: server.create_user(name, f"{role}@{RENNES}", password=PASSWORD, totp=True)
            for name, role in (
                ("coord", "coordinator"),
                ("dr-ref", "referring_physician"),
                ("dr-path", "specialist"),
            )
        }
        server.create_user("dr-hemato", f"specialist@{RENNES}", password=PASSWORD)
        server.create_user("dr-radio", f"radiologist@{RENNES}", password=PASSWORD)
        # A meeting that starts in twenty minutes, so that it may be run now.
        start = datetime.now(ZoneInfo("Europe/Paris")) + timedelta(minutes=20)
        code = "rcp-hemato-rennes"
        server.cli(
            "boards", "create", code, "--name", "RCP d'hématologie de Rennes",
            "--type", "haematology", "--site", RENNES, "--weekday", DAYS[start.weekday()],
            "--at", start.strftime("%H:%M"),
        )  # fmt: skip
        for username, specialty, role in (
            ("coord", "haematology", "coordinator"),
            ("dr-hemato", "haematology", "member"),
            ("dr-path", "pathology", "facilitator"),
            ("dr-radio", "radiology", "member"),
        ):
            server.cli(
                "boards", "member", "add", code, username, "--specialty", specialty,
                "--role", role,
            )  # fmt: skip
        server.cli("boards", "meetings", "generate", code, "--weeks", "2")
        states = {
            name: signed_in_state(browser, server.url, name, PASSWORD, key)
            for name, key in keys.items()
        }
        token = server.create_token("dr-ref", "setup", "patients:write")
        headers = {"authorization": f"Bearer {token}"}
        sites = {
            s["finess"]: s["id"]
            for s in httpx.get(f"{server.url}/api/v1/sites", headers=headers).json()
        }
        patient = httpx.post(
            f"{server.url}/api/v1/patients",
            json={
                "site_id": sites[RENNES],
                "identifier": "REN-1",
                "family_name": "Lemoine",
                "given_name": "Claire",
            },
            headers=headers,
        )
        assert patient.status_code == 201, patient.text
        consent = httpx.post(
            f"{server.url}/api/v1/patients/{patient.json()['id']}/consents",
            json={"purpose": "mdt_presentation", "decision": "granted", "site_id": sites[RENNES]},
            headers=headers,
        )
        assert consent.status_code == 201, consent.text
        yield server, states, keys


@pytest.mark.browser
def test_the_facilitator_validates_a_decision(meeting_server, browser, artifacts):
    server, states, keys = meeting_server
    with person_browsing(browser, "desktop", "fr", storage_state=states["dr-ref"]) as (page, _e):
        page.goto(f"{server.url}/boards")
        page.locator("#submit-to").get_by_role("link", name=re.compile("RCP d'hématologie")).click()
        page.get_by_label("Numéro hospitalier du patient").fill("REN-1")
        page.get_by_label("Question posée à la RCP").fill("Traitement de première ligne ?")
        page.get_by_label("Diagnostic").fill("Lymphome diffus à grandes cellules B")
        page.get_by_label("Histologie").fill("DLBCL, CD20+")
        page.get_by_label("Stade").fill("Ann Arbor IIA")
        page.get_by_label("État général (OMS/ECOG)").select_option("1")
        page.get_by_label("Antécédents utiles").fill("aucun")
        page.get_by_label("Traitement en cours").fill("aucun")
        page.get_by_role("button", name="Enregistrer le brouillon").click()
        page.wait_for_url(re.compile(r".*/boards/cases/\d+$"))
        case_id = int(page.url.rsplit("/", 1)[1])
        page.get_by_label("Type de document").select_option(
            label="Compte rendu d'anatomopathologie"
        )
        page.get_by_label(re.compile("^Fichier")).set_input_files(
            {"name": "cr-anapath.pdf", "mimeType": "application/pdf", "buffer": PDF}
        )
        page.get_by_role("button", name="Joindre le document").click()
        page.wait_for_url(re.compile(r".*#documents$"))
        page.get_by_role("button", name="Soumettre le dossier à la RCP").click()
        page.wait_for_url(re.compile(r".*#state$"))

    with person_browsing(browser, "desktop", "fr", storage_state=states["coord"]) as (page, _e):
        page.goto(f"{server.url}/boards/cases/{case_id}")
        page.get_by_role("button", name=re.compile("Inscrire")).first.click()
        page.wait_for_url(re.compile(r".*#agenda$"))
        assert "inscrit" in page.locator("#case-status").inner_text()

    with person_browsing(browser, "desktop", "fr", storage_state=states["dr-path"]) as (
        page,
        errors,
    ):
        page.goto(f"{server.url}/boards/cases/{case_id}")
        page.get_by_role("link", name="la réunion").click()
        page.wait_for_url(re.compile(r".*/boards/meetings/\d+$"))
        # The facilitator is in the room: their presence comes from it, to be validated.
        page.wait_for_selector("#meeting-room[data-connected=true]", state="attached")
        page.get_by_role("button", name="Valider la présence de Dr-Path").click()
        page.wait_for_url(re.compile(r".*#attendance$"))
        # Two colleagues attend by telephone: the facilitator records their arrival.
        for name in ("Dr-Hemato", "Dr-Radio"):
            page.wait_for_selector("#meeting-room[data-connected=true]", state="attached")
            row = page.locator("#attendance-list tbody tr", has_text=name)
            row.get_by_role("button", name="Arrivé").click()
            page.wait_for_url(re.compile(r".*#attendance$"))
            present = page.locator("#attendance-list tbody tr", has_text=name)
            expect(present).to_contain_text("présent")
        page.get_by_role("button", name=f"Discuter le dossier {case_id}").click()
        page.wait_for_url(re.compile(r".*#agenda$"))
        expect(page.locator("#live-quorum")).to_contain_text("quorum atteint")
        live = page.locator("#live-quorum").inner_text()
        assert "quorum atteint" in live and "radiologie" in live and "radiology" not in live
        assert_usable(page, errors, "boards-meeting", artifacts)
        page.get_by_label("Proposition de la RCP (plan de traitement)").fill(
            "R-CHOP 6 cures puis TEP d'évaluation"
        )
        page.get_by_label("Référentiel ou référence utilisé").fill("Référentiel régional 2026")
        page.get_by_label("Médecin référent du suivi").select_option(label="Dr-Ref")
        page.get_by_label("Code de votre authentificateur, pour signer").fill(
            fresh_code(keys["dr-path"])
        )
        page.get_by_role("button", name="Valider la décision").click()
        page.wait_for_url(re.compile(r".*#decision$"))
        assert "Aucun dossier n'est en discussion" in page.locator("#decision").inner_text()
        page.goto(f"{server.url}/boards/cases/{case_id}")
        assert "décidé" in page.locator("#case-status").inner_text()
        decision = page.locator("#decision-v1").inner_text()
        assert "R-CHOP 6 cures" in decision and "Dr-Path" in decision
        fiche = page.request.get(f"{server.url}/boards/cases/{case_id}/fiche")
        assert fiche.status == 200 and fiche.body().startswith(b"%PDF-")
        assert_usable(page, errors, "boards-case-decided", artifacts)
