"""iCalendar objects (RFC 5545) for meetings: invitations and cancellations (iTIP, RFC 5546)
and subscription feeds.

An event is written with DTSTART and DTEND as local times with ``TZID`` (RFC 5545 section
3.3.5, form 3) so a calendar shows the meeting at its wall-clock time, and every calendar
carries a VTIMEZONE (section 3.6.5) for each zone it uses, built here from the time-zone
database: each observance's DTSTART is the onset as a local time in its TZOFFSETFROM, as
the section requires, so a client that trusts the VTIMEZONE rather than its own database
places the clock changes at the right instant.

An invitation is METHOD:REQUEST and a cancellation METHOD:CANCEL (RFC 5546 section 3.2.2
and 3.2.5); both need the organizer and the attendees. A feed has no METHOD: it is not an
iTIP message (RFC 5545 section 3.7.2). The UID stays the same for the life of an object and
SEQUENCE goes up with every revision (RFC 5545 section 3.8.7.4), so a client updates the
event it already has instead of adding a second one.

Invitations leave the hospital by e-mail: a summary or description must never name a
patient.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Event, Timezone, TimezoneDaylight, TimezoneStandard, vCalAddress

PRODUCT_ID = "-//Concilium//Concilium//FR"
"""PRODID of every calendar written here (RFC 5545 section 3.7.3)."""
VTIMEZONE_AHEAD = timedelta(days=366)
"""How far past the last event a VTIMEZONE describes the clock changes."""

_UID_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_EMAIL = re.compile(r"[^@\s:\"<>,;]+@[^@\s:\"<>,;]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class Method(StrEnum):
    """iTIP methods used (RFC 5546 section 1.4)."""

    REQUEST = "REQUEST"
    """Invite, or update an invitation."""
    CANCEL = "CANCEL"
    """Cancel the event."""


class EventStatus(StrEnum):
    """STATUS of a VEVENT (RFC 5545 section 3.8.1.11)."""

    TENTATIVE = "TENTATIVE"
    """Planned, not yet confirmed."""
    CONFIRMED = "CONFIRMED"
    """Will take place."""
    CANCELLED = "CANCELLED"
    """Will not take place."""


class Role(StrEnum):
    """ROLE of an attendee (RFC 5545 section 3.2.16)."""

    CHAIR = "CHAIR"
    """Chairs the meeting."""
    REQUIRED = "REQ-PARTICIPANT"
    """Expected to take part."""
    OPTIONAL = "OPT-PARTICIPANT"
    """Welcome to take part."""
    NON_PARTICIPANT = "NON-PARTICIPANT"
    """Copied for information only."""


@dataclass(frozen=True)
class CalendarUser:
    """An organizer or attendee, addressed by e-mail (RFC 5545 section 3.3.3)."""

    email: str
    """Mail address, without ``mailto:``."""
    name: str = ""
    """Common name (CN) shown by calendars."""
    role: Role = Role.REQUIRED
    """Part in the meeting; ignored for the organizer."""
    rsvp: bool = True
    """Whether a reply is asked for; ignored for the organizer."""

    def __post_init__(self) -> None:
        if not isinstance(self.email, str) or not _EMAIL.fullmatch(self.email):
            raise ValueError(f"email must be a mail address such as a@b.fr, got {self.email!r}")
        _check_text("name", self.name, multiline=False)
        if not isinstance(self.role, Role):
            raise ValueError(f"role must be a Role, got {self.role!r}")


@dataclass(frozen=True)
class CalendarEvent:
    """One revision of a meeting, as calendars see it; refused at construction when bad."""

    uid: str
    """Identifier kept for the life of the meeting (see :func:`event_uid`)."""
    start: datetime
    """Start instant, with a time zone."""
    end: datetime
    """End instant, with a time zone; after ``start``."""
    summary: str
    """Title; never a patient's name."""
    stamp: datetime
    """When this revision was made (DTSTAMP), with a time zone."""
    sequence: int = 0
    """Revision number; :meth:`revised` and :meth:`cancelled` raise it."""
    timezone: str = "Europe/Paris"
    """IANA zone the times are written in."""
    description: str = ""
    """Longer text; never a patient's name."""
    location: str = ""
    """Where, for those who attend in person."""
    url: str = ""
    """Absolute http(s) address of the meeting's page."""
    organizer: CalendarUser | None = None
    """Who organises; needed by invitations and cancellations."""
    attendees: tuple[CalendarUser, ...] = ()
    """Who is invited."""
    status: EventStatus = EventStatus.CONFIRMED
    """Whether it takes place."""

    def __post_init__(self) -> None:
        if not isinstance(self.uid, str) or not self.uid or _CONTROL.search(self.uid):
            raise ValueError(f"uid must be a non-empty line of text, got {self.uid!r}")
        for name in ("start", "end", "stamp"):
            value = getattr(self, name)
            if not isinstance(value, datetime) or value.utcoffset() is None:
                raise ValueError(f"{name} must be a datetime with a time zone, got {value!r}")
        if self.end <= self.start:
            raise ValueError(
                f"end ({self.end.isoformat()}) must be after start ({self.start.isoformat()})"
            )
        if (
            not isinstance(self.sequence, int)
            or isinstance(self.sequence, bool)
            or (self.sequence < 0)
        ):
            raise ValueError(f"sequence must be a non-negative integer, got {self.sequence!r}")
        _zone(self.timezone)
        if not isinstance(self.summary, str) or not self.summary.strip():
            raise ValueError("summary must not be empty")
        _check_text("summary", self.summary, multiline=False)
        _check_text("description", self.description, multiline=True)
        _check_text("location", self.location, multiline=False)
        if self.url and not re.fullmatch(r"https?://[^\s]+", self.url):
            raise ValueError(f"url must be an absolute http(s) address, got {self.url!r}")
        if self.organizer is not None and not isinstance(self.organizer, CalendarUser):
            raise ValueError(f"organizer must be a CalendarUser, got {self.organizer!r}")
        if not isinstance(self.attendees, tuple) or not all(
            isinstance(attendee, CalendarUser) for attendee in self.attendees
        ):
            raise ValueError("attendees must be a tuple of CalendarUser")
        addresses = [attendee.email.lower() for attendee in self.attendees]
        if len(set(addresses)) != len(addresses):
            raise ValueError("an attendee is listed twice")
        if not isinstance(self.status, EventStatus):
            raise ValueError(f"status must be an EventStatus, got {self.status!r}")

    def revised(self, stamp: datetime, **changes: Any) -> CalendarEvent:
        """The next revision: ``changes`` applied, the same UID, SEQUENCE one higher."""
        for name in ("uid", "sequence", "stamp"):
            if name in changes:
                raise ValueError(f"{name} is set by the revision, not by the caller")
        return dataclasses.replace(self, stamp=stamp, sequence=self.sequence + 1, **changes)

    def cancelled(self, stamp: datetime) -> CalendarEvent:
        """The revision that cancels the meeting."""
        if self.status is EventStatus.CANCELLED:
            raise ValueError(f"event {self.uid} is already cancelled")
        return self.revised(stamp, status=EventStatus.CANCELLED)


