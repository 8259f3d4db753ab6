"""HLS of a running broadcast: a Chromium publishes into a real Janus, Janus forwards the
program feed to the packager, and the playlists and segments it writes are valid HLS fMP4."""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
from pathlib import Path

import av
import pytest

from concilium.live.hls import (
    HlsBroadcasts,
    HlsSettings,
    Rendition,
    ffmpeg_command,
    program_sdp,
)
from concilium.live.hls_files import HlsSigner, hls_headers, resolve_hls_file
from concilium.live.media import LiveMedia
from concilium.live.media_server import MediaServer
from concilium.live.rooms import RoomSpec
from concilium.live.udp_ports import free_rtp_ports

from .sessions import start_broadcast
from .webrtc_harness import chromium, open_harness, publish

SMALL = HlsSettings(
    ladder=(Rendition("r240", 240, 400_000), Rendition("r120", 120, 150_000)),
    fps=15,
    preset="ultrafast",
)
"""A ladder cheap enough for the test machine; the shape is the production one."""


def parse_master(text: str) -> list[dict[str, str]]:
    """Variants of a master playlist (RFC 8216 4.3.4.2): attributes plus ``uri``."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines[0] == "#EXTM3U"
    variants = []
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            attributes = dict(re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1]))
            attributes = {k: v.strip('"') for k, v in attributes.items()}
            attributes["uri"] = lines[i + 1]
            variants.append(attributes)
    return variants


def parse_media(text: str) -> tuple[dict[str, str], list[tuple[float, str]]]:
    """Tags and ``(EXTINF duration, uri)`` segments of a media playlist (RFC 8216 4.3.2)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines[0] == "#EXTM3U"
    tags: dict[str, str] = {}
    segments: list[tuple[float, str]] = []
    duration: float | None = None
    for line in lines[1:]:
        if line.startswith("#EXTINF:"):
            duration = float(line.split(":", 1)[1].split(",")[0])
        elif line.startswith("#"):
            name, _, value = line[1:].partition(":")
            tags.setdefault(name, value)
        else:
            assert duration is not None, f"segment {line} without EXTINF"
            segments.append((duration, line))
            duration = None
    return tags, segments


async def wait_for(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.2)


def media_segments(root: Path, rendition: str) -> list[tuple[float, str]]:
    playlist = root / rendition / "index.m3u8"
    if not playlist.is_file():
        return []
    return parse_media(playlist.read_text())[1]


def decode(init: bytes, segment: bytes) -> tuple[list[av.VideoFrame], list[av.AudioFrame]]:
    """Every video and audio frame of one fMP4 media segment."""
    with av.open(io.BytesIO(init + segment)) as container:
        video = list(container.decode(video=0))
    with av.open(io.BytesIO(init + segment)) as container:
        audio = list(container.decode(audio=0))
    return video, audio


def init_name(out: Path, rendition: str) -> str:
    """The init segment a rendition's playlist names (one per packager run)."""
    tags, _ = parse_media((out / rendition / "index.m3u8").read_text())
    return tags["EXT-X-MAP"].split('"')[1]


def latest_segment(out: Path, rendition: str) -> tuple[str, bytes, bytes]:
    """The newest segment of a rendition: its name, its init segment and its bytes."""
    _, segments = parse_media((out / rendition / "index.m3u8").read_text())
    name = segments[-1][1]
    init = (out / rendition / init_name(out, rendition)).read_bytes()
    return name, init, (out / rendition / name).read_bytes()


def loudness(frames: list[av.AudioFrame]) -> float:
    """Peak sample magnitude (0..1) over ``frames``."""
    return max(float(abs(frame.to_ndarray()).max()) for frame in frames)


