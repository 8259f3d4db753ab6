"""Invitations and the roles of a session: what a role lets an invitee do, an invitation as
a share of the session, and the facts the policy decides on, on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from concilium.live import invitations, lifecycle, lookup
from concilium.live.actions import LiveAction
from concilium.live.tables import LiveParticipant
from concilium.platform import audit, i18n
from concilium.platform.db import transaction
from concilium.platform.errors import InvalidInput
from concilium.platform.policy import Action, Principal, decide
from concilium.platform.tables import Share

from .sessions import people_and_patient

# --- pure decisions ------------------------------------------------------------------------


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


def test_an_invitation_is_a_share_and_carries_a_role(world):
    doctor, viewer, _ = people_and_patient(world)
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
    doctor, viewer, _ = people_and_patient(world)
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
