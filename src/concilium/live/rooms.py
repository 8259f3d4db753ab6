"""VideoRoom rooms and Streaming mountpoints Concilium keeps on Janus.

Request bodies follow the "VideoRoom plugin" and "Streaming plugin" chapters of the Janus 1.x
documentation (synchronous requests ``create``, ``destroy``, ``list``, ``exists``,
``allowed``). Rooms are created with ``permanent = false``: Janus forgets them when it stops,
and Concilium, which holds the list in a :class:`RoomRegistry`, re-creates them with
:func:`restore_rooms`. That keeps one source of truth for which rooms exist.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from concilium.live.janus_client import (
    STREAMING,
    VIDEOROOM,
    JanusHandle,
    JanusPluginError,
    JanusSession,
)

__all__ = [
    "FORWARD_AUDIO_PT",
    "FORWARD_VIDEO_PT",
    "MAX_JANUS_ID",
    "MountpointSpec",
    "PublishedStream",
    "RoomRegistry",
    "RoomSpec",
    "RtpForward",
    "StreamingAdmin",
    "VideoRoomAdmin",
    "restore_rooms",
]

log = logging.getLogger(__name__)

MAX_JANUS_ID = 2**53 - 1
"""Largest numeric room/mountpoint id that survives JSON in every browser."""

_VIDEO_CODECS = frozenset({"vp8", "vp9", "h264", "av1", "h265"})
_AUDIO_CODECS = frozenset({"opus", "g722", "pcmu", "pcma"})
_PROFILE_LEVEL_ID = re.compile(r"^[0-9a-f]{6}$")
_SETUP_ATTEMPTS = 20
"""Tries, 0.25 s apart, to see a publisher that is still setting up its media."""


def _check_id(name: str, value: int) -> None:
    if not 1 <= value <= MAX_JANUS_ID:
        raise ValueError(f"{name} must be in 1..2**53-1, got {value}")


def _new_secret() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class RoomSpec:
    """A VideoRoom room as Concilium wants it (VideoRoom ``create`` request)."""

    room_id: int
    """Numeric room id (``room``)."""
    description: str = ""
    """Human-readable name shown in Janus listings."""
    publishers: int = 6
    """Most concurrent publishers (cameras and participants sending media)."""
    bitrate: int = 2_048_000
    """Bitrate cap Janus suggests to each publisher (REMB), in bit/s."""
    videocodec: str = "h264,vp8"
    """Video codecs publishers may use, by preference; both allow simulcast. H.264 first, so
    a recording goes into MP4 without re-encoding (MP4 cannot carry VP8); VP8 for a
    publisher that offers no H.264."""
    h264_profile: str = "42e01f"
    """H.264 ``profile-level-id`` Janus prefers in a publisher's offer (RFC 6184 8.1):
    Constrained Baseline, level 3.1, which every WebRTC browser encodes (Debian's Chromium
    offers it with OpenH264) and every player decodes."""
    audiocodec: str = "opus"
    """Audio codecs publishers may use."""
    fir_freq: int = 10
    """Seconds between keyframe requests to publishers. With Janus 1.1.2 and Chromium's
    rid-based simulcast, a subscriber's switch to another layer waits for this periodic
    keyframe, so it bounds the switch delay; shorter costs bandwidth on every layer."""
    record: bool = False
    """Whether Janus records every publisher of the room into ``.mjr`` files."""
    secret: str = field(default_factory=_new_secret, repr=False)
    """Room secret needed to destroy the room or edit its allowed tokens; server-side only."""

    def __post_init__(self) -> None:
        _check_id("room_id", self.room_id)
        if not 1 <= self.publishers <= 100:
            raise ValueError(f"publishers must be in 1..100, got {self.publishers}")
        if not 64_000 <= self.bitrate <= 20_000_000:
            raise ValueError(f"bitrate must be in 64000..20000000 bit/s, got {self.bitrate}")
        for name, value, known in (
            ("videocodec", self.videocodec, _VIDEO_CODECS),
            ("audiocodec", self.audiocodec, _AUDIO_CODECS),
        ):
            codecs = value.split(",")
            unknown = [c for c in codecs if c not in known]
            if not value or unknown:
                raise ValueError(f"{name} {value!r}: unknown codec(s) {unknown}")
        if not _PROFILE_LEVEL_ID.match(self.h264_profile):
            raise ValueError(f"h264_profile must be 6 hex digits, got {self.h264_profile!r}")
        if not 0 <= self.fir_freq <= 600:
            raise ValueError(f"fir_freq must be in 0..600 s, got {self.fir_freq}")
        if len(self.description) > 200:
            raise ValueError("description is longer than 200 characters")


@dataclass(frozen=True)
class MountpointSpec:
    """A Streaming RTP mountpoint relaying an IP camera without re-encoding.

    The camera (or an RTSP-to-RTP relay next to it) sends RTP to ``127.0.0.1:video_port``;
    Janus forwards the packets as they are to WebRTC viewers.
    """

    mountpoint_id: int
    """Numeric mountpoint id (``id``)."""
    video_port: int
    """UDP port Janus listens on for the camera's video RTP."""
    description: str = ""
    """Human-readable name."""
    video_codec: str = "h264"
    """Codec of the incoming video, as sent by the camera."""
    video_pt: int = 96
    """RTP payload type of the incoming video."""
    video_fmtp: str = "profile-level-id=42e01f;packetization-mode=1"
    """SDP fmtp line offered to viewers (H.264 constrained baseline by default)."""
    audio_port: int | None = None
    """UDP port for the camera's Opus audio RTP, if the camera sends audio."""
    audio_pt: int = 111
    """RTP payload type of the incoming audio."""
    secret: str = field(default_factory=_new_secret, repr=False)
    """Mountpoint secret needed to destroy it; server-side only."""

    def __post_init__(self) -> None:
        _check_id("mountpoint_id", self.mountpoint_id)
        ports = [self.video_port] + ([self.audio_port] if self.audio_port is not None else [])
        for port in ports:
            if not 1024 <= port <= 65535:
                raise ValueError(f"RTP ports must be in 1024..65535, got {port}")
        if self.audio_port is not None and self.audio_port == self.video_port:
            raise ValueError("audio_port and video_port must differ")
        if self.video_codec not in _VIDEO_CODECS:
            raise ValueError(f"video_codec {self.video_codec!r} is not one of {_VIDEO_CODECS}")
        for name, pt in (("video_pt", self.video_pt), ("audio_pt", self.audio_pt)):
            if not 96 <= pt <= 127:
                raise ValueError(f"{name} must be a dynamic RTP payload type 96..127, got {pt}")


