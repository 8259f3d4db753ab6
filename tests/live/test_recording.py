"""Recording: a Chromium publishes into a recorded room of a real Janus, the session ends, its
``.mjr`` files are post-processed into a playable file with chapters, and the library shows
it to those who may see the session only."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import pytest

from concilium.live import (
    chat,
    joining,
    lifecycle,
    lookup,
    recording,
    recording_sources,
    telestration,
)
from concilium.live.hls import (
    HlsBroadcasts,
    HlsPipeline,
    HlsSettings,
    Rendition,
)
from concilium.live.media import LiveMedia
from concilium.live.program import record_switch
from concilium.live.recording import MjrFile, group_sources
from concilium.live.sessions import publish_session_recordings
from concilium.live.tables import LiveRecording, LiveSession
from concilium.live.udp_ports import free_rtp_ports
from concilium.platform import audit
from concilium.platform.db import transaction

from .sessions import start_broadcast
from .test_hls import init_name, media_segments, wait_for
from .webrtc_harness import chromium, open_harness, publish


def signed_in(app, world, user):  # type: ignore[no-untyped-def]
    browser = world.client(app)
    world.sign_in(browser, user)
    return browser


H264_CONSTRAINED_BASELINE = "packetization-mode=1;profile-level-id=42e01f"
"""What rooms ask publishers for (``RoomSpec.h264_profile``), in Chromium's fmtp order."""


@pytest.mark.anyio
@pytest.mark.browser
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # one browser run is enough
async def test_a_recorded_session_lands_in_the_library_for_its_audience_only(
    live_media: LiveMedia, harness_url: str, tmp_path: Path, app, world
) -> None:
    # The serving engine refuses database work on the event loop: it runs in threads here.
    rt = world.runtime

    coord = await asyncio.to_thread(world.user, "metz-rec-coord", (world.metz, "coordinator"))
    actor, live = await asyncio.to_thread(
        start_broadcast, world, coord, "Recorded valve repair", record=True
    )
    session_id = live.id

    def switch_and_ask(feed: int) -> None:
        with transaction(rt.sessions) as db:  # what the director's switch leaves behind
            live = lookup.get_session(db, session_id)
            record_switch(db, actor, live, feed, datetime.now(UTC))
            asked = chat.submit_question(
                db, coord.id, live, "Which  annuloplasty ring?", datetime.now(UTC)
            )
            chat.moderate(db, actor, live, asked.id, "approve", rt.now())
            # The coordinator circles something on the picture at the same moment.
            telestration.add_stroke(
                db, coord.id, live, points=[(0.2, 0.3), (0.4, 0.5)], color="#ff0000", width=4,
                source_id=None, now=datetime.now(UTC),
            )  # fmt: skip

    room_id = await joining.ensure_room(live_media, live)
    camera = await live_media.issue("or-camera", room_id)
    older = await live_media.issue("old-browser", room_id)
    api_url = live_media.config.api_url

    async with chromium(tmp_path / "profile") as context:
        page = await open_harness(context, harness_url)
        offered = await page.evaluate("window.videoCapabilities()")
        feed = await publish(
            page, apiUrl=api_url, token=camera.token, room=room_id, display="OR",
            width=320, height=240, audio=True,
        )  # fmt: skip
        sent = await page.evaluate("window.sentVideoCodec()")
        # A browser that offers VP8 only (no H.264 encoder) is still recorded.
        vp8_page = await open_harness(context, harness_url)
        vp8_feed = await publish(
            vp8_page, apiUrl=api_url, token=older.token, room=room_id, display="old",
            width=320, height=240, videoCodecs=["video/VP8"],
        )  # fmt: skip
        vp8_sent = await vp8_page.evaluate("window.sentVideoCodec()")
        await asyncio.sleep(1.5)
        await asyncio.to_thread(switch_and_ask, feed)
        await asyncio.sleep(2)
        for each in (page, vp8_page):
            await each.evaluate("window.leave()")
    await live_media.destroy_room(room_id)
    rec_dir = live_media.videoroom.rec_dir(room_id)
    assert [f.name for f in rec_dir.glob("*-video-*.mjr")]

    # Debian's Chromium encodes H.264 (OpenH264) and the room prefers it, Constrained
    # Baseline first; the VP8-only publisher gets VP8, the room's fallback.
    assert f"video/H264 level-asymmetry-allowed=1;{H264_CONSTRAINED_BASELINE}" in offered
    assert sent == f"H264 {H264_CONSTRAINED_BASELINE}"
    assert vp8_sent == "VP8"

    ids = await publish_session_recordings(
        rt.sessions, rt.settings.data_dir, rt.now, session_id, rec_dir
    )

    assert len(ids) == 2
    await asyncio.to_thread(check_library, app, world, ids, feed, vp8_feed)


