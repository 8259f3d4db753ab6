"""Fixtures of the live service tests: free loopback ports, a real Janus, a control plane."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from concilium.live.janus_config import JanusConfig
from concilium.live.media import LiveMedia
from concilium.live.media_server import JanusNotInstalled, MediaServer, find_janus
from serving import free_port

from .webrtc_harness import serve_harness


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def udp_port() -> int:
    """A free UDP port on 127.0.0.1."""
    return free_port(socket.SOCK_DGRAM)


@pytest.fixture
def tcp_port() -> int:
    """A free TCP port on 127.0.0.1."""
    return free_port()


@pytest.fixture(scope="session")
def janus_binary() -> Path:
    """The Janus binary; a missing Janus is a failure, not a skip."""
    try:
        return find_janus()
    except JanusNotInstalled as exc:
        pytest.fail(f"the live tests need the real Janus media server: {exc}", pytrace=False)


@pytest.fixture
def janus_config(tmp_path: Path) -> JanusConfig:
    http_port = free_port()
    admin_port = free_port()
    while admin_port == http_port:
        admin_port = free_port()
    return JanusConfig(tmp_path / "data", http_port=http_port, admin_port=admin_port)


@pytest.fixture
async def media_server(janus_binary: Path, janus_config: JanusConfig) -> AsyncIterator[MediaServer]:
    server = MediaServer(janus_config, binary=janus_binary, restart_delay=0.1)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


class FakeClock:
    """Wall clock the tests move by hand."""

    def __init__(self, now: float = 1_795_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def media_clock() -> FakeClock:
    """The media control plane's clock (seconds); ``clock`` is the platform's datetime one."""
    return FakeClock()


@pytest.fixture
async def live_media(
    media_server: MediaServer, http: httpx.AsyncClient, media_clock: FakeClock
) -> AsyncIterator[LiveMedia]:
    media = LiveMedia(media_server.config, http, clock=media_clock)
    await media.connect()
    media_server.on_restart.append(media.reconnect)
    try:
        yield media
    finally:
        await media.close()


@pytest.fixture
def harness_url() -> Iterator[str]:
    """The VideoRoom harness page of ``webrtc_harness`` on a free loopback port."""
    with serve_harness() as url:
        yield url
