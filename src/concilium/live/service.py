"""Live sessions as the platform sees them: schedule, invite, go live, join, leave, end;
the sources they show.

Architecture "Data flows" 2 (live supervision / broadcast). The decisions are pure functions
of their inputs (``check_title``, ``broadcast_refusal``, ``next_status``, ``capable_users``,
``sharers``, ``watches_over_hls``); the functions taking a ``Session`` apply them, write the
tables and the audit trail, and never import the web layer. Chat and questions are in
:mod:`concilium.live.chat`, telestration in :mod:`concilium.live.telestration`, the cameras
and their director in :mod:`concilium.live.direction`; going live and ending with
everything that goes with it in :mod:`concilium.live.sessions`.

Who may do what is decided by :func:`concilium.platform.policy.decide`. The facts it needs
come from :func:`session_target`: the owning site, and the invitees whose role in the session
carries the action (an invitation is a share of the session to one person, with an expiry).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.live import endpoints, invitation_mail
from concilium.live.actions import LiveAction
from concilium.live.credentials import RoomCredential
from concilium.live.endpoints import Network
from concilium.live.media import LiveMedia
from concilium.live.rooms import RoomSpec
from concilium.live.tables import (
    LiveParticipant,
    LiveSession,
    LiveSource,
)
from concilium.platform import audit, sharing
from concilium.platform.encryption import SecretBox
from concilium.platform.errors import Conflict, Forbidden, InvalidInput, NotFound
from concilium.platform.i18n import N_, _
from concilium.platform.policy import Action, Target
from concilium.platform.tables import Membership, Patient, Share, User

__all__ = [
    "BY_SESSION_ROLE",
    "DEFAULT_ROLE",
    "KINDS",
    "ROLE_ACTIONS",
    "ROOM_ID_BASE",
    "ROOM_PUBLISHERS",
    "SESSION_ROLES",
    "SIMULCAST_KINDS",
    "CineGrant",
    "JoinGrant",
    "broadcast_refusal",
    "capable_users",
    "check_title",
    "next_status",
    "session_target",
    "sharers",
    "watches_over_hls",
]

KINDS = ("supervision", "broadcast", "conference")
"""Supervision of a procedure by remote experts, broadcast to an audience, conference."""
STATUSES = ("scheduled", "live", "ended")
SESSION_ROLES = ("director", "moderator", "presenter", "participant", "viewer")
"""Roles a person holds in one session (not their role at a site)."""
SOURCE_KINDS = ("camera", "capture", "screen", "ip_camera", "dicom_cine")
ROOM_PUBLISHERS = {"supervision": 6, "broadcast": 12, "conference": 30}
"""Most media senders in a session's room, by kind: a cath lab's capture device and room
camera with the expert; an operating room's six cameras with the team's tablets; a
multidisciplinary meeting of about twenty doctors, each with camera and microphone, with
room for latecomers and shared screens. Janus refuses one more with its own error (432)."""
SIMULCAST_KINDS = frozenset({"conference"})
"""Kinds whose participants send their camera in three simulcast layers: everyone sees
everyone, as small tiles (the lowest layer) around the one on the stage (the highest), so
each participant receives a fraction of what full pictures would cost. Supervision and
broadcasts send one full-quality stream, the one recorded and packaged for the audience."""
SIMULCAST_FIR_SECONDS = 3
"""Keyframe request period of a simulcast room: a tile put on the stage reaches the highest
layer at the next keyframe (see ``RoomSpec.fir_freq``)."""
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
ROOM_ID_BASE = 10_000_000
"""Janus room ids of live sessions are this plus the session id (stable across restarts)."""
CREDENTIAL_TTL = 4 * 3600.0
"""Lifetime of a media credential minted at join, in seconds."""
RESOURCE_KIND = "live_session"
"""``resource_kind`` of the shares that carry invitations."""

# --- pure decisions ------------------------------------------------------------------------


def check_title(title: str, patient_names: Iterable[str] = ()) -> str:
    """A session title, trimmed; refused when it names the patient shown.

    Titles are seen by every invitee and appear in lists, so they must carry no identity:
    any of the patient's names (or hospital numbers) as a whole word refuses the title.
    """
    title = " ".join(title.split())
    if not 3 <= len(title) <= 200:
        raise InvalidInput(_("A title has 3 to 200 characters."))
    lowered = title.lower()
    for name in patient_names:
        name = name.strip().lower()
        if len(name) >= 2 and re.search(rf"(?<!\w){re.escape(name)}(?!\w)", lowered):
            raise InvalidInput(
                _("The title must not identify the patient: describe the procedure instead.")
            )
    return title


def broadcast_refusal(
    kind: str, record: bool, patient_id: int | None, teaching_consent: bool
) -> str | None:
    """Why a session may not start, or None.

    A broadcast, or any recording, of a session showing a patient is a teaching use of their
    images: it needs the patient's standing teaching consent. Supervision and conferences
    without recording are care, covered by the care relationship.
    """
    if kind not in KINDS:
        return N_("Choose supervision, broadcast or conference.")
    if patient_id is None or teaching_consent:
        return None
    if kind == "broadcast":
        return N_("The patient has not consented to teaching: this session cannot be broadcast.")
    if record:
        return N_("The patient has not consented to teaching: this session cannot be recorded.")
    return None


def next_status(status: str, event: str) -> str:
    """Session lifecycle: ``start`` takes a scheduled session live, ``end`` ends it."""
    if event == "start" and status == "scheduled":
        return "live"
    if event == "end" and status in ("scheduled", "live"):
        return "ended"
    if status == "ended":
        raise Conflict(_("This session has ended."))
    if event == "start":
        raise Conflict(_("This session is already live."))
    raise Conflict(_("This session cannot end before it is scheduled."))


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


# --- sessions ------------------------------------------------------------------------------


def find_session(db: Session, session_id: int) -> LiveSession | None:
    """The session of this id, if there is one."""
    return db.get(LiveSession, session_id)


def get_session(db: Session, session_id: int) -> LiveSession:
    """The session of this id; :class:`NotFound` otherwise."""
    live = find_session(db, session_id)
    if live is None:
        raise NotFound(_("No such live session."))
    return live


def participants(db: Session, live: LiveSession) -> list[LiveParticipant]:
    return list(
        db.execute(
            select(LiveParticipant)
            .where(LiveParticipant.session_id == live.id)
            .order_by(LiveParticipant.id)
        ).scalars()
    )


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


def role_of(db: Session, live: LiveSession, user_id: int) -> str | None:
    """The user's role in the session, if invited."""
    return db.execute(
        select(LiveParticipant.role).where(
            LiveParticipant.session_id == live.id, LiveParticipant.user_id == user_id
        )
    ).scalar_one_or_none()


