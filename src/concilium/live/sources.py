"""Sources that Concilium itself feeds into a session: DICOM cine loops and IP cameras.

Each such source gets a Janus Streaming mountpoint of its own (RTP on a loopback port,
"Streaming plugin" chapter of the Janus 1.x documentation) and one feeder:

* a **cine loop** from the archive (a multi-frame XA or US instance, PS3.3 A.14 / A.7) is
  rendered frame by frame through the object's Modality and VOI LUTs
  (:func:`concilium.imaging.render_frame`), encoded to VP8 by an ``ffmpeg`` process
  fed raw frames on its standard input, packetised to RTP (RFC 7741) and replayed in a loop
  at the object's own frame rate (:func:`cine_frame_rate`). Frames are paced by the
  monotonic clock and never skipped: a late frame is sent at once, the next keeps its slot.
* an **IP camera** (``rtsp://``, ``srt://`` or ``rtp://`` URL) is relayed by an ``ffmpeg``
  process with ``-c copy``: the camera's own H.264 or VP8 packets, only re-packetised, reach
  Janus. A codec WebRTC cannot carry is re-encoded to VP8 (the one case that encodes).
  The relay is supervised: an unreachable or silent camera is retried with a growing delay,
  its state is shown to the director, and the session carries on.

Which cine loop may be replayed is decided by the imaging service's own retrieval rules
(:func:`concilium.imaging.locate`, audited as ``study.retrieve``) on behalf of the person
who adds it, when they add it and again when the session goes live
(:func:`authorize_cine`): nobody shows images they may not read. A loop of a patient other
than the session's is a teaching use of their images and needs their teaching consent.
An IP camera's URL is checked again before each relay (:mod:`concilium.live.endpoints`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import datetime as dt
import enum
import logging
import math
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset
from sqlalchemy.orm import Session

from concilium import imaging
from concilium.imaging import Archive, Level
from concilium.live import endpoints, service
from concilium.live.endpoints import Network
from concilium.live.janus_client import JanusError
from concilium.live.media import LiveMedia
from concilium.live.rooms import MountpointSpec
from concilium.live.tables import LiveSession, LiveSource
from concilium.live.udp_ports import free_udp_port
from concilium.platform import audit, patients
from concilium.platform.accounts import principal_for
from concilium.platform.encryption import SecretBox
from concilium.platform.errors import ConciliumError, Forbidden, InvalidInput, NotFound
from concilium.platform.i18n import _
from concilium.platform.policy import Principal
from concilium.platform.tables import User

__all__ = [
    "DEFAULT_CINE_RATE",
    "MOUNTPOINT_ID_BASE",
    "CineFeeder",
    "CineLoop",
    "CineReference",
    "RelayFeeder",
    "SdpVideo",
    "SourceFeeds",
    "SourcePlan",
    "SourceState",
    "SourceStatus",
    "authorize_cine",
    "cine_encoder_command",
    "cine_frame_rate",
    "load_cine",
    "locate_cine",
    "mountpoint_id",
    "parse_cine_reference",
    "parse_sdp_video",
    "plan_sources",
    "redact_url",
    "relay_command",
    "retry_delay",
]

log = logging.getLogger(__name__)

MOUNTPOINT_ID_BASE = 20_000_000
"""Janus mountpoint ids of fed sources are this plus the source id (rooms use 10_000_000)."""
DEFAULT_CINE_RATE = 15.0
"""Frame rate of a cine loop whose object states none, in frames per second."""
RTP_PAYLOAD_TYPE = 96
"""Dynamic RTP payload type of every fed video."""
WEBRTC_CODECS = frozenset({"vp8", "vp9", "h264", "av1"})
VP8_REALTIME = ("-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-lag-in-frames", "0")
"""ffmpeg's VP8 encoder at its fastest, without look-ahead: each frame leaves as it comes."""
"""Camera codecs a browser decodes: relayed as they are."""
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


class SourceState(enum.StrEnum):
    """What the director sees of a fed source."""

    STARTING = "starting"
    """Mountpoint being made, frames being decoded, or the camera being reached."""
    LIVE = "live"
    """Frames are flowing into the mountpoint."""
    UNREACHABLE = "unreachable"
    """The camera did not answer or stopped sending; retried after a delay."""
    REFUSED = "refused"
    """The source cannot be fed (not authorised, not found, not a cine loop)."""
    STOPPED = "stopped"
    """The session ended."""


