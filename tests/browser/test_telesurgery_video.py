"""The surgeon's view shows the operating room's video, received through the live service
(Janus behind Concilium's proxy), with the safety state and the latency badge over it: the
robot site's coordinator links a supervision session to the procedure and publishes a camera
(Chromium's fake device, a moving test pattern); the surgeon of the other site watches."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import httpx
import pytest

from serving import free_port

from .browsing import (
    CHROMIUM_MEDIA_ARGS,
    STAGE,
    join_with_camera,
    launch_chromium,
    picture_moves,
    sign_in,
    wait_until,
)

# The same provisioning as the supervision test: two sites, a procedure, its gateways.
from .test_telesurgery_pages import PASSWORD, provision

pytestmark = [pytest.mark.browser, pytest.mark.timing]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
VIDEO = STAGE


@pytest.fixture(autouse=True)
def _media_server_on_free_ports(monkeypatch):
    """The server runs its own Janus on free ports, and no DICOM listener."""
    monkeypatch.setenv("CONCILIUM_DICOM_PORT", "0")
    monkeypatch.setenv("CONCILIUM_LIVE_ENABLED", "true")
    monkeypatch.setenv("CONCILIUM_LIVE_JANUS_HTTP_PORT", str(free_port()))
    monkeypatch.setenv("CONCILIUM_LIVE_JANUS_ADMIN_PORT", str(free_port()))


@pytest.fixture(scope="module")
def media_browser():
    """Chromium with a fake camera and loopback WebRTC allowed."""
    yield from launch_chromium(CHROMIUM_MEDIA_ARGS)


def report_status(server, facts: dict[str, str], latency_ms: float) -> None:
    """What the robot gateway reports: an ENGAGED transition and a link status sample."""
    response = httpx.post(
        f"{server.url}/api/v1/telesurgery/procedures/{facts['procedure']}/timeline",
        json={
            "events": [
                {"at": datetime.now(UTC).isoformat(), "kind": "transition", "state": "ENGAGED"}
            ],
            "status": {"state": "ENGAGED", "latency_ms": latency_ms},
        },
        headers={
            "authorization": f"Bearer {facts['api_token']}",
            "x-gateway-token": facts["gateway_token"],
        },
    )
    assert response.status_code == 201, response.text


def badge_over_video(page) -> bool:
    video = page.locator("[data-stage]").bounding_box()
    badge = page.locator('[data-field="latency_badge"]').bounding_box()
    assert video is not None and badge is not None
    return (
        video["x"] <= badge["x"]
        and badge["x"] + badge["width"] <= video["x"] + video["width"]
        and video["y"] <= badge["y"]
        and badge["y"] + badge["height"] <= video["y"] + video["height"]
    )


def test_surgeon_sees_the_operating_room_video_under_the_state_and_latency(
    server, media_browser, artifacts
):
    facts = provision(server)
    procedure = facts["procedure"]

    # The robot site's coordinator links a new supervision session and publishes the camera.
    theatre = media_browser.new_context(viewport=DESKTOP, base_url=server.url)
    coordinator = theatre.new_page()
    sign_in(coordinator, "coord", PASSWORD)
    coordinator.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Telesurgery"
    ).click()
    coordinator.get_by_role("link", name="Remote cholecystectomy").click()
    coordinator.wait_for_url(f"**/telesurgery/{procedure}")
    coordinator.get_by_role("button", name="Link the video").click()
    coordinator.wait_for_url(f"**/telesurgery/{procedure}")
    assert "(live)" in coordinator.locator("#video-session").inner_text()
    coordinator.get_by_role("link", name="the session's join page").click()
    coordinator.wait_for_url(re.compile(r".*/live/\d+/join$"))
    join_with_camera(coordinator)

    report_status(server, facts, 82.4)

    # The surgeon, at the console site, on a phone.
    phone = media_browser.new_context(viewport=PHONE, base_url=server.url)
    surgeon = phone.new_page()
    sign_in(surgeon, "surg", PASSWORD, totp_key=facts["surgeon_totp_key"])
    surgeon.goto(f"/telesurgery/{procedure}")
    surgeon.get_by_role("link", name="Surgeon view").click()
    surgeon.wait_for_url(f"**/telesurgery/{procedure}/surgeon")

    wait_until(surgeon, f"{VIDEO}.currentTime > 0.5", 20_000)
    start = surgeon.evaluate(f"{VIDEO}.currentTime")
    assert surgeon.evaluate(f"{VIDEO}.videoWidth") > 0
    assert picture_moves(surgeon)
    assert surgeon.evaluate(f"{VIDEO}.currentTime") > start
    published = coordinator.evaluate("Number(document.body.dataset.publishedFeed)")
    assert surgeon.evaluate(f"Number({VIDEO}.dataset.feed)") == published
    state = surgeon.locator('[data-field="state"]')
    badge = surgeon.locator('[data-field="latency_badge"]')
    wait_until(
        surgeon,
        "document.querySelector('[data-field=\"latency_badge\"]').textContent === 'latency 82 ms'",
    )
    assert state.inner_text() == "ENGAGED"
    assert badge.is_visible() and state.is_visible()
    assert badge_over_video(surgeon)
    overflow = surgeon.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    surgeon.screenshot(path=str(artifacts / "telesurgery-surgeon-video-phone.png"))
    # Scrolled down to the timeline, the picture and the badge stay in sight.
    surgeon.mouse.wheel(0, 2000)
    time.sleep(0.3)
    assert (
        surgeon.evaluate(
            "document.querySelector('[data-field=\"latency_badge\"]').getBoundingClientRect().top"
        )
        >= 0
    )

    # The latency changes: the badge follows, over the moving picture, on a desktop too.
    surgeon.set_viewport_size(DESKTOP)
    report_status(server, facts, 131.0)
    wait_until(
        surgeon,
        "document.querySelector('[data-field=\"latency_badge\"]').textContent === 'latency 131 ms'",
    )
    assert "ts-warn" in (badge.get_attribute("class") or "")
    assert badge_over_video(surgeon)
    assert picture_moves(surgeon)
    surgeon.screenshot(path=str(artifacts / "telesurgery-surgeon-video-desktop.png"))
    phone.close()
    theatre.close()
