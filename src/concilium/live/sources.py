"""Sources that Concilium itself feeds into a session: DICOM cine loops and IP cameras.

Each such source gets a Janus Streaming mountpoint of its own (RTP on a loopback port,
"Streaming plugin" chapter of the Janus 1.x documentation) and one feeder
(:mod:`concilium.live.feeders`); this module holds what is decided before feeding:

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

import datetime as dt
import enum
import logging
import math
import re
import time
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
from concilium.live import endpoints, invitations, source_registry
from concilium.live.endpoints import Network
from concilium.live.tables import LiveSession, LiveSource
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
    "CineLoop",
    "CineReference",
    "SdpVideo",
    "SourcePlan",
    "SourceState",
    "SourceStatus",
    "Words",
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
class Words:
    """A message for the director kept untranslated, so that each reader reads it in their
    own language: its English text (a catalogue message id) and the values filling it in,
    which may be words themselves."""

    message: str
    values: dict[str, Words | str | int | float] = field(default_factory=dict)

    def _filled(self, translate: bool) -> str:
        values = {
            key: value._filled(translate) if isinstance(value, Words) else value
            for key, value in self.values.items()
        }
        text = _(self.message) if translate else self.message
        return text % values if values else text

    def english(self) -> str:
        """The words as written in the code (for the log and the API)."""
        return self._filled(translate=False)

    def shown(self) -> str:
        """The words in the reader's language."""
        return self._filled(translate=True)


@dataclass
class SourceStatus:
    """The state of one fed source, as the director console shows it."""

    source_id: int
    name: str
    kind: str
    state: SourceState = SourceState.STARTING
    detail: str = ""
    """Why, in words fit for the director (no credentials, no patient data)."""
    words: Words | None = None
    """The same, untranslated, when the server wrote it (see :meth:`shown_detail`)."""
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

    def shown_detail(self) -> str:
        """Why, in the reader's language (a refusal is kept as it was written)."""
        return self.words.shown()[:300] if self.words is not None else self.detail


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
        raise InvalidInput(_("A DICOM cine loop is named 'study UID/series UID[/instance UID]'."))
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
        raise InvalidInput(_("The cine loop cannot be read: it is not a DICOM file.")) from exc
    count = imaging.number_of_frames(ds)
    if count < 2:
        raise InvalidInput(_("This instance has a single frame: it is not a cine loop."))
    try:
        frames = [imaging.render_frame(ds, index) for index in range(count)]
    except imaging.RenderError as exc:
        raise InvalidInput(
            _("The cine loop's images cannot be decoded: %(reason)s") % {"reason": exc}
        ) from exc
    stack = np.stack(frames)
    # 4:2:0 video needs even dimensions: an odd last row or column is left out.
    rows, columns = stack.shape[1] & ~1, stack.shape[2] & ~1
    if rows < 16 or columns < 16:
        raise InvalidInput(_("The cine loop's images are too small to be streamed."))
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
        raise InvalidInput(_("This series has no multi-frame instance: it is not a cine loop."))
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
    raise NotFound(_("No such cine loop in the archive."))


def authorize_cine(
    archive: Archive,
    db: Session,
    principal: Principal,
    actor: audit.Actor,
    live: LiveSession,
    reference: str,
    now: dt.datetime,
) -> tuple[source_registry.CineGrant, Path]:
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
                object_kind=invitations.RESOURCE_KIND,
                object_id=live.id,
                patient_id=patient_id,
                detail={"kind": "dicom_cine", "reason": refusal},
            )
            raise Forbidden(shown)
    if actor.user_id is None:
        raise Forbidden(_("A cine loop is shown by a person, not by the system."))
    return source_registry.CineGrant(reference.strip(), actor.user_id), path


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
                url = endpoints.check_stream_url(source_registry.source_url(source, box), networks)
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
