"""Recordings of live sessions: Janus ``.mjr`` files post-processed into playable files, with
chapters (program switches and questions), for the library.

Janus writes each publisher's media as it arrived (RTP packets in ``.mjr`` files, one per
stream: ``videoroom-<room>-user-<feed>-<time>-video-<mindex>.mjr``). When the session ends,
``janus-pp-rec`` (Debian ``janus-tools``) turns each into its codec's native file without
re-encoding, and ffmpeg (``-c copy``) muxes a publisher's video and audio into the container
the codec allows: MP4 for H.264, VP9 and AV1; WebM for VP8, which MP4 cannot carry without
re-encoding. The chapter list is a pure function of what the live service already keeps:
``live.program`` audit entries and the session's approved or answered questions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.live.tables import LiveMessage, LiveRecording, LiveSession
from concilium.platform import audit
from concilium.platform.errors import NotFound
from concilium.platform.tables import AuditEvent

__all__ = [
    "Chapter",
    "MjrFile",
    "ProcessedRecording",
    "chapters",
    "group_sources",
    "postprocess_room",
    "publish_recordings",
    "recordings_root",
]

log = logging.getLogger(__name__)

_MJR_NAME = re.compile(r"^videoroom-(\d+)-user-(\d+)-(\d+)-(audio|video|data)-(\d+)\.mjr$")
_MP4_VIDEO = frozenset({"h264", "vp9", "av1", "h265"})
_PP_REC_EXTENSION = {"vp8": "webm", "vp9": "mkv", "h264": "mkv", "av1": "mkv", "h265": "mkv"}


def recordings_root(data_dir: Path) -> Path:
    """Folder holding the post-processed recordings of every session."""
    return data_dir / "live" / "recordings"


@dataclass(frozen=True)
class MjrFile:
    """One ``.mjr`` file named as the VideoRoom plugin names them."""

    path: Path
    room: int
    feed: int
    time_us: int
    """When the recording was opened, in microseconds since the epoch."""
    kind: str
    """``audio``, ``video`` or ``data``."""

    @classmethod
    def parse(cls, path: Path) -> MjrFile | None:
        """The file's parts, or None when it is not a VideoRoom recording."""
        found = _MJR_NAME.match(path.name)
        if found is None:
            return None
        room, feed, time_us, kind, _ = found.groups()
        return cls(path, int(room), int(feed), int(time_us), kind)


def group_sources(paths: Iterable[Path]) -> dict[tuple[int, int], list[MjrFile]]:
    """Recordings by source: (feed, opening time) -> its audio and video files."""
    groups: dict[tuple[int, int], list[MjrFile]] = {}
    for path in sorted(paths):
        parsed = MjrFile.parse(path)
        if parsed is not None and parsed.kind != "data":
            groups.setdefault((parsed.feed, parsed.time_us), []).append(parsed)
    return groups


@dataclass(frozen=True)
class ProcessedRecording:
    """A source turned into one playable file."""

    feed: int
    path: Path
    media_type: str
    video_codec: str
    started_at: datetime
    duration: float


@dataclass(frozen=True)
class Chapter:
    """A point of a recording worth jumping to."""

    at: float
    """Seconds from the start of the recording."""
    kind: str
    """``program`` (the director switched the picture) or ``question``."""
    label: str

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "kind": self.kind, "label": self.label}


def chapters(
    started_at: datetime,
    duration: float,
    program_switches: Iterable[tuple[datetime, int | None]],
    questions: Iterable[tuple[datetime, str]],
) -> list[Chapter]:
    """Chapters within a recording, in time order: each program switch and each question
    (approved or answered ones only: what the audience saw)."""
    found: list[Chapter] = []
    for when, feed in program_switches:
        label = f"Program: feed {feed}" if feed is not None else "Program cleared"
        found.append(Chapter((when - started_at).total_seconds(), "program", label))
    for when, body in questions:
        text = " ".join(body.split())
        found.append(Chapter((when - started_at).total_seconds(), "question", text[:120]))
    inside = [c for c in found if 0 <= c.at <= duration]
    return sorted((Chapter(round(c.at, 2), c.kind, c.label) for c in inside), key=lambda c: c.at)


