"""Two Chromium pages meet in a VideoRoom through the real Janus, using janus-room.js."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from concilium.live.media import LiveMedia
from concilium.live.rooms import RoomSpec

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

STATIC = Path(__file__).resolve().parents[2] / "src" / "concilium" / "web" / "static"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
]

HARNESS = b"""<!doctype html>
<meta charset="utf-8">
<title>janus-room harness</title>
<video autoplay muted playsinline></video>
<script type="module">
import { publish, subscribe, selectSubstream, leave } from "/static/live/janus-room.js";
const video = document.querySelector("video");
window.runPublisher = async ({ width, height, ...cfg }) => {
  const stream = await navigator.mediaDevices.getUserMedia(
    { video: { width, height, frameRate: 15 }, audio: false });
  video.srcObject = stream;
  window.joined = await publish({ ...cfg, stream });
  return window.joined.publisherId;
};
window.selectSubstream = (substream) => selectSubstream(window.joined, substream);
window.leave = () => leave(window.joined);
window.runSubscriber = async (cfg) => {
  window.joined = await subscribe({ ...cfg, video });
  return true;
};
window.grab = () => {
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  return canvas.toDataURL("image/png");
};
window.harnessReady = true;
</script>
"""


class _Harness(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/harness.html":
            self._send(HARNESS, "text/html")
        elif self.path == "/static/live/janus-room.js":
            self._send((STATIC / "live" / "janus-room.js").read_bytes(), "text/javascript")
        else:
            self.send_error(404)

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def harness_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Harness)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/harness.html"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def chromium_profile(tmp_path: Path) -> str:
    return str(tmp_path / "chromium-profile")


async def test_subscriber_receives_moving_video_from_publisher(
    live_media: LiveMedia, harness_url: str, tmp_path: Path
) -> None:
    await live_media.create_room(RoomSpec(3001, description="OR 3", record=True))
    sessions_before = set(await live_media.admin.list_sessions())
    camera = await live_media.issue("or-3-camera", 3001)
    expert = await live_media.issue("dr.remote", 3001)
    api_url = live_media.config.api_url

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
        )
        try:
            publisher = await context.new_page()
            subscriber = await context.new_page()
            for page in (publisher, subscriber):
                await page.goto(harness_url)
                await page.wait_for_function("window.harnessReady === true")
            feed = await publisher.evaluate(
                "cfg => window.runPublisher(cfg)",
                {
                    "apiUrl": api_url,
                    "token": camera.token,
                    "room": 3001,
                    "display": "OR 3",
                    "width": 320,
                    "height": 240,
                },
            )
            assert isinstance(feed, int)
            await subscriber.evaluate(
                "cfg => window.runSubscriber(cfg)",
                {"apiUrl": api_url, "token": expert.token, "room": 3001, "feed": feed},
            )
            video = "document.querySelector('video')"
            await subscriber.wait_for_function(f"{video}.currentTime > 0.5", timeout=20_000)
            start = await subscriber.evaluate(f"{video}.currentTime")
            first = await subscriber.evaluate("window.grab()")
            await asyncio.sleep(0.6)
            later = await subscriber.evaluate(f"{video}.currentTime")
            second = await subscriber.evaluate("window.grab()")
            size = await subscriber.evaluate(f"[{video}.videoWidth, {video}.videoHeight]")
            during = set(await live_media.admin.list_sessions())
            for page in (subscriber, publisher):
                await page.evaluate("window.leave()")
            after = set(await live_media.admin.list_sessions())
        finally:
            await context.close()

    assert len(during - sessions_before) == 2
    assert after == sessions_before
    recordings = list((live_media.config.recordings_folder / "room-3001").glob("*-video-*.mjr"))
    assert recordings and all(r.stat().st_size > 1000 for r in recordings)

    assert later > start
    assert size == [320, 240]
    assert first.startswith("data:image/png;base64,")
    assert base64.b64decode(first.split(",", 1)[1]) != base64.b64decode(second.split(",", 1)[1])


async def test_subscriber_switches_between_simulcast_layers(
    live_media: LiveMedia, harness_url: str, chromium_profile: str
) -> None:
    # Janus switches layers at the next keyframe of the target layer; a short keyframe
    # period keeps the test quick whatever the publisher does on its own.
    await live_media.create_room(RoomSpec(3002, description="OR 4", fir_freq=2))
    camera = await live_media.issue("or-4-camera", 3002)
    expert = await live_media.issue("dr.remote", 3002)
    api_url = live_media.config.api_url
    video = "document.querySelector('video')"

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            chromium_profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            publisher = await context.new_page()
            subscriber = await context.new_page()
            for page in (publisher, subscriber):
                await page.goto(harness_url)
                await page.wait_for_function("window.harnessReady === true")
            feed = await publisher.evaluate(
                "cfg => window.runPublisher(cfg)",
                {
                    "apiUrl": api_url,
                    "token": camera.token,
                    "room": 3002,
                    "width": 640,
                    "height": 480,
                    "simulcast": True,
                },
            )
            await subscriber.evaluate(
                "cfg => window.runSubscriber(cfg)",
                {"apiUrl": api_url, "token": expert.token, "room": 3002, "feed": feed},
            )
            await subscriber.wait_for_function(f"{video}.videoWidth === 640", timeout=20_000)
            await subscriber.evaluate("window.selectSubstream(0)")
            await subscriber.wait_for_function(
                f"{video}.videoWidth > 0 && {video}.videoWidth < 640", timeout=20_000
            )
            low = await subscriber.evaluate(f"[{video}.videoWidth, {video}.videoHeight]")
            await subscriber.evaluate("window.selectSubstream(2)")
            await subscriber.wait_for_function(f"{video}.videoWidth === 640", timeout=20_000)
            with pytest.raises(Exception, match="substream must be 0, 1 or 2"):
                await subscriber.evaluate("window.selectSubstream(3)")
        finally:
            await context.close()

    assert low[0] in (160, 320) and low[0] * 3 == low[1] * 4
