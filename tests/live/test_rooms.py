"""Rooms and camera mountpoints are created, listed and destroyed on the real Janus."""

from __future__ import annotations

import asyncio
import socket

import pytest

from concilium.live.janus_client import JanusPluginError
from concilium.live.media import LiveMedia
from concilium.live.rooms import MountpointSpec, RoomRegistry, RoomSpec

pytestmark = pytest.mark.anyio


async def test_rooms_are_created_listed_and_destroyed(live_media: LiveMedia) -> None:
    await live_media.create_room(RoomSpec(1001, description="OR 1", publishers=4))
    await live_media.create_room(RoomSpec(1002, description="MDT oncology"))
    listed = {room["room"]: room for room in await live_media.list_rooms()}
    assert set(listed) == {1001, 1002}
    assert listed[1001]["description"] == "OR 1"
    assert listed[1001]["max_publishers"] == 4
    assert listed[1001]["is_private"] is True
    # H.264 first (recordings go to MP4 as sent), VP8 for publishers without it.
    assert listed[1001]["videocodec"] == "h264,vp8"
    assert listed[1001]["transport_wide_cc_ext"] is True

    await live_media.destroy_room(1001)
    assert [room["room"] for room in await live_media.list_rooms()] == [1002]
    assert not await live_media.videoroom.exists(1001)
    assert 1001 not in live_media.registry.rooms


async def test_recorded_room_writes_into_its_own_folder_of_the_data_dir(
    live_media: LiveMedia,
) -> None:
    await live_media.create_room(RoomSpec(1003, record=True))
    (room,) = await live_media.list_rooms()
    assert room["record"] is True
    expected = live_media.config.recordings_folder / "room-1003"
    assert room["rec_dir"] == str(expected)
    assert expected.is_dir()


async def test_room_secret_is_required_to_destroy_a_room(live_media: LiveMedia) -> None:
    spec = RoomSpec(1004)
    await live_media.create_room(spec)
    with pytest.raises(JanusPluginError) as refused:
        await live_media.videoroom.handle.request(
            {"request": "destroy", "room": 1004, "secret": "not-the-secret"}
        )
    assert refused.value.code == 433
    assert await live_media.videoroom.exists(1004)


async def test_rooms_cannot_be_created_without_the_plugin_admin_key(
    live_media: LiveMedia,
) -> None:
    with pytest.raises(JanusPluginError):
        await live_media.videoroom.handle.request({"request": "create", "room": 1005})
    assert not await live_media.videoroom.exists(1005)


async def test_duplicate_room_is_refused_and_not_registered_twice(live_media: LiveMedia) -> None:
    await live_media.create_room(RoomSpec(1006))
    with pytest.raises(ValueError, match="already registered"):
        await live_media.create_room(RoomSpec(1006))
    assert len(await live_media.list_rooms()) == 1


async def test_camera_mountpoint_listens_on_its_rtp_port(
    live_media: LiveMedia, udp_port: int
) -> None:
    stream = await live_media.create_mountpoint(
        MountpointSpec(77, video_port=udp_port, description="OR 1 ceiling camera")
    )
    assert stream["id"] == 77
    assert stream["ports"] == [{"type": "video", "mid": "v", "port": udp_port}]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, pytest.raises(OSError):
        sock.bind(("127.0.0.1", udp_port))
    listed = await live_media.streaming.list_mountpoints()
    assert [(m["id"], m["description"]) for m in listed] == [(77, "OR 1 ceiling camera")]

    await live_media.destroy_mountpoint(77)
    assert await live_media.streaming.list_mountpoints() == []


async def test_restore_creates_only_the_missing_rooms(live_media: LiveMedia) -> None:
    await live_media.create_room(RoomSpec(1007))
    await live_media.videoroom.destroy(live_media.registry.rooms[1007])
    live_media.registry.add_room(RoomSpec(1008))
    from concilium.live.rooms import restore_rooms

    created = await restore_rooms(live_media.registry, live_media.videoroom)
    assert created == [1007, 1008]
    assert await restore_rooms(live_media.registry, live_media.videoroom) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"room_id": 0}, "room_id"),
        ({"room_id": 2**53}, "room_id"),
        ({"room_id": 1, "publishers": 0}, "publishers"),
        ({"room_id": 1, "bitrate": 10}, "bitrate"),
        ({"room_id": 1, "videocodec": "vp8,mjpeg"}, "mjpeg"),
        ({"room_id": 1, "audiocodec": ""}, "audiocodec"),
        ({"room_id": 1, "h264_profile": "42E01F;x"}, "h264_profile"),
        ({"room_id": 1, "description": "x" * 201}, "description"),
    ],
)
def test_bad_room_specs_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RoomSpec(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"video_port": 80}, "1024..65535"),
        ({"video_port": 30000, "audio_port": 30000}, "must differ"),
        ({"video_port": 30000, "video_codec": "mpeg2"}, "video_codec"),
        ({"video_port": 30000, "video_pt": 8}, "dynamic RTP payload type"),
    ],
)
def test_bad_mountpoint_specs_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MountpointSpec(9, **kwargs)  # type: ignore[arg-type]


def test_registry_refuses_a_port_used_by_another_mountpoint() -> None:
    registry = RoomRegistry()
    registry.add_mountpoint(MountpointSpec(1, video_port=30000, audio_port=30002))
    with pytest.raises(ValueError, match="already in use"):
        registry.add_mountpoint(MountpointSpec(2, video_port=30002))


async def test_camera_rtp_sent_to_the_ingest_port_reaches_the_mountpoint(
    live_media: LiveMedia, udp_port: int
) -> None:
    spec = MountpointSpec(78, video_port=udp_port)
    await live_media.create_mountpoint(spec)
    await asyncio.sleep(0.6)
    (idle,) = (await live_media.streaming.info(spec))["media"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as camera:
        for seq in range(5):
            # RTP version 2, payload type 96, then an H.264 IDR NAL unit header.
            header = bytes([0x80, 96]) + seq.to_bytes(2, "big") + (seq * 3000).to_bytes(4, "big")
            camera.sendto(
                header + (0x1234).to_bytes(4, "big") + b"\x65" + bytes(40), ("127.0.0.1", udp_port)
            )
    await asyncio.sleep(0.1)
    (fed,) = (await live_media.streaming.info(spec))["media"]
    assert idle["age_ms"] >= 500
    assert fed["age_ms"] < 400
    assert (fed["codec"], fed["pt"], fed["port"]) == ("h264", 96, udp_port)
