"""Glass-to-glass latency of live video through Janus, measured in Chromium on loopback.

A publisher page draws, on every animation frame, the wall clock (``performance.timeOrigin +
performance.now()``, ms) into a canvas as 48 black and white blocks (8 x 6: 40 bits of the
time in ms modulo 2**40, then a CRC-8), and publishes ``canvas.captureStream(fps)`` into a
VideoRoom with ``janus-room.js``, the client code of the live pages. A subscriber page
receives the video through Janus, and for every frame the ``<video>`` presents
(``requestVideoFrameCallback``) draws it onto a canvas, decodes the blocks and records the
frame's expected display time minus the stamp. Both pages run in the same Chromium on the
same machine clock; the small offset between the pages' clocks (``timeOrigin`` is taken when
each page starts) is measured from Python and removed from every sample. Headless Chromium
has no screen: the expected display time is its compositor's estimate of the next refresh,
so the time of the frame callback is printed too.

Scenarios:

* **supervision**: one publisher (640x480 at 30 fps by default, like a cath-lab feed), one
  subscriber, through the real Janus (``ice_enforce_list = "lo"``) that Concilium configures;
* **conference**: N participants (20 by default) in one room, each in its own browser
  context, each publishing a 160x120 stamped canvas at 15 fps. Participant 1 subscribes to
  every other one (a gallery view) and every other participant to the next ``--ring``
  participants, in one multi-stream subscription per participant. A full mesh (N x (N-1)
  decoders) does not fit a 2-core machine; the sample says how each stream fares.
  ``--ring 0`` keeps only participant 1's gallery (N - 1 subscriptions).

The CPU time used by Janus and every Chromium process during each window is printed with
the load average, since a loaded machine delays frames as much as the network would.

The pages reach Janus directly over its HTTP API on loopback (a bench: the product pages go
through Concilium's ``/janus`` proxy, which adds one loopback hop to the signalling only, not
to the media path). Credentials are minted by :class:`concilium.live.media.LiveMedia` as for
real users. Run: ``.venv/bin/python bench/glass_to_glass.py [--seconds 15] [--participants
20]``. Needs Debian's ``janus`` and ``chromium`` packages.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from concilium.live.janus_config import JanusConfig
from concilium.live.media import LiveMedia
from concilium.live.media_server import MediaServer
from concilium.live.rooms import RoomSpec

# The page server the live tests use, so that bench and tests load the same janus-room.js.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "live"))
from webrtc_harness import serve_harness  # type: ignore[import-not-found]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    # Many pages at once: none of them may be throttled as a background tab would be.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--autoplay-policy=no-user-gesture-required",
]

HARNESS = b"""<!doctype html>
<meta charset="utf-8">
<title>glass-to-glass</title>
<!-- Small tiles: every page is composited in software, many times a second. -->
<style>body { margin: 0; } video, canvas { width: 40px; height: 30px; }</style>
<body>
<script type="module">
import { JanusSession, publish, subscribe } from "/static/live/janus-room.js";

const COLS = 8, ROWS = 6, STAMP_BYTES = 5, WRAP = 2 ** 40;
const clock = () => performance.timeOrigin + performance.now();

function crc8(bytes) {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let i = 0; i < 8; i += 1) {
      crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
    }
  }
  return crc;
}

function stampBits(ms) {
  let value = Math.floor(ms) % WRAP;
  const bytes = new Array(STAMP_BYTES);
  for (let i = STAMP_BYTES - 1; i >= 0; i -= 1) {
    bytes[i] = value % 256;
    value = Math.floor(value / 256);
  }
  bytes.push(crc8(bytes));
  const bits = [];
  for (const byte of bytes) for (let i = 7; i >= 0; i -= 1) bits.push((byte >> i) & 1);
  return bits;
}

function drawStamp(ctx, width, height, ms) {
  const bits = stampBits(ms);
  const cw = width / COLS, ch = height / ROWS;
  for (let i = 0; i < bits.length; i += 1) {
    const x = Math.floor((i % COLS) * cw), y = Math.floor(Math.floor(i / COLS) * ch);
    ctx.fillStyle = bits[i] ? "#fff" : "#000";
    ctx.fillRect(x, y, Math.ceil(cw), Math.ceil(ch));
  }
}

