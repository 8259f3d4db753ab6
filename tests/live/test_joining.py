"""Taking part in a session: its room sized by its kind, how a viewer watches, then joining
and leaving with Janus for real."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from concilium.live import joining, lifecycle
from concilium.live.media import LiveMedia
from concilium.live.tables import LiveSession
from concilium.platform import audit, i18n
from concilium.platform.db import transaction
from concilium.platform.errors import Conflict

from .sessions import people_and_patient

# --- pure decisions ------------------------------------------------------------------------


def test_a_sessions_room_takes_as_many_senders_as_its_kind_needs():
    sizes, keyframes = {}, {}
    for kind in lifecycle.KINDS:
        live = LiveSession(id=7, kind=kind, janus_room_id=5_000_007, record=False)
        sizes[kind] = joining.room_spec(live).publishers
        keyframes[kind] = joining.room_spec(live).fir_freq
    # A meeting's tiles and stage take simulcast layers: a tile put on the stage gets the
    # full picture at the next keyframe, asked for more often than in other rooms.
    assert {"conference"} == joining.SIMULCAST_KINDS
    assert keyframes["conference"] < keyframes["supervision"] == keyframes["broadcast"]
    # Twenty doctors with camera and microphone; six cameras with the team's tablets.
    assert sizes["conference"] >= 20
    assert sizes["broadcast"] >= 6 + 2
    assert sizes["supervision"] >= 2
    with i18n.using_locale("en"), pytest.raises(Conflict, match="not live"):
        joining.room_spec(LiveSession(id=8, kind="conference", janus_room_id=None))


def test_broadcast_viewers_watch_over_webrtc_until_the_room_is_busy_then_over_hls():
    # A broadcast's viewers: WebRTC while fewer than the limit receive the room, then HLS.
    assert not joining.watches_over_hls("broadcast", "viewer", 9, 10)
    assert joining.watches_over_hls("broadcast", "viewer", 10, 10)
    assert joining.watches_over_hls("broadcast", "viewer", 1500, 10)
    assert joining.watches_over_hls("broadcast", "viewer", 0, 0)  # 0: HLS for everyone
    # Without a media server there is no WebRTC to give.
    assert joining.watches_over_hls("broadcast", "viewer", None, 10)
    # The team talks and sees every switch at once; other kinds have no HLS output.
    for role in ("director", "moderator", "presenter", "participant"):
        assert not joining.watches_over_hls("broadcast", role, 1500, 10)
    for kind in ("supervision", "conference"):
        assert not joining.watches_over_hls(kind, "viewer", 1500, 10)


# --- with Janus and a camera ---------------------------------------------------------------


@pytest.mark.anyio
async def test_joining_mints_a_credential_for_the_session_room_and_leaving_revokes_it(
    world, media_server
):
    doctor, _, _ = await asyncio.to_thread(people_and_patient, world)  # the database, off the loop
    now = world.runtime.now()
    actor = audit.Actor(doctor.id, doctor.username)
    async with httpx.AsyncClient(timeout=5) as http:
        media = LiveMedia(media_server.config, http)
        await media.connect()
        try:
            with transaction(world.runtime.sessions) as db:
                await asyncio.to_thread(db.connection)  # begun off the loop, as the server does
                live = lifecycle.create_session(
                    db,
                    actor,
                    kind="supervision",
                    title="OR 2",
                    site_id=world.metz.id,
                    scheduled_at=now,
                    now=now,
                )
                with i18n.using_locale("en"), pytest.raises(Conflict, match="not live"):
                    await joining.join(db, media, actor, live, now, may_publish=True)
                lifecycle.start(db, actor, live, now, teaching_consent=False)
                grant = await joining.join(db, media, actor, live, now, may_publish=True)
                room = live.janus_room_id
                assert grant.role == "director" and grant.may_publish
                assert grant.credential.room_id == room
                assert grant.credential.token in await media.admin.list_tokens()
                assert await media.videoroom.exists(room)
                assert await joining.leave(db, media, actor, live, now) == 1
                assert grant.credential.token not in await media.admin.list_tokens()
        finally:
            await media.close()
