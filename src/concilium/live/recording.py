"""Recordings of live sessions: Janus ``.mjr`` files post-processed into playable files, the
program as the audience saw it, with chapters (program switches and questions), for the
library.

Janus writes each publisher's media as it arrived (RTP packets in ``.mjr`` files, one per
stream: ``videoroom-<room>-user-<feed>-<time>-video-<mindex>.mjr``, each stream with its own
``<time>``). When the session ends, ``janus-pp-rec`` (Debian ``janus-tools``) turns each into
its codec's native file without re-encoding, and ffmpeg (``-c copy``) muxes a publisher's
video and audio into the container the codec allows: MP4 (``+faststart``) for H.264, which
rooms prefer, and for VP9 and AV1; WebM for VP8, which MP4 cannot carry without re-encoding
(a publisher that offers no H.264 still gets its recording, and the library says it is
WebM).

The program recording is what the HLS packager encoded for its first rendition, written by
the same ffmpeg as fragmented MP4 parts (one per packager run: a program switch starts a
new run) under ``<session>/program-parts/``; at the end the parts are joined with the
concat demuxer (``-c copy``) into one MP4, listed in the library as "Program"
(:data:`concilium.live.recording_sources.PROGRAM_FEED`).

Who sent each recording, and what the library calls it, is
:mod:`concilium.live.recording_sources`; the chapters and the strokes placed on each
recording's timeline, pure functions of what the live service already keeps, are
:mod:`concilium.live.recording_timeline`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import av
from av.video.codeccontext import VideoCodecContext
from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.live import program
from concilium.live.recording_sources import PROGRAM_FEED, noted_publishers, parse_source
from concilium.live.recording_timeline import (
    DrawnStroke,
    chapters,
    placed_strokes,
    program_chapters,
    program_position,
    span_position,
)
from concilium.live.tables import LiveMessage, LiveRecording, LiveSession, LiveStroke
from concilium.platform import audit
from concilium.platform.errors import NotFound
from concilium.platform.i18n import _

__all__ = [
    "MjrFile",
    "ProcessedRecording",
    "ProgramPart",
    "group_sources",
    "note_part_start",
    "postprocess_program",
    "postprocess_room",
    "program_part",
    "program_parts_dir",
    "publish_recordings",
    "recordings_root",
]

log = logging.getLogger(__name__)

_MJR_NAME = re.compile(r"^videoroom-(\d+)-user-(\d+)-(\d+)-(audio|video|data)-(\d+)\.mjr$")
_MP4_VIDEO = frozenset({"h264", "vp9", "av1", "h265"})
_PP_REC_EXTENSION = {"vp8": "webm", "vp9": "mkv", "h264": "mkv", "av1": "mkv", "h265": "mkv"}
_PART_NAME = re.compile(r"^program-(\d{1,20})\.mp4$")
_SAME_SOURCE_US = 2_000_000
"""Streams of one publisher opened within this many microseconds are one recording."""


def recordings_root(data_dir: Path) -> Path:
    """Folder holding the post-processed recordings of every session."""
    return data_dir / "live" / "recordings"


def program_parts_dir(out_dir: Path) -> Path:
    """Where the HLS packager writes a session's program parts (``out_dir`` is the
    session's recordings folder)."""
    return out_dir / "program-parts"


def program_part(parts_dir: Path, started_us: int) -> Path:
    """The part a packager run started at ``started_us`` (wall clock, µs) writes."""
    return parts_dir / f"program-{started_us}.mp4"


