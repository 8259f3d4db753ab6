"""A Chromium that sends and receives WebRTC through the real Janus, for the live tests.

A tiny HTTP server serves a harness page and the same ``janus-room.js`` the live pages use;
the page exposes the publish / subscribe / watch steps to ``page.evaluate``.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page, async_playwright

LIVE_STATIC = Path(__file__).resolve().parents[2] / "src" / "concilium" / "live" / "static"
WEB_STATIC = LIVE_STATIC.parents[1] / "web" / "static"
"""The platform's scripts: ``janus-room.js`` imports its translations from ``i18n.js``."""
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
"""A fake camera (a moving test pattern) and loopback WebRTC allowed."""

ROOM_PAGE = b"""<!doctype html>
<meta charset="utf-8">
<title>janus-room harness</title>
<video autoplay muted playsinline></video>
<script type="module">
import { publish, subscribe, selectSubstream, leave } from "/static/live/janus-room.js";
const video = document.querySelector("video");
// A publisher that offers only some video codecs (as a browser without H.264 would).
const createOffer = RTCPeerConnection.prototype.createOffer;
RTCPeerConnection.prototype.createOffer = function (...args) {
  if (window.videoCodecs) {
    const codecs = RTCRtpReceiver.getCapabilities("video").codecs
      .filter((c) => window.videoCodecs.includes(c.mimeType));
    for (const t of this.getTransceivers()) {
      if (t.sender.track?.kind === "video") t.setCodecPreferences(codecs);
    }
  }
  return createOffer.apply(this, args);
};
window.videoCapabilities = () => RTCRtpSender.getCapabilities("video").codecs
  .map((c) => `${c.mimeType} ${c.sdpFmtpLine ?? ""}`.trim());
window.republished = 0;
// Like the live pages: when Janus forgets the session (it restarted), publish the same
// stream again under the same feed id.
const keepPublishing = (joined, cfg, stream) => joined.session.onLost(async () => {
  joined.pc.close();
  for (let attempt = 0; attempt < 60; attempt += 1) {
    try {
      window.joined = await publish({ ...cfg, stream, id: joined.publisherId });
      window.republished += 1;
      keepPublishing(window.joined, cfg, stream);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
});
window.runPublisher = async ({ width, height, audio = false, videoCodecs = null, ...cfg }) => {
  const stream = await navigator.mediaDevices.getUserMedia(
    { video: { width, height, frameRate: 15 }, audio });
  video.srcObject = stream;
  window.videoCodecs = videoCodecs;
  window.joined = await publish({ ...cfg, stream });
  keepPublishing(window.joined, cfg, stream);
  return window.joined.publisherId;
};
window.sentVideoCodec = () => {
  const sdp = window.joined.pc.remoteDescription.sdp;
  const video = sdp.slice(sdp.indexOf("m=video"));
  const pt = video.split("\\r\\n")[0].split(" ")[3];
  const line = video.split("\\r\\n").find((l) => l.startsWith(`a=rtpmap:${pt} `));
  const fmtp = video.split("\\r\\n").find((l) => l.startsWith(`a=fmtp:${pt} `)) ?? "";
  return `${line.split(" ")[1].split("/")[0]} ${fmtp.split(" ").slice(1).join(" ")}`.trim();
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
"""Publishes the fake camera into a VideoRoom, or subscribes to a feed of one."""


class HarnessHandler(BaseHTTPRequestHandler):
    """Serves ``page`` at ``/harness.html`` and the live pages' Janus client beside it, with
    the translation module it imports."""

    page: bytes = ROOM_PAGE

    def do_GET(self) -> None:
        if self.path == "/harness.html":
            self._send(self.page, "text/html")
        elif self.path == "/static/live/janus-room.js":
            self._send((LIVE_STATIC / "janus-room.js").read_bytes(), "text/javascript")
        elif self.path == "/static/i18n.js":
            self._send((WEB_STATIC / "i18n.js").read_bytes(), "text/javascript")
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


@contextmanager
def serve_harness(page: bytes = ROOM_PAGE) -> Iterator[str]:
    """Serve ``page`` on a free loopback port; its URL."""
    handler = type("PageHarness", (HarnessHandler,), {"page": page})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/harness.html"
    finally:
        server.shutdown()
        server.server_close()


@asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[BrowserContext]:
    """Debian's Chromium, headless, with its own profile directory."""
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield context
        finally:
            await context.close()


async def open_harness(context: BrowserContext, url: str) -> Page:
    """A new tab on the harness page, once its module has loaded."""
    page = await context.new_page()
    await page.goto(url)
    await page.wait_for_function("window.harnessReady === true")
    return page


async def publish(page: Page, **cfg: Any) -> Any:
    """Publish the fake camera from a room harness page; the publisher (feed) id.

    ``audio=True`` sends the fake microphone (a beep every second) too; ``videoCodecs``
    (e.g. ``["video/VP8"]``) limits the video codecs offered. After a Janus restart the
    page publishes again under the same feed id, as the live pages do."""
    return await page.evaluate("cfg => window.runPublisher(cfg)", cfg)


async def subscribe(page: Page, **cfg: Any) -> None:
    """Subscribe a room harness page's video to a feed (``apiUrl``, ``token``, ``room``,
    ``feed``)."""
    await page.evaluate("cfg => window.runSubscriber(cfg)", cfg)
