"""The video of a telesurgical procedure, through the live service: the live session whose
picture the surgeon sees next to the link state, linked to the procedure or opened for it.

This is domain logic: no web imports; every link is audited and put in the procedure's
timeline.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy.orm import Session

from concilium import live as live_service
from concilium.live import LiveSession, LiveSessions
from concilium.platform import audit
from concilium.platform.errors import Conflict
from concilium.platform.i18n import _
from concilium.telesurgery.procedures import RESOURCE_KIND, append_to_timeline
from concilium.telesurgery.tables import Procedure

VIDEO_TITLE_PREFIX = "Telesurgery video: "


def video_session(db: Session, procedure: Procedure) -> LiveSession | None:
    """The live session carrying the procedure's video, if one is linked."""
    if procedure.live_session_id is None:
        return None
    return live_service.find_session(db, procedure.live_session_id)


def link_video(
    db: Session, actor: audit.Actor, procedure: Procedure, live: LiveSession, now: datetime
) -> LiveSession:
    """Link a live session to the procedure: its video is what the surgeon sees next to the
    link state. The surgeon is invited to watch it (the live service decides who may).

    Raises:
        Conflict: the live session has ended, or the procedure has.
    """
    if procedure.status == "ended":
        raise Conflict(_("the procedure has ended"))
    if live.status == "ended":
        raise Conflict(_("live session %(id)s has ended") % {"id": live.id})
    if live_service.role_of(db, live, procedure.surgeon_id) is None:
        live_service.invite(db, actor, live, user_id=procedure.surgeon_id, role="viewer", now=now)
    procedure.live_session_id = live.id
    audit.record(
        db,
        actor,
        "procedure.video",
        "success",
        object_kind=RESOURCE_KIND,
        object_id=procedure.id,
        patient_id=procedure.patient_id,
        detail={"live_session": live.id},
    )
    append_to_timeline(
        db, procedure, now, "platform", "procedure", "", f"video: live session {live.id}"
    )
    return live


async def open_video(
    db: Session, actor: audit.Actor, procedure: Procedure, now: datetime, sessions: LiveSessions
) -> LiveSession:
    """Create a supervision live session at the robot site, take it live through the live
    service's ``sessions`` (with everything going live brings there) and link it.

    Supervision without recording is care, not teaching: it needs no teaching consent
    (:func:`concilium.live.lifecycle.broadcast_refusal`). The session goes live committed; the
    link is left to the caller's transaction.

    Raises:
        Conflict: the procedure has ended (and no session is created).
    """
    if procedure.status == "ended":
        raise Conflict(_("the procedure has ended"))
    # The database is touched from worker threads: never on the event loop.
    live = await asyncio.to_thread(
        live_service.create_session,
        db,
        actor,
        kind="supervision",
        title=VIDEO_TITLE_PREFIX + procedure.title,
        site_id=procedure.robot_site_id,
        scheduled_at=now,
        now=now,
        patient_id=procedure.patient_id,
    )
    await sessions.start(db, actor, live, now)
    return await asyncio.to_thread(link_video, db, actor, procedure, live, now)