@pytest.mark.anyio
@pytest.mark.browser
async def test_program_feed_becomes_valid_hls_with_a_ladder_that_decodes(
    live_media: LiveMedia, harness_url: str, tmp_path: Path
) -> None:
    room = RoomSpec(4001, description="OR broadcast", fir_freq=2)
    await live_media.create_room(room)
    camera = await live_media.issue("or-camera", 4001)
    broadcasts = HlsBroadcasts(tmp_path / "data", SMALL)
    out = broadcasts.root / "77"

    async with chromium(tmp_path / "profile") as context:
        page = await open_harness(context, harness_url)
        feed = await publish(
            page,
            apiUrl=live_media.config.api_url,
            token=camera.token,
            room=4001,
            display="program",
            width=320,
            height=240,
            audio=True,  # Chromium's fake microphone: a beep every second
        )
        try:
            await broadcasts.show(77, live_media.videoroom, room, feed)
            await wait_for(lambda: len(media_segments(out, "r120")) >= 3, timeout=30)
            await wait_for(lambda: len(media_segments(out, "r240")) >= 3, timeout=10)
            master = (out / "master.m3u8").read_text()
            playlist = (out / "r240" / "index.m3u8").read_text()
            tags, segments = parse_media(playlist)
            # Two segments: a beep a second always falls into one of them.
            _, init, segment = latest_segment(out, "r240")
            earlier = (out / "r240" / segments[-2][1]).read_bytes()
            _, small_init, small_segment = latest_segment(out, "r120")
            pipeline = broadcasts.pipeline(77)
            assert pipeline is not None and pipeline.running
            assert pipeline.audio_port is not None  # the publisher's audio is forwarded
        finally:
            await broadcasts.close()

    variants = parse_master(master)
    assert len(variants) == 2
    # Every rendition is a 16:9 frame whatever the source (a 4:3 camera here).
    assert {v["RESOLUTION"] for v in variants} == {"426x240", "214x120"}
    assert all(int(v["BANDWIDTH"]) > 0 for v in variants)
    assert all(v["CODECS"].startswith("avc1.") and "mp4a.40.2" in v["CODECS"] for v in variants)
    assert {v["uri"] for v in variants} == {"r240/index.m3u8", "r120/index.m3u8"}

    assert tags["EXT-X-VERSION"] == "7"
    assert int(tags["EXT-X-TARGETDURATION"]) <= 2
    assert "EXT-X-INDEPENDENT-SEGMENTS" in tags
    assert all(0.5 <= duration <= 2.0 for duration, _ in segments)
    assert all(uri.endswith(".m4s") for _, uri in segments)

    frames, sound = decode(init, segment)
    _, sound_before = decode(init, earlier)
    assert frames and (frames[0].width, frames[0].height) == (426, 240)
    # The 4:3 picture sits between black bars; the fake camera's green fills the middle.
    picture = frames[-1].to_ndarray(format="rgb24")
    assert picture[:, :20].mean() < 30 and picture[:, 200:220, 1].mean() > 80
    assert sound and sound[0].sample_rate == 48000
    assert loudness(sound + sound_before) > 0.05  # the beep, not silence
    small_frames, small_sound = decode(small_init, small_segment)
    assert small_frames[0].height == 120 and small_sound  # every rendition carries audio
    assert not out.exists()  # stopping the broadcast removes its live files


@pytest.mark.anyio
@pytest.mark.browser
async def test_hls_comes_back_by_itself_after_janus_restarts(
    media_server: MediaServer, live_media: LiveMedia, harness_url: str, tmp_path: Path
) -> None:
    room = RoomSpec(4002, description="OR broadcast", fir_freq=2)
    await live_media.create_room(room)
    camera = await live_media.issue("or-camera", 4002)
    broadcasts = HlsBroadcasts(tmp_path / "data", SMALL, rejoin_poll=0.3)
    out = broadcasts.root / "78"

    async def restore() -> None:  # what the server's restart hook does (live.runtime)
        await broadcasts.restore(live_media.videoroom)

    # Registered after the control plane's own reconnect (conftest): rooms come back first.
    media_server.on_restart.append(restore)

    async with chromium(tmp_path / "profile") as context:
        page = await open_harness(context, harness_url)
        feed = await publish(
            page, apiUrl=live_media.config.api_url, token=camera.token, room=4002,
            width=320, height=240, audio=True,
        )  # fmt: skip
        try:
            await broadcasts.show(78, live_media.videoroom, room, feed)
            await wait_for(lambda: len(media_segments(out, "r240")) >= 2, timeout=30)
            before, old_run = media_segments(out, "r240")[-1][1], init_name(out, "r240")

            pid = media_server.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            await media_server.wait_restarted(1, timeout=30)
            # The page notices that Janus forgot its session and publishes again, same feed.
            await page.wait_for_function("window.republished >= 1", timeout=30_000)
            assert feed in await live_media.videoroom.publishers(4002)

            # No director action: the HLS output follows the program again on its own.
            def fresh() -> bool:
                try:  # a new packager run: its own playlist, its own init segment
                    new_run = init_name(out, "r240") != old_run
                except (OSError, KeyError):
                    return False
                segments = media_segments(out, "r240")
                return new_run and len(segments) >= 3 and before not in {u for _, u in segments}

            await wait_for(fresh, timeout=40)
            _, init, segment = latest_segment(out, "r240")
            earlier = (out / "r240" / media_segments(out, "r240")[-2][1]).read_bytes()
            assert broadcasts.feed(78) == feed and not broadcasts.restoring(78)
        finally:
            await broadcasts.close()

    frames, sound = decode(init, segment)
    _, sound_before = decode(init, earlier)
    assert frames and frames[0].height == 240
    assert loudness(sound + sound_before) > 0.05  # the microphone came back too


