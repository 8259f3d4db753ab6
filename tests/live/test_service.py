"""Live sessions: the pure decisions, then the domain on both databases, then Janus and a
camera for real."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from concilium.live import chat, invitations, joining, lifecycle, lookup, protocol
from concilium.live.actions import LiveAction
from concilium.live.media import LiveMedia
from concilium.live.tables import LiveParticipant, LiveSession
from concilium.platform import audit, i18n, patients
from concilium.platform.db import transaction
from concilium.platform.errors import Conflict, InvalidInput
from concilium.platform.policy import Action, Principal, decide
from concilium.platform.tables import AuditEvent, Share

# --- pure decisions ------------------------------------------------------------------------


def test_a_title_naming_the_patient_is_refused():
    names = ["Dupont", "Marie", "MTZ-1"]
    assert lifecycle.check_title("  TAVI   case  ", names) == "TAVI case"
    for title in ("TAVI for Dupont", "marie's valve", "Case MTZ-1 today"):
        with i18n.using_locale("en"), pytest.raises(InvalidInput, match="must not identify"):
            lifecycle.check_title(title, names)
    # A name inside another word is not the name.
    assert lifecycle.check_title("Dupontel technique", names) == "Dupontel technique"
    with i18n.using_locale("en"), pytest.raises(InvalidInput, match="3 to 200"):
        lifecycle.check_title("ab")


def test_broadcasting_or_recording_a_patient_needs_teaching_consent():
    refuse = lifecycle.broadcast_refusal
    assert refuse("broadcast", False, None, False) is None
    assert refuse("broadcast", False, 7, True) is None
    assert "cannot be broadcast" in (refuse("broadcast", False, 7, False) or "")
    assert "cannot be recorded" in (refuse("supervision", True, 7, False) or "")
    assert refuse("supervision", False, 7, False) is None
    assert refuse("conference", True, 7, True) is None
    assert "Choose supervision" in (refuse("party", False, None, False) or "")


def test_session_and_question_lifecycles():
    assert lifecycle.next_status("scheduled", "start") == "live"
    assert lifecycle.next_status("live", "end") == "ended"
    assert lifecycle.next_status("scheduled", "end") == "ended"
    for status, event in (("live", "start"), ("ended", "end"), ("ended", "start")):
        with pytest.raises(Conflict):
            lifecycle.next_status(status, event)
    move = chat.next_question_status
    assert move("submitted", "approve") == "approved"
    assert move("approved", "answer") == "answered"
    assert move("submitted", "merge") == "merged"
    for status, action in (
        ("answered", "reject"),
        ("rejected", "approve"),
        ("approved", "approve"),
    ):
        with pytest.raises(Conflict):
            move(status, action)


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


def test_websocket_frames_are_parsed_or_refused_with_a_reason():
    parse = protocol.parse_client_message
    assert parse('{"type": "chat", "body": " hi "}') == protocol.Chat("hi")
    stroke = parse(json.dumps({"type": "stroke", "points": [[0, 0.5], [1, 1]], "width": 4}))
    assert stroke == protocol.Stroke(((0.0, 0.5), (1.0, 1.0)), "#ffcc00", 4)
    merge = parse('{"type": "moderate", "question_id": 2, "action": "merge", "into": 1}')
    assert merge == protocol.Moderate(2, "merge", "", 1)
    refused = {
        "{not json": "not JSON",
        "[1]": "JSON object",
        '{"type": "dance"}': "type must be",
        '{"type": "chat", "body": ""}': "Write something first",
        '{"type": "chat", "body": 3}': "must be a string",
        '{"type": "stroke", "points": [[2, 0]]}': "within 0..1",
        '{"type": "stroke", "points": [[0, 0]], "color": "red"}': "#rrggbb",
        '{"type": "stroke", "points": []}': "points must be",
        '{"type": "moderate", "question_id": true, "action": "approve"}': "integer",
        '{"type": "moderate", "question_id": 1, "action": "answer"}': "Write the answer",
        '{"type": "moderate", "question_id": 1, "action": "merge"}': "into must be",
    }
    for frame, reason in refused.items():
        with i18n.using_locale("en"), pytest.raises(protocol.ProtocolError, match=reason):
            parse(frame)
    with i18n.using_locale("en"), pytest.raises(protocol.ProtocolError, match="at most 2000"):
        parse(json.dumps({"type": "chat", "body": "x" * 2001}))
    with pytest.raises(protocol.ProtocolError, match="larger"):
        parse("x" * (protocol.MAX_FRAME + 1))


def test_invitation_roles_decide_what_an_invitee_may_do():
    # Invitees of another site: the viewer watches, the director directs, nobody else does.
    invited = [(10, "viewer"), (11, "director"), (12, "moderator")]
    assert invitations.capable_users(invited, LiveAction.LIVE_JOIN) == {10, 11, 12}
    assert invitations.capable_users(invited, LiveAction.LIVE_DIRECT) == {11}
    assert invitations.capable_users(invited, LiveAction.LIVE_MODERATE) == {12}
    from concilium.platform.policy import Target

    def target(action: Action) -> Target:
        return Target(
            "live_session",
            "1",
            site_ids=frozenset({1}),
            shared_user_ids=frozenset({10, 11, 12}) & invitations.capable_users(invited, action),
        )

    briey_viewer = Principal(10, "v", {2: frozenset({"learner"})})
    briey_director = Principal(11, "d", {2: frozenset({"specialist"})})
    stranger = Principal(13, "s", {2: frozenset({"specialist"})})
    metz_learner = Principal(14, "l", {1: frozenset({"learner"})})
    assert decide(briey_viewer, LiveAction.LIVE_JOIN, target(LiveAction.LIVE_JOIN)).allowed
    assert not decide(briey_viewer, LiveAction.LIVE_DIRECT, target(LiveAction.LIVE_DIRECT)).allowed
    assert decide(briey_director, LiveAction.LIVE_DIRECT, target(LiveAction.LIVE_DIRECT)).allowed
    assert not decide(
        briey_director, LiveAction.LIVE_MANAGE, target(LiveAction.LIVE_MANAGE)
    ).allowed
    assert not decide(stranger, LiveAction.LIVE_READ, target(LiveAction.LIVE_READ)).allowed
    assert decide(metz_learner, LiveAction.LIVE_READ, target(LiveAction.LIVE_READ)).allowed
    assert not decide(metz_learner, LiveAction.LIVE_MANAGE, target(LiveAction.LIVE_MANAGE)).allowed


# --- on the database -----------------------------------------------------------------------


def _setup(world):
    doctor = world.user("metz-cardio", (world.metz, "specialist"))
    viewer = world.user("briey-student", (world.briey, "learner"))
    with transaction(world.runtime.sessions) as db:
        actor = audit.Actor(doctor.id, doctor.username)
        patient = patients.create_patient(
            db, actor, world.metz.id, "MTZ-7", patients.Demographics("Dupont", "Marie")
        )
        return doctor, viewer, patient.id


def test_a_broadcast_waits_for_the_patients_teaching_consent(world):
    doctor, _, patient_id = _setup(world)
    now = world.runtime.now()
    actor = audit.Actor(doctor.id, doctor.username)
    with transaction(world.runtime.sessions) as db:
        with i18n.using_locale("en"), pytest.raises(InvalidInput, match="identify the patient"):
            lifecycle.create_session(
                db,
                actor,
                kind="broadcast",
                title="Valve for Dupont",
                site_id=world.metz.id,
                scheduled_at=now,
                now=now,
                patient_id=patient_id,
            )
        live = lifecycle.create_session(
            db,
            actor,
            kind="broadcast",
            title="Transcatheter valve, live",
            site_id=world.metz.id,
            scheduled_at=now,
            now=now,
            patient_id=patient_id,
        )
        session_id = live.id
    with world.runtime.sessions() as db:
        live = lookup.get_session(db, session_id)
        with i18n.using_locale("en"), pytest.raises(Conflict, match="not consented to teaching"):
            lifecycle.start(db, actor, live, now, teaching_consent=False)
        db.commit()  # the refusal is kept, as the web adapter does
    with transaction(world.runtime.sessions) as db:
        patient = patients.get_patient(db, patient_id)
        patients.record_consent(db, actor, patient, "teaching", "granted", world.metz.id)
        live = lookup.get_session(db, session_id)
        assert live.status == "scheduled"
        lifecycle.start(
            db, actor, live, now, teaching_consent=patients.has_consent(db, patient_id, "teaching")
        )
        assert live.status == "live" and live.janus_room_id == lifecycle.ROOM_ID_BASE + live.id
    with world.runtime.sessions() as db:
        outcomes = db.execute(
            select(AuditEvent.outcome).where(AuditEvent.action == "live.start")
        ).scalars()
        assert list(outcomes) == ["refused", "success"]


def test_an_invitation_is_a_share_and_carries_a_role(world):
    doctor, viewer, _ = _setup(world)
    now = world.runtime.now()
    actor = audit.Actor(doctor.id, doctor.username)
    with transaction(world.runtime.sessions) as db:
        live = lifecycle.create_session(
            db,
            actor,
            kind="supervision",
            title="Coronary angioplasty",
            site_id=world.metz.id,
            scheduled_at=now + timedelta(hours=2),
            now=now,
        )
        invitations.invite(db, actor, live, user_id=viewer.id, role="viewer", now=now)
        invitations.invite(db, actor, live, user_id=viewer.id, role="director", now=now)
        with i18n.using_locale("en"), pytest.raises(InvalidInput, match=r"session's roles"):
            invitations.invite(db, actor, live, user_id=viewer.id, role="king", now=now)
        session_id = live.id
    with world.runtime.sessions() as db:
        live = lookup.get_session(db, session_id)
        rows = db.execute(select(LiveParticipant.user_id, LiveParticipant.role)).all()
        assert sorted(rows) == sorted([(doctor.id, "director"), (viewer.id, "director")])
        shares = db.execute(select(Share).where(Share.resource_kind == "live_session")).scalars()
        assert {s.to_user_id for s in shares} == {viewer.id}
        target = invitations.session_target(db, live, LiveAction.LIVE_DIRECT, now)
        assert target.shared_user_ids == {viewer.id}
        # The share lapses a day after the session: the invitation no longer opens it.
        later = now + timedelta(days=2)
        assert (
            invitations.session_target(db, live, LiveAction.LIVE_READ, later).shared_user_ids
            == set()
        )


def test_the_sessions_target_counts_the_owning_sites_staff_as_participants_for_drawing(world):
    doctor, viewer, _ = _setup(world)
    watcher = world.user("metz-student", (world.metz, "learner"))
    staff = world.user("metz-nurse", (world.metz, "learner"))
    now = world.runtime.now()
    actor = audit.Actor(doctor.id, doctor.username)
    with transaction(world.runtime.sessions) as db:
        live = lifecycle.create_session(
            db, actor, kind="broadcast", title="Valve, live", site_id=world.metz.id,
            scheduled_at=now, now=now,
        )  # fmt: skip
        invitations.invite(db, actor, live, user_id=watcher.id, role="viewer", now=now)
        invitations.invite(db, actor, live, user_id=viewer.id, role="presenter", now=now)
        drawing = invitations.session_target(db, live, LiveAction.LIVE_DRAW, now).shared_user_ids
        chatting = invitations.session_target(db, live, LiveAction.LIVE_CHAT, now).shared_user_ids
    # The organiser (director), the invited presenter and the staff member not invited draw;
    # the person of the site invited only to watch does not.
    assert drawing == {doctor.id, viewer.id, staff.id}
    assert chatting == {watcher.id, viewer.id}  # invitees; the staff chat by their site role


# --- with Janus and a camera ---------------------------------------------------------------


@pytest.mark.anyio
async def test_joining_mints_a_credential_for_the_session_room_and_leaving_revokes_it(
    world, media_server
):
    doctor, _, _ = await asyncio.to_thread(_setup, world)  # the database, off the loop
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
