"""Who may chat, draw and moderate in a session: the policy alone answers, from the facts the
session gives it (``invitations.sharers``, as ``invitations.session_target`` gathers them)."""

from __future__ import annotations

import itertools

from concilium.live import invitations
from concilium.live.actions import LiveAction
from concilium.platform.policy import Action, Principal, Target, actions_of, decide

METZ, BRIEY = 1, 2
"""The session belongs to Metz; Briey is another site."""


def allowed(
    principal: Principal,
    action: Action,
    invited: dict[int, str],
    *,
    running: bool = True,
    staff: frozenset[int] = frozenset(),
) -> bool:
    """What ``decide`` says about a Metz session where ``invited`` maps people to their role
    (their invitation running or lapsed) and ``staff`` hold a role at Metz."""
    shared = frozenset(invited) if running else frozenset()
    target = Target(
        "live_session",
        "1",
        site_ids=frozenset({METZ}),
        shared_user_ids=invitations.sharers(action, invited, shared, staff),
    )
    return decide(principal, action, target).allowed


def person(user_id: int, site: int, role: str, scopes: frozenset[str] | None = None) -> Principal:
    return Principal(user_id, f"u{user_id}", {site: frozenset({role})}, scopes=scopes)


def test_whoever_may_join_may_chat_a_viewer_too() -> None:
    briey_viewer = person(10, BRIEY, "learner")
    metz_learner = person(11, METZ, "learner")
    stranger = person(12, BRIEY, "specialist")
    invited = {10: "viewer"}
    assert allowed(briey_viewer, LiveAction.LIVE_CHAT, invited)
    assert allowed(metz_learner, LiveAction.LIVE_CHAT, invited)  # staff of the owning site
    assert not allowed(stranger, LiveAction.LIVE_CHAT, invited)
    # A lapsed invitation no longer lets one in, nor chat.
    assert not allowed(briey_viewer, LiveAction.LIVE_CHAT, invited, running=False)
    # A token without the live:join scope does not chat, whatever the role.
    token = person(11, METZ, "learner", scopes=frozenset({"live:read"}))
    assert not allowed(token, LiveAction.LIVE_CHAT, invited)


def test_those_who_send_media_or_direct_draw_and_the_audience_does_not() -> None:
    staff = frozenset({20, 21, 22, 23})
    invited = {21: "viewer", 22: "moderator", 23: "moderator", 30: "presenter", 31: "viewer"}
    metz_tech = person(20, METZ, "technologist")  # directs by site role, not invited
    metz_watcher = person(21, METZ, "learner")  # of the site, invited only to watch
    metz_moderator = person(22, METZ, "learner")
    metz_coordinator = person(23, METZ, "coordinator")  # moderates, and directs by role
    briey_presenter = person(30, BRIEY, "specialist")
    briey_viewer = person(31, BRIEY, "learner")
    metz_learner = person(24, METZ, "learner")  # not invited: takes part as a participant

    def draws(who: Principal, running: bool = True) -> bool:
        everyone = staff | {24}
        return allowed(who, LiveAction.LIVE_DRAW, invited, running=running, staff=everyone)

    assert draws(metz_tech)
    assert draws(metz_learner)
    assert draws(metz_coordinator)
    assert draws(briey_presenter)
    assert not draws(metz_watcher)
    assert not draws(metz_moderator)
    assert not draws(briey_viewer)
    # A lapsed invitation: the presenter of another site is out; the site's own staff keep
    # the role the invitation gave them in this session.
    assert not draws(briey_presenter, running=False)
    assert not draws(metz_watcher, running=False)
    assert draws(metz_learner, running=False)


def test_moderators_by_invitation_or_by_organising_role_moderate() -> None:
    invited = {40: "moderator", 41: "director", 42: "viewer"}
    assert allowed(person(40, BRIEY, "learner"), LiveAction.LIVE_MODERATE, invited)
    assert not allowed(person(41, BRIEY, "learner"), LiveAction.LIVE_MODERATE, invited)
    assert not allowed(person(42, METZ, "learner"), LiveAction.LIVE_MODERATE, invited)
    assert allowed(person(43, METZ, "coordinator"), LiveAction.LIVE_MODERATE, invited)
    assert not allowed(person(44, METZ, "technologist"), LiveAction.LIVE_MODERATE, invited)
    assert not allowed(
        person(40, BRIEY, "learner"), LiveAction.LIVE_MODERATE, invited, running=False
    )


SITE_ROLES = ("learner", "technologist", "coordinator", "specialist")
SESSION_ROLES = (None, *invitations.SESSION_ROLES)


def test_chat_and_drawing_grant_exactly_what_joining_and_sending_media_granted() -> None:
    """Chat goes with joining; drawing with directing or a session role that sends media
    (site staff not invited count as participants), for whoever may see the session."""
    cases = itertools.product((METZ, BRIEY), SITE_ROLES, SESSION_ROLES, (True, False))
    for site, site_role, session_role, running in cases:
        who = person(7, site, site_role)
        invited = {7: session_role} if session_role is not None else {}
        facts = {"running": running, "staff": frozenset({7}) if site == METZ else frozenset()}
        may = {a: allowed(who, a, invited, **facts) for a in actions_of(LiveAction)}
        sends_media = (session_role or invitations.DEFAULT_ROLE) in invitations.PUBLISHING_ROLES
        case = (site, site_role, session_role, running)
        assert may[LiveAction.LIVE_CHAT] == may[LiveAction.LIVE_JOIN], case
        assert may[LiveAction.LIVE_DRAW] == (
            may[LiveAction.LIVE_READ] and (may[LiveAction.LIVE_DIRECT] or sends_media)
        ), case


def test_the_roles_that_draw_are_the_roles_that_send_media() -> None:
    drawing = {
        r for r, carried in invitations.ROLE_ACTIONS.items() if LiveAction.LIVE_DRAW in carried
    }
    assert drawing == invitations.PUBLISHING_ROLES
    chatting = {
        r for r, carried in invitations.ROLE_ACTIONS.items() if LiveAction.LIVE_CHAT in carried
    }
    assert chatting == set(invitations.SESSION_ROLES)
