"""The recording library in Chromium against a real ``concilium serve``: a person opens the
library from the menu, plays a recording and jumps to a chapter."""

from __future__ import annotations

import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from concilium.live import invitations, lifecycle
from concilium.live.tables import LiveRecording
from concilium.platform import accounts, audit
from concilium.platform.db import make_engine, make_sessionmaker, transaction
from concilium.platform.demo import SITES

from . import browsing
from .checks import assert_usable, person_browsing

pytestmark = pytest.mark.browser

PASSWORD = "library-pages-pass-1"


def recorded_session(data_dir: Path) -> None:
    """A Metz coordinator, an ended broadcast and its recording (an 8 s VP8 WebM, as Janus
    recordings of Chromium publishers come out), written straight into the server's data."""
    engine = make_engine(f"sqlite:///{data_dir / 'concilium.db'}")
    now = datetime.now(UTC)
    try:
        with transaction(make_sessionmaker(engine)) as db:
            metz = accounts.create_site(db, audit.SYSTEM, *SITES[0])
            chloe = accounts.create_user(
                db,
                audit.SYSTEM,
                username="chloe",
                full_name="Chloé Coordinator",
                password=PASSWORD,
                roles=[accounts.RoleGrant(metz.id, "coordinator")],
            )
            actor = audit.Actor(chloe.id, chloe.username)
            live = lifecycle.create_session(
                db,
                actor,
                kind="broadcast",
                title="Mitral repair, recorded",
                site_id=metz.id,
                scheduled_at=now,
                now=now,
                record=True,
            )
            lifecycle.start(db, actor, live, now, teaching_consent=False)
            lifecycle.end(db, actor, live, now)
            folder = data_dir / "live" / "recordings" / str(live.id)
            folder.mkdir(parents=True)
            subprocess.run(
                ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                 "testsrc=size=160x120:rate=15", "-t", "8", "-c:v", "libvpx", "-g", "15",
                 "-b:v", "200k", str(folder / "feed-1.webm")],
                check=True,
                timeout=60,
            )  # fmt: skip
            db.add(
                LiveRecording(
                    session_id=live.id,
                    feed=1,
                    path=f"live/recordings/{live.id}/feed-1.webm",
                    media_type="video/webm",
                    video_codec="vp8",
                    started_at=now,
                    duration=8.0,
                    chapters=[
                        {"at": 5.0, "kind": "program", "label": "Program: feed 2"},
                        {"at": 6.5, "kind": "question", "label": "Which ring size?"},
                    ],
                    # A red line drawn at 1 s, wiped at 4 s, a green one drawn at 5.5 s.
                    telestration=[
                        {
                            "at": 1.0,
                            "points": [[0.1, 0.5], [0.9, 0.5]],
                            "color": "#ff0000",
                            "width": 6,
                        },
                        {"at": 4.0, "points": [], "color": "#ff0000", "width": 6},
                        {
                            "at": 5.5,
                            "points": [[0.5, 0.1], [0.5, 0.9]],
                            "color": "#00ff00",
                            "width": 6,
                        },
                    ],
                )
            )
    finally:
        engine.dispose()


def current_time(page) -> float:  # type: ignore[no-untyped-def]
    return float(page.locator("video").evaluate("v => v.currentTime"))


def wait_for_time(page, check, timeout: float = 10.0) -> float:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check(value := current_time(page)):
        if time.monotonic() > deadline:
            raise AssertionError(f"currentTime stayed at {value}")
        time.sleep(0.1)
    return value


LAYER = "document.querySelector('[data-telestration]')"
DRAWN = f"""(() => {{
    const c = {LAYER};
    const px = (x, y) => c.getContext('2d').getImageData(x * c.width, y * c.height, 1, 1).data;
    const [red, green] = [px(0.3, 0.5), px(0.5, 0.3)];
    return {{ red: red[0] > 200 && red[3] > 0, green: green[1] > 200 && green[3] > 0 }};
}})()"""
"""Which of the test's two strokes the layer over the player shows now."""


