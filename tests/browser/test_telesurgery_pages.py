"""An engineer supervises a telesurgical procedure: START stays blocked until a real link
qualification passes, then the supervision page follows a real gateway pair live, ENGAGED
and then HOLD when the link is cut."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

# The gateway rig of the telesurgery tests (real gateways, simulator, impairment proxy).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "telesurgery"))

from telesurgery_rig import LoopThread, Rig, Streamer

from concilium.telesurgery.impairment import profile
from concilium.telesurgery.reporting import TimelineReporter

from . import browsing

pytestmark = pytest.mark.timing

METZ = ("CHR Metz-Thionville", "570005165")
BRIEY = ("CH Briey", "540000049")
PASSWORD = "telesurgery-pass-1"


@pytest.fixture(autouse=True)
def _only_what_telesurgery_needs(monkeypatch):
    """The server runs without the DICOM listener and the media server: this test needs
    neither, and a fixed DICOM port may be taken by another server on the machine."""
    monkeypatch.setenv("CONCILIUM_DICOM_PORT", "0")
    monkeypatch.setenv("CONCILIUM_LIVE_ENABLED", "false")


def provision(server) -> dict[str, str]:
    for name, finess in (METZ, BRIEY):
        server.create_site(name, finess)

    def user(username: str, *roles: str, totp: bool = False) -> str:
        return server.create_user(username, *roles, password=PASSWORD, totp=totp)

    def token(username: str, scope: str) -> str:
        return server.create_token(username, "t", scope)

    key = user("eng", f"engineer@{METZ[1]}", f"engineer@{BRIEY[1]}", totp=True)
    surgeon_key = user("surg", f"specialist@{METZ[1]}", totp=True)
    user("coord", f"coordinator@{BRIEY[1]}")
    user("gateway", f"engineer@{BRIEY[1]}")
    coordinator = {"authorization": f"Bearer {token('coord', 'patients:write')}"}
    sites = {
        s["finess"]: s["id"]
        for s in httpx.get(f"{server.url}/api/v1/sites", headers=coordinator).json()
    }
    patient = httpx.post(
        f"{server.url}/api/v1/patients",
        json={
            "site_id": sites[BRIEY[1]],
            "identifier": "BRY-42",
            "family_name": "Lefebvre",
            "given_name": "Jean",
        },
        headers=coordinator,
    )
    assert patient.status_code == 201, patient.text
    patient_id = patient.json()["id"]
    consent = httpx.post(
        f"{server.url}/api/v1/patients/{patient_id}/consents",
        json={"purpose": "telesurgery", "decision": "granted", "site_id": sites[BRIEY[1]]},
        headers=coordinator,
    )
    assert consent.status_code == 201, consent.text
    procedure = server.cli(
        "telesurgery",
        "procedure",
        "create",
        "--title",
        "Remote cholecystectomy",
        "--console-site",
        METZ[1],
        "--robot-site",
        BRIEY[1],
        "--surgeon",
        "surg",
        "--robot",
        "Arm-1",
        "--patient",
        str(patient_id),
        # The link is qualified on a 12,000 km profile: the procedure is planned for it.
        "--link-class",
        "intercontinental",
    ).strip()
    robot_token = server.cli(
        "telesurgery",
        "enrol",
        "--procedure",
        procedure,
        "--role",
        "robot",
        "--public-name",
        "127.0.0.1:18950",
    ).strip()
    console_token = server.cli(
        "telesurgery",
        "enrol",
        "--procedure",
        procedure,
        "--role",
        "console",
        "--public-name",
        "127.0.0.1:0",
    ).strip()
    assert "key set 1" in server.cli("telesurgery", "issue-keys", "--procedure", procedure)
    return {
        "procedure": procedure,
        "totp_key": key,
        "surgeon_totp_key": surgeon_key,
        "api_token": token("gateway", "telesurgery:gateway"),
        "gateway_token": robot_token,
        "console_gateway_token": console_token,
    }


def sign_in(page, username: str, key: str) -> None:
    browsing.sign_in(page, username, PASSWORD, totp_key=key)


@pytest.mark.browser
def test_engineer_sees_start_blocked_then_supervises_a_live_link(server, browser, artifacts):
    facts = provision(server)
    procedure = facts["procedure"]
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=server.url)
    page = context.new_page()
    sign_in(page, "eng", facts["totp_key"])

    browsing.main_menu(page).get_by_role("link", name="Telesurgery").click()
    page.get_by_role("link", name="Remote cholecystectomy").click()
    page.wait_for_url(f"**/telesurgery/{procedure}")
    reasons = page.locator("#start-reasons")
    assert reasons.inner_text() == "no passing link qualification"
    assert page.locator("#start-button").is_disabled()

    qualified = subprocess.run(
        [
            sys.executable,
            "-m",
            "concilium",
            "telesurgery",
            "qualify",
            "--procedure",
            procedure,
            "--profile",
            "intercontinental-12000km",
            "--duration",
            "2",
            "--rate",
            "200",
        ],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert qualified.returncode == 0, qualified.stdout + qualified.stderr
    assert "qualifying: 100%" in qualified.stderr  # progress shown
    assert qualified.stdout.startswith(f"GO: kept with procedure {procedure}")

    page.reload()
    assert page.locator("#start-reasons").count() == 0
    assert page.locator("#start-ready").is_visible()
    # Every condition is met, but START is the surgeon's act, not the engineer's.
    assert page.locator("#start-button").is_disabled()
    row = page.locator("#qualifications tbody tr").first
    assert "intercontinental-12000km" in row.inner_text() and "GO" in row.inner_text()
    page.screenshot(path=str(artifacts / "telesurgery-procedure-phone.png"), full_page=True)
    with context.expect_page() as report_page:
        row.get_by_role("link", name="Report").click(modifiers=["Shift"])
    report = report_page.value
    report.wait_for_load_state()
    assert "Link qualification: GO" in report.title()
    report.close()

    page.get_by_role("link", name="Supervise the link").click()
    page.wait_for_url(f"**/telesurgery/{procedure}/supervise")
    state = page.locator('[data-field="state"]')
    assert state.inner_text() == "DISENGAGED"

    loop = LoopThread()
    rig = Rig(loop, profile=profile("intercontinental-12000km"))
    reporter = TimelineReporter(
        server.url, int(procedure), facts["api_token"], facts["gateway_token"], interval=0.25
    )
    # The console gateway reports its own view of the link, as the console side.
    console_reporter = TimelineReporter(
        server.url,
        int(procedure),
        facts["api_token"],
        facts["console_gateway_token"],
        interval=0.25,
    )
    streamer = None
    try:
        reporter.attach(rig.robot)
        loop.call(reporter.start)
        console_reporter.attach(rig.console)
        loop.call(console_reporter.start)
        streamer = Streamer(rig).start()
        rig.engage()
        expect(state).to_have_text("ENGAGED", timeout=10_000)
        # The latency comes from the real link through the 75 ms intercontinental profile.
        latency = page.locator('[data-field="latency_ms"]')
        expect(latency).to_have_text(re.compile(r"^([5-9]\d|\d{3,})\.\d$"), timeout=10_000)
        # Both sides' view of the link: about 150 ms round trip, loss and reordering counted.
        percent = re.compile(r"^\d+\.\d\d %$")
        for side in ("console", "robot"):
            rtt = page.locator(f'[data-side="{side}"][data-side-field="rtt_ms"]')
            expect(rtt).to_have_text(re.compile(r"^1[4-9]\d\.\d$"), timeout=10_000)
            loss = page.locator(f'[data-side="{side}"][data-side-field="loss"]')
            expect(loss).to_have_text(percent, timeout=10_000)
        expect(page.locator('[data-field="loss"]')).to_have_text(percent)
        expect(page.locator('[data-field="reordering"]')).to_have_text(percent)
        assert rig.proxy is not None
        loop.call(rig.proxy.cut)
        expect(state).to_have_text("HOLD", timeout=10_000)
        timeline = page.locator('[data-field="timeline"]').inner_text()
        assert "ENGAGED" in timeline and "HOLD" in timeline
        page.screenshot(path=str(artifacts / "telesurgery-supervision-phone.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        assert reporter.failures == 0
        assert console_reporter.failures == 0
        # The surgeon's view keeps the state and the link latency in sight.
        page.goto(f"/telesurgery/{procedure}/surgeon")
        expect(page.locator('[data-field="state"]')).to_have_text("HOLD")
        badge = page.locator('[data-field="latency_badge"]')
        expect(badge).to_have_text(re.compile(r"^latency \d+ ms$"), timeout=5_000)
        page.screenshot(path=str(artifacts / "telesurgery-surgeon-phone.png"), full_page=True)
    finally:
        if streamer is not None:
            streamer.stop()
        loop.run(reporter.close())
        loop.run(console_reporter.close())
        rig.close()
        loop.stop()
    context.close()
