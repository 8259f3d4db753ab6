"""The feeders of the sources Concilium itself feeds into a session, and their supervision.

One feeder per source (:mod:`concilium.live.sources` decides which sources may be fed and
how): a :class:`CineFeeder` renders a cine loop frame by frame into an ``ffmpeg`` VP8
encoder paced by the monotonic clock; a :class:`RelayFeeder` relays an IP camera with
``ffmpeg -c copy`` and retries an unreachable or silent camera with a growing delay. Each
sends RTP to the source's Janus Streaming mountpoint. :class:`SourceFeeds` holds the
feeders of a process, so that ending a session stops its feeders and the director sees
each source's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import math
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from concilium.live.janus_client import JanusError
from concilium.live.media import LiveMedia
from concilium.live.rooms import MountpointSpec
from concilium.live.sources import (
    RTP_PAYLOAD_TYPE,
    WEBRTC_CODECS,
    CineLoop,
    SourcePlan,
    SourceState,
    SourceStatus,
    Words,
    cine_encoder_command,
    load_cine,
    mountpoint_id,
    parse_sdp_video,
    redact_url,
    relay_command,
    retry_delay,
)
from concilium.live.udp_ports import free_udp_port
from concilium.platform.errors import ConciliumError
from concilium.platform.i18n import N_

__all__ = ["CineFeeder", "Feeder", "RelayFeeder", "SourceFeeds", "find_ffmpeg"]

log = logging.getLogger(__name__)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # PR_SET_PDEATHSIG: an ffmpeg left behind by a crashed server stops sending.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def find_ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if found is None:
        raise FileNotFoundError("ffmpeg is not installed (Debian package ffmpeg)")
    return found


async def _end_process(process: asyncio.subprocess.Process, grace: float = 2.0) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


class Feeder:
    """One fed source: owns its mountpoint and its ``ffmpeg`` process while it runs."""

    def __init__(self, plan: SourcePlan, media: LiveMedia, *, ffmpeg: str = "") -> None:
        self.plan = plan
        self.media = media
        self.ffmpeg = ffmpeg or find_ffmpeg()
        self.status = SourceStatus(plan.source_id, plan.name, plan.kind)
        self.port = free_udp_port()  # Janus binds it for the mountpoint
        self.process: asyncio.subprocess.Process | None = None
        self._mountpoint: MountpointSpec | None = None

    def _set(self, state: SourceState, said: str | Words = "") -> None:
        """Change the state; ``said`` is why, a refusal already written for its reader or
        :class:`Words` each reader of the console reads in their language."""
        words = said if isinstance(said, Words) else None
        detail = redact_url(said.english() if isinstance(said, Words) else said)[:300]
        if (state, detail) != (self.status.state, self.status.detail):
            log.info(
                "source %s: %s -> %s %s",
                self.plan.source_id,
                self.status.state,
                state,
                detail,
            )
            self.status.state, self.status.detail, self.status.words = state, detail, words
            self.status.since = time.time()

    async def _ensure_mountpoint(self, codec: str, fmtp: str) -> None:
        spec = self._mountpoint
        if spec is not None and (spec.video_codec, spec.video_fmtp) == (codec, fmtp):
            return
        if spec is not None:
            await self._drop_mountpoint()
        spec = MountpointSpec(
            mountpoint_id(self.plan.source_id),
            self.port,
            description=self.plan.name,
            video_codec=codec,
            video_pt=RTP_PAYLOAD_TYPE,
            video_fmtp=fmtp,
        )
        if spec.mountpoint_id in self.media.registry.mountpoints:
            # Left by an earlier run of this source (the session went live again).
            with contextlib.suppress(JanusError, KeyError):
                await self.media.destroy_mountpoint(spec.mountpoint_id)
        await self.media.create_mountpoint(spec)
        self._mountpoint = spec
        self.status.mountpoint_id, self.status.codec = spec.mountpoint_id, codec

    async def _drop_mountpoint(self) -> None:
        if self._mountpoint is not None:
            with contextlib.suppress(JanusError, KeyError):
                await self.media.destroy_mountpoint(self._mountpoint.mountpoint_id)
            self._mountpoint = None
            self.status.mountpoint_id = None

    async def run(self) -> None:
        """Feed until cancelled; the mountpoint and the process go with it."""
        try:
            if self.plan.refusal:
                self._set(SourceState.REFUSED, self.plan.refusal)
                return
            await self._feed()
        finally:
            if self.process is not None:
                await asyncio.shield(_end_process(self.process))
            await asyncio.shield(self._drop_mountpoint())
            if self.status.state != SourceState.REFUSED:
                self._set(SourceState.STOPPED, Words(N_("the session ended")))

    async def _feed(self) -> None:
        raise NotImplementedError


class CineFeeder(Feeder):
    """Replays a cine loop at its native rate, in a loop, for as long as the session runs."""

    async def _feed(self) -> None:
        if self.plan.cine_path is None:
            raise ValueError("a cine feeder needs the stored cine loop")
        try:
            loop = await asyncio.to_thread(load_cine, self.plan.cine_path)
        except ConciliumError as exc:
            self._set(SourceState.REFUSED, exc.detail)
            return
        self.status.frame_rate = loop.frame_rate
        # RFC 7741 6.1: the largest frame rate and frame size (in macroblocks) sent.
        macroblocks = math.ceil(loop.width / 16) * math.ceil(loop.height / 16)
        await self._ensure_mountpoint(
            "vp8", f"max-fr={math.ceil(loop.frame_rate)};max-fs={macroblocks}"
        )
        attempt = 0
        while True:
            await self._replay(loop)
            # Only an encoder crash brings us here: start it again, a little later each time.
            attempt += 1
            self.status.attempts = attempt
            self._set(SourceState.STARTING, Words(N_("the encoder stopped; starting it again")))
            await asyncio.sleep(retry_delay(attempt))

    async def _replay(self, loop: CineLoop) -> None:
        """Run one encoder process until it stops (or the feeder is cancelled).

        Pacing runs in a thread of its own, on blocking writes: a busy event loop (requests,
        websockets) must not make a frame late.
        """
        command = cine_encoder_command(
            self.ffmpeg,
            width=loop.width,
            height=loop.height,
            pix_fmt=loop.pix_fmt,
            rate=loop.frame_rate,
            port=self.port,
        )
        encoder = subprocess.Popen(  # noqa: S603 - a fixed argument list, no shell
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            bufsize=0,
            preexec_fn=_die_with_parent,
        )
        self._set(
            SourceState.LIVE,
            Words(
                N_("%(count)s frames at %(rate)s fps, looped"),
                {"count": loop.count, "rate": f"{loop.frame_rate:g}"},
            ),
        )
        stop = threading.Event()
        try:
            await asyncio.to_thread(self._pace, encoder, loop, stop)
        finally:
            stop.set()
            await asyncio.shield(asyncio.to_thread(_end_encoder, encoder))

    def _pace(
        self, encoder: subprocess.Popen[bytes], loop: CineLoop, stop: threading.Event
    ) -> None:
        """Write every frame in its slot of the monotonic clock, looping, until ``stop``."""
        assert encoder.stdin is not None
        period = 1.0 / loop.frame_rate
        started = time.monotonic()
        sent = 0
        try:
            while not stop.is_set():
                encoder.stdin.write(loop.frames[sent % loop.count].tobytes())
                sent += 1
                self.status.frames_sent += 1
                # Slots are counted from the start, so small delays never accumulate. After a
                # stall (encoder start, busy machine) the schedule restarts from now: no frame
                # is skipped, and none is rushed, which would play the motion too fast.
                now = time.monotonic()
                delay = started + sent * period - now
                if delay > 0:
                    stop.wait(delay)
                elif delay < -period:
                    self.status.late_frames += 1
                    started = now - sent * period
        except (BrokenPipeError, ConnectionResetError, ValueError):
            if not stop.is_set():
                log.warning("source %s: the cine encoder stopped", self.plan.source_id)


def _end_encoder(encoder: subprocess.Popen[bytes], grace: float = 2.0) -> None:
    if encoder.stdin is not None:
        with contextlib.suppress(OSError):
            encoder.stdin.close()
    if encoder.poll() is None:
        encoder.terminate()
        try:
            encoder.wait(grace)
        except subprocess.TimeoutExpired:
            encoder.kill()
            encoder.wait()


class RelayFeeder(Feeder):
    """Relays an IP camera into its mountpoint without re-encoding; retries when it fails."""

    connect_timeout = 10.0
    """Seconds a camera has to deliver a first picture."""
    stall_timeout = 5.0
    """Seconds without a new frame after which a camera counts as gone."""

    def __init__(self, plan: SourcePlan, media: LiveMedia, *, ffmpeg: str = "") -> None:
        super().__init__(plan, media, ffmpeg=ffmpeg)
        self.copy = True
        self._folder = Path(tempfile.mkdtemp(prefix="concilium-relay-"))

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            shutil.rmtree(self._folder, ignore_errors=True)

    async def _feed(self) -> None:
        attempt = 0
        while True:
            self._set(SourceState.STARTING, Words(N_("reaching the camera")))
            copying = self.copy
            reached, reason = await self._relay_once()
            if copying and not self.copy:
                continue  # the camera's codec needs re-encoding: at once, not after a delay
            if reached:
                attempt = 0
            attempt += 1
            self.status.attempts = attempt
            delay = retry_delay(attempt)
            self._set(
                SourceState.UNREACHABLE,
                Words(
                    N_("%(reason)s; next attempt in %(delay)s s"),
                    {"reason": reason, "delay": f"{delay:g}"},
                ),
            )
            await asyncio.sleep(delay)

    async def _relay_once(self) -> tuple[bool, Words]:
        """Run one relay process until it fails; whether it got a picture, and why it ended."""
        sdp_file = self._folder / "relay.sdp"
        sdp_file.unlink(missing_ok=True)
        command = relay_command(
            self.ffmpeg, self.plan.url, port=self.port, sdp_file=sdp_file, copy=self.copy
        )
        self.process = process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )
        errors: deque[str] = deque(maxlen=5)
        last_frame = [-1, time.monotonic()]
        readers = [
            asyncio.create_task(self._read_progress(process, last_frame)),
            asyncio.create_task(self._read_errors(process, errors)),
        ]
        reached = False
        sdp_size = 0
        try:
            started = time.monotonic()
            while process.returncode is None:
                now = time.monotonic()
                if not reached:
                    # ffmpeg writes the SDP at once; a size seen twice is a complete file.
                    size = sdp_file.stat().st_size if sdp_file.exists() else 0
                    complete, sdp_size = size > 0 and size == sdp_size, size
                    video = parse_sdp_video(sdp_file.read_text()) if complete else None
                    if video is not None:
                        if video.codec not in WEBRTC_CODECS and self.copy:
                            # The one case that encodes: browsers cannot decode this codec.
                            self.copy = False
                            codec = video.codec or "?"
                            return True, Words(
                                N_("%(codec)s cannot go to browsers as is; re-encoding"),
                                {"codec": codec},
                            )
                        await self._ensure_mountpoint(video.codec, video.fmtp)
                        reached = True
                        self._set(
                            SourceState.LIVE,
                            Words(
                                N_("%(codec)s relayed without re-encoding"),
                                {"codec": video.codec.upper()},
                            )
                            if self.copy
                            else Words(
                                N_(
                                    "re-encoded to VP8: the camera's codec does not play "
                                    "in browsers"
                                )
                            ),
                        )
                    elif now - started > self.connect_timeout:
                        return False, Words(
                            N_("no picture from the camera within %(seconds)s s"),
                            {"seconds": f"{self.connect_timeout:g}"},
                        )
                elif now - last_frame[1] > self.stall_timeout:
                    return True, Words(
                        N_("no frame from the camera for %(seconds)s s"),
                        {"seconds": f"{self.stall_timeout:g}"},
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(process.wait()), 0.25)
            if errors:  # the camera's or ffmpeg's own words, as they are
                return reached, Words("%(error)s", {"error": errors[-1]})
            return reached, Words(
                N_("the relay ended (code %(code)s)"), {"code": process.returncode or 0}
            )
        finally:
            await asyncio.shield(_end_process(process))
            for reader in readers:
                reader.cancel()
            self.process = None

    async def _read_progress(
        self, process: asyncio.subprocess.Process, last_frame: list[float]
    ) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            key, _, value = raw.decode(errors="replace").strip().partition("=")
            if key == "frame" and value.isdigit() and int(value) != last_frame[0]:
                last_frame[0], last_frame[1] = int(value), time.monotonic()
                self.status.frames_sent = int(value)

    async def _read_errors(self, process: asyncio.subprocess.Process, errors: deque[str]) -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            line = raw.decode(errors="replace").strip()
            if line:
                errors.append(redact_url(line))


def _feeder_for(plan: SourcePlan, media: LiveMedia) -> Feeder:
    return CineFeeder(plan, media) if plan.kind == "dicom_cine" else RelayFeeder(plan, media)


class SourceFeeds:
    """The feeders of every live session of this process."""

    def __init__(self) -> None:
        self.feeders: dict[int, Feeder] = {}
        """Running feeders by source id."""
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.sessions: dict[int, set[int]] = {}
        """Source ids fed for each session."""
        self.rooms: dict[int, int] = {}
        """Janus room of each session with fed sources."""
        self.refused: dict[int, SourceStatus] = {}
        """Sources that could not start for lack of a media server, by source id."""

    def launch(
        self,
        media: LiveMedia | None,
        session_id: int,
        room_id: int,
        plans: Sequence[SourcePlan],
    ) -> None:
        """Start a feeder per plan (call on the event loop); already fed sources are kept."""
        self.rooms[session_id] = room_id
        fed = self.sessions.setdefault(session_id, set())
        for plan in plans:
            if plan.source_id in self.tasks and not self.tasks[plan.source_id].done():
                continue
            fed.add(plan.source_id)
            if media is None:
                self.refused[plan.source_id] = SourceStatus(
                    plan.source_id,
                    plan.name,
                    plan.kind,
                    SourceState.REFUSED,
                    "the media server is not running",
                )
                continue
            feeder = _feeder_for(plan, media)
            self.feeders[plan.source_id] = feeder
            self.tasks[plan.source_id] = asyncio.get_running_loop().create_task(
                feeder.run(), name=f"live-source-{plan.source_id}"
            )

    async def stop(self, session_id: int) -> None:
        """Stop the feeders of a session; their mountpoints are destroyed."""
        fed = self.sessions.pop(session_id, set())
        self.rooms.pop(session_id, None)
        tasks = [self.tasks.pop(i) for i in fed if i in self.tasks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for source_id in fed:
            self.refused.pop(source_id, None)
            self.feeders.pop(source_id, None)

    async def close(self) -> None:
        """Stop everything (server shutdown)."""
        for session_id in list(self.sessions):
            await self.stop(session_id)

    def statuses(self, session_id: int) -> dict[int, SourceStatus]:
        """The state of each fed source of a session, by source id."""
        found: dict[int, SourceStatus] = {}
        for source_id in sorted(self.sessions.get(session_id, set())):
            if source_id in self.refused:
                found[source_id] = self.refused[source_id]
            elif source_id in self.feeders:
                found[source_id] = self.feeders[source_id].status
        return found

    def mountpoints(self, room_id: int) -> frozenset[int]:
        """Mountpoints of the session whose room is ``room_id`` (what its viewers may watch)."""
        ids: set[int] = set()
        for session_id, room in self.rooms.items():
            if room == room_id:
                for source_id in self.sessions.get(session_id, set()):
                    feeder = self.feeders.get(source_id)
                    if feeder is not None and feeder.status.mountpoint_id is not None:
                        ids.add(feeder.status.mountpoint_id)
        return frozenset(ids)