def check_library(app, world, recording_ids: list[int], feed: int, vp8_feed: int) -> None:  # type: ignore[no-untyped-def]
    rt = world.runtime
    with rt.sessions() as db:
        rows = {row.feed: row for row in map(lambda i: db.get(LiveRecording, i), recording_ids)}
        made = {
            feed: (row.id, row.media_type, row.video_codec, row.duration, list(row.chapters),
                   rt.settings.data_dir / row.path)
            for feed, row in rows.items()
        }  # fmt: skip
        drawn = {feed: list(row.telestration) for feed, row in rows.items()}
    recording_id, media_type, codec, duration, kept, path = made[feed]
    # The stroke is kept with each recording that ran while it was drawn, at its moment.
    for strokes in drawn.values():
        (stroke,) = strokes
        assert stroke["points"] == [[0.2, 0.3], [0.4, 0.5]]
        assert (stroke["color"], stroke["width"]) == ("#ff0000", 4)
    assert abs(drawn[feed][0]["at"] - kept[1]["at"]) < 0.5
    # H.264 goes into MP4 as it was sent: ISO BMFF, moov first (+faststart), no re-encoding.
    assert (media_type, codec) == ("video/mp4", "h264") and path.suffix == ".mp4"
    head = path.read_bytes()[:64]
    assert head[4:8] == b"ftyp"
    assert path.read_bytes().find(b"moov") < path.read_bytes().find(b"mdat")
    assert 2.0 <= duration <= 10.0
    assert [c["kind"] for c in kept] == ["program", "question"]
    assert kept[1]["label"] == "Which annuloplasty ring?"
    assert 0.5 <= kept[0]["at"] <= duration
    with av.open(str(path)) as container:
        assert container.format.name.startswith("mov,mp4")
        assert [s.codec_context.name for s in container.streams] == ["h264", "opus"]
        frames = [f for _, f in zip(range(10), container.decode(video=0), strict=False)]
    with av.open(str(path)) as container:
        sound = [f for _, f in zip(range(20), container.decode(audio=0), strict=False)]
    assert len(frames) == 10 and (frames[0].width, frames[0].height) == (320, 240)
    assert len(sound) == 20 and sound[0].sample_rate == 48000

    # VP8 cannot go into MP4 without re-encoding: that recording is WebM, and says so.
    vp8_id, vp8_type, vp8_codec, _, _, vp8_path = made[vp8_feed]
    assert (vp8_type, vp8_codec, vp8_path.suffix) == ("video/webm", "vp8", ".webm")
    with av.open(str(vp8_path)) as container:
        assert next(container.decode(video=0)).width == 320

    # The library: the session's own site sees it and plays it; another site does not.
    colleague = world.user("metz-rec-doc", (world.metz, "specialist"), with_totp=True)
    stranger = world.user("briey-rec-doc", (world.briey, "referring_physician"))
    browser = signed_in(app, world, colleague)
    listing = browser.get("/live/library")
    assert listing.status_code == 200 and f'href="/live/library/{recording_id}"' in listing.text
    assert "Recorded valve repair" in listing.text
    assert f"Feed {feed}" in listing.text and "MP4 (H.264)" in listing.text
    item = browser.get(f"/live/library/{recording_id}")
    assert item.status_code == 200 and "Which annuloplasty ring?" in item.text
    played = browser.get(f"/live/library/{recording_id}/media", headers={"range": "bytes=0-"})
    assert played.status_code == 206 and played.headers["content-type"] == "video/mp4"
    media = browser.get(f"/live/library/{recording_id}/media").content
    with av.open(io.BytesIO(media)) as container:
        assert next(container.decode(video=0)).width == 320
    assert "WebM (VP8: MP4 would need re-encoding)" in browser.get(f"/live/library/{vp8_id}").text

    outsider = signed_in(app, world, stranger)
    assert "Recorded valve repair" not in outsider.get("/live/library").text
    assert outsider.get(f"/live/library/{recording_id}").status_code == 403
    assert outsider.get(f"/live/library/{recording_id}/media").status_code == 403


