"""Live pages in Chromium against a real ``concilium serve`` that runs Janus: a director moves
a PTZ camera from the console, and a camera published from the join page reaches a viewer
of another hospital through Janus."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from concilium.live.camera_simulator import SimulatedCamera
from concilium.platform import accounts, audit
from concilium.platform.db import make_engine, make_sessionmaker, transaction
from concilium.platform.demo import SITES
from media_peers import ffmpeg_camera
from serving import free_port

from . import browsing
from .browsing import (
    CHROMIUM_MEDIA_ARGS,
    STAGE,
    join_with_camera,
    launch_chromium,
    picture_moves,
    wait_until,
)

pytestmark = pytest.mark.browser

PASSWORD = "live-pages-pass-1"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


@pytest.fixture
def janus_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ports of this test's own Janus, inherited by the server the ``server`` fixture starts."""
    monkeypatch.setenv("CONCILIUM_LIVE_ENABLED", "true")
    monkeypatch.setenv("CONCILIUM_LIVE_JANUS_HTTP_PORT", str(free_port()))
    monkeypatch.setenv("CONCILIUM_LIVE_JANUS_ADMIN_PORT", str(free_port()))


def write_live_people(data_dir: Path, password: str) -> None:
    """Two hospitals: Chloé coordinates at Metz, Théo sends the room camera, Léa of Briey
    learns; written straight into a served database (one transaction instead of a command
    per account keeps the tests quick)."""
    (metz_name, metz_finess), (briey_name, briey_finess) = SITES[0], SITES[1]
    engine = make_engine(f"sqlite:///{data_dir / 'concilium.db'}")
    try:
        with transaction(make_sessionmaker(engine)) as db:
            metz = accounts.create_site(db, audit.SYSTEM, metz_name, metz_finess)
            briey = accounts.create_site(db, audit.SYSTEM, briey_name, briey_finess)
            for username, name, role, site in (
                ("chloe", "Chloé Coordinator", "coordinator", metz),
                ("theo", "Théo Technologist", "technologist", metz),
                ("lea", "Léa Learner", "learner", briey),
            ):
                accounts.create_user(
                    db,
                    audit.SYSTEM,
                    username=username,
                    full_name=name,
                    password=password,
                    roles=[accounts.RoleGrant(site.id, role)],
                )
    finally:
        engine.dispose()


@pytest.fixture
def live_server(janus_ports, server):  # type: ignore[no-untyped-def]
    """Two hospitals and three accounts in the server's database."""
    write_live_people(Path(server.env["CONCILIUM_DATA_DIR"]), PASSWORD)
    return server


@pytest.fixture
def camera() -> Iterator[SimulatedCamera]:
    """A VISCA camera answering on loopback from its own event loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    simulated = SimulatedCamera()
    asyncio.run_coroutine_threadsafe(simulated.start(), loop).result(5)
    yield simulated
    loop.call_soon_threadsafe(simulated.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


@pytest.fixture(scope="module")
def media_browser():  # type: ignore[no-untyped-def]
    """Chromium with a fake camera (a moving test pattern) and loopback WebRTC allowed."""
    yield from launch_chromium(CHROMIUM_MEDIA_ARGS)


def sign_in(page, username: str) -> None:  # type: ignore[no-untyped-def]
    browsing.sign_in(page, username, PASSWORD)


def schedule_live_session(  # type: ignore[no-untyped-def]
    page, title: str, kind: str = "Supervision", record: bool = False
) -> str:
    """Schedule a session from the list page and take it live; returns its URL path."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Live").click()
    page.wait_for_url("**/live")
    page.get_by_label("Kind").select_option(label=kind)
    page.get_by_label("Title (no patient name)").fill(title)
    if record:
        page.get_by_label("Record the session").check()
    page.get_by_role("button", name="Schedule").click()
    page.wait_for_url(re.compile(r".*/live/\d+$"))
    page.get_by_role("button", name="Go live").click()
    page.wait_for_url(re.compile(r".*/live/\d+$"))
    assert page.locator(".badge.live-live").first.is_visible()
    return re.sub(r"^https?://[^/]+", "", page.url)


