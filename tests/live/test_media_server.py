"""Janus runs as a supervised child: started, answering, restarted after a crash, stopped."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import httpx
import pytest

from concilium.live import media_server as media_server_module
from concilium.live.credentials import BROWSER_PLUGINS
from concilium.live.janus_config import JanusConfig
from concilium.live.media import LiveMedia
from concilium.live.media_server import (
    JanusNotInstalled,
    MediaServer,
    MediaServerError,
    find_janus,
)
from concilium.live.rooms import MountpointSpec, RoomSpec

pytestmark = pytest.mark.anyio


def test_missing_janus_is_reported_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(media_server_module, "JANUS_CANDIDATES", (tmp_path / "janus",))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(JanusNotInstalled, match="apt-get install -y janus"):
        find_janus()


async def test_janus_answers_once_started_and_is_gone_after_stop(
    media_server: MediaServer, http: httpx.AsyncClient
) -> None:
    pid = media_server.pid
    assert pid is not None and media_server.state == "running"
    info = (await http.get(f"{media_server.config.api_url}/info")).json()
    assert info["janus"] == "server_info"
    assert info["server-name"] == "concilium-media"
    assert set(info["plugins"]) == {
        "janus.plugin.videoroom",
        "janus.plugin.streaming",
        "janus.plugin.recordplay",
    }
    assert set(info["transports"]) == {"janus.transport.http"}
    await media_server.stop()
    assert media_server.state == "stopped"
    assert media_server.exit_code == 0
    assert media_server.config.log_file.read_text().rstrip().endswith("Bye!")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(httpx.TransportError):
        await http.get(f"{media_server.config.api_url}/info")


async def test_admin_api_refuses_a_wrong_secret(
    media_server: MediaServer, http: httpx.AsyncClient
) -> None:
    reply = await http.post(
        media_server.config.admin_url,
        json={"janus": "list_tokens", "transaction": "t", "admin_secret": "guess"},
    )
    assert reply.json()["janus"] == "error"
    assert reply.json()["error"]["code"] == 403


async def test_crashed_janus_is_restarted_and_rooms_are_recreated(
    media_server: MediaServer, live_media: LiveMedia, udp_port: int
) -> None:
    await live_media.create_room(RoomSpec(4101, description="OR 4"))
    await live_media.create_room(RoomSpec(4102, description="cath lab"))
    await live_media.create_mountpoint(MountpointSpec(501, video_port=udp_port))
    credential = await live_media.issue("dr.ines", 4101)
    old_pid = media_server.pid
    assert old_pid is not None

    os.kill(old_pid, signal.SIGKILL)
    await media_server.wait_restarted(1, timeout=20)
    assert media_server.exit_code == -signal.SIGKILL

    assert media_server.pid not in (None, old_pid)
    rooms = {room["room"] for room in await live_media.list_rooms()}
    assert rooms == {4101, 4102}
    mountpoints = await live_media.streaming.list_mountpoints()
    assert [m["id"] for m in mountpoints] == [501]
    tokens = await live_media.admin.list_tokens()
    assert sorted(tokens[credential.token]) == sorted(BROWSER_PLUGINS)

    # A second crash, soon after the first, is handled the same way (with more backoff).
    second_pid = media_server.pid
    assert second_pid is not None
    os.kill(second_pid, signal.SIGKILL)
    await media_server.wait_restarted(2, timeout=20)
    assert {room["room"] for room in await live_media.list_rooms()} == {4101, 4102}


async def test_a_janus_that_cannot_bind_its_port_is_reported(
    janus_binary: Path, tmp_path: Path, tcp_port: int
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        cfg = JanusConfig(tmp_path, http_port=busy.getsockname()[1], admin_port=tcp_port)
        server = MediaServer(cfg, binary=janus_binary, start_timeout=5)
        with pytest.raises(MediaServerError, match="Janus"):
            await server.start()
    assert server.state == "stopped"
    assert server.pid is None