SOURCE_KINDS_SEEN = """async () => {
  const { sourceKind } = await import("/static/live/janus-room.js");
  const camera = await navigator.mediaDevices.getUserMedia({ video: true });
  const capture = await navigator.mediaDevices.getUserMedia({ video: true });
  capture.getVideoTracks()[0].contentHint = "motion";
  const screen = await navigator.mediaDevices.getDisplayMedia({ video: true });
  const kinds = [camera, capture, screen].map(sourceKind);
  for (const stream of [camera, capture, screen]) stream.getTracks().forEach((t) => t.stop());
  return kinds;
}"""
"""What ``janus-room.js`` says a camera, a capture device and a shared screen are."""


@pytest.mark.anyio
@pytest.mark.browser
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # one browser run is enough
async def test_a_conference_camera_is_recorded_at_the_size_sent_under_its_persons_name(
    live_media: LiveMedia, harness_url: str, tmp_path: Path, app, world
) -> None:
    rt = world.runtime

    def conference() -> tuple[Any, Any, Any, LiveSession]:
        anne = world.user("anne.martin", (world.metz, "coordinator"))
        paul = world.user("paul.girard", (world.metz, "coordinator"))
        luc = world.user("luc.bernard", (world.metz, "coordinator"))
        now = rt.now()
        with transaction(rt.sessions) as db:
            anne = db.merge(anne)
            anne.full_name = "Dr Anne Martin"
            paul = db.merge(paul)
            paul.full_name = "Dr Paul Girard"
            luc = db.merge(luc)
            luc.full_name = "Dr Luc Bernard"
            actor = audit.Actor(anne.id, anne.username)
            live = lifecycle.create_session(
                db, actor, kind="conference", title="Tumour board", site_id=world.metz.id,
                scheduled_at=now, now=now, record=True,
            )  # fmt: skip
            lifecycle.start(db, actor, live, now, teaching_consent=False)
        return anne, paul, luc, live

    anne, paul, luc, live = await asyncio.to_thread(conference)

    def put_on_program(feed: int) -> None:
        with transaction(rt.sessions) as db:
            actor = audit.Actor(anne.id, anne.username)
            record_switch(db, actor, lookup.get_session(db, live.id), feed, datetime.now(UTC))

    room_id = await joining.ensure_room(live_media, live)
    camera = await live_media.issue(str(anne.id), room_id)
    screen = await live_media.issue(str(luc.id), room_id)
    forger = await live_media.issue(str(paul.id), room_id)

    async with chromium(tmp_path / "profile") as context:
        page = await open_harness(context, harness_url)
        # A conference camera goes in simulcast layers (the stage.js of the live pages);
        # the server names the publisher after the account (the media proxy). The page
        # describes its streams as a camera by itself (janus-room.js's sourceKind).
        feed = await publish(
            page, apiUrl=live_media.config.api_url, token=camera.token, room=room_id,
            display=anne.full_name, width=640, height=480, simulcast=True, audio=True,
        )  # fmt: skip
        # What the live pages send is told apart by the stream itself: a shared screen, a
        # capture device (stage.js hints its picture as motion), else a camera.
        told = await page.evaluate(SOURCE_KINDS_SEEN)
        assert told == ["camera", "capture", "screen"]
        # A shared screen (the fake camera stands in for it) says so.
        screen_page = await open_harness(context, harness_url)
        screen_feed = await publish(
            screen_page, apiUrl=live_media.config.api_url, token=screen.token, room=room_id,
            display=luc.full_name, width=320, height=240, source="screen",
        )  # fmt: skip
        # A page describing its stream with words of its own, hoping to be shown as them.
        forged_page = await open_harness(context, harness_url)
        forged_feed = await publish(
            forged_page, apiUrl=live_media.config.api_url, token=forger.token, room=room_id,
            display=paul.full_name, width=320, height=240, source="Pr Chef de service",
        )  # fmt: skip
        await asyncio.sleep(2)
        await live_media.sweep()  # what the process does every few seconds
        await asyncio.to_thread(put_on_program, feed)
        await asyncio.sleep(3)
        await forged_page.evaluate("window.leave()")
        await screen_page.evaluate("window.leave()")
        await page.evaluate("window.leave()")
    await live_media.destroy_room(room_id)
    rec_dir = live_media.videoroom.rec_dir(room_id)

    recorded = await publish_session_recordings(
        rt.sessions, rt.settings.data_dir, rt.now, live.id, rec_dir
    )

    def sources() -> dict[int, tuple[int, str]]:
        with rt.sessions() as db:
            rows = [db.get(LiveRecording, r) for r in recorded]
            return {row.feed: (row.id, row.source) for row in rows if row is not None}

    by_feed = await asyncio.to_thread(sources)
    assert set(by_feed) == {feed, screen_feed, forged_feed}
    assert by_feed[screen_feed][1] == "screen:Dr Luc Bernard"
    recording_id = by_feed[feed][0]
    # The forged description is kept as what it can only be: a camera, under the account's name.
    forged_id, forged_source = by_feed[forged_feed]
    assert forged_source == "camera:Dr Paul Girard"

    def kept() -> tuple[int, str, list[Any], Path]:
        with rt.sessions() as db:
            row = db.get(LiveRecording, recording_id)
            assert row is not None
            return row.feed, row.source, list(row.chapters), rt.settings.data_dir / row.path

    kept_feed, source, marks, path = await asyncio.to_thread(kept)
    assert (kept_feed, source) == (feed, "camera:Dr Anne Martin")
    # The director's switch names the person put on program, not their feed's number.
    assert [m["label"] for m in marks] == ["Program: Dr Anne Martin"]
    probed = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height", "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert json.loads(probed.stdout)["streams"] == [{"width": 640, "height": 480}]
    with av.open(str(path)) as container:
        sizes = {(f.width, f.height) for f in container.decode(video=0)}
    assert sizes == {(640, 480)}

    def library() -> tuple[str, str, str, str]:
        browser = signed_in(app, world, anne)
        browser.headers["accept-language"] = "en"
        listing = browser.get("/live/library").text
        item = browser.get(f"/live/library/{recording_id}").text
        browser.headers["accept-language"] = "fr"
        french_item = browser.get(f"/live/library/{forged_id}").text
        return listing, item, browser.get("/live/library").text, french_item

    listing, item, french, french_forged = await asyncio.to_thread(library)
    for text in (listing, item):
        assert "Dr Anne Martin — camera" in text and f"Feed {feed}" not in text
    assert "Dr Luc Bernard — shared screen" in listing
    assert "Dr Anne Martin — caméra" in french and f"Flux {feed}" not in french
    assert "Dr Luc Bernard — écran partagé" in french
    assert "Dr Paul Girard — caméra" in french_forged and "Chef de service" not in french_forged
    assert "MP4 (H.264)" in listing


