"""IP cameras relayed into Streaming mountpoints of the real Janus without re-encoding.

The camera is an ``ffmpeg`` encoding a test pattern to H.264 (constrained baseline) and
sending it as MPEG-TS over RTP, as hospital IP encoders do; an unreachable camera is an RTSP
URL on a closed port.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from concilium.live import lifecycle, source_registry
from concilium.live.endpoints import networks_of
from concilium.live.feeders import RelayFeeder, SourceFeeds
from concilium.live.media import LiveMedia
from concilium.live.sources import (
    SourcePlan,
    SourceState,
    mountpoint_id,
    parse_sdp_video,
    redact_url,
    relay_command,
    retry_delay,
)
from concilium.platform import audit
from concilium.platform.db import transaction
from concilium.platform.tables import AuditEvent
from media_peers import ffmpeg_camera
from serving import free_port

# The SDP ffmpeg 5.1 writes for an H.264 camera relayed with -c copy (captured).
RELAY_SDP = """v=0
o=- 0 0 IN IP4 127.0.0.1
s=No Name
c=IN IP4 127.0.0.1
t=0 0
a=tool:libavformat LIBAVFORMAT_VERSION
m=video 25010 RTP/AVP 96
a=rtpmap:96 H264/90000
a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z0LACtoKEflwEQAAAwABAAADAB6PEiag,\
aM4PyA==; profile-level-id=42C00A
"""


def test_the_relay_copies_the_video_and_never_shows_camera_passwords(tmp_path: Path) -> None:
    command = relay_command(
        "ffmpeg", "rtsp://admin:s3cret@10.1.2.3/live", port=21000, sdp_file=tmp_path / "a.sdp"
    )
    assert command[command.index("-c:v") + 1] == "copy"
    assert not {"libx264", "libvpx", "libopenh264"} & set(command)
    assert command[command.index("-rtsp_transport") + 1] == "tcp"
    assert command[-1] == "rtp://127.0.0.1:21000?pkt_size=1200"
    assert redact_url("rtsp://admin:s3cret@10.1.2.3/live: Connection refused") == (
        "rtsp://***@10.1.2.3/live: Connection refused"
    )
    assert redact_url("srt://10.1.2.3:9000") == "srt://10.1.2.3:9000"


def test_the_relay_sdp_names_the_cameras_codec() -> None:
    video = parse_sdp_video(RELAY_SDP)
    assert video is not None
    assert (video.codec, video.payload_type) == ("h264", 96)
    assert video.fmtp.split(";")[0] == "packetization-mode=1"
    assert "profile-level-id=42C00A" in video.fmtp.split(";")
    assert parse_sdp_video("v=0\nm=audio 5000 RTP/AVP 111\na=rtpmap:111 opus/48000/2\n") is None
    # MPEG-2 video copied to RTP: a payload without rtpmap, so no codec a browser knows.
    mpeg2 = parse_sdp_video("v=0\nm=video 25072 RTP/AVP 96\n")
    assert mpeg2 is not None and mpeg2.codec == ""


def test_retries_wait_longer_each_time_up_to_half_a_minute() -> None:
    assert [retry_delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert retry_delay(20) == 30.0


@pytest.fixture(params=["rtp", "srt"])
def camera(request: pytest.FixtureRequest) -> Iterator[str]:
    """A simulated IP camera over RTP, then over SRT."""
    with ffmpeg_camera(request.param) as url:
        yield url


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


async def _until(check, seconds: float) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds * 10)):
        if check():
            return
        await asyncio.sleep(0.1)


@pytest.mark.anyio
async def test_a_camera_is_relayed_as_it_is_and_a_dead_one_does_not_stop_the_session(
    live_media: LiveMedia, camera: str
) -> None:
    dead = f"rtsp://admin:s3cret@127.0.0.1:{free_port()}/live"
    plans = [
        SourcePlan(41, "OR room camera", "ip_camera", url=camera),
        SourcePlan(42, "Ceiling camera", "ip_camera", url=dead),
    ]
    feeds = SourceFeeds()
    feeds.launch(live_media, 7, 10_000_007, plans)
    good, bad = feeds.statuses(7)[41], feeds.statuses(7)[42]
    try:
        await _until(lambda: good.state == SourceState.LIVE and bad.attempts >= 2, 15)
        relay = feeds.feeders[41]
        assert relay.process is not None
        pid = relay.process.pid
        argv = _cmdline(pid)
        spec = live_media.registry.mountpoints[mountpoint_id(41)]
        first = await live_media.streaming.info(spec)
        frames_before, live_detail = good.frames_sent, good.detail
        await asyncio.sleep(1.5)
        second = await live_media.streaming.info(spec)
        frames_after = good.frames_sent
        mountpoints = {int(m["id"]) for m in await live_media.streaming.list_mountpoints()}
    finally:
        await feeds.stop(7)

    # The camera's H.264 reaches Janus as it left the camera: no encoder in the relay, the
    # camera's own profile (constrained baseline, level 1.0 for 160x120) in the mountpoint.
    assert live_detail == "H264 relayed without re-encoding"
    assert good.state == SourceState.STOPPED and good.codec == "h264"
    assert argv[argv.index("-c:v") + 1] == "copy"
    assert not {"libx264", "libvpx", "libopenh264"} & set(argv)
    assert (spec.video_codec, spec.video_pt) == ("h264", 96)
    assert "profile-level-id=42C00A" in spec.video_fmtp.split(";")
    assert "packetization-mode=1" in spec.video_fmtp.split(";")
    video = [m for m in second.get("media", []) if m.get("type") == "video"]
    assert video and video[0].get("codec") == "h264" and video[0].get("pt") == 96, second
    assert video[0]["age_ms"] < 1000, second
    assert frames_after - frames_before >= 15, (frames_before, frames_after)
    assert first["media"][0]["age_ms"] < 1000, first
    print(f"{frames_after - frames_before} camera frames relayed in 1.5 s")

    # The dead camera: a clear state, retried with a growing delay, no password shown, no
    # mountpoint, while the other camera played on.
    assert bad.state == SourceState.STOPPED  # once the session ended
    assert bad.attempts >= 2
    assert mountpoint_id(41) in mountpoints and mountpoint_id(42) not in mountpoints
    # Ending the session ends the relay and removes its mountpoint.
    assert mountpoint_id(41) not in live_media.registry.mountpoints
    assert not Path(f"/proc/{pid}").exists()


@pytest.mark.anyio
async def test_a_codec_browsers_cannot_decode_is_the_one_case_re_encoded(
    live_media: LiveMedia,
) -> None:
    port = free_port(2)
    camera = subprocess.Popen(
        [
            *("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi"),
            *("-i", "testsrc=size=160x120:rate=15", "-c:v", "mpeg2video", "-g", "15"),
            *("-f", "rtp_mpegts", f"rtp://127.0.0.1:{port}"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    feeder = RelayFeeder(
        SourcePlan(44, "Old encoder", "ip_camera", url=f"rtp://127.0.0.1:{port}"), live_media
    )
    task = asyncio.create_task(feeder.run())
    try:
        await _until(lambda: feeder.status.state == SourceState.LIVE, 15)
        assert feeder.status.state == SourceState.LIVE, feeder.status
        assert feeder.process is not None
        argv = _cmdline(feeder.process.pid)
        spec = live_media.registry.mountpoints[mountpoint_id(44)]
        detail = feeder.status.detail
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        camera.terminate()
        camera.wait(5)
    assert detail == "re-encoded to VP8: the camera's codec does not play in browsers"
    assert argv[argv.index("-c:v") + 1] == "libvpx"
    assert (spec.video_codec, feeder.status.codec) == ("vp8", "vp8")


@pytest.mark.anyio
async def test_an_unreachable_camera_says_so_and_is_retried(live_media: LiveMedia) -> None:
    feeder = RelayFeeder(
        SourcePlan(43, "Lamp camera", "ip_camera", url=f"rtsp://u:pw@127.0.0.1:{free_port()}/"),
        live_media,
    )
    task = asyncio.create_task(feeder.run())
    try:
        await _until(lambda: feeder.status.state == SourceState.UNREACHABLE, 10)
        status = feeder.status
        assert status.state == SourceState.UNREACHABLE
        assert "Connection refused" in status.detail and "next attempt in 1 s" in status.detail
        assert "pw" not in status.detail and "***@" in status.detail
        assert status.mountpoint_id is None
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert feeder.status.state == SourceState.STOPPED


# --- in the web application --------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_going_live_starts_the_sources_and_the_director_sees_their_state(
    app, world, client
) -> None:
    coord = world.user("metz-coord", (world.metz, "coordinator"))
    now = world.runtime.now()
    with transaction(world.runtime.sessions) as db:
        actor = audit.Actor(coord.id, coord.username)
        live = lifecycle.create_session(
            db,
            actor,
            kind="supervision",
            title="PCI room 2",
            site_id=world.metz.id,
            scheduled_at=now,
            now=now,
        )
        source_registry.add_source(
            db,
            actor,
            live,
            name="Cath lab camera",
            kind="ip_camera",
            reference="rtsp://admin:s3cret@10.0.2.7/live",
            networks=networks_of(["10.0.0.0/8"]),
            box=world.runtime.box,
        )
        source_registry.add_source(
            db,
            actor,
            live,
            name="Previous run",
            kind="dicom_cine",
            reference="1.2.3/1.2.3.4",
            # As if authorised when added: going live authorises it again for its adder.
            cine=source_registry.CineGrant("1.2.3/1.2.3.4", coord.id),
        )
        session_id = live.id
    browser = world.client(app)
    browser.headers["x-csrf-token"] = world.sign_in(browser, coord)

    assert browser.get(f"/api/v1/live/sessions/{session_id}/sources").json() == []
    assert browser.post(f"/api/v1/live/sessions/{session_id}/start").status_code == 200
    states = browser.get(f"/api/v1/live/sessions/{session_id}/sources").json()
    # No media server in this application: the sources say so and the session is live.
    assert [(s["name"], s["state"]) for s in states] == [
        ("Cath lab camera", "refused"),
        ("Previous run", "refused"),
    ]
    assert states[0]["detail"] == "the media server is not running"
    # A source added to a live session starts at once.
    added = browser.post(
        f"/live/{session_id}/sources",
        data={
            "name": "Lamp camera",
            "kind": "ip_camera",
            "reference": "srt://10.0.2.8:9000",
            "csrf_token": browser.headers["x-csrf-token"],
        },
    )
    assert added.status_code == 303, added.text
    states = browser.get(f"/api/v1/live/sessions/{session_id}/sources").json()
    assert [s["name"] for s in states] == ["Cath lab camera", "Previous run", "Lamp camera"]
    page = browser.get(f"/live/{session_id}/director")
    assert page.status_code == 200
    assert 'data-source-state="refused"' in page.text and "Cath lab camera" in page.text
    assert "s3cret" not in page.text
    assert browser.get(f"/api/v1/live/sessions/{session_id}").json()["status"] == "live"
    with transaction(world.runtime.sessions) as db:
        misses = (
            db.execute(
                select(AuditEvent.actor).where(
                    AuditEvent.action == "study.retrieve", AuditEvent.outcome == "failure"
                )
            )
            .scalars()
            .all()
        )
    assert misses == ["metz-coord"]  # the cine loop was looked up for the one who added it

    assert browser.post(f"/api/v1/live/sessions/{session_id}/end").status_code == 200
    assert browser.get(f"/api/v1/live/sessions/{session_id}/sources").json() == []
