"""HLS for the mass audience: the program feed, forwarded by Janus, packaged by ffmpeg.

Janus forwards the RTP of the publisher on program (VideoRoom ``rtp_forward``) to a loopback
UDP port; one ffmpeg process per broadcast reads it (described by an SDP file), encodes an
adaptive ladder of H.264 renditions and writes HLS (RFC 8216, version 7) with fragmented MP4
segments (``EXT-X-MAP`` init segment + ``.m4s`` media segments) as plain files under
``<data_dir>/live/hls/<session_id>/``. Playlists are written to a temporary file and renamed
(ffmpeg's ``temp_file`` flag), so a reader never sees half a playlist; media sequence numbers
start from the epoch, so a restarted ffmpeg carries on rather than starting again at 0.

A switch of program restarts the packager on the new feed: each publisher has its own RTP
timeline, and a fresh ffmpeg (with a fresh init segment name) is the one clean way to join
them. Concilium serves the files over HTTP (:mod:`concilium.live.playback_web`); any nginx
or CDN can cache them with the headers :func:`hls_headers` gives.

Access is a capability in the path (:class:`HlsSigner`): the watch page, after the policy
said yes, hands out ``/live/{id}/hls/{expires}/{signature}/master.m3u8``, and every file
request is checked against that signature alone, without the database or a session cookie,
so a crowd of viewers (or a cache in front) costs an HMAC per request.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import re
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from concilium.live.rooms import RoomSpec, VideoRoomAdmin

__all__ = [
    "DEFAULT_LADDER",
    "HlsBroadcasts",
    "HlsCapability",
    "HlsPipeline",
    "HlsSettings",
    "HlsSigner",
    "ProgramForwarder",
    "Rendition",
    "ffmpeg_command",
    "hls_headers",
    "hls_root",
    "program_sdp",
    "resolve_hls_file",
]

log = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"^(?:[a-z0-9]{1,16}/)?[A-Za-z0-9_-]{1,64}\.(m3u8|m4s|mp4)$")
_CONTENT_TYPES = {
    "m3u8": "application/vnd.apple.mpegurl",
    "m4s": "video/iso.segment",
    "mp4": "video/mp4",
}
_CODECS = {"vp8": "VP8", "vp9": "VP9", "h264": "H264"}


@dataclass(frozen=True)
class Rendition:
    """One rung of the adaptive ladder."""

    name: str
    """Folder and variant name (``720p``)."""
    height: int
    """Picture height in pixels; the width follows the source's aspect ratio."""
    video_bitrate: int
    """Target H.264 bitrate in bit/s (also the playlist's ``BANDWIDTH`` basis)."""

    def __post_init__(self) -> None:
        if not re.match(r"^[a-z0-9]{1,16}$", self.name):
            raise ValueError(f"rendition name {self.name!r} must be 1-16 of [a-z0-9]")
        if not 72 <= self.height <= 2160 or self.height % 2:
            raise ValueError(f"height must be even and in 72..2160, got {self.height}")
        if not 50_000 <= self.video_bitrate <= 20_000_000:
            raise ValueError(f"video_bitrate must be in 50000..20000000, got {self.video_bitrate}")


DEFAULT_LADDER = (Rendition("720p", 720, 2_500_000), Rendition("360p", 360, 800_000))
"""Source-like 720p for desktops, 360p for phones on a weak link."""


@dataclass(frozen=True)
class HlsSettings:
    """How the program feed is packaged."""

    ladder: tuple[Rendition, ...] = DEFAULT_LADDER
    """Renditions listed in the master playlist, best first."""
    segment_seconds: int = 1
    """Target segment duration; every segment starts on a keyframe."""
    list_size: int = 6
    """Segments listed in each media playlist."""
    fps: int = 25
    """Output frame rate (fixed, so every segment holds the same number of frames)."""
    preset: str = "veryfast"
    """libx264 preset."""

    def __post_init__(self) -> None:
        if len(self.ladder) < 1 or len({r.name for r in self.ladder}) != len(self.ladder):
            raise ValueError("the ladder needs at least one rendition, with distinct names")
        if not 1 <= self.segment_seconds <= 6:
            raise ValueError(f"segment_seconds must be in 1..6, got {self.segment_seconds}")
        if not 3 <= self.list_size <= 30:
            raise ValueError(f"list_size must be in 3..30, got {self.list_size}")
        if not 5 <= self.fps <= 60:
            raise ValueError(f"fps must be in 5..60, got {self.fps}")


