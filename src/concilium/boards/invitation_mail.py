"""Invitations to a board's meetings by e-mail, each with the meeting as an iCalendar event.

When meetings are generated, moved or cancelled (:mod:`concilium.boards.meetings`), every
member of the board with an address gets a message in their language, the day and time in
their zone (their own, else their site's), and an iMIP object (RFC 6047) their calendar acts
on: METHOD:REQUEST for a new meeting and, with the same UID and a higher SEQUENCE, for a
moved one (RFC 5546 section 3.2.2); METHOD:CANCEL for a cancelled one (section 3.2.5).

Messages are queued in the transaction of the change (the outbox): they leave only if the
change is kept. They name the board and the meeting's page, never a patient.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.boards.meeting_calendar import meeting_event, meeting_link, organizer
from concilium.boards.tables import Board, BoardMeeting, BoardMember
from concilium.platform import calendar_ics, notify, outbox
from concilium.platform.calendar_ics import CalendarUser, Method, Role
from concilium.platform.mail import calendar_attachment
from concilium.platform.runtime import Runtime
from concilium.platform.tables import OutboxMail, User

MAIL_TEMPLATES = notify.MailTemplates(Path(__file__).with_name("templates") / "mail")
"""The boards' messages (``templates/mail``), over the platform's layouts."""


class Change(StrEnum):
    """What happened to a meeting, and the message kind that says so."""

    INVITATION = "boards.invitation"
    """A new meeting."""
    UPDATE = "boards.update"
    """A meeting moved to another time."""
    CANCELLATION = "boards.cancellation"
    """A meeting that will not take place."""


def _members(session: Session, board: Board) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .join(BoardMember, BoardMember.user_id == User.id)
            .where(BoardMember.board_id == board.id, User.disabled.is_(False))
            .order_by(User.id)
        )
    )


def _send(
    session: Session,
    runtime: Runtime,
    board: Board,
    meeting: BoardMeeting,
    person: User,
    change: Change,
    chair: CalendarUser,
    now: datetime,
) -> OutboxMail | None:
    to = notify.reachable_recipient(session, person)
    if to is None:
        return None
    attendee = CalendarUser(person.email, person.full_name, Role.REQUIRED)
    event = meeting_event(
        runtime.settings, meeting, board, to.zone, now, organised_by=chair, attendees=(attendee,)
    )
    if change is Change.CANCELLATION:
        ics = calendar_ics.cancellation(event)
        attachment = calendar_attachment(ics, Method.CANCEL, "cancellation.ics")
    else:
        attachment = calendar_attachment(calendar_ics.invitation(event), Method.REQUEST)
    mail = MAIL_TEMPLATES.compose(
        str(change),
        to,
        "invitation",
        {
            "change": change.name.lower(),
            "name": person.full_name,
            "board": board.name,
            "start": meeting.starts_at,
            "end": meeting.ends_at,
            "link": meeting_link(runtime.settings, meeting),
        },
        (attachment,),
    )
    return outbox.enqueue(session, runtime, mail, site_id=board.site_id)


def meetings_changed(
    session: Session,
    board: Board,
    changes: Sequence[tuple[BoardMeeting, Change]],
    now: datetime,
) -> list[OutboxMail]:
    """Queue to every member of ``board`` one message per changed meeting (nothing when
    ``session`` belongs to no running process, or for a member without an address)."""
    runtime = Runtime.of_session(session)
    if runtime is None or not changes:
        return []
    chair = organizer(session, runtime.settings, board)
    sent: list[OutboxMail] = []
    for person in _members(session, board):
        for meeting, change in changes:
            mail = _send(session, runtime, board, meeting, person, change, chair, now)
            if mail is not None:
                sent.append(mail)
    return sent