def test_files_outside_the_shapes_ffmpeg_writes_are_never_served(tmp_path: Path) -> None:
    root = tmp_path / "hls"
    (root / "5" / "720p").mkdir(parents=True)
    for name in ("master.m3u8", "720p/index.m3u8", "720p/seg-17.m4s", "720p/init-a1_0.mp4"):
        (root / "5" / name).write_text("x")
    (root / "5" / "program.sdp").write_text("v=0")
    assert resolve_hls_file(root, 5, "720p/seg-17.m4s") == root / "5" / "720p" / "seg-17.m4s"
    for name in ("program.sdp", "../5/master.m3u8", "720p/../master.m3u8", "/etc/passwd", ""):
        assert resolve_hls_file(root, 5, name) is None
    assert resolve_hls_file(root, 6, "master.m3u8") is None
    assert hls_headers("master.m3u8") == ("application/vnd.apple.mpegurl", "no-cache")
    assert hls_headers("720p/seg-1.m4s")[1].endswith("immutable")
    assert hls_headers("720p/init-a_0.mp4")[0] == "video/mp4"


def test_the_packager_command_makes_fmp4_hls_with_the_whole_ladder(tmp_path: Path) -> None:
    command = ffmpeg_command("ffmpeg", tmp_path / "p.sdp", tmp_path, SMALL, "t1", audio=True)
    assert command[command.index("-hls_segment_type") + 1] == "fmp4"
    # Each rendition carries its video and the program's audio.
    assert command[command.index("-var_stream_map") + 1] == "v:0,a:0,name:r240 v:1,a:1,name:r120"
    assert "temp_file" in command[command.index("-hls_flags") + 1]
    assert command[command.index("-g") + 1] == "15"  # one keyframe per 1 s segment
    assert command[command.index("-c:a") + 1] == "aac"
    assert command[command.index("-localaddr") + 1] == "127.0.0.1"  # only Janus feeds it
    assert "anullsrc" not in " ".join(command)
    silent = ffmpeg_command("ffmpeg", tmp_path / "p.sdp", tmp_path, SMALL, "t1")
    assert "anullsrc=channel_layout=stereo:sample_rate=48000" in silent  # no microphone
    # The silence keeps the live pace; unthrottled it held the video back by seconds.
    lavfi = silent.index("lavfi")
    assert silent[lavfi - 2 : lavfi] == ["-re", "-f"]
    # That pace starts only once the program's input is probed, so the silence lags the
    # video: the muxer may hold the live video back for it 0.2 s at most, not its 10 s.
    assert silent[silent.index("-max_interleave_delta") + 1] == "200000"
    recorded = ffmpeg_command(
        "ffmpeg", tmp_path / "p.sdp", tmp_path, SMALL, "t1", record_to=tmp_path / "part.mp4"
    )
    assert recorded[recorded.index("-f", len(recorded) - 3) + 1] == "tee"
    hls_out, record_out = recorded[-1].split("|")
    assert hls_out.startswith("[f=hls:max_interleave_delta=200000:")
    assert "var_stream_map=v\\\\:0" in hls_out
    assert record_out == (
        "[f=mp4:select=v\\\\:0,a\\\\:0:movflags=+frag_keyframe+empty_moov+default_base_moof"
        f":flush_packets=1:onfail=ignore:max_interleave_delta=200000]{tmp_path / 'part.mp4'}"
    )

    sdp = program_sdp(5004, audio_port=5006)
    assert "m=video 5004 RTP/AVP 96" in sdp and "m=audio 5006 RTP/AVP 111" in sdp
    assert "a=rtpmap:111 opus/48000/2" in sdp
    assert "m=audio" not in program_sdp(5004)
    with pytest.raises(ValueError, match="codec"):
        program_sdp(5004, "mjpeg")
    with pytest.raises(ValueError, match="overlap"):
        program_sdp(5004, audio_port=5005)
    with pytest.raises(ValueError, match="height"):
        Rendition("x", 121, 100_000)
    assert [r.width for r in (Rendition("a", 720, 10**6), Rendition("b", 360, 10**6))] == [
        1280,
        640,
    ]
    ports = free_rtp_ports(2)
    assert len(set(ports)) == 2 and all(p % 2 == 0 for p in ports)


