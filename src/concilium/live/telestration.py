"""Telestration: strokes drawn over a session's picture, kept with the session.

Strokes are in coordinates relative to the picture, 0 to 1 across and down, so a stroke
lands on the same spot on every screen and in the recording
(:func:`concilium.live.recording_timeline.placed_strokes`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.live.tables import LiveSession, LiveStroke

__all__ = ["add_stroke", "clear_strokes", "strokes"]


def add_stroke(
    db: Session,
    user_id: int,
    live: LiveSession,
    *,
    points: Iterable[tuple[float, float]],
    color: str,
    width: int,
    source_id: int | None,
    now: datetime,
) -> LiveStroke:
    stroke = LiveStroke(
        session_id=live.id,
        user_id=user_id,
        source_id=source_id,
        color=color,
        width=width,
        points=[[x, y] for x, y in points],
        created_at=now,
    )
    db.add(stroke)
    db.flush()
    return stroke


def clear_strokes(db: Session, user_id: int, live: LiveSession, now: datetime) -> LiveStroke:
    """Wipe the telestration layer: strokes stay in the record, after a clear marker (a
    stroke without points) that later joiners start from."""
    marker = LiveStroke(
        session_id=live.id,
        user_id=user_id,
        source_id=None,
        color="#000000",
        width=0,
        points=[],
        created_at=now,
    )
    db.add(marker)
    db.flush()
    return marker


def strokes(db: Session, live: LiveSession, *, since_clear: bool = True) -> list[LiveStroke]:
    """Telestration strokes of the session, by default those drawn since the last clear."""
    found = list(
        db.execute(
            select(LiveStroke).where(LiveStroke.session_id == live.id).order_by(LiveStroke.id)
        ).scalars()
    )
    if since_clear:
        cleared = [i for i, stroke in enumerate(found) if not stroke.points]
        found = found[cleared[-1] + 1 :] if cleared else found
    return found
