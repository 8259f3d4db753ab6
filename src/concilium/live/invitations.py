"""Who takes part in a live session and what they may do there: the roles of a session,
the invitations that give them, and the facts the policy decides on.

Who may do what is decided by :func:`concilium.platform.policy.decide`. The facts it needs
come from :func:`session_target`: the owning site, and the invitees whose role in the session
carries the action (an invitation is a share of the session to one person, with an expiry).
The decisions are pure functions of their inputs (``capable_users``, ``sharers``); the
functions taking a ``Session`` apply them, write the tables and the audit trail, and never
import the web layer. A new invitee is sent the invitation by e-mail
(:mod:`concilium.live.invitation_mail`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.live import invitation_mail
from concilium.live.actions import LiveAction
from concilium.live.tables import LiveParticipant, LiveSession
from concilium.platform import audit, sharing
from concilium.platform.errors import Conflict, InvalidInput, NotFound
from concilium.platform.i18n import _
from concilium.platform.policy import Action, Target
from concilium.platform.tables import Membership, Share, User

__all__ = [
    "BY_SESSION_ROLE",
    "DEFAULT_ROLE",
    "LEARNER",
    "PUBLISHING_ROLES",
    "RESOURCE_KIND",
    "ROLE_ACTIONS",
    "SESSION_ROLES",
    "WATCH_ONLY",
    "Invitation",
    "capable_users",
    "invitation_expiry",
    "invitations_of",
    "invite",
    "learners",
    "participants",
    "role_of",
    "session_target",
    "sharers",
]

SESSION_ROLES = ("director", "moderator", "presenter", "participant", "viewer")
"""Roles a person holds in one session (not their role at a site)."""
PUBLISHING_ROLES = frozenset({"director", "presenter", "participant"})
"""Roles that send media; a viewer or a moderator only receives."""
DEFAULT_ROLE = "participant"
"""The role in a session of a person of its owning site who was not invited."""
_TAKING_PART = frozenset({LiveAction.LIVE_READ, LiveAction.LIVE_JOIN, LiveAction.LIVE_CHAT})
_SENDING = frozenset({LiveAction.LIVE_DRAW, LiveAction.LIVE_PUBLISH})
ROLE_ACTIONS: Mapping[str, frozenset[Action]] = {
    "director": _TAKING_PART | _SENDING | {LiveAction.LIVE_DIRECT},
    "moderator": _TAKING_PART | {LiveAction.LIVE_MODERATE},
    "presenter": _TAKING_PART | _SENDING,
    "participant": _TAKING_PART | _SENDING,
    "viewer": _TAKING_PART,
}
"""What a role in a session lets its holder do there: an invitation in that role, or, for
the actions of :data:`BY_SESSION_ROLE`, the :data:`DEFAULT_ROLE` of the owning site's staff.
Those who send media (:data:`PUBLISHING_ROLES`) draw on the picture."""
BY_SESSION_ROLE = frozenset({LiveAction.LIVE_DRAW, LiveAction.LIVE_PUBLISH})
"""Actions the owning site's staff hold by their role in the session (their invitation's,
running or lapsed, else :data:`DEFAULT_ROLE`), whatever their role at the site: drawing
goes with sending media, and a person of the site invited only to watch does not draw."""
WATCH_ONLY = _SENDING | {LiveAction.LIVE_DIRECT}
"""Actions no learner holds by their role in a session that shows a patient, whatever the
role they were invited in: a learner watches a patient, sends nothing into the room, draws
nothing over the picture and directs nothing (program, cameras, sources)."""
LEARNER = "learner"
"""The site role of those who learn (``concilium.config.ROLES``)."""
RESOURCE_KIND = "live_session"
"""``resource_kind`` of the shares that carry invitations."""


# --- pure decisions ------------------------------------------------------------------------


def capable_users(participants: Iterable[tuple[int, str]], action: Action) -> frozenset[int]:
    """Invitees (user id, session role) whose role carries ``action``."""
    return frozenset(user for user, role in participants if action in ROLE_ACTIONS.get(role, ()))


def sharers(
    action: Action,
    invited: Mapping[int, str],
    shared_users: Iterable[int],
    staff: Iterable[int] = (),
) -> frozenset[int]:
    """Who a session counts as shared with for ``action``: the invitees (user id to role in
    the session) whose invitation runs (``shared_users``) and whose role carries it; for an
    action of :data:`BY_SESSION_ROLE`, also the owning site's ``staff`` whose role in the
    session (invited, else :data:`DEFAULT_ROLE`) carries it."""
    found = frozenset(shared_users) & capable_users(invited.items(), action)
    if action in BY_SESSION_ROLE:
        found |= capable_users(((u, invited.get(u, DEFAULT_ROLE)) for u in staff), action)
    return found


# --- participants and the policy's facts ---------------------------------------------------


def participants(db: Session, live: LiveSession) -> list[LiveParticipant]:
    return list(
        db.execute(
            select(LiveParticipant)
            .where(LiveParticipant.session_id == live.id)
            .order_by(LiveParticipant.id)
        ).scalars()
    )


def role_of(db: Session, live: LiveSession, user_id: int) -> str | None:
    """The user's role in the session, if invited."""
    return db.execute(
        select(LiveParticipant.role).where(
            LiveParticipant.session_id == live.id, LiveParticipant.user_id == user_id
        )
    ).scalar_one_or_none()


