"""HLS for the mass audience: the program feed, forwarded by Janus, packaged by ffmpeg.

Janus forwards the RTP of the publisher on program (VideoRoom ``rtp_forward``: its video and,
when it sends some, its Opus audio) to loopback UDP ports; one ffmpeg process per broadcast
reads them (described by an SDP file), encodes an adaptive ladder of H.264 renditions, each
a fixed 16:9 frame carrying the same AAC audio (silence when the publisher has no
microphone), and writes HLS (RFC 8216, version 7) with fragmented MP4 segments
(``EXT-X-MAP`` init segment + ``.m4s`` media segments) as plain files under
``<data_dir>/live/hls/<session_id>/``. In a recorded session the same ffmpeg also writes its
first rendition, as encoded, into the program recording (tee muxer, no second encode).
Playlists are written to a temporary file and renamed (ffmpeg's ``temp_file`` flag), so a
reader never sees half a playlist; media sequence numbers start from the epoch, so a
restarted ffmpeg carries on rather than starting again at 0.

A switch of program restarts the packager on the new feed: each publisher has its own RTP
timeline, and a fresh ffmpeg (with a fresh init segment name) is the one clean way to join
them. Janus forgets its forwarders when it restarts; :meth:`HlsBroadcasts.restore` forwards
each program again once its publisher has re-joined. Concilium serves the files over HTTP
(:mod:`concilium.live.playback_web`), each request opened by a capability in the path
(:mod:`concilium.live.hls_files`); any nginx or CDN can cache them with the headers that
module gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from concilium.live.hls_files import hls_root
from concilium.live.janus_client import JanusError
from concilium.live.recording import (
    note_part_start,
    program_part,
    program_parts_dir,
    recordings_root,
)
from concilium.live.rooms import (
    FORWARD_AUDIO_PT,
    FORWARD_VIDEO_PT,
    RoomSpec,
    RtpForward,
    VideoRoomAdmin,
)
from concilium.live.udp_ports import free_rtp_ports, udp_port_bound

__all__ = [
    "DEFAULT_LADDER",
    "HlsBroadcasts",
    "HlsError",
    "HlsPipeline",
    "HlsSettings",
    "ProgramForwarder",
    "Rendition",
    "ffmpeg_command",
    "program_sdp",
]

log = logging.getLogger(__name__)

_CODECS = {"vp8": "VP8", "vp9": "VP9", "h264": "H264"}
MAX_INTERLEAVE_DELTA_US = 200_000
"""Longest time (µs) the muxer holds the live video back waiting for audio to interleave."""


@dataclass(frozen=True)
class Rendition:
    """One rung of the adaptive ladder."""

    name: str
    """Folder and variant name (``720p``)."""
    height: int
    """Picture height in pixels; every rendition is a 16:9 frame (see :attr:`width`)."""
    video_bitrate: int
    """Target H.264 bitrate in bit/s (also the playlist's ``BANDWIDTH`` basis)."""

    def __post_init__(self) -> None:
        if not re.match(r"^[a-z0-9]{1,16}$", self.name):
            raise ValueError(f"rendition name {self.name!r} must be 1-16 of [a-z0-9]")
        if not 72 <= self.height <= 2160 or self.height % 2:
            raise ValueError(f"height must be even and in 72..2160, got {self.height}")
        if not 50_000 <= self.video_bitrate <= 20_000_000:
            raise ValueError(f"video_bitrate must be in 50000..20000000, got {self.video_bitrate}")

    @property
    def width(self) -> int:
        """Picture width: 16:9, rounded to an even number (4:2:0 chroma needs it).

        The program is one fixed frame, as a vision mixer's output is: a source of another
        shape is fitted in with black bars. A program switch therefore never changes a
        rendition's resolution, so players keep their rendition choice and the program
        recording's parts join without re-encoding.
        """
        return round(self.height * 16 / 9 / 2) * 2


DEFAULT_LADDER = (Rendition("720p", 720, 2_500_000), Rendition("360p", 360, 800_000))
"""Source-like 720p for desktops, 360p for phones on a weak link."""


@dataclass(frozen=True)
class HlsSettings:
    """How the program feed is packaged."""

    ladder: tuple[Rendition, ...] = DEFAULT_LADDER
    """Renditions listed in the master playlist, best first; the first is also the one
    recorded as the session's program."""
    segment_seconds: int = 1
    """Target segment duration; every segment starts on a keyframe."""
    list_size: int = 6
    """Segments listed in each media playlist."""
    fps: int = 25
    """Output frame rate (fixed, so every segment holds the same number of frames)."""
    preset: str = "veryfast"
    """libx264 preset."""
    audio_bitrate: int = 96_000
    """AAC bitrate in bit/s of the audio every rendition carries."""

    def __post_init__(self) -> None:
        if len(self.ladder) < 1 or len({r.name for r in self.ladder}) != len(self.ladder):
            raise ValueError("the ladder needs at least one rendition, with distinct names")
        if not 1 <= self.segment_seconds <= 6:
            raise ValueError(f"segment_seconds must be in 1..6, got {self.segment_seconds}")
        if not 3 <= self.list_size <= 30:
            raise ValueError(f"list_size must be in 3..30, got {self.list_size}")
        if not 5 <= self.fps <= 60:
            raise ValueError(f"fps must be in 5..60, got {self.fps}")
        if not 32_000 <= self.audio_bitrate <= 320_000:
            raise ValueError(f"audio_bitrate must be in 32000..320000, got {self.audio_bitrate}")


def program_sdp(
    port: int,
    codec: str = "vp8",
    payload_type: int = FORWARD_VIDEO_PT,
    *,
    audio_port: int | None = None,
    audio_payload_type: int = FORWARD_AUDIO_PT,
) -> str:
    """SDP (RFC 4566) describing the forwarded program arriving on loopback: video on
    ``port`` and, with ``audio_port``, Opus audio (RFC 7587) on that port."""
    if codec not in _CODECS:
        raise ValueError(f"codec must be one of {sorted(_CODECS)}, got {codec!r}")
    for value in (port, audio_port):
        # ffmpeg receives RTCP on the next port up, so both must be free.
        if value is not None and not 1024 <= value <= 65534:
            raise ValueError(f"RTP ports must be in 1024..65534, got {value}")
    if audio_port is not None and abs(audio_port - port) < 2:
        raise ValueError("the audio and video RTP/RTCP port pairs overlap")
    for value in (payload_type, audio_payload_type):
        if not 96 <= value <= 127:
            raise ValueError(f"payload types must be dynamic (96..127), got {value}")
    fmtp = f"a=fmtp:{payload_type} packetization-mode=1\r\n" if codec == "h264" else ""
    sdp = (
        "v=0\r\n"
        "o=- 0 0 IN IP4 127.0.0.1\r\n"
        "s=Concilium program\r\n"
        "c=IN IP4 127.0.0.1\r\n"
        "t=0 0\r\n"
        f"m=video {port} RTP/AVP {payload_type}\r\n"
        f"a=rtpmap:{payload_type} {_CODECS[codec]}/90000\r\n"
        f"{fmtp}"
    )
    if audio_port is not None:
        sdp += (
            f"m=audio {audio_port} RTP/AVP {audio_payload_type}\r\n"
            f"a=rtpmap:{audio_payload_type} opus/48000/2\r\n"
        )
    return sdp


def _hls_options(
    out_dir: Path, settings: HlsSettings, run_tag: str
) -> tuple[list[tuple[str, str]], str]:
    """The HLS muxer's options and output name, shared by the plain and the tee'd output."""
    options = [
        ("hls_time", str(settings.segment_seconds)),
        ("hls_list_size", str(settings.list_size)),
        # No EXT-X-ENDLIST when a run ends: at a program switch the next run carries on,
        # and a player that saw the tag would stop there.
        (
            "hls_flags",
            "delete_segments+independent_segments+temp_file+program_date_time+omit_endlist",
        ),
        # Segments stay on disk a whole playlist longer than listed: a slow viewer (or a
        # cache) fetching what it saw listed a few seconds ago still finds it.
        ("hls_delete_threshold", str(settings.list_size)),
        ("hls_segment_type", "fmp4"),
        ("hls_start_number_source", "epoch"),
        ("hls_fmp4_init_filename", f"init-{run_tag}-%v.mp4"),
        ("master_pl_name", "master.m3u8"),
        (
            "var_stream_map",
            " ".join(f"v:{i},a:{i},name:{r.name}" for i, r in enumerate(settings.ladder)),
        ),
        ("hls_segment_filename", str(out_dir / "%v" / "seg-%d.m4s")),
    ]
    return options, str(out_dir / "%v" / "index.m3u8")


def _tee_escape(text: str, special: str) -> str:
    """Backslash-escape ``special`` characters (and backslashes and quotes) for one level of
    ffmpeg's ``av_get_token`` parsing (ffmpeg-utils(1), "Quoting and escaping")."""
    return "".join("\\" + c if c in special + "\\'" else c for c in text)


def _tee_slave(options: list[tuple[str, str]], target: str) -> str:
    """One ``[key=value:...]target`` entry of the tee muxer's output list.

    Values are parsed twice (the ``|`` list, then the ``:``-separated options), so they
    are escaped twice; the target once.
    """
    rendered = ":".join(f"{key}={_tee_escape(value, ':]|[ ')}" for key, value in options)
    return _tee_escape(f"[{rendered}]", "|") + _tee_escape(target, "|[")


def ffmpeg_command(
    binary: str,
    sdp_path: Path,
    out_dir: Path,
    settings: HlsSettings,
    run_tag: str,
    *,
    audio: bool = False,
    record_to: Path | None = None,
) -> list[str]:
    """The ffmpeg command line packaging the program into HLS fMP4 with the ladder.

    ``run_tag`` names this run's init segments, so a player never mixes the init segment of
    one run with the media segments of another. With ``audio`` the SDP's Opus stream is
    encoded to AAC; without, silence is: every rendition always has an audio track, so a
    switch between a feed with and one without a microphone changes nothing for players.
    With ``record_to``, the first rendition (video and audio, as encoded for HLS: no
    second encode) is also written there as fragmented MP4 (ffmpeg's tee muxer), a file
    that stays playable up to its last fragment if the process dies.
    """
    n = len(settings.ladder)
    splits = "".join(f"[s{i}]" for i in range(n))
    scales = ";".join(
        f"[s{i}]scale={r.width}:{r.height}:force_original_aspect_ratio=decrease,"
        f"pad={r.width}:{r.height}:(ow-iw)/2:(oh-ih)/2,setsar=1[v{i}]"
        for i, r in enumerate(settings.ladder)
    )
    audio_in = "0:a" if audio else "1:a"
    # Gaps in the received audio (lost packets, a muted microphone) become silence, so the
    # audio track keeps pace with the video.
    audios = "".join(f"[a{i}]" for i in range(n))
    graph = (
        f"[0:v]fps={settings.fps},split={n}{splits};{scales};"
        f"[{audio_in}]aresample=48000:async=1,asplit={n}{audios}"
    )
    gop = settings.fps * settings.segment_seconds
    command = [
        binary,
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-protocol_whitelist",
        "file,udp,rtp",
        # No ``-fflags nobuffer``: it drops the packets read while probing the stream, and
        # with them the keyframe the publisher sent when the forward started.
        "-analyzeduration",
        "2000000",
        # Only Janus, on this machine, may feed the program.
        "-localaddr",
        "127.0.0.1",
        "-i",
        str(sdp_path),
    ]
    if not audio:
        # Silence at its own pace (``-re``): unthrottled, it runs ahead of the live video and
        # the muxer holds the video back for seconds to interleave the two.
        command += ["-re", "-f", "lavfi", "-i", "anullsrc=channel_layout=stereo:sample_rate=48000"]
    command += ["-filter_complex", graph]
    for i in range(n):
        command += ["-map", f"[v{i}]"]
    for i in range(n):
        command += ["-map", f"[a{i}]"]
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
    command += ["-c:a", "aac", "-b:a", str(settings.audio_bitrate), "-ac", "2"]
    # The muxer holds packets back until every stream has one to interleave with, for up to
    # 10 s by default. The audio can lag the video by seconds: generated silence starts only
    # once the program's RTP input has been probed, and a publisher's audio can stall. The
    # live video must never wait for it more than this.
    command += ["-max_interleave_delta", str(MAX_INTERLEAVE_DELTA_US)]
    options, target = _hls_options(out_dir, settings, run_tag)
    if record_to is None:
        command += ["-f", "hls"]
        for key, value in options:
            command += [f"-{key}", value]
        return [*command, target]
    recording = [
        ("f", "mp4"),
        ("select", "v:0,a:0"),
        # Each fragment (one per keyframe, so one a second) goes to disk when complete
        # (``flush_packets``: the muxer would otherwise keep them until the end), so a
        # packager that dies leaves a part that plays up to its last second.
        ("movflags", "+frag_keyframe+empty_moov+default_base_moof"),
        ("flush_packets", "1"),
        # A recording that cannot be written must not take the broadcast down.
        ("onfail", "ignore"),
    ]
    interleave = ("max_interleave_delta", str(MAX_INTERLEAVE_DELTA_US))
    # Each of the tee's outputs interleaves again, with its own holding time.
    slaves = [
        _tee_slave([("f", "hls"), interleave, *options], target),
        _tee_slave([*recording, interleave], str(record_to)),
    ]
    # The tee muxer's outputs need the codec headers out of band (MP4 ``avcC``/``esds``).
    return [
        *command,
        "-flags:v",
        "+global_header",
        "-flags:a",
        "+global_header",
        "-f",
        "tee",
        "|".join(slaves),
    ]


ListeningHook = Callable[[], Awaitable[None]]
_ERROR_LINES = 20
"""Lines of ffmpeg's error output logged per packager run."""


class HlsError(RuntimeError):
    """The program could not be put on the HLS output (the feed left, Janus refused)."""


class HlsPipeline:
    """One supervised ffmpeg turning RTP on ``port`` into HLS files under ``out_dir``.

    With ``audio_port``, Opus audio arriving there goes into every rendition; without,
    silence does. With ``record_dir``, each ffmpeg run also writes the first rendition into
    a part of the program recording there (:func:`concilium.live.recording.program_part`).
    ``on_listening`` runs once ffmpeg of each run has bound its ports: the forwarder starts
    (or renews) the forward then, and Janus asks the publisher for a keyframe at that
    moment, so the picture starts without waiting for the room's periodic keyframe
    request (a keyframe sent before ffmpeg listens is lost, and Janus asks at most once a
    second).
    """

    def __init__(
        self,
        out_dir: Path,
        port: int,
        settings: HlsSettings | None = None,
        *,
        codec: str = "vp8",
        payload_type: int = FORWARD_VIDEO_PT,
        audio_port: int | None = None,
        record_dir: Path | None = None,
        on_listening: ListeningHook | None = None,
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
        self.audio_port = audio_port
        self.record_dir = record_dir
        self.on_listening = on_listening
        self.binary = binary
        self.restart_delay = restart_delay
        self.restarts = 0
        """How many times ffmpeg was started again after it stopped on its own."""
        self._process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._listening: asyncio.Future[None] | None = None
        # The SDP is checked (ports, payload types) before anything starts.
        self._sdp = program_sdp(port, codec, payload_type, audio_port=audio_port)

    @property
    def master(self) -> Path:
        return self.out_dir / "master.m3u8"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def pid(self) -> int | None:
        """Process id of the ffmpeg running now, if any."""
        return self._process.pid if self.running and self._process is not None else None

    async def start(self) -> None:
        """Start packaging (idempotent)."""
        if self._task is not None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for rendition in self.settings.ladder:
            (self.out_dir / rendition.name).mkdir(exist_ok=True)
        if self.record_dir is not None:
            self.record_dir.mkdir(parents=True, exist_ok=True)
        sdp = self.out_dir / "program.sdp"
        sdp.write_text(self._sdp)
        self._listening = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._supervise(sdp), name=f"hls-{self.port}")

    async def listening(self, timeout: float = 15.0) -> None:
        """Wait until the first ffmpeg run listens and ``on_listening`` has run; raises what
        the hook raised, or :class:`TimeoutError`."""
        if self._listening is None:
            raise RuntimeError("the packager is not started")
        await asyncio.wait_for(asyncio.shield(self._listening), timeout)

    async def _supervise(self, sdp: Path) -> None:
        delay = self.restart_delay
        while True:
            started = time.monotonic()
            now_us = time.time_ns() // 1000
            tag = f"{now_us // 1000:x}"
            part = program_part(self.record_dir, now_us) if self.record_dir else None
            command = ffmpeg_command(
                self.binary,
                sdp,
                self.out_dir,
                self.settings,
                tag,
                audio=self.audio_port is not None,
                record_to=part,
            )
            self._process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            watch = asyncio.create_task(self._watch_run(self._process, part))
            said: list[str] = []
            try:
                await self._read_errors(self._process, said)
                await self._process.wait()
            finally:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch
            log.warning(
                "HLS packager exited with %s: %s", self._process.returncode, " | ".join(said[-3:])
            )
            # Crash-looping (no input, bad stream): back off, up to 10 s between tries.
            delay = self.restart_delay if time.monotonic() - started > 10 else min(delay * 2, 10)
            self.restarts += 1
            await asyncio.sleep(delay)

    async def _read_errors(self, process: asyncio.subprocess.Process, said: list[str]) -> None:
        """Log what ffmpeg reports (errors only: ``-loglevel error``), the first lines of a
        run at once (a recording output dropped by the tee muxer says so only there)."""
        assert process.stderr is not None
        while line := await process.stderr.readline():
            text = line.decode(errors="replace").strip()
            if len(said) < _ERROR_LINES:
                log.warning("HLS packager on port %s: %s", self.port, text[:300])
            said.append(text[:300])
            del said[:-_ERROR_LINES]

    async def _watch_run(self, process: asyncio.subprocess.Process, part: Path | None) -> None:
        """Tell the forwarder once this run listens; note when its recording part begins."""
        deadline = time.monotonic() + 10
        while process.returncode is None and time.monotonic() < deadline:
            if udp_port_bound(self.port) is not False:
                break
            await asyncio.sleep(0.05)
        if process.returncode is not None:
            return
        first = self._listening is not None and not self._listening.done()
        try:
            if self.on_listening is not None:
                await self.on_listening()
        except Exception as exc:
            if first and self._listening is not None:
                self._listening.set_exception(exc)
                return
            # Janus restarting: the forward is renewed when it is back.
            log.warning("HLS packager on port %s: forward not renewed: %s", self.port, exc)
        else:
            if first and self._listening is not None:
                self._listening.set_result(None)
        if part is not None:
            # ffmpeg keeps what it receives from now on (from the keyframe just asked for):
            # this instant is where the part's timeline starts on the wall clock.
            await asyncio.to_thread(note_part_start, part, time.time_ns() // 1000)

    async def stop(self, *, remove: bool = True) -> None:
        """Stop ffmpeg; with ``remove``, delete the output (the recording is the archive)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            # On SIGTERM ffmpeg finishes its files (the recording part's last fragment), but
            # it sees the signal only between packets. Waiting for packets that no longer
            # come (Janus restarted), it is killed: everything it wrote stays as it was
            # (a second SIGTERM would make it rewrite the playlists empty).
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 2.0)
            except TimeoutError:
                log.info("HLS packager on port %s receives nothing; killing it", self.port)
                process.kill()
                await process.wait()
        if remove:
            shutil.rmtree(self.out_dir, ignore_errors=True)


@dataclass
class ProgramForwarder:
    """The VideoRoom ``rtp_forward`` of the publisher on program to the packager's ports."""

    videoroom: VideoRoomAdmin
    room: RoomSpec
    publisher_id: int
    """The feed on program."""
    port: int
    """Video RTP port of the packager."""
    audio_port: int | None = None
    """Audio RTP port of the packager (None: video only)."""
    forward: RtpForward | None = None
    """The forwarders running now."""
    lapsed: bool = False
    """Janus restarted under this forward: it is not renewed (the broadcast's restore
    makes a new one once the publisher is back)."""

    async def refresh(self) -> None:
        """Start the forward, or forward the video again: Janus asks the publisher for a
        keyframe (PLI) whenever a forwarder is added, which a packager that just started
        needs to begin."""
        current = self.forward
        if self.lapsed:
            return
        if current is None:
            self.forward = await self.videoroom.rtp_forward(
                self.room, self.publisher_id, video_port=self.port, audio_port=self.audio_port
            )
            return
        renewed = await self.videoroom.rtp_forward(
            self.room, self.publisher_id, video_port=self.port, audio_port=None
        )
        self.forward = RtpForward(self.publisher_id, renewed.video, current.audio)
        for stream_id in current.video:
            with contextlib.suppress(JanusError):
                await self.videoroom.stop_rtp_forward(self.room, self.publisher_id, stream_id)

    async def stop(self) -> None:
        """Stop the current forward, if any (a vanished room or publisher is no error)."""
        current, self.forward = self.forward, None
        if current is None:
            return
        for stream_id in current.stream_ids:
            with contextlib.suppress(JanusError):
                await self.videoroom.stop_rtp_forward(self.room, self.publisher_id, stream_id)


@dataclass
class _Broadcast:
    pipeline: HlsPipeline
    forwarder: ProgramForwarder
    feed: int
    room: RoomSpec


@dataclass
class _Waiter:
    """A program waiting for its publisher to come back after a Janus restart."""

    task: asyncio.Task[None]
    room: RoomSpec
    feed: int


class HlsBroadcasts:
    """The HLS output of every broadcast of this process, by session id.

    Each follows the program (:meth:`show`). Janus forgets its forwarders when it restarts:
    :meth:`restore`, run after the rooms are back, waits for each program's publisher to
    re-join (a publisher page re-joins with its feed id) and forwards it again, with no
    director action.
    """

    def __init__(
        self,
        data_dir: Path,
        settings: HlsSettings | None = None,
        *,
        rejoin_poll: float = 1.0,
    ) -> None:
        self.root = hls_root(data_dir)
        self.data_dir = data_dir
        self.settings = settings or HlsSettings()
        self.rejoin_poll = rejoin_poll
        self._broadcasts: dict[int, _Broadcast] = {}
        self._waiters: dict[int, _Waiter] = {}
        # One switch at a time: a director's switch and a restore racing on one session
        # would otherwise start two packagers on the same folder.
        self._lock = asyncio.Lock()

    def __contains__(self, session_id: int) -> bool:
        return session_id in self._broadcasts

    def pipeline(self, session_id: int) -> HlsPipeline | None:
        found = self._broadcasts.get(session_id)
        return found.pipeline if found else None

    def feed(self, session_id: int) -> int | None:
        """The feed the session's HLS output follows."""
        found = self._broadcasts.get(session_id)
        return found.feed if found else None

    def restoring(self, session_id: int) -> bool:
        """Whether the session waits for its program publisher to come back."""
        return session_id in self._waiters

    async def show(
        self, session_id: int, videoroom: VideoRoomAdmin, room: RoomSpec, feed: int | None
    ) -> None:
        """Put ``feed`` on the session's HLS output (None: take the output down); an
        :class:`HlsError` when it cannot be (if Janus does not show the feed at all, the
        previous one stays on).

        In a recorded room the first rendition also goes into the program recording
        (``<data_dir>/live/recordings/<session>/program-parts/``).
        """
        async with self._lock:
            self._cancel_waiter(session_id)
            try:
                await self._switch(session_id, videoroom, room, feed)
            except JanusError as exc:
                raise HlsError(f"feed {feed} cannot be forwarded: {exc}") from exc

    async def _switch(
        self, session_id: int, videoroom: VideoRoomAdmin, room: RoomSpec, feed: int | None
    ) -> None:
        if feed is None:
            await self._stop(session_id, remove=True)
            return
        # What the feed sends is asked first: a feed that cannot be shown leaves the
        # output on the previous one.
        streams = await videoroom.publisher_streams(room, feed)
        video = next((s.codec for s in streams if s.kind == "video"), None)
        if video not in _CODECS:
            raise ValueError(f"feed {feed} sends no video the packager reads ({video})")
        audio = any(s.kind == "audio" and s.codec == "opus" for s in streams)
        await self._stop(session_id, remove=False)
        port, audio_port = free_rtp_ports(2)
        forwarder = ProgramForwarder(videoroom, room, feed, port, audio_port if audio else None)
        record_dir = (
            program_parts_dir(recordings_root(self.data_dir) / str(session_id))
            if room.record
            else None
        )
        pipeline = HlsPipeline(
            self.root / str(session_id),
            port,
            self.settings,
            codec=video,
            audio_port=forwarder.audio_port,
            record_dir=record_dir,
            on_listening=forwarder.refresh,
        )
        await pipeline.start()
        try:
            # The forward starts once the packager listens (``on_listening``).
            await pipeline.listening()
        except BaseException as exc:
            await pipeline.stop(remove=False)
            await forwarder.stop()
            if isinstance(exc, TimeoutError):
                raise HlsError("the packager did not start listening") from exc
            raise
        self._broadcasts[session_id] = _Broadcast(pipeline, forwarder, feed, room)
        log.info(
            "HLS of session %s follows feed %s (%s, audio: %s) on port %s",
            session_id,
            feed,
            video,
            audio,
            port,
        )

    async def restore(self, videoroom: VideoRoomAdmin) -> None:
        """Janus restarted (its forwarders are gone; ``videoroom`` is the new control
        handle): forward each program again as soon as its publisher is back."""
        async with self._lock:
            # Sessions already waiting (Janus restarted again meanwhile) wait on with the
            # new handle.
            programs = {sid: (w.room, w.feed) for sid, w in self._waiters.items()}
            for session_id, found in self._broadcasts.items():
                # The old forwarders died with Janus: nothing to stop or renew there.
                found.forwarder.forward, found.forwarder.lapsed = None, True
                programs[session_id] = (found.room, found.feed)
            for session_id, (room, feed) in programs.items():
                self._cancel_waiter(session_id)
                task = asyncio.create_task(
                    self._when_back(session_id, videoroom, room, feed),
                    name=f"hls-restore-{session_id}",
                )
                self._waiters[session_id] = _Waiter(task, room, feed)

    async def _when_back(
        self, session_id: int, videoroom: VideoRoomAdmin, room: RoomSpec, feed: int
    ) -> None:
        while True:
            try:
                back = feed in await videoroom.publishers(room.room_id)
            except JanusError as exc:  # Janus restarting again: keep waiting
                log.debug("HLS of session %s: publishers not listed: %s", session_id, exc)
                back = False
            if back:
                async with self._lock:
                    try:
                        await self._switch(session_id, videoroom, room, feed)
                    except (JanusError, OSError, ValueError, HlsError) as exc:
                        # Back in the room but not sending yet, or gone again: wait on.
                        log.info("HLS of session %s not restored yet: %s", session_id, exc)
                    else:
                        self._waiters.pop(session_id, None)
                        log.info("HLS of session %s restored on feed %s", session_id, feed)
                        return
            await asyncio.sleep(self.rejoin_poll)

    def _cancel_waiter(self, session_id: int) -> None:
        waiter = self._waiters.pop(session_id, None)
        if waiter is not None:
            waiter.task.cancel()

    async def stop(self, session_id: int, *, remove: bool = True) -> None:
        """Stop the session's forward and packager."""
        async with self._lock:
            self._cancel_waiter(session_id)
            await self._stop(session_id, remove=remove)

    async def _stop(self, session_id: int, *, remove: bool) -> None:
        found = self._broadcasts.pop(session_id, None)
        if found is None:
            return
        # The packager first, while packets still arrive: it then ends at once.
        await found.pipeline.stop(remove=remove)
        await found.forwarder.stop()

    async def close(self) -> None:
        """Stop everything (server shutdown)."""
        for session_id in {*self._broadcasts, *self._waiters}:
            await self.stop(session_id)
