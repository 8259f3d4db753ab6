"""A referring physician of a member hospital presents a case to a board in the pages, in
French, on a phone and a desktop: the draft, a document attached, what is missing shown,
the case submitted; the coordinator lists it on the coming meeting and sees at a glance
that it would miss its quorum, then gives it more time. Each page is accessible
(axe-core), logs no console error and never scrolls sideways."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from serving import RunningServer, running_server

from .browsing import signed_in_state
from .checks import assert_usable, person_browsing

PASSWORD = "correct-horse-42"
RENNES, VANNES = "350005179", "560008799"
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def cases_server(
    tmp_path_factory: pytest.TempPathFactory, browser: Any
) -> Iterator[tuple[RunningServer, dict[str, Any], int]]:
    with running_server(tmp_path_factory.mktemp("boards-cases")) as server:
        server.create_site("CHU de Rennes", RENNES)
        server.create_site("CHBA Vannes", VANNES)
        keys = {
            "coord": server.create_user(
                "coord", f"coordinator@{RENNES}", password=PASSWORD, totp=True
            ),
            "dr-ref": server.create_user(
                "dr-ref", f"referring_physician@{VANNES}", password=PASSWORD, totp=True
            ),
        }
        server.create_user("dr-hemato", f"specialist@{VANNES}", password=PASSWORD)
        server.create_user("dr-path", f"specialist@{RENNES}", password=PASSWORD)
        code = "rcp-hemato-ouest"
        server.cli(
            "boards", "create", code, "--name", "RCP régionale d'hématologie",
            "--type", "haematology", "--site", RENNES, "--weekday", "friday", "--at", "14:00",
        )  # fmt: skip
        for username, specialty in (("dr-hemato", "haematology"), ("dr-path", "pathology")):
            server.cli("boards", "member", "add", code, username, "--specialty", specialty)
        server.cli("boards", "meetings", "generate", code, "--weeks", "6")
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
        for number, family in (("VAN-phone", "Lemoine"), ("VAN-desktop", "Guillou")):
            patient = httpx.post(
                f"{server.url}/api/v1/patients",
                json={
                    "site_id": sites[VANNES],
                    "identifier": number,
                    "family_name": family,
                    "given_name": "Claire",
                },
                headers=headers,
            )
            assert patient.status_code == 201, patient.text
            consent = httpx.post(
                f"{server.url}/api/v1/patients/{patient.json()['id']}/consents",
                json={
                    "purpose": "mdt_presentation",
                    "decision": "granted",
                    "site_id": sites[VANNES],
                },
                headers=headers,
            )
            assert consent.status_code == 201, consent.text
        # Vannes takes part in the board: its physicians present cases there.
        with person_browsing(browser, "desktop", "fr", storage_state=states["coord"]) as (
            page,
            _errors,
        ):
            page.goto(f"{server.url}/admin/boards")
            page.get_by_role("link", name=re.compile("RCP régionale")).first.click()
            page.get_by_label("Établissement", exact=True).select_option(label="CHBA Vannes")
            page.get_by_role("button", name="Ajouter l'établissement").click()
            page.wait_for_url(re.compile(r".*#sites$"))
            board_id = int(re.search(r"/admin/boards/(\d+)", page.url).group(1))
        yield server, states, board_id


@pytest.mark.browser
@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_a_case_is_submitted_and_listed_with_its_quorum_forecast(
    cases_server, browser, artifacts, width
):
    server, states, board_id = cases_server
    with person_browsing(browser, width, "fr", storage_state=states["dr-ref"]) as (page, errors):
        page.goto(f"{server.url}/boards")
        page.locator("#submit-to").get_by_role("link", name=re.compile("RCP régionale")).click()
        page.wait_for_url(f"**/boards/{board_id}/cases/new")
        assert_usable(page, errors, "boards-case-new", artifacts)
        page.get_by_label("Numéro hospitalier du patient").fill(f"VAN-{width}")
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
        # The non-opposition is recorded; only a document is missing.
        missing = page.locator("#missing-list li")
        assert missing.count() == 1 and "au moins un document" in missing.inner_text()
        assert "brouillon" in page.locator("#case-status").inner_text()
        page.get_by_label("Type de document").select_option(
            label="Compte rendu d'anatomopathologie"
        )
        page.get_by_label(re.compile("^Fichier")).set_input_files(
            {"name": "cr-anapath.pdf", "mimeType": "application/pdf", "buffer": PDF}
        )
        page.get_by_role("button", name="Joindre le document").click()
        page.wait_for_url(re.compile(r".*#documents$"))
        assert "cr-anapath.pdf" in page.locator("#document-list").inner_text()
        assert page.locator("#complete").is_visible()
        assert_usable(page, errors, "boards-case-draft", artifacts)
        page.get_by_role("button", name="Soumettre le dossier à la RCP").click()
        page.wait_for_url(re.compile(r".*#state$"))
        assert "soumis" in page.locator("#case-status").inner_text()

    with person_browsing(browser, width, "fr", storage_state=states["coord"]) as (page, errors):
        page.goto(f"{server.url}/boards/{board_id}")
        page.locator("#meeting-list").get_by_role(
            "link", name="Préparer l'ordre du jour"
        ).first.click()
        page.wait_for_url(re.compile(r".*/boards/meetings/\d+/agenda$"))
        page.get_by_role("button", name=f"Inscrire le dossier {case_id} à cette réunion").click()
        page.wait_for_url(re.compile(r".*/agenda$"))
        row = page.locator(f"#agenda-case-{case_id}")
        # A haematologist and a pathologist: two specialties of the three the board needs.
        assert "n'aurait pas son quorum" in row.inner_text()
        assert "1 spécialité de plus" in row.inner_text()
        summary = page.locator("#quorum-summary").inner_text()
        assert re.search(r"\d+ dossiers? n'aurai(t|ent) pas", summary)
        assert_usable(page, errors, "boards-agenda", artifacts)
        row.get_by_label(f"Minutes pour le dossier {case_id}").fill("25")
        page.get_by_role("button", name="Enregistrer l'ordre du jour").click()
        page.wait_for_url(re.compile(r".*/agenda$"))
        assert (
            page.locator(f"#agenda-case-{case_id}")
            .get_by_label(f"Minutes pour le dossier {case_id}")
            .input_value()
            == "25"
        )
        row = page.locator(f"#agenda-case-{case_id}")
        row.get_by_role("link", name=f"Dossier {case_id}").click()
        page.wait_for_url(f"**/boards/cases/{case_id}")
        assert "inscrit" in page.locator("#case-status").inner_text()
        assert_usable(page, errors, "boards-case", artifacts)