def _patient_names(db: Session, patient_id: int) -> list[str]:
    patient = db.get(Patient, patient_id)
    if patient is None:
        raise NotFound(_("No such patient."))
    return [
        patient.family_name,
        patient.given_name,
        *(i.value for i in patient.identifiers),
    ]


def create_session(
    db: Session,
    actor: audit.Actor,
    *,
    kind: str,
    title: str,
    site_id: int,
    scheduled_at: datetime,
    now: datetime,
    patient_id: int | None = None,
    record: bool = False,
) -> LiveSession:
    """Schedule a session; its creator directs it until they invite someone else."""
    if kind not in KINDS:
        raise InvalidInput(_("Choose supervision, broadcast or conference."))
    if actor.user_id is None:
        raise InvalidInput(_("A live session is created by a person, not by the system."))
    names = _patient_names(db, patient_id) if patient_id is not None else []
    live = LiveSession(
        kind=kind,
        title=check_title(title, names),
        site_id=site_id,
        scheduled_at=scheduled_at,
        status="scheduled",
        patient_id=patient_id,
        record=record,
        created_by_id=actor.user_id,
        created_at=now,
    )
    db.add(live)
    db.flush()
    db.add(
        LiveParticipant(
            session_id=live.id,
            user_id=actor.user_id,
            role="director",
            invited_by_id=actor.user_id,
            invited_at=now,
        )
    )
    db.flush()
    audit.record(
        db,
        actor,
        "live.create",
        "success",
        object_kind=RESOURCE_KIND,
        object_id=live.id,
        patient_id=patient_id,
        site_id=site_id,
        detail={"kind": kind, "record": record, "scheduled_at": scheduled_at.isoformat()},
    )
    return live


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