def organise(  # type: ignore[no-untyped-def]
    media_browser,
    live_server,
    title: str,
    kind: str = "Supervision",
    record: bool = False,
    **roles: str,
):
    """Chloé, the Metz coordinator, on a desktop, schedules a session, takes it live and
    invites each person (user name = role in the session); her context, page and the
    session's URL path."""
    context = media_browser.new_context(viewport=DESKTOP, base_url=live_server.url)
    page = context.new_page()
    sign_in(page, "chloe")
    session_path = schedule_live_session(page, title, kind, record=record)
    invite(page, session_path, **roles)
    return context, page, session_path


def invite(page, session_path: str, **roles: str) -> None:  # type: ignore[no-untyped-def]
    """On a session's page, invite each person (user name = role in the session)."""
    for username, role in roles.items():
        page.get_by_label("User name").fill(username)
        page.get_by_label("Role").select_option(role)
        page.get_by_role("button", name="Invite").click()
        page.wait_for_url(f"**{session_path}")


def add_source(page, session_path: str, name: str, kind: str, reference: str = "") -> None:  # type: ignore[no-untyped-def]
    """On a session's page, name a source the director may put on program."""
    page.get_by_text("Name a source").click()
    page.get_by_label("Source name").fill(name)
    page.get_by_label("Kind").last.select_option(kind)
    if reference:
        page.get_by_label("Camera URL or study/series UIDs").fill(reference)
    page.get_by_role("button", name="Add source").click()
    page.wait_for_url(f"**{session_path}")


def test_director_moves_the_camera_from_the_console(live_server, media_browser, camera, artifacts):
    context = media_browser.new_context(viewport=DESKTOP, base_url=live_server.url)
    page = context.new_page()
    sign_in(page, "chloe")
    session_path = schedule_live_session(page, "Hybrid room, camera test")
    page.get_by_text("Add a PTZ camera").click()
    page.get_by_label("Camera name").fill("Ceiling")
    page.get_by_label("Host or address").fill("127.0.0.1")
    page.get_by_label("VISCA port").fill(str(camera.port))
    page.get_by_role("button", name="Add camera").click()
    page.wait_for_url(f"**{session_path}")
    page.get_by_role("link", name="Director console").click()
    page.wait_for_url(f"**{session_path}/director")

    result = page.locator("[data-ptz-result]")
    page.get_by_role("button", name="Pan right").click()
    # Without the lock the move is refused, and the camera does not move.
    wait_until(page, "document.querySelector('[data-ptz-result]').textContent !== ''")
    assert "take control" in result.inner_text().lower()
    assert camera.state.pan == 0

    page.get_by_role("button", name="Take control").click()
    wait_until(page, "document.querySelector('[data-control]').textContent.includes('chloe')")
    right = page.get_by_role("button", name="Pan right")
    right.hover()
    page.mouse.down()
    wait_until(
        page, "document.querySelector('[data-ptz-result]').textContent === 'Pan right: done'"
    )
    time.sleep(0.4)
    page.mouse.up()
    wait_until(page, "document.querySelector('[data-ptz-result]').textContent === 'Stop: done'")
    moved = camera.state.pan
    assert moved > 0
    time.sleep(0.2)
    assert camera.state.pan == moved  # stopped on release
    page.get_by_role("button", name="Store").click()
    wait_until(
        page, "document.querySelector('[data-ptz-result]').textContent === 'Store preset: done'"
    )
    page.screenshot(path=str(artifacts / "live-director-desktop.png"), full_page=True)
    context.close()