def drawn_at(page, seconds: float) -> dict[str, bool]:  # type: ignore[no-untyped-def]
    """Seek the paused recording to ``seconds``; the strokes drawn over it then."""
    page.locator("video").evaluate(f"v => {{ v.pause(); v.currentTime = {seconds}; }}")
    wait_for_time(page, lambda t: abs(t - seconds) < 0.01)
    time.sleep(0.3)  # the seeked event redraws the layer
    return dict(page.evaluate(DRAWN))


def test_a_person_plays_a_recording_and_jumps_to_a_chapter(server, browser, artifacts) -> None:  # type: ignore[no-untyped-def]
    recorded_session(Path(server.env["CONCILIUM_DATA_DIR"]))
    page = browser.new_page(viewport={"width": 390, "height": 844}, base_url=server.url)
    page.goto("/login")
    page.get_by_label("User name").fill("chloe")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/$"))

    browsing.main_menu(page).get_by_role("link", name="Recordings").click()
    page.wait_for_url("**/live/library")
    page.get_by_role("link", name="Mitral repair, recorded").click()
    page.wait_for_url(re.compile(r".*/live/library/\d+$"))
    assert page.get_by_text("Which ring size?").is_visible()

    page.locator("video").evaluate("v => { v.muted = true; return v.play(); }")
    wait_for_time(page, lambda t: t > 0.5)
    page.get_by_role("button", name="0:05").click()
    jumped = wait_for_time(page, lambda t: t >= 5.0, timeout=5)
    assert jumped < 7.9  # it jumped to the chapter, it did not play through
    # The drawings come back over the picture when they were made, until wiped.
    assert drawn_at(page, 0.5) == {"red": False, "green": False}
    assert drawn_at(page, 2.0) == {"red": True, "green": False}
    assert drawn_at(page, 4.5) == {"red": False, "green": False}
    assert drawn_at(page, 6.0) == {"red": False, "green": True}
    assert drawn_at(page, 1.5) == {"red": True, "green": False}  # and when going back
    overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    page.screenshot(path=str(artifacts / "live-library-phone.png"))
    assert not overflow