def start(
    db: Session, actor: audit.Actor, live: LiveSession, now: datetime, *, teaching_consent: bool
) -> LiveSession:
    """Take a session live; refused with the reason when the patient did not consent."""
    refusal = broadcast_refusal(live.kind, live.record, live.patient_id, teaching_consent)
    if refusal is not None:
        audit.record(
            db,
            actor,
            "live.start",
            "refused",
            object_kind=RESOURCE_KIND,
            object_id=live.id,
            patient_id=live.patient_id,
            detail={"reason": refusal},
        )
        raise Conflict(_(refusal))
    live.status = next_status(live.status, "start")
    live.started_at = now
    live.janus_room_id = ROOM_ID_BASE + live.id
    audit.record(
        db,
        actor,
        "live.start",
        "success",
        object_kind=RESOURCE_KIND,
        object_id=live.id,
        patient_id=live.patient_id,
        detail={"room": live.janus_room_id, "record": live.record},
    )
    return live


def end(db: Session, actor: audit.Actor, live: LiveSession, now: datetime) -> LiveSession:
    """End a session (scheduled sessions are cancelled the same way, and their invitees'
    calendars told so by e-mail)."""
    was_scheduled = live.status == "scheduled"
    live.status = next_status(live.status, "end")
    live.ended_at = now
    audit.record(
        db,
        actor,
        "live.end",
        "success",
        object_kind=RESOURCE_KIND,
        object_id=live.id,
        patient_id=live.patient_id,
    )
    if was_scheduled:
        invitation_mail.cancelled(db, live, actor.user_id, now)
    return live


def check_cancellable(live: LiveSession) -> None:
    """Refuse to call off a session that has gone live or ended (ending a live session is
    a separate act, :func:`end`)."""
    if live.status != "scheduled":
        raise Conflict(_("Only a session that has not started can be called off."))


def reschedule(
    db: Session,
    actor: audit.Actor,
    live: LiveSession,
    *,
    scheduled_at: datetime,
    now: datetime,
    title: str | None = None,
) -> LiveSession:
    """Move a scheduled session (and retitle it) to a time to come: its invitees'
    calendars are updated."""
    if live.status != "scheduled":
        raise Conflict(_("Only a session that has not started can be moved."))
    if scheduled_at.utcoffset() is None:
        raise InvalidInput("scheduled_at must carry a time zone")
    if scheduled_at < now:
        raise InvalidInput(_("This time has already passed: choose a later one."))
    if title is not None:
        names = _patient_names(db, live.patient_id) if live.patient_id is not None else []
        live.title = check_title(title, names)
    previous = live.scheduled_at
    live.scheduled_at = scheduled_at
    # An invitee of another site is let in by a share lasting until a day after the session.
    for participant in participants(db, live):
        share = db.get(Share, participant.share_id) if participant.share_id else None
        if share is not None and share.revoked_at is None:
            share.expires_at = invitation_expiry(scheduled_at, now)
    db.flush()
    audit.record(
        db,
        actor,
        invitation_mail.RESCHEDULE_ACTION,
        "success",
        object_kind=RESOURCE_KIND,
        object_id=live.id,
        patient_id=live.patient_id,
        site_id=live.site_id,
        detail={"from": previous.isoformat(), "to": scheduled_at.isoformat()},
    )
    invitation_mail.rescheduled(db, live, actor.user_id, now)
    return live


def watches_over_hls(
    kind: str, role: str, webrtc_receivers: int | None, webrtc_viewers: int
) -> bool:
    """Whether a person's watch page plays the program over HLS rather than WebRTC.

    Only a broadcast has an HLS output, and only its viewers may be sent there: the
    interactive roles talk with the team and follow the director's switches at once. A viewer
    stays on WebRTC, well under a second behind, while fewer than ``webrtc_viewers`` people
    receive the room (``webrtc_receivers``; None when no media server runs, so HLS); the
    audience beyond watches HLS, which a cache serves at any size.
    """
    if kind != "broadcast" or role != "viewer":
        return False
    return webrtc_receivers is None or webrtc_receivers >= webrtc_viewers


def room_spec(live: LiveSession) -> RoomSpec:
    """The Janus room of a live session."""
    if live.janus_room_id is None:
        raise Conflict(_("This session is not live."))
    return RoomSpec(
        live.janus_room_id,
        description=f"session {live.id}",
        publishers=ROOM_PUBLISHERS[live.kind],
        record=live.record,
        fir_freq=SIMULCAST_FIR_SECONDS if live.kind in SIMULCAST_KINDS else RoomSpec.fir_freq,
    )