def event_uid(kind: str, key: str, domain: str) -> str:
    """A UID stable for the life of an object: ``<kind>-<key>@<domain>``, as RFC 5545
    section 3.8.4.7 suggests (unique on the right of the ``@`` by the site's host name)."""
    for name, value in (("kind", kind), ("key", key)):
        if not isinstance(value, str) or not _UID_PART.fullmatch(value):
            raise ValueError(f"{name} must be letters, digits, '.', '_' or '-', got {value!r}")
    if not isinstance(domain, str) or len(domain) > 253 or not _HOST.fullmatch(domain):
        raise ValueError(f"domain must be a host name, got {domain!r}")
    return f"{kind}-{key}@{domain.lower()}"


def content_type(method: Method | None) -> str:
    """The MIME type to send a calendar with (RFC 5545 section 8.1, RFC 6047 section 2.4)."""
    if method is None:
        return "text/calendar; charset=utf-8"
    return f"text/calendar; charset=utf-8; method={method.value}"


def invitation(event: CalendarEvent, product_id: str = PRODUCT_ID) -> bytes:
    """An iTIP REQUEST inviting the attendees, or updating them (RFC 5546 section 3.2.2)."""
    if event.status is EventStatus.CANCELLED:
        raise ValueError(f"event {event.uid} is cancelled: send a cancellation instead")
    _check_itip(event, Method.REQUEST)
    return _serialise(_calendar([event], Method.REQUEST, product_id, name=""))