@pytest.fixture
def mass_audience(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every viewer of a broadcast is sent to HLS, as once the room has its fill of WebRTC
    receivers (``live_webrtc_viewers``); set before the server starts."""
    monkeypatch.setenv("CONCILIUM_LIVE_WEBRTC_VIEWERS", "0")


@pytest.fixture
def program_on_air(server):  # type: ignore[no-untyped-def]
    """A broadcast on air: a Briey learner invited as a viewer, and the HLS packager fed a
    test pattern over RTP (as Janus forwards the program feed) writing into the server's
    data dir. Yields the session id."""
    import asyncio
    import threading

    from concilium.live.hls import HlsPipeline, HlsSettings, Rendition
    from concilium.live.hls_files import hls_root
    from concilium.live.udp_ports import free_udp_port

    data_dir = Path(server.env["CONCILIUM_DATA_DIR"])
    engine = make_engine(f"sqlite:///{data_dir / 'concilium.db'}")
    now = datetime.now(UTC)
    try:
        with transaction(make_sessionmaker(engine)) as db:
            metz = accounts.create_site(db, audit.SYSTEM, *SITES[0])
            briey = accounts.create_site(db, audit.SYSTEM, *SITES[1])
            chloe, lea = (
                accounts.create_user(
                    db,
                    audit.SYSTEM,
                    username=username,
                    full_name=username.title(),
                    password=PASSWORD,
                    roles=[accounts.RoleGrant(site.id, role)],
                )
                for username, site, role in (
                    ("chloe", metz, "coordinator"),
                    ("lea", briey, "learner"),
                )
            )
            actor = audit.Actor(chloe.id, chloe.username)
            live = lifecycle.create_session(
                db,
                actor,
                kind="broadcast",
                title="Aortic valve, on air",
                site_id=metz.id,
                scheduled_at=now,
                now=now,
            )
            invitations.invite(db, actor, live, user_id=lea.id, role="viewer", now=now)
            lifecycle.start(db, actor, live, now, teaching_consent=False)
            session_id = live.id
    finally:
        engine.dispose()

    port = free_udp_port()
    settings = HlsSettings(
        ladder=(Rendition("r240", 240, 300_000), Rendition("r120", 120, 100_000)),
        fps=15,
        preset="ultrafast",
    )
    pipeline = HlsPipeline(hls_root(data_dir) / str(session_id), port, settings)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(pipeline.start(), loop).result(10)
    sender = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-f", "lavfi",
         "-i", "testsrc=size=320x240:rate=15", "-c:v", "libvpx", "-deadline", "realtime",
         "-cpu-used", "8", "-g", "15", "-b:v", "300k", "-f", "rtp",
         f"rtp://127.0.0.1:{port}?pkt_size=1200"],
    )  # fmt: skip
    try:
        yield session_id
    finally:
        sender.terminate()
        sender.wait(10)
        asyncio.run_coroutine_threadsafe(pipeline.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


WITHOUT_NATIVE_HLS = """
const canPlayType = HTMLMediaElement.prototype.canPlayType;
HTMLMediaElement.prototype.canPlayType = function (type) {
  return /mpegurl/i.test(type) ? "" : canPlayType.call(this, type);
};
"""
"""Makes Chromium answer as browsers without native HLS do (Firefox, older Chromium), so
the page takes the hls.js path."""


@pytest.mark.parametrize("player", ["native", "hls.js"])
def test_a_viewer_of_a_broadcast_watches_the_program_over_hls(  # type: ignore[no-untyped-def]
    mass_audience, server, program_on_air, browser, artifacts, player
) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844}, base_url=server.url)
    if player == "hls.js":
        page.add_init_script(WITHOUT_NATIVE_HLS)
    page.goto("/login")
    page.get_by_label("User name").fill("lea")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/$"))
    page.goto(f"/live/{program_on_air}/watch")
    hls_requests: list[str] = []
    page.on("request", lambda r: hls_requests.append(r.url) if "/hls/" in r.url else None)

    started = wait_for_time(page, lambda t: t > 0.5, timeout=30)
    later = wait_for_time(page, lambda t: t > started + 1.0, timeout=10)
    size = page.locator("video").evaluate("v => [v.videoWidth, v.videoHeight]")
    page.screenshot(path=str(artifacts / f"live-watch-hls-{player}-phone.png"))
    assert later > started and size[1] in (120, 240)
    assert any(u.endswith(".m4s") for u in hls_requests)  # fMP4 segments over HTTP
    # Every file under the signed address the page was granted (no session check per file).
    signed = re.compile(rf"/live/{program_on_air}/hls/[0-9]+/[A-Za-z0-9_-]{{22}}/")
    assert all(signed.search(u) for u in hls_requests), hls_requests[:3]
    state = page.locator("[data-status]").inner_text()
    assert state.startswith("Watching the broadcast") and (player == "native") == (
        "played by the browser" in state
    )


def test_the_library_is_usable_in_both_languages_on_a_phone_and_a_desktop(
    server, browser, artifacts
) -> None:  # type: ignore[no-untyped-def]
    recorded_session(Path(server.env["CONCILIUM_DATA_DIR"]))
    state = browsing.signed_in_state(browser, server.url, "chloe", PASSWORD)
    words = {
        "fr": ("Enregistrements", "Chapitres", "À l'antenne : flux 2"),
        "en": ("Recordings", "Chapters", "Program: feed 2"),
    }
    for width in ("phone", "desktop"):
        for language, (recordings, chapters, switch) in words.items():
            with person_browsing(browser, width, language, storage_state=state) as (
                page,
                errors,
            ):
                page.goto(f"{server.url}/live/library")
                assert page.get_by_role("heading", level=1).inner_text() == recordings
                assert_usable(page, errors, f"live-library-{width}-{language}", artifacts)
                page.get_by_role("link", name="Mitral repair, recorded").click()
                page.wait_for_url(re.compile(r".*/live/library/\d+$"))
                assert page.get_by_role("heading", name=chapters).is_visible()
                assert page.locator("ul.chapters").get_by_text(switch).is_visible()
                assert_usable(page, errors, f"live-recording-{width}-{language}", artifacts)
