"""Notifications: what a person must learn about their own account, from someone else's act
(a token issued for them, a set-up or reset link) or from an attack (a locked second factor).

Every notification goes through :func:`notify`. It is stored and shown on the person's home
page until they dismiss it; delivery by e-mail hooks in here (an outbox written in the same
transaction), so that no caller has to know how a person is reached.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.platform import audit
from concilium.platform.errors import NotFound
from concilium.platform.tables import Notification, User

LINK_LABELS = {"setup": "set-up", "reset": "reset"}


def notify(session: Session, user_id: int, kind: str, message: str, now: datetime) -> Notification:
    """Tell the person ``user_id`` something about their account; committed with the act
    that caused it. ``message`` names accounts and acts, never patient data."""
    notice = Notification(user_id=user_id, created_at=now, kind=kind[:32], message=message)
    session.add(notice)
    session.flush()
    return notice


def send_link(
    session: Session,
    user: User,
    purpose: str,
    url: str,
    expires_at: datetime,
    issuer: str,
    now: datetime,
) -> str:
    """Hand a set-up or reset link over to its person. Today the link is shown once to
    whoever issued it, who passes it on (it is returned for that); an e-mail outbox will
    take it here. What is stored names the act, never the link."""
    notify(
        session,
        user.id,
        f"account.{purpose}_link",
        f"{issuer} issued a {LINK_LABELS.get(purpose, purpose)} link for your account, valid "
        f"until {expires_at:%Y-%m-%d %H:%M} UTC. If you did not ask for it, tell your "
        "administrator.",
        now,
    )
    return url


def pending(session: Session, user_id: int) -> Sequence[Notification]:
    """The person's notifications not yet dismissed, newest first."""
    return (
        session.execute(
            select(Notification)
            .where(Notification.user_id == user_id, Notification.dismissed_at.is_(None))
            .order_by(Notification.created_at.desc(), Notification.id.desc())
        )
        .scalars()
        .all()
    )


def get_notification(session: Session, notice_id: int) -> Notification:
    notice = session.get(Notification, notice_id)
    if notice is None:
        raise NotFound(f"notification {notice_id} not found")
    return notice


def dismiss(session: Session, actor: audit.Actor, notice: Notification, now: datetime) -> None:
    if notice.dismissed_at is None:
        notice.dismissed_at = now
    audit.record(
        session,
        actor,
        "notification.dismiss",
        "success",
        object_kind="notification",
        object_id=notice.id,
    )