FORWARD_VIDEO_PT = 96
"""RTP payload type of forwarded video (what the packager's SDP announces)."""
FORWARD_AUDIO_PT = 111
"""RTP payload type of forwarded audio (Opus)."""


@dataclass(frozen=True)
class PublishedStream:
    """One stream a publisher sends."""

    kind: str
    """``audio`` or ``video``."""
    codec: str
    """Negotiated codec, lower case (``h264``, ``vp8``, ``opus``, ...)."""
    description: str = ""
    """What the publisher said the stream is (the ``descriptions`` of its ``publish`` or
    ``configure``), as it said it: unchecked, the caller checks it."""


@dataclass(frozen=True)
class RtpForward:
    """The forwarders one ``rtp_forward`` request created, by kind."""

    publisher_id: int
    video: tuple[int, ...] = ()
    """Stream ids of the video forwarders."""
    audio: tuple[int, ...] = ()
    """Stream ids of the audio forwarders (empty: the publisher sends no audio)."""

    @classmethod
    def parse(cls, publisher_id: int, data: dict[str, Any]) -> RtpForward:
        """Read an answer in Janus 1.x's ``forwarders`` list form or the legacy
        ``rtp_stream`` object form (``audio_stream_id``, ``video_stream_id``)."""
        video: list[int] = []
        audio: list[int] = []
        for forwarder in data.get("forwarders", []):
            if "stream_id" in forwarder:
                kind = video if forwarder.get("type") == "video" else audio
                kind.append(int(forwarder["stream_id"]))
        legacy = data.get("rtp_stream", {})
        for key, value in legacy.items():
            if key.startswith("video") and key.endswith("stream_id"):
                video.append(int(value))
            elif key.startswith("audio") and key.endswith("stream_id"):
                audio.append(int(value))
        return cls(publisher_id, tuple(video), tuple(audio))

    @property
    def stream_ids(self) -> tuple[int, ...]:
        return self.video + self.audio


