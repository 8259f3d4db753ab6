"""A board's meeting as a calendar event (RFC 5545), the one shape the invitations and the
members' calendar feeds both write.

The UID is ``rcp-<meeting key>@<host>``: the key (``<board code>.<day the schedule
gives>``) stays when a holiday or a new start time moves the meeting, so a calendar updates
the event it has; the meeting's ``sequence`` goes up with each move or cancellation
(RFC 5545 section 3.8.7.4). Times are written in the reader's zone, with its VTIMEZONE, so
the wall-clock time is right on both sides of a change of time. The summary is the board's
name and the description the meeting's page: never a patient.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parseaddr
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from concilium.boards.tables import Board, BoardMeeting, BoardMember
from concilium.config import Settings
from concilium.platform import calendar_ics
from concilium.platform.calendar_ics import CalendarEvent, CalendarUser, EventStatus
from concilium.platform.tables import User

UID_KIND = "rcp"
"""Left part of a meeting's UID: ``rcp-<key>@<host>``."""
ORGANISER_ROLES = ("coordinator", "facilitator")
"""Members who organise, in the order one is chosen as the invitation's ORGANIZER."""


def meeting_uid(settings: Settings, meeting: BoardMeeting) -> str:
    """The meeting's UID in calendars, the same for its whole life (RFC 5545 3.8.4.7)."""
    host = urlsplit(settings.public_url).hostname or "localhost"
    return calendar_ics.event_uid(UID_KIND, meeting.key, host)


def meeting_link(settings: Settings, meeting: BoardMeeting) -> str:
    """The absolute address of the meeting's page."""
    return f"{settings.public_url.rstrip('/')}/boards/meetings/{meeting.id}"


def organizer(session: Session, settings: Settings, board: Board) -> CalendarUser:
    """Who the invitations come from: a coordinator (else a facilitator) of the board with
    an address, else the platform's sender."""
    rows = session.execute(
        select(BoardMember.role, User)
        .join(User, User.id == BoardMember.user_id)
        .where(
            BoardMember.board_id == board.id,
            BoardMember.role.in_(ORGANISER_ROLES),
            User.email != "",
            User.disabled.is_(False),
        )
        .order_by(BoardMember.id)
    ).all()
    for role in ORGANISER_ROLES:
        for found, person in rows:
            if found == role:
                try:
                    return CalendarUser(person.email, person.full_name)
                except ValueError:
                    continue
    sender = parseaddr(settings.mail_from)[1]
    if sender:
        return CalendarUser(sender, "Concilium")
    host = urlsplit(settings.public_url).hostname or "localhost"
    return CalendarUser(f"noreply@{host}", "Concilium")


def meeting_event(
    settings: Settings,
    meeting: BoardMeeting,
    board: Board,
    zone: str,
    stamp: datetime,
    *,
    organised_by: CalendarUser | None = None,
    attendees: tuple[CalendarUser, ...] = (),
) -> CalendarEvent:
    """The meeting's current revision, its times written in ``zone``."""
    return CalendarEvent(
        uid=meeting_uid(settings, meeting),
        start=meeting.starts_at,
        end=meeting.ends_at,
        summary=" ".join(board.name.split()),
        stamp=stamp,
        sequence=meeting.sequence,
        timezone=zone,
        description=meeting_link(settings, meeting),
        url=meeting_link(settings, meeting),
        organizer=organised_by,
        attendees=attendees,
        status=EventStatus.CANCELLED if meeting.status == "cancelled" else EventStatus.CONFIRMED,
    )
