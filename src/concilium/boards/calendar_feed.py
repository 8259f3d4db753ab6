"""A member's calendar feed: one address, holding a secret, that a calendar client
subscribes to and reads the member's coming meetings of every board from (RFC 5545; no
METHOD, it is not an iTIP message).

The member makes the address on their "my boards" page and sees it then only: the secret is
kept as its SHA-256, as the platform keeps its API tokens' and links' secrets. Making a new
one, or revoking it, stops the old one. Making, revoking and every use are audited (the use
with the address the client came from). A feed lists the planned meetings not yet over and
the cancelled ones still ahead (marked so, which takes them out of calendars), each as
:mod:`concilium.boards.meeting_calendar` writes it, in the member's zone: the board's name
and the meeting's page, never a patient.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from concilium.boards.actions import BoardAction
from concilium.boards.meeting_calendar import meeting_event
from concilium.boards.registry import board_target
from concilium.boards.tables import Board, BoardCalendarToken, BoardMeeting, BoardMember
from concilium.config import Settings
from concilium.platform import audit, calendar_ics, notify
from concilium.platform.accounts import principal_for
from concilium.platform.errors import NotFound
from concilium.platform.i18n import DEFAULT_LOCALE, LOCALES, _, using_locale
from concilium.platform.policy import decide
from concilium.platform.tables import User

FEED_PATH = "/boards/calendar/"
"""Where feeds live; the secret and ``.ics`` follow."""
FEED_KIND = "board_calendar_feed"
"""The audit trail's name for a feed (its token)."""
FEED_LIMIT = 500
"""Most meetings a feed lists (the nearest first)."""


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedFeed:
    """A feed's address is known once, when made; only its secret's hash is kept."""

    url: str
    record: BoardCalendarToken


def feed_url(settings: Settings, secret: str) -> str:
    return f"{settings.public_url.rstrip('/')}{FEED_PATH}{secret}.ics"


def active_token(session: Session, user_id: int) -> BoardCalendarToken | None:
    """The member's feed token in force, if any."""
    return session.scalars(
        select(BoardCalendarToken)
        .where(BoardCalendarToken.user_id == user_id, BoardCalendarToken.revoked_at.is_(None))
        .order_by(BoardCalendarToken.id.desc())
    ).first()


def _revoke_all(session: Session, user_id: int, now: datetime) -> int:
    result = session.execute(
        update(BoardCalendarToken)
        .where(BoardCalendarToken.user_id == user_id, BoardCalendarToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def issue(
    session: Session, settings: Settings, actor: audit.Actor, user: User, now: datetime
) -> IssuedFeed:
    """A new feed address for ``user``; the one they had stops working."""
    _revoke_all(session, user.id, now)
    secret = secrets.token_urlsafe(32)
    record = BoardCalendarToken(user_id=user.id, secret_hash=_digest(secret), created_at=now)
    session.add(record)
    session.flush()
    audit.record(
        session,
        actor,
        "board_calendar.token_create",
        "success",
        object_kind=FEED_KIND,
        object_id=record.id,
    )
    return IssuedFeed(feed_url(settings, secret), record)


def revoke(session: Session, actor: audit.Actor, user: User, now: datetime) -> bool:
    """Stop ``user``'s feed address; False when they had none."""
    record = active_token(session, user.id)
    if record is None:
        return False
    _revoke_all(session, user.id, now)
    audit.record(
        session,
        actor,
        "board_calendar.token_revoke",
        "success",
        object_kind=FEED_KIND,
        object_id=record.id,
    )
    return True


def _refused(session: Session, ip: str, reason: str) -> NotFound:
    audit.record(
        session,
        audit.Actor(None, "", ip=ip),
        "board_calendar.feed",
        "refused",
        object_kind=FEED_KIND,
        detail={"reason": reason},
    )
    return NotFound(
        _("This calendar address no longer works: make a new one on your boards' page.")
    )


def holder(session: Session, secret: str, ip: str, now: datetime) -> User:
    """The member a feed's secret belongs to, its use recorded; a revoked or unknown secret
    is refused (404, audited without naming anyone)."""
    record = session.scalars(
        select(BoardCalendarToken).where(BoardCalendarToken.secret_hash == _digest(secret))
    ).first()
    if record is None:
        raise _refused(session, ip, "unknown")
    if record.revoked_at is not None:
        raise _refused(session, ip, "revoked")
    user = session.get(User, record.user_id)
    if user is None or user.disabled:
        raise _refused(session, ip, "account disabled")
    record.last_used_at = now
    audit.record(
        session,
        audit.Actor(user.id, user.username, ip=ip),
        "board_calendar.feed",
        "success",
        object_kind=FEED_KIND,
        object_id=record.id,
    )
    return user


def feed_for(session: Session, settings: Settings, user: User, now: datetime) -> bytes:
    """The calendar of ``user``'s coming meetings, of every board the policy lets them see."""
    principal = principal_for(session, user, now)
    rows = session.execute(
        select(BoardMeeting, Board)
        .join(Board, Board.id == BoardMeeting.board_id)
        .join(BoardMember, BoardMember.board_id == Board.id)
        .where(BoardMember.user_id == user.id, BoardMeeting.ends_at > now)
        .order_by(BoardMeeting.starts_at, BoardMeeting.id)
        .limit(FEED_LIMIT)
    ).all()
    readable: dict[int, bool] = {}
    zone = notify.zone_of(session, user)
    events = []
    for meeting, board in rows:
        if board.id not in readable:
            readable[board.id] = decide(
                principal, BoardAction.BOARD_READ, board_target(session, board)
            ).allowed
        if readable[board.id]:
            events.append(meeting_event(settings, meeting, board, zone, now))
    with using_locale(user.locale if user.locale in LOCALES else DEFAULT_LOCALE):
        return calendar_ics.feed(events, _("My boards' meetings"))