// The stamp in a decoded frame, or null when the checksum fails.
function readStamp(pixels, width, height) {
  const cw = width / COLS, ch = height / ROWS;
  const bytes = new Array(STAMP_BYTES + 1).fill(0);
  for (let i = 0; i < COLS * ROWS; i += 1) {
    // Average the middle third of the block: edges are where the codec smears.
    const x0 = Math.floor((i % COLS) * cw + cw / 3), x1 = Math.floor((i % COLS) * cw + 2 * cw / 3);
    const row = Math.floor(i / COLS);
    const y0 = Math.floor(row * ch + ch / 3), y1 = Math.floor(row * ch + 2 * ch / 3);
    let sum = 0, count = 0;
    for (let y = y0; y <= y1; y += 1) {
      for (let x = x0; x <= x1; x += 1) {
        const p = (y * width + x) * 4;
        sum += pixels[p] + pixels[p + 1] + pixels[p + 2];
        count += 3;
      }
    }
    const bit = sum / count > 128 ? 1 : 0;
    bytes[i >> 3] |= bit << (7 - (i & 7));
  }
  if (crc8(bytes.slice(0, STAMP_BYTES)) !== bytes[STAMP_BYTES]) return null;
  let value = 0;
  for (let i = 0; i < STAMP_BYTES; i += 1) value = value * 256 + bytes[i];
  const now = clock();
  return value + Math.round((now - value) / WRAP) * WRAP;
}

const measures = [];

