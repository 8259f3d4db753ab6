"""Short-lived per-user, per-room credentials for the Janus media plane.

A credential is one random token enforced twice by Janus itself:

1. as a **stored token** of the core (Admin API ``add_token`` with ``plugins`` limited to the
   VideoRoom plugin and the Streaming plugin, Janus "Authenticating the Janus API" chapter):
   without it Janus refuses to create a session or attach a handle (error 403). Streaming
   mountpoints carry no allowed list: the proxy lets a browser ``watch`` only the mountpoints
   of its own session's sources (``live.web.check_janus_request``);
2. in the room's **allowed list** (VideoRoom ``allowed`` request): without it the VideoRoom
   plugin refuses the ``join`` (error 433), so a token of room A does not open room B.

Stored tokens alone are scoped to plugins, not rooms; room lists alone would leave the Janus
API open to anyone. Signed (HMAC) tokens would expire by themselves but cannot be scoped to a
room either. Janus stored tokens never expire, so :class:`CredentialBook` keeps the expiry and
``sweep`` revokes what has lapsed. The book is pure (time is passed in); the async functions
apply its decisions to Janus.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from concilium.live.janus_client import STREAMING, VIDEOROOM, JanusAdmin
from concilium.live.rooms import RoomRegistry, VideoRoomAdmin

BROWSER_PLUGINS = (VIDEOROOM, STREAMING)
"""Janus plugins a browser's credential may attach to."""

__all__ = [
    "MAX_TTL",
    "CredentialBook",
    "RoomCredential",
    "issue_credential",
    "restore_credentials",
    "revoke_credential",
    "sweep_credentials",
]

MAX_TTL = 12 * 3600.0
"""Longest lifetime of a credential, in seconds (one long operating list)."""


@dataclass(frozen=True)
class RoomCredential:
    """What a browser receives to join one room as one user."""

    token: str = field(repr=False)
    """Random token passed as ``token`` in every Janus request and in the VideoRoom join."""
    user_id: str
    """Concilium user the credential was minted for."""
    room_id: int
    """The only room the credential opens."""
    issued_at: float
    """When it was minted (seconds since the epoch)."""
    expires_at: float
    """When Concilium revokes it (seconds since the epoch)."""

    def expired(self, now: float) -> bool:
        """Whether the credential has lapsed at ``now``."""
        return now >= self.expires_at


@dataclass
class CredentialBook:
    """Credentials currently valid, by token. Pure: every method takes ``now``."""

    credentials: dict[str, RoomCredential] = field(default_factory=dict)
    """Live credentials by token."""

    def mint(self, user_id: str, room_id: int, now: float, ttl: float) -> RoomCredential:
        """Create and record a credential for ``user_id`` in ``room_id`` valid ``ttl`` s."""
        if not user_id:
            raise ValueError("user_id must not be empty")
        if not 0 < ttl <= MAX_TTL:
            raise ValueError(f"ttl must be in (0, {MAX_TTL:.0f}] seconds, got {ttl}")
        credential = RoomCredential(
            token=secrets.token_urlsafe(24),
            user_id=user_id,
            room_id=room_id,
            issued_at=now,
            expires_at=now + ttl,
        )
        self.credentials[credential.token] = credential
        return credential

    def forget(self, token: str) -> RoomCredential | None:
        """Remove a credential; None if it was unknown."""
        return self.credentials.pop(token, None)

    def expired(self, now: float) -> list[RoomCredential]:
        """Credentials that have lapsed at ``now``, oldest first."""
        lapsed = [c for c in self.credentials.values() if c.expired(now)]
        return sorted(lapsed, key=lambda c: c.expires_at)

    def valid(self, now: float) -> list[RoomCredential]:
        """Credentials still valid at ``now``."""
        return [c for c in self.credentials.values() if not c.expired(now)]


async def issue_credential(
    book: CredentialBook,
    registry: RoomRegistry,
    admin: JanusAdmin,
    videoroom: VideoRoomAdmin,
    *,
    user_id: str,
    room_id: int,
    now: float,
    ttl: float,
) -> RoomCredential:
    """Mint a credential and make Janus accept it for ``room_id`` only."""
    spec = registry.rooms.get(room_id)
    if spec is None:
        raise KeyError(f"room {room_id} is not registered")
    credential = book.mint(user_id, room_id, now, ttl)
    await admin.add_token(credential.token, plugins=BROWSER_PLUGINS)
    await videoroom.allow(spec, [credential.token])
    registry.allowed.setdefault(room_id, set()).add(credential.token)
    return credential


async def revoke_credential(
    book: CredentialBook,
    registry: RoomRegistry,
    admin: JanusAdmin,
    videoroom: VideoRoomAdmin,
    token: str,
) -> RoomCredential | None:
    """Make Janus refuse ``token`` from now on; None if it was unknown.

    Janus is told first: if it cannot be reached the credential stays in the book, so the
    next sweep tries again instead of leaving a live token nobody tracks.
    """
    credential = book.credentials.get(token)
    if credential is None:
        return None
    await admin.remove_token(token)
    spec = registry.rooms.get(credential.room_id)
    if spec is not None:
        await videoroom.disallow(spec, [token])
    registry.allowed.get(credential.room_id, set()).discard(token)
    book.forget(token)
    return credential


async def sweep_credentials(
    book: CredentialBook,
    registry: RoomRegistry,
    admin: JanusAdmin,
    videoroom: VideoRoomAdmin,
    now: float,
) -> list[RoomCredential]:
    """Revoke on Janus every credential lapsed at ``now``; return them."""
    revoked: list[RoomCredential] = []
    for credential in book.expired(now):
        done = await revoke_credential(book, registry, admin, videoroom, credential.token)
        if done is not None:
            revoked.append(done)
    return revoked


async def restore_credentials(book: CredentialBook, admin: JanusAdmin, now: float) -> int:
    """Re-add every valid token to a restarted Janus (stored tokens live in its memory).

    Room allowed lists are restored with the rooms themselves (:func:`restore_rooms`).
    Returns how many tokens were added.
    """
    valid = book.valid(now)
    for credential in valid:
        await admin.add_token(credential.token, plugins=BROWSER_PLUGINS)
    return len(valid)
