"""Benchmark of the live service's control paths.

Measures, on loopback:

* VISCA over IP codec: pack + parse of a datagram (pure Python);
* PTZ round trip: command -> ACK -> Completion against the simulated camera;
* Janus control plane: VideoRoom create + destroy, and credential issue (admin ``add_token``
  + room ``allowed``) against a real Janus started by ``MediaServer``.

HLS (``--hls``, with Debian's ``ffmpeg``):

* HLS live latency: an RTP stream (ffmpeg ``testsrc``, VP8, as Janus forwards a program
  feed) enters the packager's port; for every segment, the time from its last frame entering
  the pipeline (sender start + the frame's timestamp) to the segment being listed in the
  media playlist;
* N concurrent simulated HLS viewers (asyncio + httpx) against a real ``concilium serve``:
  the bench signs in once and asks for the session's HLS address as the watch page does
  (the policy decides, the grant is audited), then every viewer, without a cookie, polls the
  360p media playlist under that signed address once per target duration and downloads
  every new segment, for S seconds; failed requests, the p99 segment fetch time and the CPU
  used by the server, the bench's own client and the packager are printed;
* with ``--nginx``, the same viewers again through Debian's nginx on loopback as a caching
  reverse proxy (playlists kept 1 s, segments for good; see ``src/concilium/live/README.md``).

Glass to glass (``--glass``, ``bench/glass_to_glass.py``): time stamps drawn into frames at
a publishing Chromium, read at a subscribing one through Janus, for supervision and for a
20-participant conference.

Run: ``.venv/bin/python bench/live.py [--rounds N] [--hls [--viewers 2000 --seconds 60]
[--nginx]] [--glass]``. Needs Debian's ``janus`` package (and ``nginx-light`` for
``--nginx``, ``chromium`` for ``--glass``).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import pwd
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import av
import httpx

import glass_to_glass  # bench/ is sys.path[0] when run as a script
from concilium.live import service as live_service
from concilium.live.camera_simulator import SimulatedCamera
from concilium.live.hls import HlsPipeline, HlsSettings, hls_root
from concilium.live.janus_config import JanusConfig
from concilium.live.media import LiveMedia
from concilium.live.media_server import MediaServer
from concilium.live.ptz import PtzClient
from concilium.live.rooms import RoomSpec
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


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _playlist_segments(text: str) -> tuple[str, list[str]]:
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text)
    uris = [line for line in text.splitlines() if line and not line.startswith("#")]
    return (init.group(1) if init else ""), uris


def _segment_end(init: bytes, segment: bytes) -> float:
    """Presentation time (s) just after the last frame of a fMP4 media segment."""
    with av.open(io.BytesIO(init + segment)) as container:
        stream = container.streams.video[0]
        times = [float(p.pts * p.time_base) for p in container.demux(stream) if p.pts is not None]
        rate = float(stream.average_rate or 25)
    return max(times) + 1 / rate


async def _start_sender(port: int, size: str, fps: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
        "-f", "lavfi", "-i", f"testsrc=size={size}:rate={fps}",
        "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-g", str(fps),
        "-b:v", "1500k", "-f", "rtp", f"rtp://127.0.0.1:{port}?pkt_size=1200",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def bench_hls_latency(out_dir: Path, seconds: float = 20.0) -> HlsPipeline:
    """Start the packager on ``out_dir`` fed by a test pattern; print the live latency.

    Returns the pipeline, still running, with its sender (for the viewers' benchmark).
    """
    port = _free_udp_port()
    pipeline = HlsPipeline(out_dir, port, HlsSettings())
    await pipeline.start()
    await asyncio.sleep(0.5)  # the packager listens before the first packet
    sender_started = time.time()
    sender = await _start_sender(port, "1280x720", 25)
    pipeline.sender = sender  # type: ignore[attr-defined]
    rendition = pipeline.settings.ladder[0].name
    playlist = out_dir / rendition / "index.m3u8"
    seen: set[str] = set()
    latencies: list[float] = []
    first_end: float | None = None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        listed_at = time.time()
        if playlist.is_file():
            init_name, uris = _playlist_segments(playlist.read_text())
            for uri in uris:
                if uri in seen:
                    continue
                seen.add(uri)
                try:
                    init = (out_dir / rendition / init_name).read_bytes()
                    end = _segment_end(init, (out_dir / rendition / uri).read_bytes())
                except (OSError, av.error.FFmpegError):
                    continue
                if first_end is None:  # segments present at the first look are skipped
                    first_end = end
                    continue
                latencies.append(listed_at - (sender_started + end))
        await asyncio.sleep(0.05)
    if latencies:
        report("hls live latency (720p rung)", latencies[2:] or latencies)
        print(f"{'':<34} target p95 <= 6000 ms; segments {len(latencies)}, 1 s each")
    else:
        print("hls live latency: no segment was produced")
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
            live = live_service.create_session(
                db,
                actor,
                kind="broadcast",
                title="Bench broadcast",
                site_id=site.id,
                scheduled_at=now,
                now=now,
            )
            live_service.start(db, actor, live, now, teaching_consent=False)
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
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
daemon off;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    proxy_cache_path {dir}/cache levels=1:2 keys_zone=hls:10m max_size=1g inactive=10m
                     use_temp_path=off;
    upstream concilium {{ server {upstream}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
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


async def _nginx(upstream: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Debian's nginx on loopback, caching the HLS files of ``upstream``."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).is_file():
        raise RuntimeError("nginx is not installed: tools/install-debian-packages nginx-light")
    workdir.mkdir()
    port = free_port()
    config = workdir / "nginx.conf"
    config.write_text(
        NGINX_CONF.format(
            user=pwd.getpwuid(os.geteuid()).pw_name,
            dir=workdir,
            upstream=upstream.removeprefix("http://"),
            port=port,
        )
    )
    process = subprocess.Popen(
        [binary, "-p", str(workdir), "-c", str(config), "-e", str(workdir / "error.log")],
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


async def bench_hls_viewers(viewers: int, seconds: float, nginx: bool = False) -> None:
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
            packager = [p.pid for p in (pipeline._process, sender) if p is not None]
            cpu = {"concilium": [process.pid], "packager + test source": packager}
            try:
                print(f"{'hls viewers: concilium alone':<34} load average {_load()}")
                await _viewers(url, prefix, viewers, seconds, cpu)
                if nginx:
                    proxy, proxy_url = await _nginx(url, Path(tmp) / "nginx")
                    try:
                        cpu["nginx"] = [proxy.pid, *_children(proxy.pid)]
                        print(f"{'hls viewers: behind nginx':<34} load average {_load()}")
                        await _viewers(proxy_url, prefix, viewers, seconds, cpu)
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
    """The machine's 1-minute load average (other work on it skews every figure)."""
    return Path("/proc/loadavg").read_text().split()[0]


async def _viewers(
    url: str, prefix: str, viewers: int, seconds: float, cpu: dict[str, list[int]]
) -> None:
    base = f"{prefix}360p/"
    failures: list[str] = []
    failed_paths: dict[int, str] = {}
    segment_times: list[float] = []
    playlist_times: list[float] = []
    limits = httpx.Limits(max_connections=viewers, max_keepalive_connections=viewers)
    timeout = httpx.Timeout(10.0, pool=30.0)
    cpu_before = {name: _cpu_seconds(pids) for name, pids in cpu.items()}
    client_before, started = time.process_time(), time.monotonic()
    # No cookie: the signed address is the whole credential, as for a cache in front.
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as http:
        stop_at = time.monotonic() + seconds

        async def fetch(path: str, into: list[float]) -> httpx.Response | None:
            start = time.perf_counter()
            try:
                answer = await http.get(path)
            except httpx.HTTPError as exc:
                failures.append(type(exc).__name__)
                return None
            into.append(time.perf_counter() - start)
            if answer.status_code != 200:
                failures.append(str(answer.status_code))
                failed_paths.setdefault(answer.status_code, path)
                return None
            return answer

        async def viewer(index: int) -> None:
            await asyncio.sleep(index % 100 / 100)  # arrivals spread over a second
            have: set[str] = set()
            first = True
            while time.monotonic() < stop_at:
                playlist = await fetch(base + "index.m3u8", playlist_times)
                if playlist is not None:
                    init, uris = _playlist_segments(playlist.text)
                    if first and init:
                        await fetch(base + init, segment_times)
                    fresh = [u for u in (uris[-2:] if first else uris) if u not in have]
                    for uri in fresh:
                        if await fetch(base + uri, segment_times) is not None:
                            have.add(uri)
                    first = False
                await asyncio.sleep(1.0)

        await asyncio.gather(*(viewer(i) for i in range(viewers)))
    elapsed = time.monotonic() - started
    used = {name: _cpu_seconds(pids) - cpu_before[name] for name, pids in cpu.items()}
    used["bench client (httpx)"] = time.process_time() - client_before
    total = len(segment_times) + len(playlist_times)
    print(f"{'hls viewers':<34} n={viewers} for {seconds:.0f} s: {total} responses")
    print(f"{'':<34} failed requests: {len(failures)} {dict(Counter(failures))}")
    for status, path in sorted(failed_paths.items()):
        print(f"{'':<34} e.g. {status} on {path}")
    for name, samples in (("segment fetch", segment_times), ("playlist fetch", playlist_times)):
        if samples:
            ordered = sorted(samples)
            p99 = ordered[int(0.99 * (len(ordered) - 1))] * 1000
            p50 = statistics.median(ordered) * 1000
            print(f"{'':<34} {name}: n={len(ordered)} p50={p50:.1f} ms p99={p99:.1f} ms")
    print(f"{'':<34} target: 0 failed, segment p99 < 1000 ms; {total / elapsed:.0f} responses/s")
    print(f"{'':<34} wall {elapsed:.0f} s; cpu pressure {_cpu_pressure()}")
    for name, seconds_used in used.items():
        per = f", {1000 * seconds_used / total:.2f} ms per response" if total else ""
        print(f"{'':<34} cpu {name}: {100 * seconds_used / elapsed:.0f}% of one core{per}")


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
