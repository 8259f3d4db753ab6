"""HLS of a running broadcast: a Chromium publishes into a real Janus, Janus forwards the
program feed to the packager, and the playlists and segments it writes are valid HLS fMP4."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

import av
import pytest

from concilium.live.hls import (
    HlsBroadcasts,
    HlsSettings,
    HlsSigner,
    Rendition,
    ffmpeg_command,
    hls_headers,
    program_sdp,
    resolve_hls_file,
)
from concilium.live.media import LiveMedia
from concilium.live.rooms import RoomSpec

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
        )
        try:
            await broadcasts.show(77, live_media.videoroom, room, feed)
            await wait_for(lambda: len(media_segments(out, "r120")) >= 2, timeout=30)
            await wait_for(lambda: len(media_segments(out, "r240")) >= 2, timeout=10)
            master = (out / "master.m3u8").read_text()
            playlist = (out / "r240" / "index.m3u8").read_text()
            tags, segments = parse_media(playlist)
            init = (out / "r240" / tags["EXT-X-MAP"].split('"')[1]).read_bytes()
            segment = (out / "r240" / segments[-1][1]).read_bytes()
            pipeline = broadcasts.pipeline(77)
            assert pipeline is not None and pipeline.running
        finally:
            await broadcasts.close()

    variants = parse_master(master)
    assert len(variants) == 2
    assert {v["RESOLUTION"] for v in variants} == {"320x240", "160x120"}
    assert all(int(v["BANDWIDTH"]) > 0 and v["CODECS"].startswith("avc1.") for v in variants)
    assert {v["uri"] for v in variants} == {"r240/index.m3u8", "r120/index.m3u8"}

    assert tags["EXT-X-VERSION"] == "7"
    assert int(tags["EXT-X-TARGETDURATION"]) <= 2
    assert "EXT-X-INDEPENDENT-SEGMENTS" in tags
    assert all(0.5 <= duration <= 2.0 for duration, _ in segments)
    assert all(uri.endswith(".m4s") for _, uri in segments)

    with av.open(io.BytesIO(init + segment)) as container:
        frames = [frame for frame in container.decode(video=0)]
    assert frames and (frames[0].width, frames[0].height) == (320, 240)
    assert not out.exists()  # stopping the broadcast removes its live files


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
    command = ffmpeg_command("ffmpeg", tmp_path / "p.sdp", tmp_path, SMALL, "t1")
    assert command[command.index("-hls_segment_type") + 1] == "fmp4"
    assert command[command.index("-var_stream_map") + 1] == "v:0,name:r240 v:1,name:r120"
    assert "temp_file" in command[command.index("-hls_flags") + 1]
    assert command[command.index("-g") + 1] == "15"  # one keyframe per 1 s segment
    assert "m=video 5004 RTP/AVP 96" in program_sdp(5004)
    with pytest.raises(ValueError, match="codec"):
        program_sdp(5004, "mjpeg")
    with pytest.raises(ValueError, match="height"):
        Rendition("x", 121, 100_000)


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
    from concilium.live.hls import hls_root
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