def test_camera_published_from_the_join_page_reaches_a_viewer_of_another_site(
    live_server, media_browser, artifacts
):
    organiser, _, session_path = organise(
        media_browser, live_server, "Cath lab supervision", lea="viewer", theo="presenter"
    )
    organiser.close()

    # The OR's tablet: the technologist publishes the room camera.
    tablet = media_browser.new_context(
        viewport={"width": 820, "height": 1180}, base_url=live_server.url
    )
    publisher = tablet.new_page()
    sign_in(publisher, "theo")
    publisher.goto(f"{session_path}/join")
    join_with_camera(publisher)

    # A learner of the other hospital watches on a phone.
    phone = media_browser.new_context(viewport=PHONE, base_url=live_server.url)
    viewer = phone.new_page()
    sign_in(viewer, "lea")
    viewer.goto(f"{session_path}/watch")
    video = STAGE
    wait_until(viewer, f"{video}.currentTime > 0.5", timeout=20_000)
    start = viewer.evaluate(f"{video}.currentTime")
    assert picture_moves(viewer)
    assert viewer.evaluate(f"{video}.currentTime") > start
    assert viewer.evaluate(f"{video}.videoWidth") > 0
    feed = publisher.evaluate("Number(document.body.dataset.publishedFeed)")
    assert viewer.evaluate(f"Number({video}.dataset.feed)") == feed
    overflow = viewer.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    viewer.screenshot(path=str(artifacts / "live-watch-phone.png"), full_page=True)
    publisher.screenshot(path=str(artifacts / "live-join-tablet.png"), full_page=True)

    # The viewer's question is held for moderation: the publisher does not see it yet.
    viewer.get_by_label("Your question").fill("Which stent length?")
    viewer.get_by_role("button", name="Ask").click()
    wait_until(
        viewer,
        "document.querySelector('[data-questions]').textContent.includes('awaiting moderation')",
    )
    assert "Which stent length?" not in publisher.locator("[data-questions]").inner_text()
    tablet.close()
    phone.close()


def test_the_cath_lab_sends_its_capture_device_at_its_own_frame_rate(
    live_server, media_browser, artifacts
):
    organiser, page, session_path = organise(
        media_browser, live_server, "Cath lab 2, X-ray output", lea="viewer", theo="presenter"
    )
    add_source(page, session_path, "Fluoroscopy", "capture")
    organiser.close()

    # The cath lab's PC: the frame grabber is one of its video inputs (Chromium's fake
    # device stands in for it); the technologist picks it and sends it as "Fluoroscopy".
    lab = media_browser.new_context(viewport=DESKTOP, base_url=live_server.url)
    publisher = lab.new_page()
    sign_in(publisher, "theo")
    publisher.goto(f"{session_path}/join")
    publisher.get_by_label("Publish as").select_option("Fluoroscopy")
    inputs = publisher.get_by_label("Camera or capture device")
    inputs.focus()
    wait_until(publisher, "document.querySelector('[data-video-input]').options.length > 1")
    device = publisher.evaluate("document.querySelector('[data-video-input]').options[1].value")
    inputs.select_option(device)
    publisher.get_by_role("button", name="Send capture device").click()
    wait_until(publisher, "document.body.dataset.publishedFeed !== undefined", 20_000)
    feed = publisher.evaluate("document.body.dataset.publishedFeed")
    sent = publisher.evaluate(
        f"""(() => {{
            const stream = {STAGE}.srcObject;
            const track = stream.getVideoTracks()[0];
            const settings = track.getSettings();
            return {{
                device: settings.deviceId, rate: settings.frameRate, width: settings.width,
                height: settings.height, hint: track.contentHint,
                audio: stream.getAudioTracks().length,
                deviceRate: track.getCapabilities().frameRate.max,
            }};
        }})()"""
    )
    # The chosen device, its picture alone, at the device's own frame rate (Chromium's fake
    # device runs at 20 fps, above a participant camera's 15) and 720p rather than a
    # camera's 640x480; the encoder keeps the frame rate under congestion.
    assert sent["deviceRate"] > 15
    assert sent == {
        "device": device,
        "rate": sent["deviceRate"],
        "deviceRate": sent["deviceRate"],
        "width": 1280,
        "height": 720,
        "hint": "motion",
        "audio": 0,
    }

    # The expert, at the other hospital, receives the moving picture under its source name.
    phone = media_browser.new_context(viewport=PHONE, base_url=live_server.url)
    viewer = phone.new_page()
    sign_in(viewer, "lea")
    viewer.goto(f"{session_path}/watch")
    wait_until(viewer, f"{STAGE}.dataset.feed === '{feed}' && {STAGE}.currentTime > 0.5", 20_000)
    assert picture_moves(viewer)
    assert viewer.evaluate(f"{STAGE}.videoWidth") > 0
    # The drawing layer covers the picture exactly, whatever its shape, so that strokes land
    # on the same spot of the picture for everyone and in the recording.
    shapes = f"""(() => {{
        const v = {STAGE}, c = document.querySelector('[data-telestration]');
        return [v.videoWidth / v.videoHeight, c.clientWidth / c.clientHeight];
    }})()"""
    wait_until(viewer, f"Math.abs({shapes}[0] - {shapes}[1]) < 0.02", 10_000)
    assert abs(viewer.evaluate(shapes)[0] - 16 / 9) < 0.02
    publisher.screenshot(path=str(artifacts / "live-join-capture-device.png"), full_page=True)
    lab.close()
    phone.close()


