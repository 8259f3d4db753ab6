"""Invitations to live sessions by e-mail, with the session as an iCalendar event.

An invitee gets a message in their language, with the start in their zone, who invited them
and the link to the session's page, and an iMIP invitation (RFC 6047) that calendar clients
add: METHOD:REQUEST with the session's UID, which stays the same for the life of the session
(``live-<id>@<host>``). When the session moves, every invitee gets the same UID with a higher
SEQUENCE, which updates the event they have (RFC 5546 section 3.2.2); when a session that has
not gone live is ended, a METHOD:CANCEL (section 3.2.5) takes it out of their calendars.

The revision number is how many times the session was rescheduled, counted in the audit trail
(one ``live.reschedule`` entry each): nothing else needs storing. Every message is queued in
the transaction of the change (the outbox), so it leaves only if the change is kept. The
title of a session never names a patient (``lifecycle.check_title``); nor does anything here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from concilium.live.tables import LiveParticipant, LiveSession
from concilium.platform import calendar_ics, notify, outbox
from concilium.platform.calendar_ics import CalendarEvent, CalendarUser, Method, Role
from concilium.platform.mail import calendar_attachment
from concilium.platform.runtime import Runtime
from concilium.platform.tables import AuditEvent, OutboxMail, User

MAIL_TEMPLATES = notify.MailTemplates(Path(__file__).with_name("templates") / "mail")
"""Live's messages (``templates/mail``), over the platform's layouts."""
KIND_INVITATION = "live.invitation"
KIND_UPDATE = "live.update"
KIND_CANCELLATION = "live.cancellation"
UID_KIND = "live"
"""Left part of a session's UID: ``live-<id>@<host>``."""
CALENDAR_DURATION = timedelta(hours=1)
"""How long the event lasts in calendars: a session is scheduled by its start only."""
RESCHEDULE_ACTION = "live.reschedule"
"""Audit action of a change of time or title; each one is a revision of the event."""


def session_uid(runtime: Runtime, live: LiveSession) -> str:
    """The UID of ``live`` in calendars, the same for its whole life (RFC 5545 3.8.4.7)."""
    host = urlsplit(runtime.settings.public_url).hostname or "localhost"
    return calendar_ics.event_uid(UID_KIND, str(live.id), host)


def revision(db: Session, live: LiveSession) -> int:
    """The SEQUENCE of the session's event now: how many times it was rescheduled."""
    count = db.execute(
        select(func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.action == RESCHEDULE_ACTION,
            AuditEvent.object_kind == "live_session",
            AuditEvent.object_id == str(live.id),
            AuditEvent.outcome == "success",
        )
    ).scalar_one()
    return int(count)


def _link(runtime: Runtime, live: LiveSession) -> str:
    return f"{runtime.settings.public_url.rstrip('/')}/live/{live.id}"


def _organizer(db: Session, runtime: Runtime, live: LiveSession) -> CalendarUser:
    creator = db.get(User, live.created_by_id)
    if creator is not None and creator.email:
        return CalendarUser(creator.email, creator.full_name)
    sender = parseaddr(runtime.settings.mail_from)[1]
    if sender:
        return CalendarUser(sender, "Concilium")
    host = urlsplit(runtime.settings.public_url).hostname or "localhost"
    return CalendarUser(f"noreply@{host}", "Concilium")


def _event(
    db: Session,
    runtime: Runtime,
    live: LiveSession,
    attendee: User,
    sequence: int,
    stamp: datetime,
    zone: str,
) -> CalendarEvent:
    return CalendarEvent(
        uid=session_uid(runtime, live),
        start=live.scheduled_at,
        end=live.scheduled_at + CALENDAR_DURATION,
        summary=live.title,
        stamp=stamp,
        sequence=sequence,
        timezone=zone,
        url=_link(runtime, live),
        organizer=_organizer(db, runtime, live),
        attendees=(CalendarUser(attendee.email, attendee.full_name, Role.REQUIRED),),
    )


def _send(
    db: Session,
    runtime: Runtime,
    live: LiveSession,
    person: User,
    kind: str,
    values: dict[str, object],
    now: datetime,
) -> OutboxMail | None:
    to = notify.reachable_recipient(db, person)  # a mistyped one must not stop the invitation
    if to is None:
        return None
    sequence = revision(db, live)
    event = _event(db, runtime, live, person, sequence, now, to.zone)
    if kind == KIND_CANCELLATION:
        ics = calendar_ics.cancellation(event.cancelled(now))
        attachment = calendar_attachment(ics, Method.CANCEL, "cancellation.ics")
    else:
        ics = calendar_ics.invitation(event)
        attachment = calendar_attachment(ics, Method.REQUEST)
    mail = MAIL_TEMPLATES.compose(
        kind,
        to,
        "invitation",
        {
            "change": kind.removeprefix("live."),
            "name": person.full_name,
            "title": live.title,
            "start": live.scheduled_at,
            "link": _link(runtime, live),
            **values,
        },
        (attachment,),
    )
    return outbox.enqueue(db, runtime, mail, site_id=live.site_id)


def _name(db: Session, user_id: int | None) -> str:
    person = db.get(User, user_id) if user_id is not None else None
    return person.full_name if person is not None else ""


def invited(
    db: Session, live: LiveSession, participant: LiveParticipant, now: datetime
) -> OutboxMail | None:
    """Queue the invitation of ``participant`` (nothing for one who invited themselves,
    has no e-mail address, or when ``db`` belongs to no running process)."""
    runtime = Runtime.of_session(db)
    person = db.get(User, participant.user_id)
    if runtime is None or person is None or participant.user_id == participant.invited_by_id:
        return None
    return _send(
        db,
        runtime,
        live,
        person,
        KIND_INVITATION,
        {"inviter": _name(db, participant.invited_by_id)},
        now,
    )


def _invitees(db: Session, live: LiveSession, actor_id: int | None) -> list[User]:
    rows = db.execute(
        select(User)
        .join(LiveParticipant, LiveParticipant.user_id == User.id)
        .where(LiveParticipant.session_id == live.id, User.disabled.is_(False))
        .order_by(User.id)
    ).scalars()
    return [person for person in rows if person.id != actor_id]


def _to_invitees(
    db: Session, live: LiveSession, actor_id: int | None, kind: str, now: datetime
) -> list[OutboxMail]:
    """Queue ``kind`` to every invitee but ``actor_id``, who made the change."""
    runtime = Runtime.of_session(db)
    if runtime is None:
        return []
    values: dict[str, object] = {"inviter": _name(db, actor_id)}
    sent = (
        _send(db, runtime, live, person, kind, values, now)
        for person in _invitees(db, live, actor_id)
    )
    return [mail for mail in sent if mail is not None]


def rescheduled(
    db: Session, live: LiveSession, actor_id: int | None, now: datetime
) -> list[OutboxMail]:
    """Queue the updated invitation (same UID, the new SEQUENCE) to every invitee but the
    person who moved the session; call it after the ``live.reschedule`` audit entry."""
    return _to_invitees(db, live, actor_id, KIND_UPDATE, now)


def cancelled(
    db: Session, live: LiveSession, actor_id: int | None, now: datetime
) -> list[OutboxMail]:
    """Queue the cancellation to every invitee but the person who cancelled it."""
    return _to_invitees(db, live, actor_id, KIND_CANCELLATION, now)
