"""Taking part in a live session on the media server: the session's Janus room (sized and
keyed by the session's kind), joining it with a short-lived media credential and leaving it,
and whether a viewer watches over WebRTC or HLS (``watches_over_hls``, a pure decision).

The media plane is asked first and the database touched after, from a worker thread: no
transaction (a write lock on SQLite) is held while Janus answers, nor waited for on the
event loop. Who may join and send is the policy's decision
(:func:`concilium.live.invitations.session_target`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.live.credentials import RoomCredential
from concilium.live.invitations import DEFAULT_ROLE, PUBLISHING_ROLES, RESOURCE_KIND, role_of
from concilium.live.media import LiveMedia
from concilium.live.rooms import RoomSpec
from concilium.live.tables import LiveParticipant, LiveSession
from concilium.platform import audit
from concilium.platform.errors import Conflict, InvalidInput
from concilium.platform.i18n import _

__all__ = [
    "CREDENTIAL_TTL",
    "ROOM_PUBLISHERS",
    "SIMULCAST_FIR_SECONDS",
    "SIMULCAST_KINDS",
    "JoinGrant",
    "ensure_room",
    "join",
    "leave",
    "room_spec",
    "watches_over_hls",
]

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
CREDENTIAL_TTL = 4 * 3600.0
"""Lifetime of a media credential minted at join, in seconds."""


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
    (:data:`concilium.live.actions.LiveAction.LIVE_PUBLISH`): only then does the credential
    send media.

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