SMALL = HlsSettings(
    ladder=(Rendition("r240", 240, 400_000), Rendition("r120", 120, 150_000)),
    fps=15,
    preset="ultrafast",
)
"""A ladder cheap enough for the test machine; its first rung is what the program keeps."""


def picture_kinds(path: Path) -> list[str]:
    """For each decoded frame: ``bars`` (a 4:3 source pillarboxed in the 16:9 program) or
    ``full`` (a 16:9 source filling it); the fake camera paints a green background."""
    kinds = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            edge = frame.to_ndarray(format="rgb24")[:, :16, 1].mean()
            kinds.append("bars" if edge < 30 else "full")
    return kinds


@pytest.mark.anyio
@pytest.mark.browser
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # one browser run is enough
async def test_the_program_is_recorded_across_a_switch_and_listed_in_the_library(
    live_media: LiveMedia, harness_url: str, tmp_path: Path, app, world
) -> None:
    rt = world.runtime
    coord = await asyncio.to_thread(world.user, "metz-prog-coord", (world.metz, "coordinator"))
    actor, live = await asyncio.to_thread(
        start_broadcast, world, coord, "Program of the valve repair", record=True
    )
    session_id = live.id
    room_id = await joining.ensure_room(live_media, live)
    room = live_media.registry.rooms[room_id]
    broadcasts = HlsBroadcasts(rt.settings.data_dir, SMALL)
    out = broadcasts.root / str(session_id)
    api_url = live_media.config.api_url

    def switched(feed: int) -> None:  # what the director's switch leaves behind
        with transaction(rt.sessions) as db:
            live = lookup.get_session(db, session_id)
            record_switch(db, actor, live, feed, datetime.now(UTC))

    async def program(feed: int, segments: int) -> None:
        await asyncio.to_thread(switched, feed)
        await broadcasts.show(session_id, live_media.videoroom, room, feed)
        before = init_name(out, "r240") if media_segments(out, "r240") else None

        def written() -> bool:  # by this packager run: under a new init segment
            listed = media_segments(out, "r240")
            return len(listed) >= segments and init_name(out, "r240") != before

        await wait_for(written, timeout=40)

    async with chromium(tmp_path / "profile") as context:
        wide, square = (
            await open_harness(context, harness_url),
            await open_harness(context, harness_url),
        )
        feeds = []
        for page, size, name in ((square, (320, 240), "OR"), (wide, (320, 180), "endoscope")):
            token = (await live_media.issue(name, room_id)).token
            feeds.append(await publish(
                page, apiUrl=api_url, token=token, room=room_id, display=name,
                width=size[0], height=size[1], audio=True,
            ))  # fmt: skip
        try:
            await program(feeds[0], segments=3)
            await program(feeds[1], segments=3)
        finally:
            await broadcasts.stop(session_id)  # the session ends: its HLS stops
        for page in (square, wide):
            await page.evaluate("window.leave()")
    await live_media.destroy_room(room_id)
    parts = list((recording.recordings_root(rt.settings.data_dir) / str(session_id)).glob(
        "program-parts/program-*.mp4"))  # fmt: skip
    assert len(parts) == 2  # one part per packager run, so one per program switch

    rec_dir = live_media.videoroom.rec_dir(room_id)
    ids = await publish_session_recordings(
        rt.sessions, rt.settings.data_dir, rt.now, session_id, rec_dir
    )

    def program_row() -> tuple[int, Path, float, list[dict[str, object]], str]:
        with rt.sessions() as db:
            rows = [db.get(LiveRecording, i) for i in ids]
            (row,) = [r for r in rows if r is not None and r.feed == recording_sources.PROGRAM_FEED]
            return (
                row.id,
                rt.settings.data_dir / row.path,
                row.duration,
                row.chapters,
                row.media_type,
            )

    program_id, path, duration, kept, media_type = await asyncio.to_thread(program_row)
    assert len(ids) == 3  # the two cameras, each as Janus recorded it, and the program
    assert media_type == "video/mp4" and path.read_bytes()[4:8] == b"ftyp"
    assert not parts[0].parent.exists()  # the parts were joined into it
    with av.open(str(path)) as container:
        streams = [(s.type, s.codec_context.name) for s in container.streams]
        first = next(container.decode(video=0))
    assert streams == [("video", "h264"), ("audio", "aac")]
    assert (first.width, first.height) == (426, 240)

    # It spans the switch: the 4:3 camera between bars first, then the 16:9 one, full frame.
    kinds = await asyncio.to_thread(picture_kinds, path)
    changes = [kind for i, kind in enumerate(kinds) if i == 0 or kinds[i - 1] != kind]
    assert changes == ["bars", "full"], changes
    join = kinds.index("full") / SMALL.fps
    assert duration >= 4.0 and kinds.count("bars") >= 2 * SMALL.fps
    # The session's chapters: each switch, the second on the join where the picture changes.
    assert [(c["kind"], c["label"]) for c in kept] == [
        ("program", f"Program: feed {feeds[0]}"),
        ("program", f"Program: feed {feeds[1]}"),
    ]
    assert kept[0]["at"] == 0.0
    assert abs(float(kept[1]["at"]) - join) <= 1.0

    def library() -> None:
        viewer = signed_in(app, world, coord)
        listing = viewer.get("/live/library").text
        assert (
            f'href="/live/library/{program_id}"' in listing
            and 'data-label="Source">Program</td>' in listing
        )
        page = viewer.get(f"/live/library/{program_id}")
        assert page.status_code == 200 and "Program ·" in page.text
        played = viewer.get(f"/live/library/{program_id}/media", headers={"range": "bytes=0-"})
        assert played.status_code == 206 and played.headers["content-type"] == "video/mp4"

    await asyncio.to_thread(library)