def session_target(db: Session, live: LiveSession, action: Action, now: datetime) -> Target:
    """The facts ``decide`` needs about a session for ``action`` (see :func:`sharers`)."""
    _sites, shared_users = sharing.active_share_targets(db, RESOURCE_KIND, str(live.id), now)
    invited = {p.user_id: p.role for p in participants(db, live)}
    staff = _site_staff(db, live.site_id) if action in BY_SESSION_ROLE else ()
    shared = sharers(action, invited, shared_users, staff)
    if action in WATCH_ONLY and live.patient_id is not None:
        shared -= learners(db, shared)
    return Target(
        kind=RESOURCE_KIND,
        id=str(live.id),
        site_ids=frozenset({live.site_id}),
        patient_id=live.patient_id,
        shared_user_ids=shared,
    )


def learners(db: Session, user_ids: Iterable[int]) -> frozenset[int]:
    """Of ``user_ids``, those who hold no role but :data:`LEARNER` (at any site)."""
    roles: dict[int, set[str]] = {}
    ids = list(user_ids)
    if not ids:
        return frozenset()
    rows = db.execute(
        select(Membership.user_id, Membership.role).where(Membership.user_id.in_(ids))
    ).all()
    for user_id, role in rows:
        roles.setdefault(user_id, set()).add(role)
    return frozenset(u for u, held in roles.items() if held == {LEARNER})


def _site_staff(db: Session, site_id: int) -> list[int]:
    """People holding any role at the site."""
    return list(
        db.execute(
            select(Membership.user_id).where(Membership.site_id == site_id).distinct()
        ).scalars()
    )


# --- invitations ---------------------------------------------------------------------------


def invitation_expiry(scheduled_at: datetime, now: datetime) -> datetime:
    """When an invitee's share of a session ends: a day after the session is due."""
    return max(scheduled_at, now) + timedelta(days=1)


def invite(
    db: Session,
    actor: audit.Actor,
    live: LiveSession,
    *,
    user_id: int,
    role: str,
    now: datetime,
) -> LiveParticipant:
    """Invite a person (of any site) in a role; inviting again changes the role.

    The invitation is also a share of the session to that person, lasting until a day after
    the session is due, so the policy lets an invitee of another site in and no longer;
    inviting oneself (an organiser taking a part) adds the part and no share. A new invitee
    is sent the invitation by e-mail, with the session for their calendar (`invitation_mail`).
    """
    if role not in SESSION_ROLES:
        raise InvalidInput(_("Choose one of the session's roles."))
    invitee = db.get(User, user_id)
    if invitee is None or invitee.disabled:
        raise NotFound(_("This person has no active account."))
    if live.status == "ended":
        raise Conflict(_("This session has ended."))
    expires_at = invitation_expiry(live.scheduled_at, now)
    if expires_at - now > timedelta(days=365):
        raise InvalidInput(_("Invitations are sent at most a year before the session."))
    # Whoever invites takes their own part through the rights they already hold: a share
    # widens someone else's access, never its granter's (`sharing.create_share`).
    share = None
    if user_id != actor.user_id:
        share = sharing.create_share(
            db,
            actor,
            resource_kind=RESOURCE_KIND,
            resource_id=str(live.id),
            to_site_id=None,
            to_user_id=user_id,
            expires_at=expires_at,
            now=now,
            reason=f"invited as {role}",
            patient_id=live.patient_id,
        )
    found = db.execute(
        select(LiveParticipant).where(
            LiveParticipant.session_id == live.id, LiveParticipant.user_id == user_id
        )
    ).scalar_one_or_none()
    newly_invited = found is None
    if found is None:
        found = LiveParticipant(
            session_id=live.id,
            user_id=user_id,
            role=role,
            invited_by_id=actor.user_id or 0,
            invited_at=now,
        )
        db.add(found)
    found.role = role
    found.share_id = share.id if share is not None else None
    db.flush()
    audit.record(
        db,
        actor,
        "live.invite",
        "success",
        object_kind=RESOURCE_KIND,
        object_id=live.id,
        patient_id=live.patient_id,
        detail={"user": user_id, "role": role},
    )
    if newly_invited:
        invitation_mail.invited(db, live, found, now)
    return found


@dataclass(frozen=True)
class Invitation:
    """A session a person is invited to, and their role in it."""

    session: LiveSession
    role: str


def invitations_of(
    db: Session, user_id: int, now: datetime, *, since: datetime | None = None
) -> list[Invitation]:
    """The sessions ``user_id`` is invited to that are live, or scheduled from ``since`` on
    (by default ``now``; a page gives the start of the reader's day), soonest first. An
    invitation whose share was revoked or has expired at ``now`` is no longer one."""
    since = now if since is None else since
    rows = db.execute(
        select(LiveSession, LiveParticipant.role, LiveParticipant.share_id)
        .join(LiveParticipant, LiveParticipant.session_id == LiveSession.id)
        .where(
            LiveParticipant.user_id == user_id,
            LiveSession.status != "ended",
            (LiveSession.status == "live") | (LiveSession.scheduled_at >= since),
        )
        .order_by(LiveSession.scheduled_at, LiveSession.id)
    ).all()
    found: list[Invitation] = []
    for live, role, share_id in rows:
        share = db.get(Share, share_id) if share_id is not None else None
        if share is not None and (share.revoked_at is not None or share.expires_at <= now):
            continue
        found.append(Invitation(live, role))
    return found