async def ensure_room(media: LiveMedia, live: LiveSession) -> int:
    """Create the session's room on Janus unless it is there (after a Concilium restart the
    registry is empty while the session is still live)."""
    spec = room_spec(live)
    if spec.room_id not in media.registry.rooms:
        await media.create_room(spec)
    return spec.room_id


@dataclass(frozen=True)
class JoinGrant:
    """What a person receives when joining: their role and a media credential."""

    role: str
    """Role in the session (site staff not invited join as ``participant``)."""
    may_publish: bool
    """Whether their page sends a camera or a screen."""
    credential: RoomCredential
    """Short-lived Janus credential for the session's room only."""
    simulcast: bool = False
    """Whether their camera goes in simulcast layers (:data:`SIMULCAST_KINDS`)."""


async def join(
    db: Session,
    media: LiveMedia,
    actor: audit.Actor,
    live: LiveSession,
    now: datetime,
    *,
    may_publish: bool,
    ttl: float = CREDENTIAL_TTL,
) -> JoinGrant:
    """Join a live session: mint a credential for its room, then note the arrival.

    ``may_publish`` is the policy's ``live.publish`` decision for this person and session
    (:data:`LiveAction.LIVE_PUBLISH`): only then does the credential send media.

    The media plane is asked first and the database touched after: no transaction (a write
    lock on SQLite) is held while Janus answers.
    """
    if live.status != "live":
        raise Conflict(
            _("This session has ended.")
            if live.status == "ended"
            else _("This session is not live yet.")
        )
    if actor.user_id is None:
        raise InvalidInput(_("A person joins a session, not the system."))
    room_id = await ensure_room(media, live)
    credential = await media.issue(str(actor.user_id), room_id, ttl=ttl)
    # The database is touched from a worker thread: on SQLite a transaction may wait for
    # the write lock when it begins, which must never happen on the event loop.
    role = await asyncio.to_thread(_note_join, db, actor, actor.user_id, live, now)
    return JoinGrant(
        role,
        may_publish and role in PUBLISHING_ROLES,
        credential,
        simulcast=live.kind in SIMULCAST_KINDS,
    )


def _note_join(
    db: Session, actor: audit.Actor, user_id: int, live: LiveSession, now: datetime
) -> str:
    role = role_of(db, live, user_id) or DEFAULT_ROLE
    found = db.execute(
        select(LiveParticipant).where(
            LiveParticipant.session_id == live.id, LiveParticipant.user_id == actor.user_id
        )
    ).scalar_one_or_none()
    if found is not None:
        found.joined_at, found.left_at = now, None
    audit.record(
        db,
        actor,
        "live.join",
        "success",
        object_kind=RESOURCE_KIND,
        object_id=live.id,
        patient_id=live.patient_id,
        detail={"role": role},
    )
    return role


async def leave(
    db: Session, media: LiveMedia | None, actor: audit.Actor, live: LiveSession, now: datetime
) -> int:
    """Leave: every media credential of this person for the session's room is revoked (on
    Janus first, before any database work, as in :func:`join`)."""
    revoked = 0
    if media is not None and live.janus_room_id is not None:
        mine = [
            c.token
            for c in media.book.credentials.values()
            if c.room_id == live.janus_room_id and c.user_id == str(actor.user_id)
        ]
        for token in mine:
            if await media.revoke(token) is not None:
                revoked += 1
    await asyncio.to_thread(_note_leave, db, actor, live, now)  # off the loop, as in join
    return revoked


def _note_leave(db: Session, actor: audit.Actor, live: LiveSession, now: datetime) -> None:
    found = db.execute(
        select(LiveParticipant).where(
            LiveParticipant.session_id == live.id, LiveParticipant.user_id == actor.user_id
        )
    ).scalar_one_or_none()
    if found is not None:
        found.left_at = now
    audit.record(db, actor, "live.leave", "success", object_kind=RESOURCE_KIND, object_id=live.id)