@pytest.mark.anyio
async def test_a_program_part_cut_short_by_a_crash_still_joins_the_program(tmp_path: Path) -> None:
    out_dir = tmp_path / "recordings" / "5"
    parts_dir = recording.program_parts_dir(out_dir)
    port = free_rtp_ports(1)[0]
    pipeline = HlsPipeline(tmp_path / "hls", port, SMALL, record_dir=parts_dir)
    hls = tmp_path / "hls"
    await pipeline.start()
    # Janus's forward, played by ffmpeg: VP8 with a keyframe a second, no audio.
    sender = await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-f", "lavfi",
        "-i", "testsrc=size=320x240:rate=15", "-c:v", "libvpx", "-deadline", "realtime",
        "-cpu-used", "8", "-g", "15", "-b:v", "300k", "-f", "rtp",
        f"rtp://127.0.0.1:{port}?pkt_size=1200",
    )  # fmt: skip
    try:
        await wait_for(lambda: len(media_segments(hls, "r240")) >= 3, timeout=40)
        first_run = init_name(hls, "r240")
        crashed = pipeline.pid
        assert crashed is not None
        os.kill(crashed, signal.SIGKILL)  # no trailer: only what reached the disk remains
        await wait_for(lambda: pipeline.pid not in (None, crashed), timeout=20)

        def second_run() -> bool:
            try:
                return init_name(hls, "r240") != first_run and len(media_segments(hls, "r240")) >= 3
            except (OSError, KeyError):
                return False

        await wait_for(second_run, timeout=40)
    finally:
        await pipeline.stop()
        sender.terminate()
        await sender.wait()
    parts = sorted(parts_dir.glob("program-*.mp4"))
    assert len(parts) == 2

    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg is not None
    joined = await recording.postprocess_program(out_dir, ffmpeg=ffmpeg)

    assert joined is not None and joined.feed == recording_sources.PROGRAM_FEED
    assert len(joined.parts) == 2 and all(duration >= 2.0 for _, duration in joined.parts)
    assert abs(joined.duration - sum(d for _, d in joined.parts)) < 1.0
    with av.open(str(joined.path)) as container:
        assert [s.codec_context.name for s in container.streams] == ["h264", "aac"]
        frames = sum(1 for _ in container.decode(video=0))
    assert frames >= 0.9 * SMALL.fps * joined.duration
    assert not parts_dir.exists()