def cancellation(event: CalendarEvent, product_id: str = PRODUCT_ID) -> bytes:
    """An iTIP CANCEL of a cancelled revision (RFC 5546 section 3.2.5); see
    :meth:`CalendarEvent.cancelled`."""
    if event.status is not EventStatus.CANCELLED:
        raise ValueError(
            f"event {event.uid} is {event.status.value}: cancel it with .cancelled() first"
        )
    _check_itip(event, Method.CANCEL)
    return _serialise(_calendar([event], Method.CANCEL, product_id, name=""))


def feed(events: Sequence[CalendarEvent], name: str, product_id: str = PRODUCT_ID) -> bytes:
    """A calendar to subscribe to, holding ``events`` (cancelled ones stay, marked so)."""
    _check_text("name", name, multiline=False)
    uids = [event.uid for event in events]
    if len(set(uids)) != len(uids):
        raise ValueError("a feed holds one revision of each event: a UID appears twice")
    return _serialise(_calendar(events, None, product_id, name=name))


def vtimezone(timezone: str, first: datetime, last: datetime) -> Timezone:
    """A VTIMEZONE for ``timezone`` valid from ``first`` to ``last`` (RFC 5545 section 3.6.5).

    Each observance starts at a real transition of the time-zone database, its DTSTART the
    local time just before the change (in TZOFFSETFROM): 02:00 for the spring change in
    Paris and 03:00 for the autumn one. The first observance is the transition in force at
    ``first``; the changes of the year after ``last`` are included too, so a client that
    lets someone move the meeting a few months on still finds the right offsets.
    """
    _zone(timezone)
    component = Timezone()
    component.add("tzid", timezone)
    for onset, offset_from, offset_to, name, daylight in _observances(
        timezone, first.astimezone(UTC).date(), last.astimezone(UTC).date() + VTIMEZONE_AHEAD
    ):
        observance = TimezoneDaylight() if daylight else TimezoneStandard()
        observance.add("dtstart", onset)
        observance.add("tzoffsetfrom", offset_from)
        observance.add("tzoffsetto", offset_to)
        observance.add("tzname", name)
        component.add_component(observance)
    return component


def _calendar(
    events: Sequence[CalendarEvent], method: Method | None, product_id: str, name: str
) -> Calendar:
    _check_text("product_id", product_id, multiline=False)
    calendar = Calendar()
    calendar.add("prodid", product_id)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if method is not None:
        calendar.add("method", method.value)
    if name:
        calendar.add("name", name)  # RFC 7986 section 5.1
        calendar.add("x-wr-calname", name)  # the same, for clients that predate RFC 7986
    for zone in sorted({event.timezone for event in events}):
        in_zone = [event for event in events if event.timezone == zone]
        first = min(event.start for event in in_zone)
        last = max(event.end for event in in_zone)
        calendar.add_component(vtimezone(zone, first, last))
    for event in events:
        calendar.add_component(_vevent(event))
    return calendar


def _serialise(calendar: Calendar) -> bytes:
    data: bytes = calendar.to_ical()
    return data


