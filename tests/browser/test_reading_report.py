"""The on-call radiologist of CHR Metz claims a Briey CT of Saturday night in Chromium,
writes its report in the CT template and signs it final with a fresh code of their
authenticator; Dr Durand, who asked for the exam, is told in the application, reads the
signed report and opens its PDF. In French; the report page fits a phone."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pyotp
import pytest

from concilium.reading.mllp import frame

from .browsing import signed_in_state

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
MLLP_SEND = Path(sys.executable).parent / "mllp_send"
BRIEY = ("CH Briey", "540000049")
METZ = ("CHR Metz-Thionville", "570005165")
RPPS = "10002000001"
PID = "PID|1||IPP001^^^CHBRIEY^PI||Lefevre^Helene||19850523|F"
PV1 = f"PV1|1|E|URG^^^CHBRIEY|||||{RPPS}^Durand^Anne^^^DR"
START = "20260307020000"  # Saturday 7 March 2026, 02:00 in Paris
IMPRESSION = "Embolie pulmonaire droite, sans retentissement cardiaque."


def message(kind: str, control_id: str, *segments: str) -> bytes:
    header = (
        f"MSH|^~\\&|HIS|CHBRIEY|CONCILIUM|GHT|20260307020000||{kind}|{control_id}|P|2.5.1"
        "||||||UNICODE UTF-8"
    )
    return "\r".join([header, *segments]).encode()


def order() -> bytes:
    orc = f"ORC|NW|PL-1^HIS|FL-1^RIS||SC||^^^{START}^^S||||||||||BRIEY_CT"
    obr = ["OBR", "1", "PL-1^HIS", "FL-1^RIS", "TDM-THX^Scanner thorax^LOCAL", *[""] * 13]
    obr += ["ACC-NUIT", "RP-1", "SPS-1", "", "", "", "CT", "", f"^^^{START}^^S"]
    return message("ORM^O01", "ORM-1", PID, PV1, orc, "|".join(obr))


def provision(server, tmp_path: Path) -> dict[str, str]:
    server.create_site(*BRIEY)
    server.create_site(*METZ)
    server.cli(
        "hl7", "node", "add", "--site", BRIEY[1], "--application", "HIS", "--facility", "CHBRIEY"
    )
    server.cli("reading", "group", "add", "--name", "Radiologie Briey", "--site", BRIEY[1])
    server.cli("reading", "group", "add", "--name", "Garde Metz", "--site", METZ[1])
    for kind in ("night", "weekend"):
        server.cli("reading", "oncall", "add", "--group", "Garde Metz", "--kind", kind)
    server.cli(
        "reading", "rule", "add", "--name", "garde", "--site", BRIEY[1], "--group", "Garde Metz"
    )
    keys = {
        "garde": server.create_user(
            "garde", f"radiologist@{METZ[1]}", password="garde-pass-1234", totp=True
        )
    }
    out = server.cli(
        "user",
        "create",
        "--username",
        "durand",
        "--full-name",
        "Anne Durand",
        "--role",
        f"referring_physician@{BRIEY[1]}",
        "--rpps",
        RPPS,
        "--password",
        "durand-pass-1234",
        "--with-totp",
    )
    found = re.search(r"authenticator key: (\w+)", out)
    assert found, out
    keys["durand"] = found.group(1)
    server.cli(
        "reading", "member", "add", "--group", "Garde Metz", "--user", "garde", "--site", BRIEY[1]
    )
    batch = tmp_path / "batch.hl7"
    batch.write_bytes(
        frame(message("ADT^A01^ADT_A01", "ADT-1", "EVN||20260307020000", PID, PV1)) + frame(order())
    )
    sent = subprocess.run(
        [str(MLLP_SEND), "-p", server.env["CONCILIUM_HL7_PORT"], "-f", str(batch), "127.0.0.1"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert sent.stdout.count(b"MSA|AA|") == 2
    return keys


@pytest.mark.browser
def test_the_radiologist_signs_the_report_and_the_referrer_reads_it(
    server, browser, artifacts, tmp_path
):
    keys = provision(server, tmp_path)
    state = signed_in_state(browser, server.url, "garde", "garde-pass-1234", keys["garde"])
    context = browser.new_context(
        viewport=DESKTOP, base_url=server.url, storage_state=state, locale="fr-FR"
    )
    page = context.new_page()
    page.goto("/reading")
    page.locator("#worklist tbody tr").nth(0).get_by_role("button", name="Prendre").click()
    page.get_by_role("link", name="ACC-NUIT").click()
    assert page.get_by_role("heading", name="Compte rendu").is_visible()
    assert page.get_by_text("Aucun compte rendu antérieur.").is_visible()
    page.get_by_label("Indication").fill("Douleur thoracique, dyspnée.")
    page.get_by_label("Résultats").fill("Embolie pulmonaire segmentaire droite.")
    page.get_by_label("Conclusion").fill(IMPRESSION)
    page.get_by_role("button", name="Enregistrer le brouillon").click()
    assert page.get_by_label("Conclusion").input_value() == IMPRESSION
    # The sign-in used this time step's code: the next step's is the fresh one.
    fresh = pyotp.TOTP(keys["garde"]).at(time.time() + 30)
    page.get_by_label("Code de votre authentificateur, pour signer").fill(fresh)
    page.get_by_role("button", name="Signer en définitif").click()
    page.wait_for_url(re.compile(r".*/reading$"))
    # Read, and the grant is over: the exam left the worklist.
    assert page.get_by_text("Aucun examen à lire.").is_visible()
    assert page.get_by_text("ACC-NUIT").count() == 0
    context.close()

    state = signed_in_state(browser, server.url, "durand", "durand-pass-1234", keys["durand"])
    context = browser.new_context(
        viewport=DESKTOP, base_url=server.url, storage_state=state, locale="fr-FR"
    )
    page = context.new_page()
    page.goto("/")
    notice = page.get_by_text(re.compile("Le compte rendu de l'examen ACC-NUIT"))
    found = re.search(r"/reading/reports/\d+", notice.inner_text())
    assert found, notice.inner_text()
    page.goto(found.group(0))
    assert page.get_by_role("heading", name="Compte rendu définitif").is_visible()
    assert page.get_by_text(IMPRESSION).is_visible()
    assert page.get_by_text(re.compile("signé par Garde le")).is_visible()
    href = page.get_by_role("link", name="Ouvrir le PDF").get_attribute("href")
    assert href
    pdf = context.request.get(href)
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF-")
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(artifacts / "reading-report-phone.png"), full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    context.close()
