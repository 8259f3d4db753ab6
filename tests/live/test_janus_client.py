"""The Janus API client keeps its sessions alive and reports Janus's refusals precisely."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import httpx
import pytest

from concilium.live.janus_client import (
    VIDEOROOM,
    JanusAdmin,
    JanusError,
    JanusSession,
    JanusUnreachable,
)
from concilium.live.janus_config import JanusConfig
from concilium.live.media_server import MediaServer

pytestmark = pytest.mark.anyio


async def test_keepalives_keep_an_idle_session_past_the_session_timeout(
    janus_binary: Path, janus_config: JanusConfig, http: httpx.AsyncClient
) -> None:
    cfg = dataclasses.replace(janus_config, session_timeout=1)
    async with MediaServer(cfg, binary=janus_binary):
        admin = JanusAdmin(http, cfg.admin_url, cfg.admin_secret)
        await admin.add_token("service-token-for-the-test")
        kept = JanusSession(
            http,
            cfg.api_url,
            "service-token-for-the-test",
            keepalive_interval=0.3,
            poll_events=False,
        )
        idle = JanusSession(
            http,
            cfg.api_url,
            "service-token-for-the-test",
            keepalive_interval=100,
            poll_events=False,
        )
        await kept.create()
        await idle.create()
        # Janus's session watchdog wakes every 2 s: 5 s covers the 1 s timeout in any phase.
        await asyncio.sleep(5)
        handle = await kept.attach(VIDEOROOM)
        assert handle.handle_id > 0
        with pytest.raises(JanusError) as gone:
            await idle.attach(VIDEOROOM)
        assert gone.value.code == 458
        await kept.close()
        await idle.close()


async def test_a_stopped_janus_is_reported_as_unreachable(
    http: httpx.AsyncClient, tcp_port: int
) -> None:
    session = JanusSession(http, f"http://127.0.0.1:{tcp_port}/janus", "token")
    with pytest.raises(JanusUnreachable):
        await session.create()


async def test_asynchronous_requests_need_the_event_poll(
    media_server: MediaServer, http: httpx.AsyncClient
) -> None:
    cfg = media_server.config
    await JanusAdmin(http, cfg.admin_url, cfg.admin_secret).add_token("a-token-for-the-test")
    async with JanusSession(http, cfg.api_url, "a-token-for-the-test", poll_events=False) as s:
        handle = await s.attach(VIDEOROOM)
        with pytest.raises(RuntimeError, match="polls events"):
            await handle.request_async({"request": "join", "room": 1, "ptype": "publisher"})


def test_bad_keepalive_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="keepalive_interval"):
        JanusSession(httpx.AsyncClient(), "http://127.0.0.1:1/janus", "t", keepalive_interval=0)