@dataclass
class VideoRoomAdmin:
    """Control-plane requests to the VideoRoom plugin through one handle."""

    handle: JanusHandle
    """Handle attached to ``janus.plugin.videoroom`` with Concilium's service token."""
    admin_key: str = field(repr=False)
    """VideoRoom ``admin_key`` from the generated configuration."""
    recordings_folder: Path
    """Folder under which each recorded room gets its own sub-folder."""

    def __post_init__(self) -> None:
        if self.handle.plugin != VIDEOROOM:
            raise ValueError(f"handle is attached to {self.handle.plugin}, not {VIDEOROOM}")

    def rec_dir(self, room_id: int) -> Path:
        """Folder receiving the recordings of ``room_id`` (never chosen by a caller)."""
        return self.recordings_folder / f"room-{room_id}"

    async def create(self, spec: RoomSpec, allowed: list[str] | None = None) -> None:
        """Create the room; with ``allowed``, only those tokens may join it."""
        body: dict[str, Any] = {
            "request": "create",
            "admin_key": self.admin_key,
            "room": spec.room_id,
            "permanent": False,
            "description": spec.description or f"room {spec.room_id}",
            "secret": spec.secret,
            "is_private": True,
            "publishers": spec.publishers,
            "bitrate": spec.bitrate,
            # A hard cap would stop the top simulcast layer; the REMB hint is enough.
            "bitrate_cap": False,
            "fir_freq": spec.fir_freq,
            "videocodec": spec.videocodec,
            "h264_profile": spec.h264_profile,
            "audiocodec": spec.audiocodec,
            # Bandwidth estimation lets browsers drop and restore simulcast layers.
            "transport_wide_cc_ext": True,
            "notify_joining": True,
            "record": spec.record,
            "lock_record": True,
        }
        if spec.record:
            folder = self.rec_dir(spec.room_id)
            folder.mkdir(parents=True, exist_ok=True)
            body["rec_dir"] = str(folder)
        if allowed is not None:
            # The control session's own token too: it looks at what publishers send
            # (:meth:`publisher_streams`) as a subscriber would.
            body["allowed"] = sorted({*allowed, self.handle.session.token})
        await self.handle.request(body)

    async def destroy(self, spec: RoomSpec) -> None:
        """Destroy the room; participants are kicked out."""
        await self.handle.request(
            {"request": "destroy", "room": spec.room_id, "secret": spec.secret, "permanent": False}
        )

    async def exists(self, room_id: int) -> bool:
        """Whether Janus currently has ``room_id``."""
        data = await self.handle.request({"request": "exists", "room": room_id})
        return bool(data.get("exists"))

    async def list_rooms(self) -> list[dict[str, Any]]:
        """Every room, private ones included (the admin key lifts the privacy filter)."""
        data = await self.handle.request({"request": "list", "admin_key": self.admin_key})
        rooms: list[dict[str, Any]] = data.get("list", [])
        return rooms

    async def publishers(self, room_id: int) -> dict[int, str]:
        """Feeds publishing in ``room_id`` right now, with their display names
        (``listparticipants``)."""
        data = await self.handle.request({"request": "listparticipants", "room": room_id})
        return {
            int(p["id"]): str(p.get("display", ""))
            for p in data.get("participants", [])
            if p.get("publisher")
        }

    async def publisher_streams(self, spec: RoomSpec, publisher_id: int) -> list[PublishedStream]:
        """What ``publisher_id`` sends, stream by stream, with the negotiated codecs.

        ``listparticipants`` does not tell (Janus 1.1), but the answer to a subscriber's
        ``join`` (the ``attached`` event) does: a short-lived session joins as a subscriber
        with the control token, reads it and leaves without answering the offer, so no
        media flows to it.
        """
        control = self.handle.session
        join = {
            "request": "join",
            "ptype": "subscriber",
            "room": spec.room_id,
            "streams": [{"feed": publisher_id}],
            "token": control.token,
        }
        async with JanusSession(
            control.http, control.api_url, control.token, poll_events=True
        ) as probe:
            handle = await probe.attach(VIDEOROOM)
            for attempt in range(_SETUP_ATTEMPTS):
                try:
                    data, _ = await handle.request_async(join)
                    break
                except JanusPluginError as exc:
                    # 428 "no such feed": a publisher that just joined is still setting up
                    # its media; it becomes visible in a moment.
                    if exc.code != 428 or attempt == _SETUP_ATTEMPTS - 1:
                        raise
                    await asyncio.sleep(0.25)
        return [
            PublishedStream(
                str(s.get("type", "")),
                str(s.get("codec", "")).lower(),
                str(s.get("feed_description", "")),
            )
            for s in data.get("streams", [])
            if s.get("active", True) and s.get("type") in ("audio", "video")
        ]

    async def rtp_forward(
        self, spec: RoomSpec, publisher_id: int, *, video_port: int, audio_port: int | None
    ) -> RtpForward:
        """Forward a publisher's first video (and audio) stream as plain RTP to loopback
        ports (``rtp_forward``); a publisher without audio gets a video forward only."""
        body: dict[str, Any] = {
            "request": "rtp_forward",
            "room": spec.room_id,
            "secret": spec.secret,
            "admin_key": self.admin_key,
            "publisher_id": publisher_id,
            "host": "127.0.0.1",
            "host_family": "ipv4",
            "video_port": video_port,
            "video_pt": FORWARD_VIDEO_PT,
        }
        if audio_port is not None:
            body |= {"audio_port": audio_port, "audio_pt": FORWARD_AUDIO_PT}
        return RtpForward.parse(publisher_id, await self.handle.request(body))

    async def stop_rtp_forward(self, spec: RoomSpec, publisher_id: int, stream_id: int) -> None:
        """Stop one forwarder (``stop_rtp_forward``)."""
        await self.handle.request(
            {
                "request": "stop_rtp_forward",
                "room": spec.room_id,
                "secret": spec.secret,
                "admin_key": self.admin_key,
                "publisher_id": publisher_id,
                "stream_id": stream_id,
            }
        )

    async def allow(self, spec: RoomSpec, tokens: list[str]) -> None:
        """Add ``tokens`` to the room's allowed list."""
        await self._allowed(spec, "add", tokens)

    async def disallow(self, spec: RoomSpec, tokens: list[str]) -> None:
        """Remove ``tokens`` from the room's allowed list."""
        await self._allowed(spec, "remove", tokens)

    async def _allowed(self, spec: RoomSpec, action: str, tokens: list[str]) -> None:
        await self.handle.request(
            {
                "request": "allowed",
                "room": spec.room_id,
                "secret": spec.secret,
                "action": action,
                "allowed": tokens,
            }
        )


