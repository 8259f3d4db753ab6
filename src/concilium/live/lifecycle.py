"""A live session's lifecycle: scheduled, moved or called off, taken live, ended.

Architecture "Data flows" 2 (live supervision / broadcast). The decisions are pure functions
of their inputs (``check_title``, ``broadcast_refusal``, ``next_status``); the functions
taking a ``Session`` apply them, write the tables and the audit trail, and never import the
web layer. Who takes part is in :mod:`concilium.live.invitations`, joining the session's
room in :mod:`concilium.live.joining`, the sources it shows in
:mod:`concilium.live.source_registry`; chat and questions are in :mod:`concilium.live.chat`,
telestration in :mod:`concilium.live.telestration`, the cameras and their director in
:mod:`concilium.live.direction`; going live and ending with everything that goes with it in
:mod:`concilium.live.sessions`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from concilium.live import invitation_mail
from concilium.live.invitations import RESOURCE_KIND, invitation_expiry, participants
from concilium.live.tables import LiveParticipant, LiveSession
from concilium.platform import audit
from concilium.platform.errors import Conflict, InvalidInput, NotFound
from concilium.platform.i18n import N_, _
from concilium.platform.tables import Patient, Share

__all__ = [
    "KINDS",
    "ROOM_ID_BASE",
    "STATUSES",
    "broadcast_refusal",
    "check_cancellable",
    "check_title",
    "create_session",
    "end",
    "next_status",
    "reschedule",
    "start",
]

KINDS = ("supervision", "broadcast", "conference")
"""Supervision of a procedure by remote experts, broadcast to an audience, conference."""
STATUSES = ("scheduled", "live", "ended")
ROOM_ID_BASE = 10_000_000
"""Janus room ids of live sessions are this plus the session id (stable across restarts)."""


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


# --- sessions ------------------------------------------------------------------------------


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