def _vevent(event: CalendarEvent) -> Event:
    component = Event()
    component.add("uid", event.uid)
    component.add("dtstamp", event.stamp.astimezone(UTC))
    component.add("sequence", event.sequence)
    component.add("dtstart", _local_or_utc(event.start, event.timezone))
    component.add("dtend", _local_or_utc(event.end, event.timezone))
    component.add("summary", event.summary)
    if event.description:
        component.add("description", event.description)
    if event.location:
        component.add("location", event.location)
    if event.url:
        component.add("url", event.url)
    component.add("status", event.status.value)
    if event.organizer is not None:
        organizer = vCalAddress(f"mailto:{event.organizer.email}")
        if event.organizer.name:
            organizer.params["CN"] = event.organizer.name
        component.add("organizer", organizer)
    for attendee in event.attendees:
        address = vCalAddress(f"mailto:{attendee.email}")
        if attendee.name:
            address.params["CN"] = attendee.name
        address.params["CUTYPE"] = "INDIVIDUAL"
        address.params["ROLE"] = attendee.role.value
        address.params["PARTSTAT"] = "NEEDS-ACTION"
        address.params["RSVP"] = "TRUE" if attendee.rsvp else "FALSE"
        component.add("attendee", address)
    return component


def _local_or_utc(instant: datetime, timezone: str) -> datetime:
    local = instant.astimezone(_zone(timezone))
    # A local time with TZID is read back by RFC 5545 3.3.5 as its first occurrence; the
    # second pass through the repeated autumn hour would come back an hour early, so that
    # one instant is written in UTC, which every reader takes as it is.
    if local.replace(fold=0).astimezone(UTC) != instant.astimezone(UTC):
        return instant.astimezone(UTC)
    return local.replace(fold=0)


def _check_itip(event: CalendarEvent, method: Method) -> None:
    if event.organizer is None:
        raise ValueError(f"a {method.value} needs an organizer (RFC 5546 section 3.2)")
    if not event.attendees:
        raise ValueError(f"a {method.value} needs at least one attendee (RFC 5546 section 3.2)")


def _check_text(name: str, value: str, *, multiline: bool) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, got {value!r}")
    text = value.replace("\n", "") if multiline else value
    if _CONTROL.search(text) or (not multiline and "\n" in value):
        raise ValueError(f"{name} must not hold control characters")


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"unknown IANA time zone {timezone!r}") from exc


# Offsets are sampled this often; two clock changes closer than this would go unseen, and
# no zone has had such a pair.
_SAMPLE = timedelta(hours=6)


@lru_cache(maxsize=64)
def _observances(
    timezone: str, first: date, last: date
) -> tuple[tuple[datetime, timedelta, timedelta, str, bool], ...]:
    """(onset as local time before the change, offset from, offset to, name, daylight) of
    the transitions in force from ``first`` to ``last`` (UTC days)."""
    zone = ZoneInfo(timezone)
    # Look back far enough to find the change in force at ``first`` (a year, for DST).
    scan = datetime.combine(first - timedelta(days=400), datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(last + timedelta(days=2), datetime.min.time(), tzinfo=UTC)
    begin = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
    transitions: list[tuple[datetime, timedelta, timedelta, str, bool]] = []
    offset = _offset(scan, zone)
    while scan < end:
        following = scan + _SAMPLE
        next_offset = _offset(following, zone)
        if next_offset != offset:
            instant = _transition(scan, following, zone)
            local = following.astimezone(zone)
            transitions.append(
                (
                    (instant + offset).replace(tzinfo=None),
                    offset,
                    next_offset,
                    local.tzname() or _offset_name(next_offset),
                    bool(local.dst()),
                )
            )
            offset = next_offset
        scan = following
    in_force = [t for t in transitions if t[0] - t[1] <= begin.replace(tzinfo=None)]
    if in_force:
        return tuple(transitions[len(in_force) - 1 :])
    # No change in the year before ``first`` (a zone without summer time): one observance
    # from the epoch, with the offset of ``first``.
    local = begin.astimezone(zone)
    offset = _offset(begin, zone)
    epoch = (
        datetime(1970, 1, 1),
        offset,
        offset,
        local.tzname() or _offset_name(offset),
        bool(local.dst()),
    )
    return (epoch, *transitions)


def _offset(instant: datetime, zone: ZoneInfo) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


def _transition(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The first second at which the offset is that of ``after``."""
    target = _offset(after, zone)
    while after - before > timedelta(seconds=1):
        middle = before + (after - before) / 2
        middle = middle.replace(microsecond=0)
        if _offset(middle, zone) == target:
            after = middle
        else:
            before = middle
    return after


def _offset_name(offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