@dataclass
class StreamingAdmin:
    """Control-plane requests to the Streaming plugin through one handle."""

    handle: JanusHandle
    """Handle attached to ``janus.plugin.streaming`` with Concilium's service token."""
    admin_key: str = field(repr=False)
    """Streaming ``admin_key`` from the generated configuration."""

    def __post_init__(self) -> None:
        if self.handle.plugin != STREAMING:
            raise ValueError(f"handle is attached to {self.handle.plugin}, not {STREAMING}")

    async def create(self, spec: MountpointSpec) -> dict[str, Any]:
        """Create an RTP mountpoint bound to loopback; returns Janus's description of it."""
        media: list[dict[str, Any]] = [
            {
                "type": "video",
                "mid": "v",
                "port": spec.video_port,
                "pt": spec.video_pt,
                "codec": spec.video_codec,
                "fmtp": spec.video_fmtp,
                "iface": "127.0.0.1",
            }
        ]
        if spec.audio_port is not None:
            media.append(
                {
                    "type": "audio",
                    "mid": "a",
                    "port": spec.audio_port,
                    "pt": spec.audio_pt,
                    "codec": "opus",
                    "iface": "127.0.0.1",
                }
            )
        data = await self.handle.request(
            {
                "request": "create",
                "admin_key": self.admin_key,
                "type": "rtp",
                "id": spec.mountpoint_id,
                "description": spec.description or f"camera {spec.mountpoint_id}",
                "secret": spec.secret,
                "is_private": True,
                "permanent": False,
                "media": media,
            }
        )
        stream: dict[str, Any] = data.get("stream", {})
        return stream

    async def destroy(self, spec: MountpointSpec) -> None:
        """Destroy the mountpoint and free its ports."""
        await self.handle.request(
            {
                "request": "destroy",
                "id": spec.mountpoint_id,
                "secret": spec.secret,
                "permanent": False,
            }
        )

    async def info(self, spec: MountpointSpec) -> dict[str, Any]:
        """Janus's view of one mountpoint; ``media[].age_ms`` is the time since the last
        RTP packet (or since creation), which tells whether the camera is feeding it."""
        data = await self.handle.request(
            {"request": "info", "id": spec.mountpoint_id, "secret": spec.secret}
        )
        info: dict[str, Any] = data.get("info", {})
        return info

    async def list_mountpoints(self) -> list[dict[str, Any]]:
        """Every mountpoint, private ones included."""
        data = await self.handle.request({"request": "list", "admin_key": self.admin_key})
        mountpoints: list[dict[str, Any]] = data.get("list", [])
        return mountpoints


