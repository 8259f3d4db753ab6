"""Two Chromium pages meet in a VideoRoom through the real Janus, using janus-room.js."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from concilium.live.media import LiveMedia
from concilium.live.rooms import RoomSpec

from .webrtc_harness import (
    chromium,
    open_harness,
    publish,
    subscribe,
)

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


async def test_subscriber_receives_moving_video_from_publisher(
    live_media: LiveMedia, harness_url: str, tmp_path: Path
) -> None:
    await live_media.create_room(RoomSpec(3001, description="OR 3", record=True))
    sessions_before = set(await live_media.admin.list_sessions())
    camera = await live_media.issue("or-3-camera", 3001)
    expert = await live_media.issue("dr.remote", 3001)
    api_url = live_media.config.api_url

    async with chromium(tmp_path / "chromium-profile") as context:
        publisher = await open_harness(context, harness_url)
        subscriber = await open_harness(context, harness_url)
        feed = await publish(
            publisher,
            apiUrl=api_url,
            token=camera.token,
            room=3001,
            display="OR 3",
            width=320,
            height=240,
        )
        assert isinstance(feed, int)
        await subscribe(subscriber, apiUrl=api_url, token=expert.token, room=3001, feed=feed)
        video = "document.querySelector('video')"
        await subscriber.wait_for_function(f"{video}.currentTime > 0.5", timeout=20_000)
        start = await subscriber.evaluate(f"{video}.currentTime")
        first = await subscriber.evaluate("window.grab()")
        await asyncio.sleep(0.6)
        later = await subscriber.evaluate(f"{video}.currentTime")
        second = await subscriber.evaluate("window.grab()")
        size = await subscriber.evaluate(f"[{video}.videoWidth, {video}.videoHeight]")
        during = set(await live_media.admin.list_sessions())
        for page in (subscriber, publisher):
            await page.evaluate("window.leave()")
        after = set(await live_media.admin.list_sessions())

    assert len(during - sessions_before) == 2
    assert after == sessions_before
    recordings = list((live_media.config.recordings_folder / "room-3001").glob("*-video-*.mjr"))
    assert recordings and all(r.stat().st_size > 1000 for r in recordings)

    assert later > start
    assert size == [320, 240]
    assert first.startswith("data:image/png;base64,")
    assert base64.b64decode(first.split(",", 1)[1]) != base64.b64decode(second.split(",", 1)[1])


async def test_a_sender_over_the_rooms_size_is_refused_and_the_room_carries_on(
    live_media: LiveMedia, harness_url: str, tmp_path: Path
) -> None:
    await live_media.create_room(RoomSpec(3003, description="MDT", publishers=1))
    first = await live_media.issue("dr.first", 3003)
    late = await live_media.issue("dr.late", 3003)
    watcher = await live_media.issue("dr.watcher", 3003)
    api_url = live_media.config.api_url
    small = {"apiUrl": api_url, "room": 3003, "width": 160, "height": 120}

    async with chromium(tmp_path / "chromium-profile") as context:
        publisher = await open_harness(context, harness_url)
        refused = await open_harness(context, harness_url)
        subscriber = await open_harness(context, harness_url)
        feed = await publish(publisher, token=first.token, display="First", **small)
        # Janus's own refusal reaches the page that asked, by its code and reason.
        with pytest.raises(
            Exception,
            match=r"Media server error 432: Maximum number of publishers \(1\) already reached",
        ):
            await publish(refused, token=late.token, display="Late", **small)
        # The room carries on for the others: the first camera is still received.
        await subscribe(subscriber, apiUrl=api_url, token=watcher.token, room=3003, feed=feed)
        await subscriber.wait_for_function(
            "document.querySelector('video').currentTime > 0.5", timeout=20_000
        )
        assert await live_media.videoroom.publishers(3003) == {feed: "First"}


async def test_subscriber_switches_between_simulcast_layers(
    live_media: LiveMedia, harness_url: str, tmp_path: Path
) -> None:
    # Janus switches layers at the next keyframe of the target layer; a short keyframe
    # period keeps the test quick whatever the publisher does on its own.
    await live_media.create_room(RoomSpec(3002, description="OR 4", fir_freq=2))
    camera = await live_media.issue("or-4-camera", 3002)
    expert = await live_media.issue("dr.remote", 3002)
    api_url = live_media.config.api_url
    video = "document.querySelector('video')"

    async with chromium(tmp_path / "chromium-profile") as context:
        publisher = await open_harness(context, harness_url)
        subscriber = await open_harness(context, harness_url)
        feed = await publish(
            publisher,
            apiUrl=api_url,
            token=camera.token,
            room=3002,
            width=640,
            height=480,
            simulcast=True,
        )
        await subscribe(subscriber, apiUrl=api_url, token=expert.token, room=3002, feed=feed)
        await subscriber.wait_for_function(f"{video}.videoWidth === 640", timeout=20_000)
        await subscriber.evaluate("window.selectSubstream(0)")
        await subscriber.wait_for_function(
            f"{video}.videoWidth > 0 && {video}.videoWidth < 640", timeout=20_000
        )
        low = await subscriber.evaluate(f"[{video}.videoWidth, {video}.videoHeight]")
        await subscriber.evaluate("window.selectSubstream(2)")
        await subscriber.wait_for_function(f"{video}.videoWidth === 640", timeout=20_000)
        with pytest.raises(Exception, match="substream must be 0, 1 or 2"):
            await subscriber.evaluate("window.selectSubstream(3)")

    assert low[0] in (160, 320) and low[0] * 3 == low[1] * 4
