"""The program of a live session: which feed its audience watches, switch after switch.

The director puts a feed on program (a Janus publisher id, or nothing); each switch is kept
in the session's own table, beside the audit entry that says who switched. The recording
library reads the switches back to place the chapters of each recording
(:func:`concilium.live.recording.publish_recordings`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.live.tables import LiveProgramSwitch, LiveSession
from concilium.platform import audit

__all__ = ["record_switch", "switches"]


def record_switch(
    db: Session, actor: audit.Actor, live: LiveSession, feed: int | None, now: datetime
) -> LiveProgramSwitch:
    """Keep a program switch of ``live`` to ``feed`` (None: nothing on program); audited."""
    switch = LiveProgramSwitch(session_id=live.id, feed=feed, user_id=actor.user_id, at=now)
    db.add(switch)
    db.flush()
    audit.record(
        db,
        actor,
        "live.program",
        "success",
        object_kind="live_session",
        object_id=live.id,
        detail={"feed": feed},
    )
    return switch


def switches(db: Session, live: LiveSession) -> list[tuple[datetime, int | None]]:
    """The program switches of ``live``, in the order they were made: (when, feed)."""
    rows = db.execute(
        select(LiveProgramSwitch.at, LiveProgramSwitch.feed)
        .where(LiveProgramSwitch.session_id == live.id)
        .order_by(LiveProgramSwitch.id)
    ).all()
    return [(at, feed) for at, feed in rows]