def test_in_a_meeting_the_stage_gets_the_full_picture_and_tiles_a_smaller_layer(
    live_server, media_browser, artifacts
):
    organiser, chair, session_path = organise(
        media_browser, live_server, "Thoracic oncology meeting", "Conference",
        lea="participant", theo="participant",
    )  # fmt: skip

    # Three doctors, each with camera and microphone.
    pages = {"chloe": chair}
    contexts = [organiser]
    for username in ("theo", "lea"):
        context = media_browser.new_context(viewport=DESKTOP, base_url=live_server.url)
        contexts.append(context)
        pages[username] = context.new_page()
        sign_in(pages[username], username)
    feeds = {}
    for username in ("chloe", "theo", "lea"):
        pages[username].goto(f"{session_path}/join")
        feeds[username] = join_with_camera(pages[username])

    # Léa sees one colleague on the stage and the other as a tile: Janus sends the stage
    # the camera's full 640x480 layer and the tile the lowest one the camera sends (Chromium
    # sends two layers of a 640x480 camera, three from 960x540 up: 320 or 160 wide).
    lea = pages["lea"]
    tile = "document.querySelector('[data-tiles] video')"
    others = f"['{feeds['chloe']}', '{feeds['theo']}']"
    wait_until(
        lea,
        f"{tile} !== null && {others}.includes({STAGE}.dataset.feed)"
        f" && {others}.includes({tile}.dataset.feed)",
        30_000,
    )
    on_stage = lea.evaluate(f"{STAGE}.dataset.feed")
    in_tile = lea.evaluate(f"{tile}.dataset.feed")
    assert {on_stage, in_tile} == {feeds["chloe"], feeds["theo"]}
    layers = f"{STAGE}.videoWidth === 640 && [160, 320].includes({tile}.videoWidth)"
    wait_until(lea, layers, 40_000)
    lea.screenshot(path=str(artifacts / "live-meeting-desktop.png"), full_page=True)

    # She puts the tile on the stage: the layers swap.
    name = "Chloé Coordinator" if in_tile == feeds["chloe"] else "Théo Technologist"
    lea.get_by_role("button", name=f"Watch {name}").click()
    wait_until(lea, f"{STAGE}.dataset.feed === '{in_tile}'", 10_000)
    wait_until(lea, layers, 40_000)
    assert lea.evaluate(f"{tile}.dataset.feed") == on_stage
    for context in contexts:
        context.close()


def test_a_viewer_picks_the_ip_camera_instead_of_the_program(live_server, media_browser, artifacts):
    organiser, page, session_path = organise(
        media_browser, live_server, "OR 3, ceiling camera", lea="viewer", theo="presenter"
    )
    with ffmpeg_camera("srt") as camera_url:
        add_source(page, session_path, "Ceiling camera", "ip_camera", camera_url)
        organiser.close()

        # The surgeon's tablet publishes: the picture everyone sees by default.
        tablet = media_browser.new_context(viewport=DESKTOP, base_url=live_server.url)
        publisher = tablet.new_page()
        sign_in(publisher, "theo")
        publisher.goto(f"{session_path}/join")
        join_with_camera(publisher)

        phone = media_browser.new_context(viewport=PHONE, base_url=live_server.url)
        viewer = phone.new_page()
        sign_in(viewer, "lea")
        viewer.goto(f"{session_path}/watch")
        # The relayed camera appears beside the program once it is live on the media server.
        pick = viewer.get_by_role("button", name="Watch Ceiling camera")
        pick.wait_for(timeout=30_000)
        pick.click()
        video = STAGE
        wait_until(viewer, f"({video}.dataset.feed || '').startsWith('source-')", 20_000)
        wait_until(viewer, f"{video}.videoWidth === 160 && {video}.currentTime > 0.5", 20_000)
        assert picture_moves(viewer)  # the camera's picture moves on the stage
        assert viewer.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        viewer.screenshot(path=str(artifacts / "live-watch-camera-phone.png"), full_page=True)
        viewer.get_by_role("button", name="Back to the program").click()
        viewer.get_by_role("button", name="Watch Ceiling camera").wait_for()
        feed = publisher.evaluate("document.body.dataset.publishedFeed")
        assert viewer.evaluate(f"{video}.dataset.feed") == feed
        phone.close()
        tablet.close()