@dataclass
class SourceStatus:
    """The state of one fed source, as the director console shows it."""

    source_id: int
    name: str
    kind: str
    state: SourceState = SourceState.STARTING
    detail: str = ""
    """Why, in words fit for the director (no credentials, no patient data)."""
    mountpoint_id: int | None = None
    """Streaming mountpoint viewers watch, once created."""
    codec: str = ""
    """Video codec flowing into the mountpoint."""
    frame_rate: float | None = None
    """Native frame rate of a cine loop."""
    frames_sent: int = 0
    """Frames handed to the encoder (cine) or relayed (camera)."""
    late_frames: int = 0
    """Cine frames sent more than a frame after their slot (sent anyway, never dropped)."""
    attempts: int = 0
    """Consecutive failed attempts to reach the camera."""
    since: float = field(default_factory=time.time)
    """When the state last changed (wall clock, seconds)."""


# --- pure decisions ------------------------------------------------------------------------


def mountpoint_id(source_id: int) -> int:
    """The Streaming mountpoint of a source (stable across restarts)."""
    if source_id < 1:
        raise ValueError(f"source ids are positive, got {source_id}")
    return MOUNTPOINT_ID_BASE + source_id


def _positive(value: object) -> float | None:
    try:
        number = float(str(value).split("\\")[0])
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def cine_frame_rate(ds: Dataset) -> float:
    """Native frame rate of a multi-frame object, in frames per second.

    Cine Rate (0018,0040), else 1000 / Frame Time (0018,1063) in ms, else Recommended Display
    Frame Rate (0008,2144) (PS3.3 C.7.6.5 Cine Module), else :data:`DEFAULT_CINE_RATE`.
    Values outside 1..120 fps are treated as absent.
    """
    candidates = (
        _positive(ds.get("CineRate")),
        round(1000.0 / ft, 2) if (ft := _positive(ds.get("FrameTime"))) else None,
        _positive(ds.get("RecommendedDisplayFrameRate")),
    )
    for rate in candidates:
        if rate is not None and 1.0 <= rate <= 120.0:
            return rate
    return DEFAULT_CINE_RATE


@dataclass(frozen=True)
class CineReference:
    """Which instance a ``dicom_cine`` source replays."""

    study_uid: str
    series_uid: str
    sop_uid: str | None = None
    """The multi-frame instance; without it, the series' first multi-frame instance."""