async def _run(*command: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, error = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(
            f"{Path(command[0]).name} failed: {error.decode(errors='replace')[-300:].strip()}"
        )


async def mjr_header(pp_rec: str, path: Path) -> dict[str, Any]:
    """The JSON header of an ``.mjr`` file (``janus-pp-rec --json --header``)."""
    process = await asyncio.create_subprocess_exec(
        pp_rec, "--json", "--header", "--disable-colors", str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await process.communicate()
    text = out.decode(errors="replace")
    start = text.find("{")
    header: dict[str, Any] = json.loads(text[start:]) if start >= 0 else {}
    return header


def _duration(path: Path) -> float:
    with av.open(str(path)) as container:
        if container.duration is not None:
            return float(container.duration) / 1_000_000
        stream = container.streams.video[0]
        return float((stream.duration or 0) * (stream.time_base or 0))


async def postprocess_source(
    files: list[MjrFile], out_dir: Path, *, pp_rec: str, ffmpeg: str
) -> ProcessedRecording | None:
    """One source's ``.mjr`` files -> one playable file; None when it holds no video."""
    video = next((f for f in files if f.kind == "video"), None)
    if video is None:
        return None
    header = await mjr_header(pp_rec, video.path)
    codec = str(header.get("c", "vp8")).lower()
    if codec not in _PP_REC_EXTENSION:
        log.warning("recording of feed %s: unsupported video codec %s", video.feed, codec)
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"feed-{video.feed}-{video.time_us}"
    work = out_dir / f".{stem}"
    work.mkdir(exist_ok=True)
    try:
        video_file = work / f"video.{_PP_REC_EXTENSION[codec]}"
        await _run(pp_rec, "--disable-colors", str(video.path), str(video_file))
        inputs = ["-i", str(video_file)]
        audio = next((f for f in files if f.kind == "audio"), None)
        if audio is not None:
            audio_file = work / "audio.opus"
            try:
                await _run(pp_rec, "--disable-colors", str(audio.path), str(audio_file))
                inputs += ["-i", str(audio_file)]
            except RuntimeError as exc:  # a silent or non-Opus track: keep the picture
                log.warning("recording of feed %s: audio not processed: %s", video.feed, exc)
        mp4 = codec in _MP4_VIDEO
        target = out_dir / f"{stem}.{'mp4' if mp4 else 'webm'}"
        maps = ["-map", "0:v:0"] + (["-map", "1:a:0"] if len(inputs) > 2 else [])
        flags = ["-movflags", "+faststart"] if mp4 else []
        await _run(
            ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
            *inputs, *maps, "-c", "copy", *flags, str(target),
        )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    first_us = int(header.get("u") or header.get("s") or video.time_us)
    return ProcessedRecording(
        feed=video.feed,
        path=target,
        media_type="video/mp4" if mp4 else "video/webm",
        video_codec=codec,
        started_at=datetime.fromtimestamp(first_us / 1_000_000, UTC),
        duration=await asyncio.to_thread(_duration, target),
    )


async def postprocess_room(
    rec_dir: Path, out_dir: Path, *, pp_rec: str | None = None, ffmpeg: str | None = None
) -> list[ProcessedRecording]:
    """Every source recorded in ``rec_dir`` -> playable files in ``out_dir``.

    A source that fails is logged and skipped: the others are still published.
    """
    pp_rec = pp_rec or shutil.which("janus-pp-rec")
    ffmpeg = ffmpeg or shutil.which("ffmpeg")
    if pp_rec is None or ffmpeg is None:
        raise FileNotFoundError("janus-pp-rec (janus-tools) and ffmpeg are needed")
    done: list[ProcessedRecording] = []
    for (feed, _), files in group_sources(rec_dir.glob("*.mjr")).items():
        try:
            processed = await postprocess_source(files, out_dir, pp_rec=pp_rec, ffmpeg=ffmpeg)
        except (RuntimeError, OSError, av.error.FFmpegError) as exc:
            log.warning("recording of feed %s not processed: %s", feed, exc)
            continue
        if processed is not None:
            done.append(processed)
    return done


def _program_switches(db: Session, live: LiveSession) -> list[tuple[datetime, int | None]]:
    rows = db.execute(
        select(AuditEvent.at, AuditEvent.detail)
        .where(
            AuditEvent.action == "live.program",
            AuditEvent.outcome == "success",
            AuditEvent.object_kind == "live_session",
            AuditEvent.object_id == str(live.id),
        )
        .order_by(AuditEvent.seq)
    ).all()
    found: list[tuple[datetime, int | None]] = []
    for at, detail in rows:
        try:
            feed = json.loads(detail or "{}").get("feed")
        except ValueError:
            feed = None
        found.append((at, int(feed) if isinstance(feed, int) else None))
    return found


def _shown_questions(db: Session, live: LiveSession) -> list[tuple[datetime, str]]:
    rows = db.execute(
        select(LiveMessage.created_at, LiveMessage.body)
        .where(
            LiveMessage.session_id == live.id,
            LiveMessage.kind == "question",
            LiveMessage.status.in_(("approved", "answered")),
        )
        .order_by(LiveMessage.id)
    ).all()
    return [(at, body) for at, body in rows]


def publish_recordings(
    db: Session,
    live: LiveSession,
    processed: Iterable[ProcessedRecording],
    data_dir: Path,
    now: datetime,
) -> list[LiveRecording]:
    """Keep a library row per processed recording, with its chapters; audited."""
    switches = _program_switches(db, live)
    asked = _shown_questions(db, live)
    rows: list[LiveRecording] = []
    for item in processed:
        row = LiveRecording(
            session_id=live.id,
            feed=item.feed,
            path=str(item.path.relative_to(data_dir)),
            media_type=item.media_type,
            video_codec=item.video_codec,
            started_at=item.started_at,
            duration=item.duration,
            chapters=[
                c.as_dict() for c in chapters(item.started_at, item.duration, switches, asked)
            ],
            created_at=now,
        )
        db.add(row)
        rows.append(row)
    db.flush()
    if rows:
        audit.record(
            db,
            audit.Actor(None, "concilium"),
            "live.recording.publish",
            "success",
            object_kind="live_session",
            object_id=live.id,
            patient_id=live.patient_id,
            site_id=live.site_id,
            detail={"recordings": [r.id for r in rows]},
        )
    return rows


def session_recordings(db: Session, session_ids: Iterable[int]) -> list[LiveRecording]:
    """Recordings of these sessions, newest first."""
    ids = list(session_ids)
    if not ids:
        return []
    return list(
        db.execute(
            select(LiveRecording)
            .where(LiveRecording.session_id.in_(ids))
            .order_by(LiveRecording.started_at.desc(), LiveRecording.id)
        ).scalars()
    )


def get_recording(db: Session, recording_id: int) -> LiveRecording:
    found = db.get(LiveRecording, recording_id)
    if found is None:
        raise NotFound(f"recording {recording_id} not found")
    return found
