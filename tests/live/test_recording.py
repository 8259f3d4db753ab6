"""Recording: a Chromium publishes into a recorded room of a real Janus, the session ends, its
``.mjr`` files are post-processed into a playable file with chapters, and the library shows
it to those who may see the session only."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest

from concilium.live import recording, service
from concilium.live.media import LiveMedia
from concilium.live.recording import Chapter, MjrFile, chapters, group_sources
from concilium.live.tables import LiveRecording
from concilium.live.web import publish_session_recordings
from concilium.platform import audit
from concilium.platform.db import transaction

from .sessions import start_broadcast
from .webrtc_harness import chromium, open_harness, publish


def signed_in(app, world, user):  # type: ignore[no-untyped-def]
    browser = world.client(app)
    world.sign_in(browser, user)
    return browser


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
            audit.record(
                db,
                actor,
                "live.program",
                "success",
                object_kind="live_session",
                object_id=session_id,
                detail={"feed": feed},
            )
            live = service.get_session(db, session_id)
            asked = service.submit_question(
                db, coord.id, live, "Which  annuloplasty ring?", datetime.now(UTC)
            )
            service.moderate(db, actor, live, asked.id, "approve", rt.now())

    room_id = await service.ensure_room(live_media, live)
    camera = await live_media.issue("or-camera", room_id)

    async with chromium(tmp_path / "profile") as context:
        page = await open_harness(context, harness_url)
        feed = await publish(
            page,
            apiUrl=live_media.config.api_url,
            token=camera.token,
            room=room_id,
            display="OR",
            width=320,
            height=240,
        )
        await asyncio.sleep(1.5)
        await asyncio.to_thread(switch_and_ask, feed)
        await asyncio.sleep(2)
        await page.evaluate("window.leave()")
    await live_media.destroy_room(room_id)
    rec_dir = live_media.videoroom.rec_dir(room_id)
    assert [f.name for f in rec_dir.glob("*-video-*.mjr")]

    ids = await publish_session_recordings(rt, session_id, rec_dir)

    assert len(ids) == 1
    await asyncio.to_thread(check_library, app, world, ids[0], feed)


def check_library(app, world, recording_id: int, feed: int) -> None:  # type: ignore[no-untyped-def]
    rt = world.runtime
    with rt.sessions() as db:
        row = db.get(LiveRecording, recording_id)
        assert row is not None
        path = rt.settings.data_dir / row.path
        made = (row.media_type, row.video_codec, row.feed, row.duration, list(row.chapters))
    media_type, codec, recorded_feed, duration, kept = made
    # VP8 (what Chromium sends) is kept as it came, in WebM; H.264 would go to MP4.
    assert (media_type, codec) == ("video/webm", "vp8") and path.suffix == ".webm"
    assert recorded_feed == feed and 2.0 <= duration <= 10.0
    assert [c["kind"] for c in kept] == ["program", "question"]
    assert kept[1]["label"] == "Which annuloplasty ring?"
    assert 0.5 <= kept[0]["at"] <= duration
    with av.open(str(path)) as container:
        frames = [f for _, f in zip(range(10), container.decode(video=0), strict=False)]
    assert len(frames) == 10 and (frames[0].width, frames[0].height) == (320, 240)

    # The library: the session's own site sees it and plays it; another site does not.
    colleague = world.user("metz-rec-doc", (world.metz, "specialist"), with_totp=True)
    stranger = world.user("briey-rec-doc", (world.briey, "referring_physician"))
    ids = [recording_id]
    browser = signed_in(app, world, colleague)
    listing = browser.get("/live/library")
    assert listing.status_code == 200 and f'href="/live/library/{ids[0]}"' in listing.text
    assert "Recorded valve repair" in listing.text
    item = browser.get(f"/live/library/{ids[0]}")
    assert item.status_code == 200 and "Which annuloplasty ring?" in item.text
    played = browser.get(f"/live/library/{ids[0]}/media", headers={"range": "bytes=0-"})
    assert played.status_code == 206 and played.headers["content-type"] == "video/webm"
    with av.open(io.BytesIO(browser.get(f"/live/library/{ids[0]}/media").content)) as container:
        assert next(container.decode(video=0)).width == 320

    outsider = signed_in(app, world, stranger)
    assert "Recorded valve repair" not in outsider.get("/live/library").text
    assert outsider.get(f"/live/library/{ids[0]}").status_code == 403
    assert outsider.get(f"/live/library/{ids[0]}/media").status_code == 403


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


def test_chapters_are_the_switches_and_shown_questions_inside_the_recording() -> None:
    start = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    found = chapters(
        start,
        600.0,
        [(start - timedelta(seconds=5), 1), (start + timedelta(seconds=90), 2)],
        [
            (start + timedelta(seconds=30.123), "Why   this size?"),
            (start + timedelta(hours=1), "x"),
        ],
    )
    assert found == [
        Chapter(30.12, "question", "Why this size?"),
        Chapter(90.0, "program", "Program: feed 2"),
    ]
    assert recording.recordings_root(Path("/d")) == Path("/d/live/recordings")
