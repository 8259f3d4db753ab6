"""Per-user, per-room credentials are honoured and refused by Janus itself."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from concilium.live.credentials import MAX_TTL, CredentialBook
from concilium.live.janus_client import (
    STREAMING,
    VIDEOROOM,
    JanusPluginError,
    JanusSession,
    JanusUnauthorized,
)
from concilium.live.media import LiveMedia
from concilium.live.rooms import RoomSpec

pytestmark = pytest.mark.anyio


async def _join(http: httpx.AsyncClient, media: LiveMedia, token: str, room: int) -> dict:
    async with JanusSession(http, media.config.api_url, token) as session:
        handle = await session.attach(VIDEOROOM)
        data, _ = await handle.request_async(
            {"request": "join", "ptype": "publisher", "room": room, "display": "x", "token": token}
        )
        return data


async def test_a_credential_lets_its_user_join_its_room(
    live_media: LiveMedia, http: httpx.AsyncClient
) -> None:
    await live_media.create_room(RoomSpec(2001))
    credential = await live_media.issue("dr.ines", 2001, ttl=60)
    joined = await _join(http, live_media, credential.token, 2001)
    assert joined["videoroom"] == "joined"
    assert joined["room"] == 2001


async def test_an_unknown_token_is_refused_by_janus(
    live_media: LiveMedia, http: httpx.AsyncClient
) -> None:
    await live_media.create_room(RoomSpec(2002))
    with pytest.raises(JanusUnauthorized) as refused:
        await _join(http, live_media, "forged-token", 2002)
    assert refused.value.code == 403


async def test_an_expired_credential_is_refused_after_the_sweep(
    live_media: LiveMedia, http: httpx.AsyncClient, media_clock
) -> None:
    await live_media.create_room(RoomSpec(2003))
    credential = await live_media.issue("dr.ines", 2003, ttl=30)
    media_clock.advance(29)
    assert await live_media.sweep() == []
    assert (await _join(http, live_media, credential.token, 2003))["videoroom"] == "joined"
    media_clock.advance(1)
    assert [c.token for c in await live_media.sweep()] == [credential.token]
    with pytest.raises(JanusUnauthorized):
        await _join(http, live_media, credential.token, 2003)
    assert credential.token not in await live_media.admin.list_tokens()


async def test_a_credential_does_not_open_another_room(
    live_media: LiveMedia, http: httpx.AsyncClient
) -> None:
    await live_media.create_room(RoomSpec(2004))
    await live_media.create_room(RoomSpec(2005))
    credential = await live_media.issue("dr.ines", 2004)
    with pytest.raises(JanusPluginError) as refused:
        await _join(http, live_media, credential.token, 2005)
    assert refused.value.code == 433


async def test_a_credential_is_limited_to_the_plugins_browsers_use(
    live_media: LiveMedia, http: httpx.AsyncClient
) -> None:
    await live_media.create_room(RoomSpec(2006))
    credential = await live_media.issue("dr.ines", 2006)
    async with JanusSession(http, live_media.config.api_url, credential.token) as session:
        await session.attach(VIDEOROOM)
        await session.attach(STREAMING)  # the session's own sources, scoped by the proxy
        with pytest.raises(JanusUnauthorized) as refused:
            await session.attach("janus.plugin.recordplay")  # loaded, but not for browsers
    assert refused.value.code == 405


async def test_destroying_a_room_revokes_its_credentials(
    live_media: LiveMedia, http: httpx.AsyncClient
) -> None:
    await live_media.create_room(RoomSpec(2007))
    credential = await live_media.issue("dr.ines", 2007)
    await live_media.destroy_room(2007)
    assert credential.token not in await live_media.admin.list_tokens()
    assert live_media.book.credentials == {}


async def test_a_credential_needs_a_registered_room(live_media: LiveMedia) -> None:
    with pytest.raises(KeyError, match="not registered"):
        await live_media.issue("dr.ines", 9999)
    assert await live_media.admin.list_tokens() != {}  # only the service token
    assert live_media.book.credentials == {}


def test_book_mints_distinct_tokens_with_their_expiry() -> None:
    book = CredentialBook()
    one = book.mint("a", 1, now=100.0, ttl=60)
    two = book.mint("a", 1, now=100.0, ttl=60)
    assert one.token != two.token and len(one.token) >= 32
    assert one.expires_at == 160.0
    assert not one.expired(159.9) and one.expired(160.0)
    assert book.expired(160.0) == [one, two] or book.expired(160.0) == [two, one]
    assert book.valid(159.0) == [one, two]
    assert one.token not in repr(one)


@pytest.mark.parametrize(("user", "ttl"), [("", 60), ("a", 0), ("a", -1), ("a", MAX_TTL + 1)])
def test_book_refuses_bad_requests(user: str, ttl: float) -> None:
    with pytest.raises(ValueError):
        CredentialBook().mint(user, 1, now=0.0, ttl=ttl)


async def test_the_sweeper_revokes_lapsed_credentials_in_the_background(
    live_media: LiveMedia, media_clock
) -> None:
    await live_media.create_room(RoomSpec(2008))
    credential = await live_media.issue("dr.ines", 2008, ttl=10)
    sweeper = asyncio.create_task(live_media.sweep_forever(interval=0.05))
    try:
        await asyncio.sleep(0.15)
        assert credential.token in await live_media.admin.list_tokens()
        media_clock.advance(10)
        for _ in range(40):
            if credential.token not in live_media.book.credentials:
                break
            await asyncio.sleep(0.05)
    finally:
        sweeper.cancel()
    assert credential.token not in await live_media.admin.list_tokens()


async def test_revoking_a_token_janus_already_forgot_still_succeeds(
    live_media: LiveMedia,
) -> None:
    await live_media.create_room(RoomSpec(2009))
    credential = await live_media.issue("dr.ines", 2009)
    await live_media.admin.remove_token(credential.token)
    assert await live_media.revoke(credential.token) == credential
    assert live_media.book.credentials == {}
    assert credential.token not in live_media.registry.allowed[2009]
