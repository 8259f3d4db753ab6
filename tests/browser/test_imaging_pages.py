"""A radiologist finds a CT study that a modality sent by DICOM (DCMTK ``storescu``), opens
it, sees its series thumbnails drawn, shares it with another hospital, whose radiologist then
finds and opens it too; on a phone, nothing overflows sideways."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from concilium.imaging.synthetic import SyntheticPatient, SyntheticStudy, generate_ct_series
from imaging.dcmtk import require_dcmtk, run

from . import browsing

METZ = ("CHR Metz-Thionville", "570005165")
BRIEY = ("CH Briey", "540000049")
PASSWORD = "imaging-pages-pass-1"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(autouse=True)
def _without_media_server(monkeypatch):
    """The server runs without the media server: these pages do not use it."""
    monkeypatch.setenv("CONCILIUM_LIVE_ENABLED", "false")


def provision(server) -> dict[str, str]:
    for name, finess in (METZ, BRIEY):
        server.create_site(name, finess)
    keys = {
        username: server.create_user(username, role, password=PASSWORD, totp=True)
        for username, role in (
            ("metzrad", f"radiologist@{METZ[1]}"),
            ("brieyrad", f"radiologist@{BRIEY[1]}"),
        )
    }
    server.cli(
        "dicom", "ae", "add", "METZ_CT", "--host", "127.0.0.1", "--port", "104", "--site", METZ[1]
    )
    return keys


def send_ct_study(server, tmp: Path) -> str:
    """A CT modality of Metz sends a two-series study over one association each."""
    require_dcmtk()
    study = SyntheticStudy("browser-imaging", SyntheticPatient("LEBLANC^MARIE", "MTZ-4242"))
    files = generate_ct_series(tmp / "s2", 6, study=study, rows=128, columns=128)
    files += generate_ct_series(tmp / "s3", 3, study=study, rows=128, columns=128, series_number=3)
    port = server.env["CONCILIUM_DICOM_PORT"]
    sent = run("storescu", "-aet", "METZ_CT", "-aec", "CONCILIUM", "127.0.0.1", port, *files)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    return study.study_instance_uid


def sign_in(page: Page, username: str, key: str) -> None:
    browsing.sign_in(page, username, PASSWORD, totp_key=key)


def no_sideways_overflow(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} overflows by {overflow}px"


def thumbnails_drawn(page: Page, count: int) -> None:
    thumbnails = page.locator("#series img")
    expect(thumbnails).to_have_count(count)
    for i in range(count):
        image = thumbnails.nth(i)
        image.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete", arg=image.element_handle(), timeout=15_000)
        assert image.evaluate("img => img.naturalWidth") > 0


@pytest.mark.browser
def test_a_study_sent_by_dicom_is_found_opened_and_shared_with_another_site(
    server, browser, artifacts, tmp_path
):
    keys = provision(server)
    uid = send_ct_study(server, tmp_path)

    metz = browser.new_context(viewport=PHONE, base_url=server.url)
    page = metz.new_page()
    sign_in(page, "metzrad", keys["metzrad"])
    browsing.main_menu(page).get_by_role("link", name="Imaging").click()
    page.wait_for_url("**/imaging")
    page.get_by_label("Patient name").fill("lebl")
    page.get_by_label("Modality").fill("CT")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#studies tbody tr")
    expect(rows).to_have_count(1)
    assert "2 series, 9 images" in rows.inner_text()
    no_sideways_overflow(page)
    page.screenshot(path=str(artifacts / "imaging-studies-phone.png"), full_page=True)

    page.get_by_role("link", name="LEBLANC MARIE").click()
    page.wait_for_url(f"**/imaging/studies/{uid}")
    thumbnails_drawn(page, 2)
    assert page.get_by_role("link", name="Open in viewer").get_attribute("href") == (
        f"/imaging/studies/{uid}/viewer"
    )
    no_sideways_overflow(page)

    page.get_by_label("With a hospital").select_option(label=BRIEY[0])
    page.get_by_label("Reason").fill("second opinion")
    page.get_by_role("button", name="Share", exact=True).click()
    page.wait_for_url(f"**/imaging/studies/{uid}")
    expect(page.locator("#shares")).to_contain_text(f"With {BRIEY[0]}")
    expect(page.locator("#shares")).to_contain_text("second opinion")
    no_sideways_overflow(page)
    page.screenshot(path=str(artifacts / "imaging-study-phone.png"), full_page=True)
    metz.close()

    briey = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server.url)
    page = briey.new_page()
    sign_in(page, "brieyrad", keys["brieyrad"])
    browsing.main_menu(page).get_by_role("link", name="Imaging").click()
    rows = page.locator("#studies tbody tr")
    expect(rows).to_have_count(1)
    page.get_by_role("link", name="LEBLANC MARIE").click()
    page.wait_for_url(f"**/imaging/studies/{uid}")
    expect(page.get_by_text(f"Shared with you by {METZ[0]}")).to_be_visible()
    thumbnails_drawn(page, 2)
    page.screenshot(path=str(artifacts / "imaging-study-shared-desktop.png"), full_page=True)
    briey.close()