@dataclass
class RoomRegistry:
    """Rooms and mountpoints Concilium knows about, with the tokens allowed in each room.

    In memory for now; the live sessions table will back it once the platform layer exists.
    """

    rooms: dict[int, RoomSpec] = field(default_factory=dict)
    """Rooms by id."""
    mountpoints: dict[int, MountpointSpec] = field(default_factory=dict)
    """Mountpoints by id."""
    allowed: dict[int, set[str]] = field(default_factory=dict)
    """Tokens allowed in each room."""

    def add_room(self, spec: RoomSpec) -> None:
        """Record a room; refuses a second room with the same id."""
        if spec.room_id in self.rooms:
            raise ValueError(f"room {spec.room_id} is already registered")
        self.rooms[spec.room_id] = spec
        self.allowed.setdefault(spec.room_id, set())

    def remove_room(self, room_id: int) -> RoomSpec:
        """Forget a room and its tokens."""
        self.allowed.pop(room_id, None)
        return self.rooms.pop(room_id)

    def add_mountpoint(self, spec: MountpointSpec) -> None:
        """Record a mountpoint; refuses a duplicate id or a port already used by another."""
        if spec.mountpoint_id in self.mountpoints:
            raise ValueError(f"mountpoint {spec.mountpoint_id} is already registered")
        used = {p for m in self.mountpoints.values() for p in (m.video_port, m.audio_port)}
        if spec.video_port in used or (spec.audio_port is not None and spec.audio_port in used):
            raise ValueError(f"an RTP port of mountpoint {spec.mountpoint_id} is already in use")
        self.mountpoints[spec.mountpoint_id] = spec

    def remove_mountpoint(self, mountpoint_id: int) -> MountpointSpec:
        """Forget a mountpoint."""
        return self.mountpoints.pop(mountpoint_id)


async def restore_rooms(
    registry: RoomRegistry,
    videoroom: VideoRoomAdmin,
    streaming: StreamingAdmin | None = None,
) -> list[int]:
    """Create on Janus every registered room and mountpoint it lacks; return the room ids made.

    Called after a Janus restart (rooms are not permanent) and safe to call at any time: a
    room Janus already has is left alone.
    """
    created: list[int] = []
    for room_id, spec in sorted(registry.rooms.items()):
        if await videoroom.exists(room_id):
            continue
        await videoroom.create(spec, allowed=sorted(registry.allowed.get(room_id, set())))
        created.append(room_id)
    if streaming is not None and registry.mountpoints:
        present = {int(m["id"]) for m in await streaming.list_mountpoints()}
        for mountpoint_id, mountpoint in sorted(registry.mountpoints.items()):
            if mountpoint_id not in present:
                await streaming.create(mountpoint)
    if created:
        log.info("re-created %d room(s) on Janus: %s", len(created), created)
    return created