def test_mjr_files_are_grouped_by_source_and_foreign_files_ignored(tmp_path: Path) -> None:
    names = [
        "videoroom-10000001-user-42-1795000000000000-video-0.mjr",
        "videoroom-10000001-user-42-1795000000000000-audio-1.mjr",
        "videoroom-10000001-user-43-1795000005000000-video-0.mjr",
        "videoroom-10000001-user-43-1795000005000000-data-2.mjr",
        "notes.txt",
        "rec-1-video.mjr",
    ]
    groups = group_sources(tmp_path / n for n in names)
    assert sorted(groups) == [(42, 1795000000000000), (43, 1795000005000000)]
    assert sorted(f.kind for f in groups[(42, 1795000000000000)]) == ["audio", "video"]
    assert [f.kind for f in groups[(43, 1795000005000000)]] == ["video"]
    assert MjrFile.parse(tmp_path / "rec-1-video.mjr") is None


def test_a_publishers_streams_opened_a_moment_apart_are_one_recording(tmp_path: Path) -> None:
    # As Janus 1.1 names them: each stream's recorder stamps its own opening time.
    names = [
        "videoroom-5001-user-7-1795335352575676-audio-0.mjr",
        "videoroom-5001-user-7-1795335352575889-video-1.mjr",
        # The same publisher publishing again a minute later: another recording.
        "videoroom-5001-user-7-1795335412000000-video-1.mjr",
        "videoroom-5001-user-7-1795335412000100-audio-0.mjr",
    ]
    groups = group_sources(tmp_path / n for n in names)
    assert sorted(groups) == [(7, 1795335352575676), (7, 1795335412000000)]
    assert all(sorted(f.kind for f in files) == ["audio", "video"] for files in groups.values())


def test_recordings_are_kept_under_the_data_folder() -> None:
    assert recording.recordings_root(Path("/d")) == Path("/d/live/recordings")
