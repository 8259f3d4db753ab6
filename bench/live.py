"""Benchmark of the live service's control paths.

Measures, on loopback:

* VISCA over IP codec: pack + parse of a datagram (pure Python);
* PTZ round trip: command -> ACK -> Completion against the simulated camera;
* Janus control plane: VideoRoom create + destroy, and credential issue (admin ``add_token``
  + room ``allowed``) against a real Janus started by ``MediaServer``.

HLS (``--hls``, with Debian's ``ffmpeg``):

* HLS live latency: a live source (``bench/stamped_video.py``) stamps the wall-clock time
  into every frame it captures and sends it as VP8 over RTP, as Janus forwards a program
  feed, to the packager's port; for every segment, the time from the capture of its last
  frame (the stamp read back from the decoded segment) to the segment being listed in the
  media playlist;
* N concurrent simulated HLS viewers against a real ``concilium serve``: the bench signs in
  once and asks for the session's HLS address as the watch page does (the policy decides,
  the grant is audited); then, for S seconds, the audience, without a cookie, watches the
  360p rendition under that signed address: one connection per viewer polls the media
  playlist once per target duration, another per viewer fetches the newest segment as often
  (``bench/hls_audience.lua``, two ``wrk`` processes side by side: wrk's Lua state is per
  thread, not per connection). Failed requests (socket errors, answers >= 400 or slower than
  3 s, requests dropped or never answered), playlist and segment fetch percentiles, the
  target verdict and the CPU of every process (Concilium, ffmpeg, wrk, nginx) are printed;
* with ``--nginx``, the same audience again through Debian's nginx on loopback as a caching
  reverse proxy (playlists kept 1 s, segments for good; see ``src/concilium/live/README.md``).

Glass to glass (``--glass``, ``bench/glass_to_glass.py``): time stamps drawn into frames at
a publishing Chromium, read at a subscribing one through Janus, for supervision and for a
20-participant conference.

Run: ``.venv/bin/python bench/live.py [--rounds N] [--hls [--viewers 2000 --seconds 60]
[--nginx]] [--glass]``. Needs Debian's ``janus`` package; ``--hls`` needs ``ffmpeg`` and ``wrk``,
``--nginx`` ``nginx-light`` (``tools/install-debian-packages wrk nginx-light``), ``--glass``
``chromium``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import os
import pwd
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import av
import httpx

import glass_to_glass  # bench/ is sys.path[0] when run as a script
import stamped_video
from concilium.live import lifecycle as live_lifecycle
from concilium.live.camera_simulator import SimulatedCamera
from concilium.live.hls import HlsPipeline, HlsSettings
from concilium.live.hls_files import hls_root
from concilium.live.janus_config import JanusConfig
from concilium.live.media import LiveMedia
from concilium.live.media_server import MediaServer
from concilium.live.ptz import PtzClient
from concilium.live.rooms import RoomSpec
from concilium.live.udp_ports import free_udp_port
from concilium.live.visca import Message, PanTiltAbsolute, PayloadType, parse_command
from concilium.platform import accounts, audit
from concilium.platform.db import make_engine, make_sessionmaker, transaction

BENCH_PASSWORD = "bench-viewer-pass-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def report(name: str, samples: list[float]) -> None:
    samples_ms = sorted(s * 1000 for s in samples)
    p95 = samples_ms[int(0.95 * (len(samples_ms) - 1))]
    print(
        f"{name:<34} n={len(samples_ms):<6} median={statistics.median(samples_ms):8.3f} ms"
        f"  p95={p95:8.3f} ms"
    )


async def timed(action: Callable[[], Awaitable[object]], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        await action()
        samples.append(time.perf_counter() - start)
    return samples


def bench_codec(rounds: int) -> None:
    command = PanTiltAbsolute(1200, -300)
    start = time.perf_counter()
    for sequence in range(rounds):
        datagram = Message(PayloadType.VISCA_COMMAND, sequence, command.payload()).pack()
        parse_command(Message.parse(datagram).payload)
    elapsed = time.perf_counter() - start
    print(f"{'visca pack+parse':<34} n={rounds:<6} {rounds / elapsed:10.0f} messages/s")


async def bench_ptz(rounds: int) -> None:
    async with SimulatedCamera() as camera, PtzClient("127.0.0.1", camera.port) as ptz:
        pan = iter(range(10**9))
        report(
            "ptz command round trip",
            await timed(lambda: ptz.send(PanTiltAbsolute(next(pan) % 2000, 0)), rounds),
        )


async def bench_janus(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        config = JanusConfig(Path(data_dir), http_port=free_port(), admin_port=free_port())
        async with MediaServer(config) as server, httpx.AsyncClient(timeout=5) as http:
            start = time.perf_counter()
            await server.stop()
            await server.start()
            restart_ms = 1000 * (time.perf_counter() - start)
            print(f"{'janus restart (stop + ready)':<34} {restart_ms:.1f} ms")
            media = LiveMedia(config, http)
            await media.connect()
            ids = iter(range(1, 10**6))

            async def room_cycle() -> None:
                room_id = next(ids)
                await media.create_room(RoomSpec(room_id))
                await media.destroy_room(room_id)

            report("videoroom create + destroy", await timed(room_cycle, rounds))
            await media.create_room(RoomSpec(999_999))
            report(
                "credential issue",
                await timed(lambda: media.issue("bench-user", 999_999), rounds),
            )
            await media.close()


# --- HLS -----------------------------------------------------------------------------------


def _playlist_segments(text: str) -> tuple[str, list[str]]:
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text)
    uris = [line for line in text.splitlines() if line and not line.startswith("#")]
    return (init.group(1) if init else ""), uris


def _last_frame_stamp(init: bytes, segment: bytes) -> float | None:
    """Capture time (s since the epoch) stamped in the last video frame of a fMP4 segment."""
    with av.open(io.BytesIO(init + segment), "r") as container:
        last = None
        for frame in container.decode(video=0):
            last = frame
        if last is None:
            return None
        luma = last.to_ndarray(format="gray")
    stamp = stamped_video.read_stamp(luma, time.time() * 1000)
    return None if stamp is None else stamp / 1000


async def _start_sender(port: int, size: str, fps: int) -> asyncio.subprocess.Process:
    """A live source of stamped frames (``bench/stamped_video.py``) sending VP8 to ``port``."""
    script = Path(__file__).with_name("stamped_video.py")
    return await asyncio.create_subprocess_exec(
        sys.executable, str(script), str(port), "--size", size, "--fps", str(fps),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def bench_hls_latency(out_dir: Path, seconds: float = 20.0) -> HlsPipeline:
    """Start the packager on ``out_dir`` fed by a stamped live source; print the latency
    from each segment's last frame being captured to the segment being listed.

    Returns the pipeline, still running, with its sender (for the viewers' benchmark).
    """
    port = free_udp_port()
    pipeline = HlsPipeline(out_dir, port, HlsSettings())
    await pipeline.start()
    await pipeline.listening()
    sender = await _start_sender(port, "1280x720", 25)
    pipeline.sender = sender  # type: ignore[attr-defined]
    rendition = pipeline.settings.ladder[0].name
    playlist = out_dir / rendition / "index.m3u8"
    seen: set[str] = set()
    latencies: list[float] = []
    unreadable = 0
    first = True
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        listed_at = time.time()
        if playlist.is_file():
            init_name, uris = _playlist_segments(playlist.read_text())
            fresh = [uri for uri in uris if uri not in seen]
            seen.update(fresh)
            # Segments already listed at the first look were listed at an unknown time.
            for uri in [] if first else fresh:
                try:
                    init = (out_dir / rendition / init_name).read_bytes()
                    stamp = _last_frame_stamp(init, (out_dir / rendition / uri).read_bytes())
                except (OSError, av.error.FFmpegError):
                    stamp = None
                if stamp is None:
                    unreadable += 1
                else:
                    latencies.append(listed_at - stamp)
            first = first and not uris
        await asyncio.sleep(0.05)
    if latencies:
        report("hls live latency (720p rung)", latencies)
        print(
            f"{'':<34} capture of a segment's last frame -> segment listed; target p95 <="
            f" 6000 ms; {len(latencies)} segments of 1 s, {unreadable} without a readable stamp"
        )
    else:
        print(f"hls live latency: no segment with a readable stamp ({unreadable} without)")
    return pipeline


async def _serve(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "CONCILIUM_DATA_DIR": str(data_dir),
        "CONCILIUM_HTTP_PORT": str(port),
        "CONCILIUM_DICOM_PORT": str(free_port()),
        "CONCILIUM_LIVE_ENABLED": "false",
        "CONCILIUM_COOKIE_SECURE": "false",  # httpx sends Secure cookies only over https
        "CONCILIUM_LOG_LEVEL": "WARNING",
    }
    env.pop("CONCILIUM_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "concilium", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(data_dir.parent / "server.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            try:
                if (await http.get(f"{url}/readyz", timeout=1)).status_code == 200:
                    return process, url
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    process.terminate()
    raise RuntimeError("concilium serve did not become ready")


def _broadcast(data_dir: Path) -> int:
    """A Metz viewer account and a live broadcast, written into the server's database."""
    engine = make_engine(f"sqlite:///{data_dir / 'concilium.db'}")
    now = datetime.now(UTC)
    try:
        with transaction(make_sessionmaker(engine)) as db:
            site = accounts.create_site(db, audit.SYSTEM, "Bench hospital", "570000017")
            user = accounts.create_user(
                db,
                audit.SYSTEM,
                username="bench-viewer",
                full_name="Bench Viewer",
                password=BENCH_PASSWORD,
                roles=[accounts.RoleGrant(site.id, "coordinator")],
            )
            actor = audit.Actor(user.id, user.username)
            live = live_lifecycle.create_session(
                db,
                actor,
                kind="broadcast",
                title="Bench broadcast",
                site_id=site.id,
                scheduled_at=now,
                now=now,
            )
            live_lifecycle.start(db, actor, live, now, teaching_consent=False)
            session_id: int = live.id
    finally:
        engine.dispose()
    return session_id


async def _sign_in(url: str) -> httpx.Cookies:
    async with httpx.AsyncClient(base_url=url) as http:
        page = await http.get("/login")
        marker = 'name="csrf_token" value="'
        start = page.text.index(marker) + len(marker)
        token = page.text[start : page.text.index('"', start)]
        answer = await http.post(
            "/login",
            data={"username": "bench-viewer", "password": BENCH_PASSWORD, "csrf_token": token},
        )
        if answer.status_code != 303:
            raise RuntimeError(f"bench sign-in refused: {answer.status_code}")
        return http.cookies


async def _hls_address(url: str, cookies: httpx.Cookies, session_id: int) -> str:
    """The signed prefix of the session's HLS files, granted as to the watch page."""
    async with httpx.AsyncClient(base_url=url, cookies=cookies) as http:
        answer = await http.get(f"/api/v1/live/sessions/{session_id}/hls")
        answer.raise_for_status()
        playlist: str = answer.json()["playlist"]
        return playlist.removesuffix("master.m3u8")


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time (s) used so far by the processes ``pids`` (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


NGINX_CONF = """
user {user};
worker_processes 1;
worker_rlimit_nofile {open_files};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
daemon off;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    proxy_cache_path {dir}/cache levels=1:2 keys_zone=hls:10m max_size=1g inactive=10m
                     use_temp_path=off;
    upstream concilium {{ server {upstream}; keepalive 32; }}
    server {{
        # The whole audience connects within a second: a queue for all of it.
        listen 127.0.0.1:{port} backlog=4096;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        # Playlists: one request a second reaches Concilium, whatever the audience.
        location ~ "^/live/[0-9]+/hls/[0-9]+/[^/]+/.+\\.m3u8$" {{
            proxy_pass http://concilium;
            proxy_cache hls;
            proxy_cache_key $uri;
            proxy_ignore_headers Cache-Control;
            proxy_cache_valid 200 1s;
            proxy_cache_lock on;
            proxy_cache_use_stale updating;
        }}
        # Segments and init segments never change: fetched once, kept.
        location ~ "^/live/[0-9]+/hls/[0-9]+/[^/]+/" {{
            proxy_pass http://concilium;
            proxy_cache hls;
            proxy_cache_key $uri;
            proxy_cache_valid 200 10m;
            proxy_cache_lock on;
        }}
        location / {{ proxy_pass http://concilium; }}
    }}
}}
"""


async def _nginx(upstream: str, workdir: Path, viewers: int) -> tuple[subprocess.Popen[bytes], str]:
    """Debian's nginx on loopback, caching the HLS files of ``upstream``."""
    workdir.mkdir()
    port = free_port()
    config = workdir / "nginx.conf"
    config.write_text(
        NGINX_CONF.format(
            user=pwd.getpwuid(os.geteuid()).pw_name,
            dir=workdir,
            upstream=upstream.removeprefix("http://"),
            port=port,
            # Each viewer holds two connections (playlists, segments); misses add upstream ones.
            connections=2 * viewers + 1024,
            open_files=_open_files_needed(viewers),
        )
    )
    process = subprocess.Popen(
        [_tool("nginx"), "-p", str(workdir), "-c", str(config), "-e", str(workdir / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "stderr.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as http:
        for _ in range(100):
            try:
                await http.get(f"{url}/readyz", timeout=1)
                return process, url
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
    process.terminate()
    raise RuntimeError("nginx did not start: " + (workdir / "error.log").read_text()[-300:])


AUDIENCE_TOOLS = {"wrk": "wrk", "nginx": "nginx-light"}
"""Programs of the HLS audience benchmark and the Debian packages that bring them."""


def _tool(name: str) -> str:
    """Path of ``name`` (``wrk``, ``nginx``); exits with the install command if it is missing."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        packages = " ".join(AUDIENCE_TOOLS.values())
        raise SystemExit(
            f"bench/live.py needs {name} here (Debian package {AUDIENCE_TOOLS[name]}): "
            f"tools/install-debian-packages {packages}"
        )
    return found


def _open_files_needed(viewers: int) -> int:
    """Descriptors a server in front of the audience needs: two connections per viewer, plus
    upstream connections, cache and segment files."""
    return 2 * viewers + 1024


def _raise_open_files(viewers: int) -> None:
    """Lift this process's soft ``RLIMIT_NOFILE`` (inherited by Concilium, nginx and wrk) to
    what the audience needs; exit with a clear message if the hard limit is below it."""
    needed = _open_files_needed(viewers)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(
            f"{viewers} viewers need {needed} open files per server process; the hard limit "
            f"is {hard}: raise it (ulimit -Hn, or LimitNOFILE= for a service) or use fewer"
        )
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


async def bench_hls_viewers(viewers: int, seconds: float, nginx: bool = False) -> None:
    wrk = _tool("wrk")
    if nginx:
        _tool("nginx")
    _raise_open_files(viewers)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "var"
        process, url = await _serve(data_dir)
        try:
            session_id = await asyncio.to_thread(_broadcast, data_dir)
            cookies = await _sign_in(url)
            prefix = await _hls_address(url, cookies, session_id)
            out_dir = hls_root(data_dir) / str(session_id)
            pipeline = await bench_hls_latency(out_dir)
            sender = getattr(pipeline, "sender", None)
            cpu = {"concilium": [process.pid]}
            if pipeline._process is not None:
                cpu["ffmpeg packager"] = [pipeline._process.pid]
            if sender is not None:
                cpu["ffmpeg test source"] = [sender.pid]
            try:
                audience = Audience(wrk, prefix, viewers, seconds, Path(tmp))
                await audience.run("concilium alone", url, cpu)
                if nginx:
                    proxy, proxy_url = await _nginx(url, Path(tmp) / "nginx", viewers)
                    try:
                        nginx_cpu = {"nginx": [proxy.pid, *_children(proxy.pid)], **cpu}
                        await audience.run("behind nginx (cache)", proxy_url, nginx_cpu)
                    finally:
                        proxy.terminate()
                        proxy.wait(10)
                log = (Path(tmp) / "server.log").read_text(errors="replace").splitlines()
                errors = sorted({line.strip() for line in log if "Error" in line})
                for line in errors[:5]:
                    print(f"{'':<34} server: {line[:160]}")
            finally:
                if sender is not None:
                    sender.terminate()
                    await sender.wait()
                await pipeline.stop()
        finally:
            process.terminate()
            process.wait(30)


def _cpu_pressure() -> str:
    """Share of the last 10 s in which some task waited for a CPU (Linux PSI)."""
    try:
        return Path("/proc/pressure/cpu").read_text().split()[1].removeprefix("avg10=") + "%"
    except (OSError, IndexError):
        return "unknown"


def _load() -> str:
    """The machine's load averages over 1, 5 and 15 minutes (other work skews every figure)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


AUDIENCE_SCRIPT = Path(__file__).with_name("hls_audience.lua")
AUDIENCE_RENDITION = "360p"
"""The rung the simulated viewers watch (a phone's)."""
AUDIENCE_PERIOD_MS = 1000
"""A viewer's playlist reload interval and segment fetch interval: the target duration."""
AUDIENCE_TIMEOUT_S = 3
"""A request unanswered this long failed: a live player holding about three 1 s segments
(hls.js keeps three) has stalled by then."""
AUDIENCE_GRACE_S = AUDIENCE_TIMEOUT_S
"""wrk runs this much longer than the viewers ask (they send nothing after ``seconds``), so
every last request has its full timeout. No longer: a viewer goes idle up to 1.1 s before
the end, and uvicorn closes a connection idle for 5 s; wrk would reopen it and count it twice."""
SEGMENT_P99_TARGET_MS = 1000.0


@dataclass(frozen=True)
class AudienceReport:
    """What one wrk process of the audience reported (``bench/hls_audience.lua``)."""

    role: str
    """``playlist`` or ``segment``."""
    requests: int
    """Answers received (any status, late ones included)."""
    errors: dict[str, int]
    """wrk's counts: ``connect``, ``read``, ``write`` socket errors, ``timeout`` (answers
    slower than the timeout), ``status`` (answers >= 400)."""
    sent: int
    """Requests written."""
    connections: int
    """One per viewer."""
    idle: int
    """Connections that had their last answer when the viewers stopped asking."""
    latency_us: dict[str, float]
    """p50, p90, p99, p999, max and mean time from request written to answer read (µs)."""
    statuses: dict[str, int]
    """Playlist answers by HTTP status (the segment process does not look at answers)."""
    fetched: int
    """Media segment requests (segment process)."""
    distinct: int
    """Distinct media segments requested (segment process)."""
    missed: int
    """Fetches owed (one per viewer and segment) not made before the segment left the
    playlist: the audience fell behind (segment process)."""
    refetched: int
    """Requests made with every listed segment already fetched once per viewer; they ask
    for the newest again (segment process)."""
    backlog: int
    """Fetches owed for listed segments when the viewers stopped (segment process)."""
    first_listed: int | None
    """Media sequence number of the newest segment in the first playlist read, and ..."""
    last_listed: int | None
    """... in the last (playlist process)."""

    @classmethod
    def parse(cls, output: str) -> AudienceReport:
        for line in output.splitlines():
            if line.startswith("hls-audience "):
                data = json.loads(line.removeprefix("hls-audience "))
                return cls(
                    role=data["role"],
                    requests=int(data["requests"]),
                    errors={k: int(v) for k, v in data["errors"].items()},
                    sent=int(data["sent"]),
                    connections=int(data["connections"]),
                    idle=int(data["idle"]),
                    latency_us={k: float(v) for k, v in data.get("latency_us", {}).items()},
                    statuses={k: int(v) for k, v in data["statuses"].items()},
                    fetched=int(data["fetched"]),
                    distinct=int(data["distinct"]),
                    missed=int(data["missed"]),
                    refetched=int(data["refetched"]),
                    backlog=int(data.get("backlog", 0)),
                    first_listed=data.get("first_listed"),
                    last_listed=data.get("last_listed"),
                )
        raise RuntimeError(f"wrk printed no report: {output[-500:]}")

    @property
    def unanswered(self) -> int:
        """Connections still waiting for an answer when wrk stopped (or never connected)."""
        return max(0, self.connections - self.idle)

    @property
    def dropped(self) -> int:
        """Requests whose connection the server closed before answering (wrk reconnects
        without counting an error)."""
        lost = self.errors["read"] + self.errors["write"] + self.unanswered
        return max(0, self.sent - self.requests - lost)

    @property
    def failures(self) -> dict[str, int]:
        """Failed requests by cause, in a fixed order."""
        causes = ("connect", "read", "write", "timeout", "status")
        found = {cause: self.errors.get(cause, 0) for cause in causes}
        return {**found, "dropped": self.dropped, "unanswered": self.unanswered}

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def latency_ms(self, key: str) -> float:
        """A percentile of the answers within the timeout (wrk records no slower one)."""
        return self.latency_us.get(key, float("nan")) / 1000

    def p99_text(self) -> str:
        """The p99 fetch time over all requests, or a bound when over 1 % had no answer
        within the timeout (wrk's percentiles leave those out)."""
        slow = self.errors["timeout"] + self.dropped + self.unanswered
        if slow > 0.01 * (self.requests + self.dropped + self.unanswered):
            return f"> {1000 * AUDIENCE_TIMEOUT_S} ms"
        return f"{self.latency_ms('p99'):.1f} ms"


@dataclass
class Audience:
    """Simulated HLS viewers, as two wrk processes with one connection per viewer each."""

    wrk: str
    prefix: str
    """The session's signed HLS path (``/live/{id}/hls/{expires}/{signature}/``)."""
    viewers: int
    seconds: float
    workdir: Path

    def command(self, role: str, url: str, state: Path) -> list[str]:
        duration = math.ceil(self.seconds) + AUDIENCE_GRACE_S
        return [
            self.wrk, "-t", "1", "-c", str(self.viewers), "-d", f"{duration}s",
            "--timeout", f"{AUDIENCE_TIMEOUT_S}s", "-s", str(AUDIENCE_SCRIPT), url, "--",
            role, self.prefix, AUDIENCE_RENDITION, str(state), str(self.seconds),
            str(AUDIENCE_PERIOD_MS), str(self.viewers),
        ]  # fmt: skip

    async def run(self, name: str, url: str, cpu: dict[str, list[int]]) -> None:
        """Watch for ``seconds`` through ``url``; print failures, latencies, CPU, verdict."""
        state = self.workdir / f"playlist-{time.monotonic_ns()}"
        await self._first_state(url, state)
        print(f"{'hls viewers: ' + name:<34} load average {_load()}")
        before = {label: _cpu_seconds(pids) for label, pids in cpu.items()}
        started = time.monotonic()
        processes: dict[str, asyncio.subprocess.Process] = {}
        try:
            for role in ("playlist", "segment"):
                processes[role] = await asyncio.create_subprocess_exec(
                    *self.command(role, url, state),
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                )
            cpu = {**cpu, **{f"wrk {role}s": [p.pid] for role, p in processes.items()}}
            # CPU over the viewing window alone (wrk idles through its grace).
            await asyncio.sleep(self.seconds)
            elapsed = time.monotonic() - started
            used = {k: _cpu_seconds(pids) - before.get(k, 0.0) for k, pids in cpu.items()}
            pressure = _cpu_pressure()
            outputs = [
                (await p.communicate())[0].decode(errors="replace") for p in processes.values()
            ]
        finally:
            for process in processes.values():
                if process.returncode is None:
                    process.kill()
                    await process.wait()
        playlists, segments = (AudienceReport.parse(output) for output in outputs)
        self._print(playlists, segments, used, elapsed, pressure)

    async def _first_state(self, url: str, state: Path) -> None:
        """The playlist as the audience will first know it (the wrk playlist process keeps it
        up to date), so the segment process has something to fetch from its first request."""
        async with httpx.AsyncClient(base_url=url) as http:
            answer = await http.get(f"{self.prefix}{AUDIENCE_RENDITION}/index.m3u8")
            answer.raise_for_status()
        init, uris = _playlist_segments(answer.text)
        state.write_text("\n".join([init, *uris]) + "\n")

    def _print(
        self,
        playlists: AudienceReport,
        segments: AudienceReport,
        used: dict[str, float],
        elapsed: float,
        pressure: str,
    ) -> None:
        pad = f"{'':<34}"
        print(f"{pad} {self.viewers} viewers for {self.seconds:.0f} s (wrk, 2 x {self.viewers}"
              f" connections); load average now {_load()}, cpu pressure {pressure}")  # fmt: skip
        for label, report in (("playlist", playlists), ("segment", segments)):
            print(
                f"{pad} {label} fetch: n={report.requests} p50={report.latency_ms('p50'):.1f}"
                f" p90={report.latency_ms('p90'):.1f} ms, p99 {report.p99_text()}"
                f" (max within {AUDIENCE_TIMEOUT_S} s {report.latency_ms('max'):.1f} ms)"
            )
        statuses = ", ".join(f"{s} x {n}" for s, n in sorted(playlists.statuses.items()))
        print(f"{pad} playlist answers: {statuses or 'none'}")
        if playlists.first_listed is not None and playlists.last_listed is not None:
            listed = playlists.last_listed - playlists.first_listed + 1
            each = segments.fetched / segments.distinct if segments.distinct else 0.0
            print(
                f"{pad} segments: {listed} listed while watching, {segments.distinct} fetched,"
                f" {each:.0f} times each ({self.viewers} viewers); fetches missed"
                f" {segments.missed}, repeated {segments.refetched}, owed at the end"
                f" {segments.backlog}"
            )
            if listed < 0.9 * self.seconds:
                print(
                    f"{pad} the packager fell behind real time ({listed} segments of 1 s in"
                    f" {self.seconds:.0f} s): the machine is short of CPU"
                )
        failures = Counter(playlists.failures) + Counter(segments.failures)
        failed = playlists.failed + segments.failed
        detail = ", ".join(f"{k} {failures[k]}" for k in playlists.failures)
        print(f"{pad} failed requests: {failed} ({detail})")
        p99 = segments.latency_ms("p99")
        met = failed == 0 and p99 < SEGMENT_P99_TARGET_MS
        print(
            f"{pad} target 0 failed and segment p99 < {SEGMENT_P99_TARGET_MS:.0f} ms:"
            f" {'met' if met else 'not met'} ({failed} failed, p99 {segments.p99_text()})"
        )
        responses = playlists.requests + segments.requests
        print(f"{pad} {responses / elapsed:.0f} responses/s; cpu, % of one core:")
        for label, seconds_used in used.items():
            # The packager and the test source work per second of video, not per request.
            serving = not label.startswith("ffmpeg") and responses
            per = f", {1000 * seconds_used / responses:.3f} ms per response" if serving else ""
            print(f"{pad}   {label}: {100 * seconds_used / elapsed:.0f}%{per}")


async def main(
    rounds: int, hls: bool, viewers: int, seconds: float, nginx: bool = False, glass: bool = False
) -> None:
    bench_codec(rounds * 100)
    await bench_ptz(rounds)
    await bench_janus(rounds)
    if hls:
        await bench_hls_viewers(viewers, seconds, nginx)
    if glass:
        await glass_to_glass.run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--hls", action="store_true", help="HLS latency and viewers")
    parser.add_argument("--viewers", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--nginx", action="store_true", help="with --hls: also measure behind a caching nginx"
    )
    parser.add_argument("--glass", action="store_true", help="glass-to-glass latency")
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.hls, args.viewers, args.seconds, args.nginx, args.glass))