def janus_of(server_pid: int) -> int:
    """Process id of the Janus the server runs as its child."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        if parent == server_pid and name == "janus":
            return int(entry.name)
    raise AssertionError("the server runs no Janus")


def hls_run(data_dir: Path, session_id: int) -> tuple[str, int]:
    """The init segment of the 720p playlist (one per packager run) and its segment count."""
    playlist = data_dir / "live" / "hls" / str(session_id) / "720p" / "index.m3u8"
    try:
        text = playlist.read_text()
    except OSError:
        return "", 0
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text)
    return (init.group(1) if init else ""), text.count(".m4s")


def test_a_broadcast_carries_on_by_itself_after_the_media_server_restarts(
    live_server, media_browser, artifacts
):
    data_dir = Path(live_server.env["CONCILIUM_DATA_DIR"])
    director, page, session_path = organise(
        media_browser, live_server, "Valve repair, broadcast", "Broadcast", record=True,
        theo="presenter",
    )  # fmt: skip
    page.on("dialog", lambda dialog: dialog.accept())  # ending the session asks to confirm
    session_id = int(session_path.rsplit("/", 1)[-1])

    tablet = media_browser.new_context(viewport=DESKTOP, base_url=live_server.url)
    publisher = tablet.new_page()
    sign_in(publisher, "theo")
    publisher.goto(f"{session_path}/join")
    feed = join_with_camera(publisher)

    page.goto(f"{session_path}/director")
    page.locator(f"[data-feeds] button[data-feed='{feed}']").click()
    deadline = time.monotonic() + 60
    while hls_run(data_dir, session_id)[1] < 2:
        assert time.monotonic() < deadline, "no HLS segment after the program switch"
        time.sleep(0.5)
    before = hls_run(data_dir, session_id)[0]
    # The director's page receives the program through Janus, as any participant does.
    on_stage = f"{STAGE}.dataset.feed === '{feed}' && {STAGE}.currentTime > 0.5"
    wait_until(page, on_stage, 30_000)
    page.evaluate(f"window.streamBeforeRestart = {STAGE}.srcObject")

    os.kill(janus_of(live_server.pid), signal.SIGKILL)
    # The publisher's page notices, publishes again under the same feed id, and the HLS
    # output follows the program again: nobody touches the director console.
    wait_until(
        publisher,
        "document.querySelector('[data-status]').textContent.includes('Publishing again')",
        60_000,
    )
    deadline = time.monotonic() + 60
    while (run := hls_run(data_dir, session_id))[0] in ("", before) or run[1] < 2:
        assert time.monotonic() < deadline, f"HLS did not come back: {run}"
        time.sleep(0.5)
    assert publisher.evaluate("document.body.dataset.publishedFeed") == feed
    publisher.screenshot(path=str(artifacts / "live-join-after-restart.png"), full_page=True)
    # The subscriber side: the director's page subscribes to the feed again by itself, and
    # the new stream's picture moves.
    wait_until(page, f"{STAGE}.srcObject !== window.streamBeforeRestart && {on_stage}", 60_000)
    assert picture_moves(page)
    page.screenshot(path=str(artifacts / "live-director-after-restart.png"), full_page=True)
    tablet.close()

    # The session ends: the program, as broadcast before and after the restart, goes to
    # the library beside the camera's own recording.
    page.goto(session_path)
    page.get_by_role("button", name="End").click()
    page.wait_for_url(f"**{session_path}")
    deadline = time.monotonic() + 90
    while ">Program</td>" not in (listing := page.goto("/live/library").text()):
        assert time.monotonic() < deadline, "no program recording in the library"
        time.sleep(1)
    assert "Valve repair, broadcast" in listing and "MP4 (H.264)" in listing
    director.close()