def hls_root(data_dir: Path) -> Path:
    """Folder holding the HLS output of every broadcast."""
    return data_dir / "live" / "hls"


def program_sdp(port: int, codec: str = "vp8", payload_type: int = 96) -> str:
    """SDP (RFC 4566) describing the forwarded program video arriving on loopback ``port``."""
    if codec not in _CODECS:
        raise ValueError(f"codec must be one of {sorted(_CODECS)}, got {codec!r}")
    if not 1024 <= port <= 65535 or not 96 <= payload_type <= 127:
        raise ValueError("port must be 1024..65535 and the payload type 96..127")
    fmtp = f"a=fmtp:{payload_type} packetization-mode=1\r\n" if codec == "h264" else ""
    return (
        "v=0\r\n"
        "o=- 0 0 IN IP4 127.0.0.1\r\n"
        "s=Concilium program\r\n"
        "c=IN IP4 127.0.0.1\r\n"
        "t=0 0\r\n"
        f"m=video {port} RTP/AVP {payload_type}\r\n"
        f"a=rtpmap:{payload_type} {_CODECS[codec]}/90000\r\n"
        f"{fmtp}"
    )


def ffmpeg_command(
    binary: str, sdp_path: Path, out_dir: Path, settings: HlsSettings, run_tag: str
) -> list[str]:
    """The ffmpeg command line packaging the program into HLS fMP4 with the ladder.

    ``run_tag`` names this run's init segments, so a player never mixes the init segment of
    one run with the media segments of another.
    """
    n = len(settings.ladder)
    splits = "".join(f"[s{i}]" for i in range(n))
    scales = ";".join(f"[s{i}]scale=-2:{r.height}[v{i}]" for i, r in enumerate(settings.ladder))
    graph = f"[0:v]fps={settings.fps},split={n}{splits};{scales}"
    gop = settings.fps * settings.segment_seconds
    command = [
        binary,
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-protocol_whitelist",
        "file,udp,rtp",
        "-fflags",
        "nobuffer",
        "-analyzeduration",
        "2000000",
        "-i",
        str(sdp_path),
        "-filter_complex",
        graph,
    ]
    for i in range(n):
        command += ["-map", f"[v{i}]"]
    command += [
        "-c:v",
        "libx264",
        "-preset",
        settings.preset,
        "-tune",
        "zerolatency",
        "-pix_fmt",
        "yuv420p",
        "-g",
        str(gop),
        "-keyint_min",
        str(gop),
        "-sc_threshold",
        "0",
    ]
    for i, rendition in enumerate(settings.ladder):
        rate = rendition.video_bitrate
        command += [f"-b:v:{i}", str(rate), f"-maxrate:v:{i}", str(rate * 11 // 10)]
        command += [f"-bufsize:v:{i}", str(rate)]
    command += [
        "-f",
        "hls",
        "-hls_time",
        str(settings.segment_seconds),
        "-hls_list_size",
        str(settings.list_size),
        "-hls_flags",
        "delete_segments+independent_segments+temp_file+program_date_time",
        # Segments stay on disk a whole playlist longer than listed: a slow viewer (or a
        # cache) fetching what it saw listed a few seconds ago still finds it.
        "-hls_delete_threshold",
        str(settings.list_size),
        "-hls_segment_type",
        "fmp4",
        "-hls_start_number_source",
        "epoch",
        "-hls_fmp4_init_filename",
        f"init-{run_tag}-%v.mp4",
        "-master_pl_name",
        "master.m3u8",
        "-var_stream_map",
        " ".join(f"v:{i},name:{r.name}" for i, r in enumerate(settings.ladder)),
        "-hls_segment_filename",
        str(out_dir / "%v" / "seg-%d.m4s"),
        str(out_dir / "%v" / "index.m3u8"),
    ]
    return command


def resolve_hls_file(root: Path, session_id: int, name: str) -> Path | None:
    """The file ``name`` of a session's HLS output, or None for anything else.

    Only the shapes ffmpeg writes are accepted (``master.m3u8``, ``720p/index.m3u8``,
    ``720p/seg-1.m4s``, ``720p/init-x_0.mp4``): no dots, no other folders.
    """
    if not _FILE_NAME.match(name):
        return None
    path = root / str(session_id) / name
    return path if path.is_file() else None


def hls_headers(name: str) -> tuple[str, str]:
    """Content type and ``Cache-Control`` of an HLS file.

    Playlists change every segment: ``no-cache`` (a cache in front may still keep one for
    a second, see the README). Segments and init segments never change once written (their
    names are unique): ``immutable``.
    """
    extension = name.rsplit(".", 1)[-1]
    content_type = _CONTENT_TYPES[extension]
    if extension == "m3u8":
        return content_type, "no-cache"
    return content_type, "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class HlsCapability:
    """The right to fetch one session's HLS files until ``expires``, carried in the path."""

    session_id: int
    """The broadcast whose files it opens."""
    expires: int
    """Unix time (s) after which it is refused."""
    signature: str
    """HMAC-SHA256 tag over session id and expiry, URL-safe base64 without padding."""

    @property
    def prefix(self) -> str:
        """Path every file of the session is fetched under (playlists refer relatively)."""
        return f"/live/{self.session_id}/hls/{self.expires}/{self.signature}"

    @property
    def master(self) -> str:
        """Path of the master playlist."""
        return f"{self.prefix}/master.m3u8"


_EXPIRES = re.compile(r"^[0-9]{1,12}$")


class HlsSigner:
    """Signs and checks HLS capabilities (HMAC-SHA256, RFC 2104) under a key derived from the
    installation's secret key.

    Expiries are rounded up to ``granularity`` seconds: everyone granted within the same
    window gets the same path, so a shared cache keeps one copy of each file for the whole
    audience rather than one per viewer. The tag covers only session and expiry for that
    reason; taking someone's access away therefore takes effect when their capability
    lapses (at most ``lifetime + granularity``), not at once.
    """

    def __init__(
        self, secret_key: bytes, *, lifetime: int = 4 * 3600, granularity: int = 600
    ) -> None:
        if len(secret_key) < 16:
            raise ValueError("the secret key must be at least 16 bytes")
        if not 60 <= lifetime <= 24 * 3600 or not 1 <= granularity <= lifetime:
            raise ValueError("lifetime must be 60..86400 s and granularity 1..lifetime s")
        # A key of its own, so a tag made here means nothing to any other use of the secret.
        self._key = hmac.new(secret_key, b"concilium live hls capability", hashlib.sha256).digest()
        self.lifetime = lifetime
        self.granularity = granularity

    def _tag(self, session_id: int, expires: int) -> str:
        digest = hmac.new(self._key, f"{session_id}:{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()

    def grant(self, session_id: int, now: float) -> HlsCapability:
        """A capability for ``session_id`` valid at least ``lifetime`` seconds from ``now``."""
        window = self.granularity
        expires = -(-(int(now) + self.lifetime) // window) * window
        return HlsCapability(session_id, expires, self._tag(session_id, expires))

    def verify(self, session_id: int, expires: str, signature: str, now: float) -> bool:
        """Whether the path's ``expires``/``signature`` open ``session_id`` at ``now``
        (constant-time comparison of the tag)."""
        if not _EXPIRES.match(expires) or int(expires) <= now:
            return False
        expected = self._tag(session_id, int(expires))
        return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def free_udp_port() -> int:
    """A UDP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class HlsPipeline:
    """One supervised ffmpeg turning RTP on ``port`` into HLS files under ``out_dir``."""

    def __init__(
        self,
        out_dir: Path,
        port: int,
        settings: HlsSettings | None = None,
        *,
        codec: str = "vp8",
        payload_type: int = 96,
        ffmpeg: str | None = None,
        restart_delay: float = 0.5,
    ) -> None:
        binary = ffmpeg or shutil.which("ffmpeg")
        if binary is None:
            raise FileNotFoundError("ffmpeg is not installed (Debian package ffmpeg)")
        self.out_dir = out_dir
        self.port = port
        self.settings = settings or HlsSettings()
        self.codec = codec
        self.payload_type = payload_type
        self.binary = binary
        self.restart_delay = restart_delay
        self.restarts = 0
        """How many times ffmpeg was started again after it stopped on its own."""
        self._process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def master(self) -> Path:
        return self.out_dir / "master.m3u8"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        """Start packaging (idempotent)."""
        if self._task is not None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for rendition in self.settings.ladder:
            (self.out_dir / rendition.name).mkdir(exist_ok=True)
        sdp = self.out_dir / "program.sdp"
        sdp.write_text(program_sdp(self.port, self.codec, self.payload_type))
        self._task = asyncio.create_task(self._supervise(sdp), name=f"hls-{self.port}")

    async def _supervise(self, sdp: Path) -> None:
        delay = self.restart_delay
        while True:
            started = time.monotonic()
            tag = f"{int(time.time() * 1000):x}"
            command = ffmpeg_command(self.binary, sdp, self.out_dir, self.settings, tag)
            self._process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, error = await self._process.communicate()
            log.warning(
                "HLS packager exited with %s: %s",
                self._process.returncode,
                error.decode(errors="replace")[-300:].strip(),
            )
            # Crash-looping (no input, bad stream): back off, up to 10 s between tries.
            delay = self.restart_delay if time.monotonic() - started > 10 else min(delay * 2, 10)
            self.restarts += 1
            await asyncio.sleep(delay)

    async def stop(self, *, remove: bool = True) -> None:
        """Stop ffmpeg; with ``remove``, delete the output (the recording is the archive)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()
        if remove:
            shutil.rmtree(self.out_dir, ignore_errors=True)


@dataclass
class ProgramForwarder:
    """The VideoRoom ``rtp_forward`` of the publisher on program to the packager's port."""

    videoroom: VideoRoomAdmin
    room: RoomSpec
    port: int
    publisher_id: int | None = None
    stream_ids: list[int] = field(default_factory=list)

    async def forward(self, publisher_id: int) -> None:
        """Forward ``publisher_id``'s video to the port (stopping any previous forward)."""
        await self.stop()
        data = await self.videoroom.handle.request(
            {
                "request": "rtp_forward",
                "room": self.room.room_id,
                "secret": self.room.secret,
                "admin_key": self.videoroom.admin_key,
                "publisher_id": publisher_id,
                "host": "127.0.0.1",
                "host_family": "ipv4",
                "video_port": self.port,
                "video_pt": 96,
            }
        )
        self.publisher_id = publisher_id
        self.stream_ids = _stream_ids(data)

    async def stop(self) -> None:
        """Stop the current forward, if any (a vanished room or publisher is no error)."""
        if self.publisher_id is None:
            return
        for stream_id in self.stream_ids:
            with contextlib.suppress(Exception):
                await self.videoroom.handle.request(
                    {
                        "request": "stop_rtp_forward",
                        "room": self.room.room_id,
                        "secret": self.room.secret,
                        "admin_key": self.videoroom.admin_key,
                        "publisher_id": self.publisher_id,
                        "stream_id": stream_id,
                    }
                )
        self.publisher_id, self.stream_ids = None, []


def _stream_ids(data: dict[str, Any]) -> list[int]:
    """Forwarder ids in an ``rtp_forward`` answer (Janus 1.x ``forwarders`` list, or the
    0.x ``rtp_stream`` object)."""
    ids = [int(f["stream_id"]) for f in data.get("forwarders", []) if "stream_id" in f]
    legacy = data.get("rtp_stream", {})
    ids += [int(v) for k, v in legacy.items() if k.endswith("_stream_id")]
    return ids


@dataclass
class _Broadcast:
    pipeline: HlsPipeline
    forwarder: ProgramForwarder


class HlsBroadcasts:
    """The HLS output of every broadcast of this process, by session id."""

    def __init__(self, data_dir: Path, settings: HlsSettings | None = None) -> None:
        self.root = hls_root(data_dir)
        self.settings = settings or HlsSettings()
        self._broadcasts: dict[int, _Broadcast] = {}

    def __contains__(self, session_id: int) -> bool:
        return session_id in self._broadcasts

    def pipeline(self, session_id: int) -> HlsPipeline | None:
        found = self._broadcasts.get(session_id)
        return found.pipeline if found else None

    async def show(
        self, session_id: int, videoroom: VideoRoomAdmin, room: RoomSpec, feed: int | None
    ) -> None:
        """Put ``feed`` on the session's HLS output (None: take the output down)."""
        await self.stop(session_id, remove=feed is None)
        if feed is None:
            return
        port = free_udp_port()
        pipeline = HlsPipeline(self.root / str(session_id), port, self.settings)
        forwarder = ProgramForwarder(videoroom, room, port)
        # The packager listens before Janus sends, so the first keyframe is not lost.
        await pipeline.start()
        try:
            await forwarder.forward(feed)
        except BaseException:
            await pipeline.stop()
            raise
        self._broadcasts[session_id] = _Broadcast(pipeline, forwarder)
        log.info("HLS of session %s follows feed %s on port %s", session_id, feed, port)

    async def stop(self, session_id: int, *, remove: bool = True) -> None:
        """Stop the session's forward and packager."""
        found = self._broadcasts.pop(session_id, None)
        if found is None:
            return
        await found.forwarder.stop()
        await found.pipeline.stop(remove=remove)

    async def close(self) -> None:
        """Stop everything (server shutdown)."""
        for session_id in list(self._broadcasts):
            await self.stop(session_id)