def list_sessions(
    db: Session, site_ids: frozenset[int], invited_ids: frozenset[str]
) -> list[LiveSession]:
    """Sessions of these sites, and sessions the caller is invited to, soonest first."""
    ids = [int(i) for i in invited_ids if i.isdigit()]
    query = select(LiveSession).where(LiveSession.site_id.in_(site_ids) | LiveSession.id.in_(ids))
    return list(db.execute(query.order_by(LiveSession.scheduled_at)).scalars())


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


def patient_sessions(db: Session, patient_id: int) -> list[LiveSession]:
    """The sessions showing this patient, newest first (the caller asks the policy about
    each with :func:`session_target`)."""
    query = select(LiveSession).where(LiveSession.patient_id == patient_id)
    return list(
        db.execute(query.order_by(LiveSession.scheduled_at.desc(), LiveSession.id.desc())).scalars()
    )


# --- sources -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CineGrant:
    """Proof that a cine loop was authorised for the person adding it
    (:func:`concilium.live.sources.authorize_cine`): they may read its study, and its
    patient is the session's or has consented to teaching."""

    reference: str
    user_id: int


def add_source(
    db: Session,
    actor: audit.Actor,
    live: LiveSession,
    *,
    name: str,
    kind: str,
    reference: str,
    networks: Sequence[Network] = (),
    box: SecretBox | None = None,
    cine: CineGrant | None = None,
) -> LiveSource:
    """Name a picture the director may put on program.

    An IP camera's URL must be one the server may call (:func:`endpoints.check_stream_url`
    with the installation's device ``networks``); its credentials are sealed with ``box``
    and only the masked URL is kept readable. A cine loop needs the ``cine`` grant of the
    acting person for this very reference.
    """
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidInput(_("A source name has 1 to 100 characters."))
    if kind not in SOURCE_KINDS:
        raise InvalidInput(_("Choose a kind of source from the list."))
    reference = reference.strip()
    sealed: str | None = None
    if kind == "ip_camera":
        url = endpoints.check_stream_url(reference, networks)
        reference = endpoints.mask_credentials(url)
        if reference != url:
            if box is None:
                raise InvalidInput(_("Camera credentials cannot be kept on this server."))
            sealed = box.seal(url, sealed_url_context(live.id))
    if kind == "dicom_cine":
        if not re.match(r"^[0-9.]+/[0-9.]+(/[0-9.]+)?$", reference):
            raise InvalidInput(
                _("A DICOM cine loop is named 'study UID/series UID[/instance UID]'.")
            )
        if cine is None or cine.reference != reference or cine.user_id != actor.user_id:
            raise Forbidden(_("A cine loop is shown only by someone it was authorised for."))
    source = LiveSource(
        session_id=live.id,
        name=name,
        kind=kind,
        reference=reference[:500],
        sealed_url=sealed,
        added_by_id=actor.user_id,
    )
    db.add(source)
    db.flush()
    audit.record(
        db,
        actor,
        "live.source.add",
        "success",
        object_kind=RESOURCE_KIND,
        object_id=live.id,
        detail={"source": source.id, "kind": kind},
    )
    return source


def sealed_url_context(session_id: int) -> str:
    """What a camera URL's sealing is bound to: it opens for its own session only."""
    return f"live-source:{session_id}"


def source_url(source: LiveSource, box: SecretBox | None) -> str:
    """The URL the server calls for an IP camera, credentials included."""
    if source.sealed_url is None:
        return source.reference
    if box is None:
        raise InvalidInput(_("Camera credentials cannot be opened on this server."))
    return box.open(source.sealed_url, sealed_url_context(source.session_id))


def seal_clear_credentials(db: Session, box: SecretBox) -> int:
    """Seal the credentials of camera URLs written in clear (before they were sealed);
    how many were."""
    sealed = 0
    clear = select(LiveSource).where(
        LiveSource.kind == "ip_camera", LiveSource.sealed_url.is_(None)
    )
    for source in db.execute(clear).scalars():
        masked = endpoints.mask_credentials(source.reference)
        if masked != source.reference:
            source.sealed_url = box.seal(source.reference, sealed_url_context(source.session_id))
            source.reference = masked
            sealed += 1
    return sealed


def sources(db: Session, live: LiveSession) -> list[LiveSource]:
    return list(
        db.execute(
            select(LiveSource).where(LiveSource.session_id == live.id).order_by(LiveSource.id)
        ).scalars()
    )