def test_a_capability_opens_one_session_until_it_expires() -> None:
    signer = HlsSigner(b"k" * 32, lifetime=4 * 3600, granularity=600)
    now = 1_800_000_123.0
    capability = signer.grant(5, now)
    assert (
        capability.expires % 600 == 0
        and now + 4 * 3600 <= capability.expires < now + 4 * 3600 + 600
    )
    # Everyone granted in the same window shares the address (one copy in a shared cache).
    assert signer.grant(5, now + 60) == capability
    assert (
        capability.master == f"/live/5/hls/{capability.expires}/{capability.signature}/master.m3u8"
    )
    expires, signature = str(capability.expires), capability.signature
    assert signer.verify(5, expires, signature, now)
    assert not signer.verify(6, expires, signature, now)  # another session
    assert not signer.verify(5, str(capability.expires + 600), signature, now)  # extended
    assert not signer.verify(5, expires, signature, capability.expires)  # expired
    assert not signer.verify(5, expires, signature[:-1] + "A", now)
    assert not signer.verify(5, expires, "é" * 22, now)
    assert not signer.verify(5, "1e99", signature, now)
    assert not HlsSigner(b"j" * 32).verify(5, expires, signature, now)  # another installation
    with pytest.raises(ValueError, match="secret key"):
        HlsSigner(b"short")


def test_hls_files_are_served_under_a_granted_capability_without_the_database(
    app, world, monkeypatch
) -> None:
    from concilium.live.hls_files import hls_root
    from concilium.platform import audit

    rt = world.runtime
    coord = world.user("metz-hls-coord", (world.metz, "coordinator"))
    student = world.user("briey-hls-student", (world.briey, "learner"))
    stranger = world.user("briey-hls-doc", (world.briey, "referring_physician"))
    _, live = start_broadcast(world, coord, "Aortic valve, live", viewers=(student,))
    session_id = live.id
    out = hls_root(rt.settings.data_dir) / str(session_id)
    (out / "360p").mkdir(parents=True)
    (out / "master.m3u8").write_text("#EXTM3U\n")
    (out / "360p" / "seg-1795000001.m4s").write_bytes(b"\0\0\0\x08styp")
    (out / "program.sdp").write_text("v=0\n")

    viewer = world.client(app)
    world.sign_in(viewer, student)
    watch = viewer.get(f"/live/{session_id}/watch")
    access_url = f"/api/v1/live/sessions/{session_id}/hls"
    assert f'data-hls-access="{access_url}"' in watch.text  # the audience plays HLS
    assert "media-src 'self' blob:" in watch.headers["content-security-policy"]
    granted = viewer.get(access_url)
    assert granted.status_code == 200, granted.text
    access = granted.json()
    assert access["playlist"].startswith(f"/live/{session_id}/hls/")
    assert access["playlist"].endswith("/master.m3u8")
    assert 3 * 3600 < access["renew_in"] < 4 * 3600
    with rt.sessions() as db:
        grants = db.scalars(
            audit.select(audit.AuditEvent).where(audit.AuditEvent.action == "live.hls.grant")
        ).all()
    assert [(g.actor, g.object_id) for g in grants] == [(student.username, str(session_id))]

    # The files need neither a session cookie nor the database: a cache can serve them.
    def no_database() -> None:
        raise AssertionError("the HLS file route touched the database")

    monkeypatch.setattr(rt, "sessions", no_database)
    monkeypatch.setattr(rt, "read_sessions", no_database)
    anyone = world.client(app)
    base = access["playlist"].removesuffix("/master.m3u8")
    playlist = anyone.get(f"{base}/master.m3u8")
    assert playlist.status_code == 200 and playlist.text == "#EXTM3U\n"
    assert playlist.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert playlist.headers["cache-control"] == "no-cache"
    assert "set-cookie" not in playlist.headers
    segment = anyone.get(f"{base}/360p/seg-1795000001.m4s")
    assert segment.status_code == 200 and segment.content == b"\0\0\0\x08styp"
    assert segment.headers["content-type"] == "video/iso.segment"
    assert segment.headers["cache-control"] == "public, max-age=31536000, immutable"
    for missing in ("program.sdp", "360p/seg-9.m4s", "360p/%2e%2e/master.m3u8"):
        answer = anyone.get(f"{base}/{missing}")
        assert answer.status_code == 404, missing
        assert answer.headers["content-type"] == "application/problem+json"
    assert anyone.get(f"/live/{session_id}/hls/master.m3u8").status_code == 404  # unsigned

    # Past its expiry the same address is refused; the page asks for a new one.
    world.runtime.clock.advance(seconds=int(access["renew_in"]) + 3600)  # type: ignore[attr-defined]
    expired = anyone.get(f"{base}/360p/seg-1795000001.m4s")
    assert expired.status_code == 403
    assert expired.headers["content-type"] == "application/problem+json"
    monkeypatch.undo()
    world.sign_in(viewer, student)  # hours later: the web session lapsed too
    renewed = viewer.get(access_url).json()
    assert renewed["playlist"] != access["playlist"]
    assert anyone.get(renewed["playlist"]).status_code == 200

    outsider = world.client(app)
    world.sign_in(outsider, stranger)
    assert outsider.get(access_url).status_code == 403
    assert world.client(app).get(access_url).status_code == 401  # signed out