def parse_cine_reference(reference: str) -> CineReference:
    """``study UID/series UID[/SOP instance UID]`` of a ``dicom_cine`` source."""
    parts = reference.strip().split("/")
    if len(parts) not in (2, 3) or not all(_UID.match(p) and len(p) <= 64 for p in parts):
        raise InvalidInput("a DICOM cine loop is named 'study UID/series UID[/instance UID]'")
    return CineReference(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def redact_url(text: str) -> str:
    """``text`` with the user and password of any URL in it hidden (cameras carry them)."""
    return re.sub(r"(\b[a-z][a-z0-9+.-]*://)[^/@\s]+@", r"\1***@", text, flags=re.IGNORECASE)


def retry_delay(attempt: int, *, first: float = 1.0, longest: float = 30.0) -> float:
    """Seconds before the ``attempt``-th retry (1-based): doubling, capped."""
    return min(longest, first * 2.0 ** max(attempt - 1, 0))


@dataclass(frozen=True)
class SdpVideo:
    """The video of an SDP description (RFC 8866) written by the relay."""

    codec: str
    """Lower-case encoding name (``h264``, ``vp8``...); empty when the SDP has no
    ``rtpmap`` for it (a static payload such as MPEG video, never a WebRTC codec)."""
    payload_type: int
    fmtp: str
    """Format parameters, ``;``-separated without spaces."""


def parse_sdp_video(sdp: str) -> SdpVideo | None:
    """The first video media of ``sdp``; None when it has none (yet)."""
    payload: int | None = None
    codec, fmtp = "", ""
    for line in sdp.splitlines():
        line = line.strip()
        if line.startswith("m="):
            if payload is not None:
                break
            fields = line[2:].split()
            if fields and fields[0] == "video" and len(fields) >= 4 and fields[3].isdigit():
                payload = int(fields[3])
        elif payload is not None and line.startswith(f"a=rtpmap:{payload} "):
            codec = line.split(" ", 1)[1].split("/")[0].lower()
        elif payload is not None and line.startswith(f"a=fmtp:{payload} "):
            params = line.split(" ", 1)[1].split(";")
            fmtp = ";".join(p.strip() for p in params if p.strip())
    if payload is None:
        return None
    return SdpVideo(codec, payload, fmtp)


def cine_encoder_command(
    ffmpeg: str, *, width: int, height: int, pix_fmt: str, rate: float, port: int
) -> list[str]:
    """``ffmpeg`` reading raw frames on stdin, sending VP8 in RTP to ``127.0.0.1:port``.

    Timestamps come from the frame rate, not from arrival: the RTP clock advances by exactly
    one frame per frame. The encoder adds no look-ahead (``lag-in-frames 0``), so each frame
    leaves as soon as it is written; a keyframe every second lets a late viewer start fast.
    """
    keyframes = max(1, round(rate))
    return [
        ffmpeg,
        "-hide_banner",
        "-nostats",
        "-loglevel",
        "error",
        "-f",
        "rawvideo",
        "-pix_fmt",
        pix_fmt,
        "-video_size",
        f"{width}x{height}",
        "-framerate",
        f"{rate:g}",
        "-probesize",
        "32",
        "-i",
        "pipe:0",
        "-an",
        "-pix_fmt",
        "yuv420p",
        *VP8_REALTIME,
        "-auto-alt-ref",
        "0",
        "-error-resilient",
        "1",
        "-threads",
        "1",
        "-b:v",
        "1500k",
        "-g",
        str(keyframes),
        "-f",
        "rtp",
        "-payload_type",
        str(RTP_PAYLOAD_TYPE),
        f"rtp://127.0.0.1:{port}?pkt_size=1200",
    ]


def relay_command(
    ffmpeg: str, url: str, *, port: int, sdp_file: Path, copy: bool = True
) -> list[str]:
    """``ffmpeg`` relaying the camera at ``url`` to RTP on ``127.0.0.1:port``.

    With ``copy`` the video is not decoded at all (``-c:v copy``): the camera's packets are
    re-packetised only. ``-progress`` reports every half second on stdout, which is how the
    supervisor sees that frames still flow; the SDP of the output (codec, payload type,
    parameter sets) is written to ``sdp_file`` once the camera's stream is known.
    """
    scheme = url.split("://", 1)[0].lower()
    before_input: list[str] = []
    if scheme == "rtsp":
        # TCP interleaving crosses firewalls and NAT; the socket times out after 5 s.
        before_input = ["-rtsp_transport", "tcp", "-timeout", "5000000"]
    elif scheme == "srt":
        before_input = ["-timeout", "5000000"]
    encode = (
        ["-c:v", "copy"]
        if copy
        else [
            *VP8_REALTIME,
            "-b:v",
            "1500k",
            "-pix_fmt",
            "yuv420p",
        ]
    )
    return [
        ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "error",
        "-progress",
        "pipe:1",
        "-stats_period",
        "0.5",
        # A second of the camera's stream is enough to know its codec and start relaying.
        "-analyzeduration",
        "1000000",
        *before_input,
        "-i",
        url,
        "-map",
        "0:v:0",
        "-an",
        *encode,
        "-f",
        "rtp",
        "-payload_type",
        str(RTP_PAYLOAD_TYPE),
        "-sdp_file",
        str(sdp_file),
        f"rtp://127.0.0.1:{port}?pkt_size=1200",
    ]


# --- cine loops from the archive -----------------------------------------------------------


@dataclass(frozen=True)
class CineLoop:
    """The presented frames of a cine loop and its native rate."""

    frames: npt.NDArray[np.uint8]
    """``(n, rows, columns)`` grayscale or ``(n, rows, columns, 3)`` RGB, 8 bits."""
    frame_rate: float

    @property
    def count(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    @property
    def pix_fmt(self) -> str:
        """``ffmpeg`` name of the raw frame layout."""
        return "rgb24" if self.frames.ndim == 4 else "gray"


def load_cine(path: Path | str) -> CineLoop:
    """Decode and present every frame of a multi-frame instance (Modality then VOI LUT).

    Raises :class:`InvalidInput` when the instance is not a cine loop (one frame, no pixels)
    or cannot be decoded.
    """
    try:
        ds = pydicom.dcmread(path)
    except (OSError, pydicom.errors.InvalidDicomError) as exc:
        raise InvalidInput(f"the cine loop cannot be read: {exc}") from exc
    count = imaging.number_of_frames(ds)
    if count < 2:
        raise InvalidInput("this instance has a single frame: it is not a cine loop")
    try:
        frames = [imaging.render_frame(ds, index) for index in range(count)]
    except imaging.RenderError as exc:
        raise InvalidInput(f"the cine loop cannot be decoded: {exc}") from exc
    stack = np.stack(frames)
    # 4:2:0 video needs even dimensions: an odd last row or column is left out.
    rows, columns = stack.shape[1] & ~1, stack.shape[2] & ~1
    if rows < 16 or columns < 16:
        raise InvalidInput("the cine loop's frames are too small to stream")
    return CineLoop(np.ascontiguousarray(stack[:, :rows, :columns]), cine_frame_rate(ds))


def locate_cine(
    archive: Archive,
    db: Session,
    principal: Principal,
    actor: audit.Actor,
    reference: str,
    now: dt.datetime,
) -> Path:
    """The stored file of a cine source, if ``principal`` may read its study.

    Goes through the imaging service's retrieval (the same policy and audit as a WADO-RS or
    C-MOVE retrieval). Raises :class:`Forbidden`, :class:`NotFound` or :class:`InvalidInput`.
    """
    ref = parse_cine_reference(reference)
    identifier = Dataset()
    identifier.QueryRetrieveLevel = str(Level.IMAGE if ref.sop_uid else Level.SERIES)
    identifier.StudyInstanceUID = ref.study_uid
    identifier.SeriesInstanceUID = ref.series_uid
    if ref.sop_uid:
        identifier.SOPInstanceUID = ref.sop_uid
    try:
        found = imaging.locate(archive, db, principal, actor, identifier, now=now)
    except imaging.NotAuthorized as exc:
        raise Forbidden(_("You may not show this study: {reason}").format(reason=exc)) from exc
    except imaging.InvalidQuery as exc:
        raise InvalidInput(str(exc)) from exc
    for instance in found:
        header = pydicom.dcmread(instance.path, stop_before_pixels=True)
        if imaging.number_of_frames(header) > 1:
            return instance.path
    if found:
        raise InvalidInput("no multi-frame instance in this series: it is not a cine loop")
    # Invisible and absent look the same to the person asking; the attempt stays on record.
    audit.record(
        db,
        actor,
        "study.retrieve",
        "failure",
        object_kind="study",
        object_id=ref.study_uid,
        detail={"series": ref.series_uid, "instance": ref.sop_uid, "reason": "not found"},
    )
    raise NotFound("no such cine loop in the archive")


def authorize_cine(
    archive: Archive,
    db: Session,
    principal: Principal,
    actor: audit.Actor,
    live: LiveSession,
    reference: str,
    now: dt.datetime,
) -> tuple[service.CineGrant, Path]:
    """Authorise the person ``principal`` to show the cine loop ``reference`` in ``live``,
    audited as ``actor``: they may read its study (the archive's retrieval, audited), and
    its patient is the session's own or has consented to teaching (the refusal is audited).

    Writes audit entries only; the caller commits them, also when this raises
    :class:`Forbidden`, :class:`NotFound` or :class:`InvalidInput`.
    """
    path = locate_cine(archive, db, principal, actor, reference, now)
    ref = parse_cine_reference(reference)
    study = imaging.study_by_uid(db, ref.study_uid)
    patient_id = study.patient_id if study is not None else None
    if patient_id is None or patient_id != live.patient_id:
        refusal, shown = "", ""
        if patient_id is None:
            refusal = "the patient of this study is not identified: their consent is unknown"
            shown = _("The patient of this study is not identified: their consent is unknown.")
        elif not patients.has_consent(db, patient_id, "teaching"):
            refusal = "another patient's study, without their teaching consent"
            shown = _(
                "This study is another patient's, who has not consented to teaching: "
                "it cannot be shown in this session."
            )
        if refusal:
            audit.record(
                db,
                actor,
                "live.source.add",
                "refused",
                object_kind=service.RESOURCE_KIND,
                object_id=live.id,
                patient_id=patient_id,
                detail={"kind": "dicom_cine", "reason": refusal},
            )
            raise Forbidden(shown)
    if actor.user_id is None:
        raise Forbidden("a cine loop is shown by a person")
    return service.CineGrant(reference.strip(), actor.user_id), path


@dataclass(frozen=True)
class SourcePlan:
    """What a feeder needs to know about a source, resolved when the session goes live."""

    source_id: int
    name: str
    kind: str
    url: str = field(default="", repr=False)
    """The camera's URL (``ip_camera``), credentials included: never shown."""
    cine_path: Path | None = None
    """The stored cine loop (``dicom_cine``), once authorised."""
    refusal: str = ""
    """Why the source cannot be fed, if it cannot."""


def plan_sources(
    db: Session,
    archive: Archive,
    live: LiveSession,
    sources: Sequence[LiveSource],
    now: dt.datetime,
    *,
    box: SecretBox | None = None,
    networks: Sequence[Network] = (),
) -> list[SourcePlan]:
    """The fed sources of a session going live: cine loops authorised again for the person
    who added each (:func:`authorize_cine`), camera URLs opened with ``box`` and checked
    again against the device ``networks``.

    Browser cameras and screens publish themselves and are left out. Commits ``db`` after
    each cine loop, so that every retrieval stays in the audit trail.
    """
    plans: list[SourcePlan] = []
    for source in sources:
        if source.kind == "ip_camera":
            try:
                url = endpoints.check_stream_url(service.source_url(source, box), networks)
            except ConciliumError as exc:
                plans.append(SourcePlan(source.id, source.name, source.kind, refusal=exc.detail))
                continue
            plans.append(SourcePlan(source.id, source.name, source.kind, url=url))
        elif source.kind == "dicom_cine":
            person = db.get(User, source.added_by_id) if source.added_by_id else None
            if person is None or person.disabled:
                refusal = _("Nobody may show this loop any more: add it again.")
                plans.append(SourcePlan(source.id, source.name, source.kind, refusal=refusal))
                continue
            principal = principal_for(db, person, now)
            actor = audit.Actor(
                person.id, person.username, role=principal.primary_role(live.site_id)
            )
            try:
                _grant, path = authorize_cine(
                    archive, db, principal, actor, live, source.reference, now
                )
            except ConciliumError as exc:
                plans.append(SourcePlan(source.id, source.name, source.kind, refusal=exc.detail))
                continue
            finally:
                # Each retrieval's audit entry is kept: a refusal of the next one rolls back.
                db.commit()
            plans.append(SourcePlan(source.id, source.name, source.kind, cine_path=path))
    return plans


# --- feeders -------------------------------------------------------------------------------


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

    def _set(self, state: SourceState, detail: str = "") -> None:
        detail = redact_url(detail)[:300]
        if (state, detail) != (self.status.state, self.status.detail):
            log.info(
                "source %s: %s -> %s %s",
                self.plan.source_id,
                self.status.state,
                state,
                detail,
            )
            self.status.state, self.status.detail = state, detail
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
                self._set(SourceState.STOPPED, "the session ended")

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
            self._set(SourceState.STARTING, "the encoder stopped; starting it again")
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
        self._set(SourceState.LIVE, f"{loop.count} frames at {loop.frame_rate:g} fps, looped")
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
            self._set(SourceState.STARTING, "reaching the camera")
            copying = self.copy
            reached, reason = await self._relay_once()
            if copying and not self.copy:
                continue  # the camera's codec needs re-encoding: at once, not after a delay
            if reached:
                attempt = 0
            attempt += 1
            self.status.attempts = attempt
            delay = retry_delay(attempt)
            self._set(SourceState.UNREACHABLE, f"{reason}; next attempt in {delay:g} s")
            await asyncio.sleep(delay)

    async def _relay_once(self) -> tuple[bool, str]:
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
        reason = ""
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
                            codec = video.codec or "this codec"
                            reason = f"{codec} cannot go to browsers as is; re-encoding"
                            return True, reason
                        await self._ensure_mountpoint(video.codec, video.fmtp)
                        reached = True
                        self._set(
                            SourceState.LIVE,
                            f"{video.codec.upper()} relayed without re-encoding"
                            if self.copy
                            else "re-encoded to VP8: the camera's codec does not play in browsers",
                        )
                    elif now - started > self.connect_timeout:
                        reason = f"no picture from the camera within {self.connect_timeout:g} s"
                        return False, reason
                elif now - last_frame[1] > self.stall_timeout:
                    reason = f"no frame from the camera for {self.stall_timeout:g} s"
                    return True, reason
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(process.wait()), 0.25)
            reason = errors[-1] if errors else f"the relay ended (code {process.returncode})"
            return reached, reason
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
