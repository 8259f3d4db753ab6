"""A site administrator registers the hospital system in the browser, the system sends an
admission and an order with ``mllp_send`` to the running server, and the administrator
reviews both in the message log, raw beside their acknowledgments; on a phone and a
desktop."""

from __future__ import annotations

import re
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
PID = "PID|1||IPP001^^^CHBRIEY^PI||Lefevre^Helene||19850523|F"
OBR = ["OBR", "1", "PL-1^HIS", "FL-1^RIS", "TDM-THX^Scanner thorax^LOCAL", *[""] * 13]
OBR += ["ACC-1", "RP-1", "SPS-1", "", "", "", "CT"]  # OBR-18 to OBR-24


def message(kind: str, control_id: str, *segments: str) -> bytes:
    header = (
        f"MSH|^~\\&|HIS|CHBRIEY|CONCILIUM|GHT|20260307020000||{kind}|{control_id}|P|2.5.1"
        "||||||UNICODE UTF-8"
    )
    return "\r".join([header, *segments]).encode()


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_an_administrator_registers_a_sender_and_reviews_its_messages(
    server, browser, artifacts, tmp_path, viewport
):
    server.create_site(*BRIEY)
    key = server.create_user("anne", f"admin@{BRIEY[1]}", password="admin-pass-1234", totp=True)
    state = signed_in_state(browser, server.url, "anne", "admin-pass-1234", key)
    context = browser.new_context(
        viewport=viewport, base_url=server.url, storage_state=state, locale="en-GB"
    )
    page = context.new_page()
    page.goto("/")
    main_menu(page).get_by_role("link", name="HL7 senders").click()
    assert page.get_by_role("heading", name="HL7 senders", exact=True).is_visible()
    page.get_by_label("Sending application (MSH-3)").fill("HIS")
    page.get_by_label("Sending facility (MSH-4)").fill("CHBRIEY")
    page.get_by_role("button", name="Register", exact=True).click()
    row = page.get_by_role("row", name=re.compile("CHBRIEY"))
    assert "CH Briey" in row.inner_text()

    batch = tmp_path / "batch.hl7"
    orm = message(
        "ORM^O01",
        "ORM-1",
        PID,
        "ORC|NW|PL-1^HIS|FL-1^RIS||SC",
        "|".join(OBR),
    )
    batch.write_bytes(
        frame(message("ADT^A01^ADT_A01", "ADT-1", "EVN||20260307020000", PID)) + frame(orm)
    )
    sent = subprocess.run(
        [str(MLLP_SEND), "-p", server.env["CONCILIUM_HL7_PORT"], "-f", str(batch), "127.0.0.1"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert sent.stdout.count(b"MSA|AA|") == 2

    page.get_by_role("link", name="Messages received and sent").click()
    assert page.get_by_role("heading", name="HL7 messages").is_visible()
    page.get_by_label("Direction").select_option(label="received")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#messages tbody tr")
    assert rows.count() == 2
    assert "ORM-1" in rows.nth(0).inner_text() and "ADT-1" in rows.nth(1).inner_text()
    rows.nth(0).get_by_role("link").click()
    assert page.get_by_role("heading", name="HL7 message ORM^O01").is_visible()
    assert "OBR|1|PL-1^HIS" in page.locator("#raw").inner_text()
    assert "MSA|AA|ORM-1" in page.locator("pre.ack").inner_text()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    name = "phone" if viewport is PHONE else "desktop"
    page.screenshot(path=str(artifacts / f"hl7-message-{name}.png"), full_page=True)
    assert overflow <= 0
    context.close()
