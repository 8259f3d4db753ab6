"""The on-call radiologist of CHR Metz opens the reading worklist in Chromium and finds the
exam CH Briey scheduled at 02:00 on a Saturday (routed to the on-call group by the stored
rota and rule), then claims it; on a phone and a desktop, in French."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from concilium.reading.mllp import frame

from .browsing import main_menu, signed_in_state

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
MLLP_SEND = Path(sys.executable).parent / "mllp_send"
BRIEY = ("CH Briey", "540000049")
METZ = ("CHR Metz-Thionville", "570005165")
PID = "PID|1||IPP001^^^CHBRIEY^PI||Lefevre^Helene||19850523|F"
START = "20260307020000"  # Saturday 7 March 2026, 02:00 in Paris


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
    return message("ORM^O01", "ORM-1", PID, orc, "|".join(obr))


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_on_call_radiologist_of_metz_claims_a_briey_exam_of_saturday_night(
    server, browser, artifacts, tmp_path, viewport
):
    server.create_site(*BRIEY)
    server.create_site(*METZ)
    server.cli(
        "hl7", "node", "add", "--site", BRIEY[1], "--application", "HIS", "--facility", "CHBRIEY"
    )
    server.cli(
        "reading", "group", "add", "--name", "Radiologie Briey", "--site", BRIEY[1], "--local"
    )
    server.cli("reading", "group", "add", "--name", "Garde Metz", "--site", METZ[1])
    for kind in ("night", "weekend", "holiday"):
        server.cli("reading", "oncall", "add", "--group", "Garde Metz", "--kind", kind)
    server.cli(
        "reading",
        "rule",
        "add",
        "--name",
        "briey-garde",
        "--site",
        BRIEY[1],
        "--group",
        "Garde Metz",
    )
    key = server.create_user(
        "garde", f"radiologist@{METZ[1]}", password="garde-pass-1234", totp=True
    )
    server.cli(
        "reading", "member", "add", "--group", "Garde Metz", "--user", "garde", "--site", BRIEY[1]
    )

    batch = tmp_path / "batch.hl7"
    batch.write_bytes(
        frame(message("ADT^A01^ADT_A01", "ADT-1", "EVN||20260307020000", PID)) + frame(order())
    )
    sent = subprocess.run(
        [str(MLLP_SEND), "-p", server.env["CONCILIUM_HL7_PORT"], "-f", str(batch), "127.0.0.1"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert sent.stdout.count(b"MSA|AA|") == 2

    state = signed_in_state(browser, server.url, "garde", "garde-pass-1234", key)
    context = browser.new_context(
        viewport=viewport, base_url=server.url, storage_state=state, locale="fr-FR"
    )
    page = context.new_page()
    page.goto("/")
    main_menu(page, "Menu principal").get_by_role("link", name="Liste de lecture").click()
    assert page.get_by_role("heading", name="Liste de lecture").is_visible()
    rows = page.locator("#worklist tbody tr")
    assert rows.count() == 1
    text = rows.nth(0).inner_text()
    assert "ACC-NUIT" in text and "CH Briey" in text and "Garde Metz" in text
    assert "STAT" in text and "07/03/2026 03:00" in text  # the STAT target, Paris time
    rows.nth(0).get_by_role("button", name="Prendre").click()
    row = page.locator("#worklist tbody tr").nth(0)
    assert row.locator(".reader").inner_text() == "garde"
    assert row.get_by_role("button", name="Libérer l'examen").is_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    name = "phone" if viewport is PHONE else "desktop"
    page.screenshot(path=str(artifacts / f"reading-worklist-{name}.png"), full_page=True)
    assert overflow <= 0
    context.close()