def note_part_start(part: Path, at_us: int) -> None:
    """Keep beside ``part`` when its timeline starts on the wall clock (µs): when the
    packager began receiving the feed. Written whole or not at all; chapters are placed on
    the program recording by it."""
    note = part.with_suffix(".json")
    temporary = note.with_suffix(".json.tmp")
    with temporary.open("w") as handle:
        json.dump({"started_us": at_us}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(note)


@dataclass(frozen=True, order=True)
class ProgramPart:
    """One packager run's piece of the program recording."""

    started_us: int
    """When its timeline starts on the wall clock (or, failing the note, when the run
    started)."""
    path: Path

    @classmethod
    def parse(cls, path: Path) -> ProgramPart | None:
        """The part named ``path``, or None for any other file."""
        found = _PART_NAME.match(path.name)
        if found is None:
            return None
        started = int(found.group(1))
        try:
            noted = json.loads(path.with_suffix(".json").read_text()).get("started_us")
        except (OSError, ValueError, AttributeError):
            noted = None
        return cls(noted if isinstance(noted, int) else started, path)


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
        room, feed, time_us, kind, _index = found.groups()
        return cls(path, int(room), int(feed), int(time_us), kind)


def group_sources(paths: Iterable[Path]) -> dict[tuple[int, int], list[MjrFile]]:
    """Recordings by source: (feed, opening time) -> its audio and video files.

    Janus stamps each stream's file with the time that stream's recorder opened, so the
    audio and the video of one publishing differ by a few milliseconds: streams of a feed
    opened within two seconds of each other, one of each kind, are one recording; a
    publisher that publishes again starts another.
    """
    parsed = [MjrFile.parse(path) for path in paths]
    streams = sorted(
        (f for f in parsed if f is not None and f.kind != "data"),
        key=lambda f: (f.feed, f.time_us, f.kind),
    )
    groups: dict[tuple[int, int], list[MjrFile]] = {}
    current: list[MjrFile] = []
    for item in streams:
        first = current[0] if current else None
        if (
            first is None
            or item.feed != first.feed
            or item.time_us - first.time_us > _SAME_SOURCE_US
            or any(f.kind == item.kind for f in current)
        ):
            current = groups.setdefault((item.feed, item.time_us), [])
        current.append(item)
    return groups


@dataclass(frozen=True)
class ProcessedRecording:
    """A source (or the program) turned into one playable file."""

    feed: int
    """Janus feed id, or :data:`PROGRAM_FEED`."""
    path: Path
    media_type: str
    video_codec: str
    started_at: datetime
    duration: float
    parts: tuple[tuple[datetime, float], ...] = ()
    """For the program: each part's wall-clock start and length, in order (the parts are
    joined end to end, so the wall clock jumps at each join)."""
    source: str = ""
    """Who sent the feed and what (:func:`concilium.live.recording_sources.stored_source`,
    from :func:`concilium.live.recording_sources.note_publishers`), empty if unknown."""


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
    out, _err = await process.communicate()
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


def _part_duration(path: Path) -> float:
    """Seconds of video in a program part, read from its packets: a part whose packager was
    killed has no index to say it, yet every fragment on disk plays."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            return 0.0
        stream = container.streams.video[0]
        first: float | None = None
        end = 0.0
        for packet in container.demux(stream):
            if packet.pts is None or packet.time_base is None:
                continue
            at = float(packet.pts * packet.time_base)
            first = at if first is None else min(first, at)
            end = max(end, at + float((packet.duration or 0) * packet.time_base))
        return max(0.0, end - first) if first is not None else 0.0


def _full_picture_start(path: Path) -> float:
    """Seconds into a source's video file where its full picture starts: its first
    keyframe at the largest size it holds (0 when the file starts full size).

    A camera sent in simulcast layers is recorded at its best layer, but Janus records
    the lower layer it receives first until the best layer's first keyframe arrives: kept
    as it is, the file would start, and its container (which takes the first picture's
    size) say it is, a quarter of the size the person sent. Only keyframes are decoded.
    """
    sizes: list[tuple[float, int]] = []
    with av.open(str(path)) as container:
        if not container.streams.video:
            return 0.0
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if not packet.is_keyframe or packet.pts is None or packet.time_base is None:
                continue
            decoder = cast(
                "VideoCodecContext", av.CodecContext.create(stream.codec_context.name, "r")
            )
            decoder.extradata = stream.codec_context.extradata
            try:
                frames = [*decoder.decode(packet), *decoder.decode(None)]
            except av.error.FFmpegError:
                continue
            for frame in frames[:1]:
                sizes.append((float(packet.pts * packet.time_base), frame.width * frame.height))
    if not sizes:
        return 0.0
    largest = max(area for _at, area in sizes)
    first_at = sizes[0][0]
    return next(at for at, area in sizes if area == largest) - first_at


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


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
        # Both streams lose what came before the full picture, so they stay in step.
        skip = await asyncio.to_thread(_full_picture_start, video_file)
        seek = ["-ss", f"{skip:.6f}"] if skip > 0 else []
        inputs = [*seek, "-i", str(video_file)]
        audio = next((f for f in files if f.kind == "audio"), None)
        if audio is not None:
            audio_file = work / "audio.opus"
            try:
                await _run(pp_rec, "--disable-colors", str(audio.path), str(audio_file))
                inputs += [*seek, "-i", str(audio_file)]
            except RuntimeError as exc:  # a silent or non-Opus track: keep the picture
                log.warning("recording of feed %s: audio not processed: %s", video.feed, exc)
        mp4 = codec in _MP4_VIDEO
        if not mp4:
            # The publisher offered no H.264: its picture is kept as sent, in WebM.
            log.info("recording of feed %s is %s: kept in WebM, not re-encoded", video.feed, codec)
        target = out_dir / f"{stem}.{'mp4' if mp4 else 'webm'}"
        maps = ["-map", "0:v:0"] + (["-map", "1:a:0"] if inputs.count("-i") > 1 else [])
        flags = ["-movflags", "+faststart"] if mp4 else []
        await _run(
            ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
            *inputs, *maps, "-c", "copy", *flags, str(target),
        )  # fmt: skip
        await asyncio.to_thread(_fsync, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    first_us = int(header.get("u") or header.get("s") or video.time_us) + round(skip * 1e6)
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
    names = noted_publishers(rec_dir)
    for (feed, _opened), files in group_sources(rec_dir.glob("*.mjr")).items():
        try:
            processed = await postprocess_source(files, out_dir, pp_rec=pp_rec, ffmpeg=ffmpeg)
        except (RuntimeError, OSError, av.error.FFmpegError) as exc:
            log.warning("recording of feed %s not processed: %s", feed, exc)
            continue
        if processed is not None:
            noted = names.get(feed)
            source = noted.stored if noted is not None else ""
            done.append(dataclasses.replace(processed, source=source))
    try:
        program = await postprocess_program(out_dir, ffmpeg=ffmpeg)
    except (RuntimeError, OSError, av.error.FFmpegError) as exc:
        log.warning("program recording not processed: %s", exc)
        program = None
    if program is not None:
        done.append(program)
    return done


async def postprocess_program(out_dir: Path, *, ffmpeg: str) -> ProcessedRecording | None:
    """The program parts under ``out_dir`` joined into one MP4 without re-encoding (concat
    demuxer, ``-c copy``); None when there is none.

    Every part is the same fixed-size H.264 + AAC rendition (see
    :attr:`concilium.live.hls.Rendition.width`), so they join as they are. Parts that hold
    no video (a packager stopped before its first frame) are left out. Once the joined
    file is on disk, the parts are removed.
    """
    parts_dir = program_parts_dir(out_dir)
    if not parts_dir.is_dir():
        return None
    found = sorted(p for p in map(ProgramPart.parse, parts_dir.glob("program-*.mp4")) if p)
    usable: list[tuple[ProgramPart, float]] = []
    for part in found:
        try:
            duration = await asyncio.to_thread(_part_duration, part.path)
        except av.error.FFmpegError as exc:
            log.warning("program part %s left out: %s", part.path.name, exc)
            continue
        if duration > 0:
            usable.append((part, duration))
    if not usable:
        return None
    first = usable[0][0].started_us
    target = out_dir / f"program-{first}.mp4"
    listing = parts_dir / "parts.txt"
    listing.write_text(
        "".join("file '{}'\n".format(str(p.path).replace("'", "'\\''")) for p, _length in usable)
    )
    await _run(
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "concat", "-safe", "0", "-i", str(listing),
        "-map", "0:v:0", "-map", "0:a:0?", "-c", "copy", "-movflags", "+faststart", str(target),
    )  # fmt: skip
    await asyncio.to_thread(_fsync, target)
    shutil.rmtree(parts_dir, ignore_errors=True)
    return ProcessedRecording(
        feed=PROGRAM_FEED,
        path=target,
        media_type="video/mp4",
        video_codec="h264",
        started_at=datetime.fromtimestamp(first / 1_000_000, UTC),
        duration=await asyncio.to_thread(_duration, target),
        parts=tuple((datetime.fromtimestamp(p.started_us / 1_000_000, UTC), d) for p, d in usable),
    )


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


def _drawn_strokes(db: Session, live: LiveSession) -> list[DrawnStroke]:
    rows = db.execute(
        select(LiveStroke.created_at, LiveStroke.points, LiveStroke.color, LiveStroke.width)
        .where(LiveStroke.session_id == live.id)
        .order_by(LiveStroke.id)
    ).all()
    return [DrawnStroke(when, list(points), color, width) for when, points, color, width in rows]


def publish_recordings(
    db: Session,
    live: LiveSession,
    processed: Iterable[ProcessedRecording],
    data_dir: Path,
    now: datetime,
) -> list[LiveRecording]:
    """Keep a library row per processed recording, with its chapters; audited."""
    switches = program.switches(db, live)
    asked = _shown_questions(db, live)
    drawn = _drawn_strokes(db, live)
    rows: list[LiveRecording] = []
    processed = list(processed)
    names = {item.feed: parse_source(item.source)[0] for item in processed if item.source}
    for item in processed:
        position: Callable[[datetime], float | None]
        if item.parts:
            found = program_chapters(item.parts, switches, asked, names)
            position = functools.partial(program_position, item.parts)
        else:
            found = chapters(item.started_at, item.duration, switches, asked, names)
            position = span_position(item.started_at, item.duration)
        row = LiveRecording(
            session_id=live.id,
            feed=item.feed,
            path=str(item.path.relative_to(data_dir)),
            media_type=item.media_type,
            video_codec=item.video_codec,
            started_at=item.started_at,
            duration=item.duration,
            chapters=[c.as_dict() for c in found],
            telestration=placed_strokes(position, drawn),
            source=item.source[:200],
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
        raise NotFound(_("No such recording."))
    return found