function measure(video, feed) {
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const m = { feed, received: 0, decoded: 0, repeated: 0, unreadable: 0, samples: [],
              atCallback: [], last: null };
  measures.push(m);
  const onFrame = (now, meta) => {
    m.received += 1;
    if (canvas.width !== meta.width || canvas.height !== meta.height) {
      canvas.width = meta.width;
      canvas.height = meta.height;
    }
    ctx.drawImage(video, 0, 0, meta.width, meta.height);
    const shown = performance.timeOrigin + meta.expectedDisplayTime;
    const stamp = readStamp(ctx.getImageData(0, 0, meta.width, meta.height).data,
                            meta.width, meta.height);
    if (stamp === null) m.unreadable += 1;
    else if (stamp === m.last) m.repeated += 1;
    else {
      m.decoded += 1;
      m.last = stamp;
      m.samples.push(shown - stamp);
      m.atCallback.push(performance.timeOrigin + now - stamp);
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

function newVideo() {
  const video = document.createElement("video");
  video.autoplay = true;
  video.muted = true;
  video.playsInline = true;
  document.body.append(video);
  return video;
}

let drawn = 0;
window.startPublisher = async ({ width, height, fps, ...cfg }) => {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  document.body.append(canvas);
  const ctx = canvas.getContext("2d");
  // Drawn on the first animation frame a new video frame is due: a canvas changing faster
  // than it is captured only costs compositing.
  const period = 1000 / fps;
  let due = 0;
  const tick = (now) => {
    if (now >= due - 2) {
      drawStamp(ctx, width, height, clock());
      drawn += 1;
      due = Math.max(due + period, now);
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  window.published = await publish({ ...cfg, stream: canvas.captureStream(fps) });
  return window.published.publisherId;
};

window.subscribeOne = async ({ feed, ...cfg }) => {
  const video = newVideo();
  window.subscriptions = [await subscribe({ ...cfg, feed, video })];
  measure(video, feed);
};

function gatheringComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => pc.addEventListener("icegatheringstatechange", () => {
    if (pc.iceGatheringState === "complete") resolve();
  }));
}

// One session and one peer connection carrying several feeds (VideoRoom multistream
// subscription): a page holds few HTTP connections, each long poll taking one.
window.subscribeMany = async ({ apiUrl, token, room, feeds }) => {
  const session = await new JanusSession(apiUrl, token).create();
  const handleId = await session.attach("janus.plugin.videoroom");
  const join = { request: "join", ptype: "subscriber", room, token,
                 streams: feeds.map((feed) => ({ feed })) };
  const attached = await session.message(handleId, join);
  const feedOf = new Map((attached.plugindata.data.streams ?? []).map((s) => [s.mid, s.feed_id]));
  const pc = new RTCPeerConnection({ iceServers: [] });
  pc.addEventListener("track", (event) => {
    if (event.track.kind !== "video") return;
    const video = newVideo();
    video.srcObject = new MediaStream([event.track]);
    measure(video, feedOf.get(event.transceiver.mid));
  });
  await pc.setRemoteDescription(attached.jsep);
  await pc.setLocalDescription(await pc.createAnswer());
  await gatheringComplete(pc);
  await session.message(handleId, { request: "start", room },
                        { type: "answer", sdp: pc.localDescription.sdp });
  window.subscriptions = [{ session, pc }];
};

window.decodedFrames = () => measures.reduce((n, m) => n + m.decoded, 0);
window.resetMeasures = () => {
  for (const m of measures) Object.assign(m, { received: 0, decoded: 0, repeated: 0,
                                               unreadable: 0, samples: [], atCallback: [] });
};
window.results = async () => {
  let jitterBuffer = 0, emitted = 0, framesDecoded = 0, framesDropped = 0;
  for (const { pc } of window.subscriptions ?? []) {
    for (const report of (await pc.getStats()).values()) {
      if (report.type === "inbound-rtp" && report.kind === "video") {
        jitterBuffer += report.jitterBufferDelay ?? 0;
        emitted += report.jitterBufferEmittedCount ?? 0;
        framesDecoded += report.framesDecoded ?? 0;
        framesDropped += report.framesDropped ?? 0;
      }
    }
  }
  return { drawn, measures: measures.map(({ last, ...m }) => m),
           jitterBufferMs: emitted ? (1000 * jitterBuffer) / emitted : null,
           framesDecoded, framesDropped };
};
window.leaveAll = async () => {
  const joined = [...(window.subscriptions ?? []), window.published].filter(Boolean);
  for (const { session, pc } of joined) {
    pc.close();
    await session.destroy();
  }
};
window.harnessReady = true;
</script>
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (as bench/live.py computes it)."""
    return ordered[int(fraction * (len(ordered) - 1))]


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


async def clock_offset(page: Page, rounds: int = 7) -> float:
    """Page clock minus Python's wall clock, in ms, from the round trip of least delay."""
    best: tuple[float, float] | None = None
    for _ in range(rounds):
        before = time.time() * 1000
        page_ms = float(await page.evaluate("performance.timeOrigin + performance.now()"))
        after = time.time() * 1000
        candidate = (after - before, page_ms - (before + after) / 2)
        if best is None or candidate[0] < best[0]:
            best = candidate
    assert best is not None
    return best[1]


def _kind(pid: int) -> str:
    """Program of a process, with its Chromium process type (Chromium rewrites its argv)."""
    try:
        command = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return "gone"
    text = command.decode(errors="replace")
    kind = re.search(r"--type=(\S+)", text)
    if kind:
        return f"chromium {kind.group(1)}"
    if "chromium" in text or "chrome" in text:
        return "chromium browser"
    return Path(text.split(" ", 1)[0]).name or "unknown"


def tree_cpu_seconds() -> dict[str, float]:
    """CPU time (user + system, s) used so far by this process and its live descendants.

    Janus and every Chromium process are descendants (``/proc/<pid>/stat`` fields 14 and 15),
    keyed by program and Chromium process type (renderer, gpu-process, utility...).
    """
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        ticks[pid] = int(fields[11]) + int(fields[12])
    mine = {os.getpid()}
    grew = True
    while grew:
        found = {pid for pid, ppid in parents.items() if ppid in mine} - mine
        grew = bool(found)
        mine |= found
    used: dict[str, float] = {}
    for pid in mine:
        kind = _kind(pid)
        used[kind] = used.get(kind, 0.0) + ticks.get(pid, 0) / os.sysconf("SC_CLK_TCK")
    return used


def cpu_report(before: dict[str, float], seconds: float) -> str:
    """Cores used since ``before``, in total and by the four biggest kinds of process.

    Processes that ended during the window are not counted.
    """
    used = {kind: t - before.get(kind, 0.0) for kind, t in tree_cpu_seconds().items()}
    top = sorted(used.items(), key=lambda item: -item[1])[:4]
    parts = ", ".join(f"{kind} {t / seconds:.2f}" for kind, t in top if t > 0)
    return f"{sum(used.values()) / seconds:.2f} cores ({parts})"


@dataclass
class StreamResult:
    """What one subscriber measured on one feed during the measurement window."""

    publisher: int
    """Index of the participant who published the feed."""
    subscriber: int
    """Index of the participant who received it."""
    received: int
    """Frames the ``<video>`` presented (``requestVideoFrameCallback`` calls)."""
    decoded: int
    """Frames whose stamp was read with a valid checksum, each stamp counted once."""
    repeated: int
    """Frames presented again with a stamp already seen."""
    unreadable: int
    """Frames whose blocks failed the checksum."""
    latencies_ms: list[float] = field(default_factory=list)
    """Expected display time minus stamp, clock offset between the two pages removed."""
    at_callback_ms: list[float] = field(default_factory=list)
    """Time of the frame callback minus stamp (one display refresh or so earlier)."""


@dataclass
class Participant:
    index: int
    context: BrowserContext
    page: Page
    feed: int = 0
    offset_ms: float = 0.0


async def open_participant(browser: Browser, url: str, index: int) -> Participant:
    context = await browser.new_context(viewport={"width": 320, "height": 240})
    page = await context.new_page()
    await page.goto(url)
    await page.wait_for_function("window.harnessReady === true")
    participant = Participant(index, context, page)
    participant.offset_ms = await clock_offset(page)
    return participant


async def wait_decoding(page: Page, frames: int, timeout: float) -> None:
    await page.wait_for_function(
        f"window.decodedFrames() >= {frames}", timeout=timeout * 1000, polling=200
    )


async def collect(subscriber: Participant, by_feed: dict[int, Participant]) -> dict[str, Any]:
    raw: dict[str, Any] = await subscriber.page.evaluate("window.results()")
    streams = []
    for m in raw["measures"]:
        publisher = by_feed[int(m["feed"])]
        skew = subscriber.offset_ms - publisher.offset_ms
        streams.append(
            StreamResult(
                publisher=publisher.index,
                subscriber=subscriber.index,
                received=int(m["received"]),
                decoded=int(m["decoded"]),
                repeated=int(m["repeated"]),
                unreadable=int(m["unreadable"]),
                latencies_ms=[float(s) - skew for s in m["samples"]],
                at_callback_ms=[float(s) - skew for s in m["atCallback"]],
            )
        )
    raw["streams"] = streams
    return raw


def print_latency(name: str, samples: list[float]) -> None:
    if not samples:
        print(f"{name:<34} no frame decoded")
        return
    ordered = sorted(samples)
    print(
        f"{name:<34} n={len(ordered):<6} p50={statistics.median(ordered):7.1f} ms"
        f"  p95={percentile(ordered, 0.95):7.1f} ms  max={ordered[-1]:7.1f} ms"
    )


async def supervision(
    browser: Browser, media: LiveMedia, url: str, size: tuple[int, int], fps: int, seconds: float
) -> None:
    room = 7001
    await media.create_room(RoomSpec(room, description="glass-to-glass supervision"))
    camera = await media.issue("bench-cath-lab", room)
    expert = await media.issue("bench-expert", room)
    api = media.config.api_url
    publisher = await open_participant(browser, url, 0)
    subscriber = await open_participant(browser, url, 1)
    try:
        width, height = size
        publisher.feed = int(
            await publisher.page.evaluate(
                "cfg => window.startPublisher(cfg)",
                {"apiUrl": api, "token": camera.token, "room": room, "display": "cath lab",
                 "width": width, "height": height, "fps": fps},
            )
        )  # fmt: skip
        await subscriber.page.evaluate(
            "cfg => window.subscribeOne(cfg)",
            {"apiUrl": api, "token": expert.token, "room": room, "feed": publisher.feed},
        )
        await wait_decoding(subscriber.page, 10, timeout=30)
        await asyncio.sleep(2.0)  # let the bitrate and the jitter buffer settle
        await subscriber.page.evaluate("window.resetMeasures()")
        drawn_before = int((await publisher.page.evaluate("window.results()"))["drawn"])
        cpu = tree_cpu_seconds()
        await asyncio.sleep(seconds)
        cores = cpu_report(cpu, seconds)
        result = await collect(subscriber, {publisher.feed: publisher})
        drawn = int((await publisher.page.evaluate("window.results()"))["drawn"]) - drawn_before
        (stream,) = result["streams"]
        print(f"supervision: {width}x{height} canvas at {fps} fps, 1 publisher -> 1 subscriber")
        print_latency("glass-to-glass (supervision)", stream.latencies_ms)
        print_latency("  at the frame callback", stream.at_callback_ms)
        jitter = result["jitterBufferMs"]
        print(
            f"{'':<34} frames in {seconds:.0f} s: received {stream.received}, decoded "
            f"{stream.decoded}, repeated {stream.repeated}, unreadable {stream.unreadable}; "
            f"publisher drew {drawn} animation frames"
        )
        print(
            f"{'':<34} WebRTC: jitter buffer {jitter or 0:.1f} ms/frame, dropped "
            f"{result['framesDropped']} (since start); page clock skew "
            f"{subscriber.offset_ms - publisher.offset_ms:+.1f} ms (removed); CPU used by "
            f"Chromium + Janus + bench {cores}"
        )
        for participant in (subscriber, publisher):
            await participant.page.evaluate("window.leaveAll()")
    finally:
        for participant in (subscriber, publisher):
            await participant.context.close()
        await media.destroy_room(room)


def conference_plan(participants: int, ring: int) -> dict[int, list[int]]:
    """Who subscribes to whom: 0 to everyone else, every other one to the next ``ring``."""
    plan = {0: list(range(1, participants))}
    for index in range(1, participants if ring else 1):
        plan[index] = [(index + step) % participants for step in range(1, ring + 1)]
    return plan


async def conference(
    browser: Browser,
    media: LiveMedia,
    url: str,
    participants: int,
    ring: int,
    size: tuple[int, int],
    fps: int,
    seconds: float,
) -> None:
    room = 7002
    await media.create_room(
        RoomSpec(room, description="glass-to-glass conference", publishers=participants,
                 bitrate=256_000)
    )  # fmt: skip
    api = media.config.api_url
    width, height = size
    people: list[Participant] = []
    try:
        started = time.monotonic()
        for index in range(participants):
            person = await open_participant(browser, url, index)
            people.append(person)
            credential = await media.issue(f"bench-participant-{index + 1}", room)
            person.feed = int(
                await person.page.evaluate(
                    "cfg => window.startPublisher(cfg)",
                    {"apiUrl": api, "token": credential.token, "room": room,
                     "display": f"participant {index + 1}", "width": width, "height": height,
                     "fps": fps},
                )
            )  # fmt: skip
            await person.page.evaluate(f"window.credential = {credential.token!r}")
        by_feed = {p.feed: p for p in people}
        plan = conference_plan(participants, ring)
        for index, targets in plan.items():
            person = people[index]
            token = await person.page.evaluate("window.credential")
            await person.page.evaluate(
                "cfg => window.subscribeMany(cfg)",
                {"apiUrl": api, "token": token, "room": room,
                 "feeds": [people[t].feed for t in targets]},
            )  # fmt: skip
        setup = time.monotonic() - started
        watching = [people[index] for index in plan]
        await asyncio.gather(*(wait_decoding(p.page, 10, timeout=60) for p in watching))
        await asyncio.sleep(3.0)
        await asyncio.gather(*(p.page.evaluate("window.resetMeasures()") for p in watching))
        cpu = tree_cpu_seconds()
        await asyncio.sleep(seconds)
        cores = cpu_report(cpu, seconds)
        load_during = os.getloadavg()[0]
        results = await asyncio.gather(*(collect(p, by_feed) for p in watching))
        for person in people:
            await person.page.evaluate("window.leaveAll()")
    finally:
        for person in people:
            await person.context.close()
        await media.destroy_room(room)

    streams: list[StreamResult] = [s for r in results for s in r["streams"]]
    expected = fps * seconds
    flowing = [s for s in streams if s.decoded > 0]
    smooth = [s for s in streams if s.decoded >= 0.9 * expected]
    print(
        f"conference: {participants} participants, each publishing {width}x{height} at {fps} "
        f"fps; participant 1 subscribes to the {participants - 1} others, the others to "
        f"{ring} each ({len(streams)} subscriptions, set up in {setup:.0f} s)"
    )
    print_latency("glass-to-glass (conference, all)", [x for s in streams for x in s.latencies_ms])
    print_latency("  at the frame callback", [x for s in streams for x in s.at_callback_ms])
    gallery = [x for s in streams if s.subscriber == 0 for x in s.latencies_ms]
    print_latency("  participant 1 (gallery)", gallery)
    print_latency(
        "  others (ring)", [x for s in streams if s.subscriber != 0 for x in s.latencies_ms]
    )
    received = sum(s.received for s in streams)
    decoded = sum(s.decoded for s in streams)
    unreadable = sum(s.unreadable for s in streams)
    print(
        f"{'':<34} streams flowing {len(flowing)}/{len(streams)}, at >= 90 % of {fps} fps "
        f"{len(smooth)}/{len(streams)}; frames in {seconds:.0f} s: received {received}, "
        f"decoded {decoded}, unreadable {unreadable} (expected {expected * len(streams):.0f})"
    )
    rates = sorted(s.decoded / seconds for s in streams)
    print(
        f"{'':<34} decoded fps per stream: min {rates[0]:.1f} median "
        f"{statistics.median(rates):.1f} max {rates[-1]:.1f}"
    )
    print(
        f"{'':<34} CPU used by Chromium + Janus + bench: {cores} of "
        f"{os.cpu_count()}; 1-min load average at the end of the window {load_during:.2f}"
    )


async def run(
    *,
    seconds: float = 15.0,
    participants: int = 20,
    ring: int = 2,
    supervision_size: tuple[int, int] = (640, 480),
    supervision_fps: int = 30,
    conference_size: tuple[int, int] = (160, 120),
    conference_fps: int = 15,
    skip_conference: bool = False,
) -> None:
    """Start Janus and Chromium, run both scenarios and print the figures."""
    if participants < 2 or not 0 <= ring < participants:
        raise ValueError("need at least 2 participants and 0 <= ring < participants")
    print(f"glass-to-glass bench; at start: {load()}")
    with tempfile.TemporaryDirectory() as data_dir, serve_harness(HARNESS) as url:
        config = JanusConfig(
            Path(data_dir), http_port=free_port(), admin_port=free_port(), debug_level=3
        )
        async with (
            MediaServer(config) as _server,
            httpx.AsyncClient(timeout=10) as http,
            async_playwright() as playwright,
        ):
            media = LiveMedia(config, http)
            await media.connect()
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            try:
                await supervision(browser, media, url, supervision_size, supervision_fps, seconds)
                if not skip_conference:
                    await conference(
                        browser, media, url, participants, ring, conference_size,
                        conference_fps, seconds,
                    )  # fmt: skip
            finally:
                await browser.close()
                await media.close()
    print(f"glass-to-glass bench; at end: {load()}")


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="measurement window")
    parser.add_argument("--participants", type=int, default=20)
    parser.add_argument("--ring", type=int, default=2, help="feeds each other participant gets")
    parser.add_argument("--supervision-size", type=_size, default=(640, 480))
    parser.add_argument("--supervision-fps", type=int, default=30)
    parser.add_argument("--conference-size", type=_size, default=(160, 120))
    parser.add_argument("--conference-fps", type=int, default=15)
    parser.add_argument("--skip-conference", action="store_true")
    args = parser.parse_args(argv)
    asyncio.run(
        run(
            seconds=args.seconds,
            participants=args.participants,
            ring=args.ring,
            supervision_size=args.supervision_size,
            supervision_fps=args.supervision_fps,
            conference_size=args.conference_size,
            conference_fps=args.conference_fps,
            skip_conference=args.skip_conference,
        )
    )


if __name__ == "__main__":
    main()
