"""iCalendar invitations, cancellations and feeds, read back by the icalendar package."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest

from concilium.platform.calendar_ics import (
    CalendarEvent,
    CalendarUser,
    EventStatus,
    Method,
    Role,
    cancellation,
    content_type,
    event_uid,
    feed,
    invitation,
    vtimezone,
)
from concilium.platform.recurrence import Frequency, Recurrence, occurrences

PARIS = ZoneInfo("Europe/Paris")
DOMAIN = "concilium.chr-metz-thionville.fr"
STAMP = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def meeting(start: datetime, **overrides) -> CalendarEvent:
    values = {
        "uid": event_uid("board-meeting", f"rcp-digestive.{start.date().isoformat()}", DOMAIN),
        "start": start,
        "end": start + timedelta(hours=2),
        "summary": "RCP digestive",
        "stamp": STAMP,
        "description": "Réunion de concertation pluridisciplinaire\nOrdre du jour en ligne",
        "url": "https://concilium.chr-metz-thionville.fr/boards/rcp-digestive",
        "organizer": CalendarUser("coordination.rcp@chr-metz-thionville.fr", "Coordination RCP"),
        "attendees": (
            CalendarUser("chir@chr-metz-thionville.fr", "Dr Chirurgien", Role.CHAIR),
            CalendarUser("onco@chr-metz-thionville.fr", "Dr Oncologue"),
            CalendarUser("radio@chr-metz-thionville.fr", "Dr Radiologue", Role.OPTIONAL, False),
        ),
    }
    values.update(overrides)
    return CalendarEvent(**values)


def parse(data: bytes) -> icalendar.Calendar:
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    return icalendar.Calendar.from_ical(data)


def only_event(calendar: icalendar.Calendar) -> icalendar.Event:
    (event,) = calendar.walk("VEVENT")
    return event


def from_vtimezone_only(calendar: icalendar.Calendar, local: datetime) -> datetime:
    """The UTC instant of a naive local time read through the calendar's own VTIMEZONE,
    as a client without a time-zone database reads it."""
    (component,) = calendar.walk("VTIMEZONE")
    tz = component.to_tz(lookup_tzid=False)
    return local.replace(tzinfo=tz).astimezone(UTC)


def test_an_invitation_carries_the_itip_request_and_every_field():
    data = invitation(meeting(utc(2026, 1, 9, 13)))
    calendar = parse(data)
    assert calendar["METHOD"] == "REQUEST"
    assert calendar["VERSION"] == "2.0"
    assert calendar["PRODID"] == "-//Concilium//Concilium//FR"
    event = only_event(calendar)
    assert event["UID"] == "board-meeting-rcp-digestive.2026-01-09@" + DOMAIN
    assert event["SEQUENCE"] == 0
    assert event["STATUS"] == "CONFIRMED"
    assert event["SUMMARY"] == "RCP digestive"
    assert (
        event["DESCRIPTION"] == "Réunion de concertation pluridisciplinaire\nOrdre du jour en ligne"
    )
    assert event["URL"] == "https://concilium.chr-metz-thionville.fr/boards/rcp-digestive"
    assert event.decoded("DTSTAMP") == STAMP
    assert event["ORGANIZER"] == "mailto:coordination.rcp@chr-metz-thionville.fr"
    assert event["ORGANIZER"].params["CN"] == "Coordination RCP"
    attendees = {str(a): a.params for a in event["ATTENDEE"]}
    assert attendees["mailto:chir@chr-metz-thionville.fr"]["ROLE"] == "CHAIR"
    assert attendees["mailto:onco@chr-metz-thionville.fr"]["ROLE"] == "REQ-PARTICIPANT"
    assert attendees["mailto:onco@chr-metz-thionville.fr"]["RSVP"] == "TRUE"
    assert attendees["mailto:radio@chr-metz-thionville.fr"]["ROLE"] == "OPT-PARTICIPANT"
    assert attendees["mailto:radio@chr-metz-thionville.fr"]["RSVP"] == "FALSE"
    assert content_type(Method.REQUEST) == "text/calendar; charset=utf-8; method=REQUEST"


def test_start_and_end_are_paris_wall_clock_times_with_a_tzid():
    data = invitation(meeting(utc(2026, 1, 9, 13)))
    assert b"DTSTART;TZID=Europe/Paris:20260109T140000" in data
    assert b"DTEND;TZID=Europe/Paris:20260109T160000" in data
    event = only_event(parse(data))
    assert event["DTSTART"].params["TZID"] == "Europe/Paris"


@pytest.mark.parametrize(
    ("start", "local"),
    [
        (utc(2026, 1, 9, 13), datetime(2026, 1, 9, 14)),  # winter: +01:00
        (utc(2026, 7, 10, 12), datetime(2026, 7, 10, 14)),  # summer: +02:00
        (utc(2026, 3, 27, 13), datetime(2026, 3, 27, 14)),  # the Friday before the change
        (utc(2026, 4, 3, 12), datetime(2026, 4, 3, 14)),  # the Friday after
        (utc(2027, 10, 29, 12), datetime(2027, 10, 29, 14)),
        (utc(2027, 11, 5, 13), datetime(2027, 11, 5, 14)),
    ],
)
def test_parsed_back_the_instants_are_dst_correct(start, local):
    calendar = parse(invitation(meeting(start)))
    event = only_event(calendar)
    assert event.decoded("DTSTART").replace(tzinfo=None) == local
    assert event.decoded("DTSTART").astimezone(UTC) == start
    assert event.decoded("DTEND").astimezone(UTC) == start + timedelta(hours=2)
    assert from_vtimezone_only(calendar, local) == start


@pytest.mark.parametrize("year", [2026, 2027])
def test_the_vtimezone_places_both_clock_changes_at_0100_utc(year):
    # Clocks change at 01:00 UTC on the last Sundays of March and October in the EU.
    spring = date(year, 3, 31) - timedelta(days=(date(year, 3, 31).weekday() + 1) % 7)
    autumn = date(year, 10, 31) - timedelta(days=(date(year, 10, 31).weekday() + 1) % 7)
    component = vtimezone("Europe/Paris", utc(year, 1, 1), utc(year, 12, 31))
    data = component.to_ical()
    assert f"DTSTART:{spring:%Y%m%d}T020000".encode() in data  # local time before the change
    assert f"DTSTART:{autumn:%Y%m%d}T030000".encode() in data
    tz = (
        icalendar.Calendar.from_ical(
            b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n" + data + b"END:VCALENDAR\r\n"
        )
        .walk("VTIMEZONE")[0]
        .to_tz(lookup_tzid=False)
    )
    for day, before, after in ((spring, 1, 2), (autumn, 2, 1)):
        just_before = datetime.combine(day, time(0, 59), tzinfo=UTC).astimezone(tz)
        just_after = datetime.combine(day, time(1, 1), tzinfo=UTC).astimezone(tz)
        assert just_before.utcoffset() == timedelta(hours=before)
        assert just_after.utcoffset() == timedelta(hours=after)


def test_a_zone_without_summer_time_has_one_standard_observance():
    component = vtimezone("Asia/Tokyo", utc(2026, 1, 1), utc(2026, 12, 31))
    (observance,) = component.subcomponents
    assert observance.name == "STANDARD"
    assert observance["TZOFFSETTO"].td == timedelta(hours=9)


def test_a_meeting_in_the_repeated_autumn_hour_keeps_its_instant():
    first = utc(2026, 10, 25, 0, 30)  # 02:30 summer time
    second = utc(2026, 10, 25, 1, 30)  # 02:30 again, winter time
    for start in (first, second):
        event = only_event(parse(invitation(meeting(start, end=start + timedelta(minutes=20)))))
        assert event.decoded("DTSTART").astimezone(UTC) == start
    data = invitation(meeting(second, end=second + timedelta(minutes=20)))
    assert b"DTSTART:20261025T013000Z" in data


def test_recurring_meetings_land_in_the_feed_at_their_utc_instants():
    # The last Sunday of each month at 02:30 Paris: the hour skipped in March and repeated
    # in October are both crossed, and each comes back as recurrence.py resolved it.
    rule = Recurrence(
        start=date(2026, 1, 1),
        weekday=6,
        at=time(2, 30),
        duration=timedelta(hours=1),
        frequency=Frequency.MONTHLY,
        week_of_month=-1,
        holiday_region=None,
    )
    found = occurrences(rule, utc(2026, 1, 1), utc(2028, 1, 1))
    events = [
        meeting(o.start, end=o.end, uid=event_uid("night", o.scheduled_day.isoformat(), DOMAIN))
        for o in found
    ]
    calendar = parse(feed(events, "RCP de nuit"))
    parsed = {e["UID"]: e for e in calendar.walk("VEVENT")}
    assert len(parsed) == 24
    for occurrence in found:
        event = parsed[event_uid("night", occurrence.scheduled_day.isoformat(), DOMAIN)]
        assert event.decoded("DTSTART").astimezone(UTC) == occurrence.start
        assert event.decoded("DTEND").astimezone(UTC) == occurrence.end
        local = event.decoded("DTSTART").replace(tzinfo=None)
        assert from_vtimezone_only(calendar, local) == occurrence.start
    march = parsed[event_uid("night", "2026-03-29", DOMAIN)]
    assert march.decoded("DTSTART").astimezone(UTC) == utc(2026, 3, 29, 1, 30)
    october = parsed[event_uid("night", "2027-10-31", DOMAIN)]
    assert october.decoded("DTSTART").astimezone(UTC) == utc(2027, 10, 31, 0, 30)


def test_a_feed_has_no_method_and_holds_several_events():
    events = [meeting(utc(2026, 1, 9, 13)), meeting(utc(2026, 7, 10, 12))]
    events.append(meeting(utc(2026, 7, 17, 12)).cancelled(STAMP))
    calendar = parse(feed(events, "RCP digestive"))
    assert "METHOD" not in calendar
    assert calendar["NAME"] == "RCP digestive"
    assert calendar["X-WR-CALNAME"] == "RCP digestive"
    assert len(calendar.walk("VTIMEZONE")) == 1
    statuses = [str(e["STATUS"]) for e in calendar.walk("VEVENT")]
    assert statuses == ["CONFIRMED", "CONFIRMED", "CANCELLED"]
    assert content_type(None) == "text/calendar; charset=utf-8"


def test_an_update_keeps_the_uid_and_raises_the_sequence():
    original = meeting(utc(2026, 1, 9, 13))
    later = datetime(2026, 1, 7, 8, 0, tzinfo=UTC)
    moved = original.revised(later, start=utc(2026, 1, 9, 14), end=utc(2026, 1, 9, 16))
    event = only_event(parse(invitation(moved)))
    assert event["UID"] == original.uid
    assert event["SEQUENCE"] == 1
    assert event.decoded("DTSTAMP") == later
    assert event.decoded("DTSTART").astimezone(UTC) == utc(2026, 1, 9, 14)
    assert moved.revised(later, summary="RCP digestive (salle B)").sequence == 2
    with pytest.raises(ValueError, match="sequence is set by the revision"):
        original.revised(later, sequence=5)


def test_a_cancellation_is_an_itip_cancel_of_a_cancelled_revision():
    original = meeting(utc(2026, 1, 9, 13), sequence=3)
    cancelled = original.cancelled(STAMP + timedelta(days=1))
    calendar = parse(cancellation(cancelled))
    assert calendar["METHOD"] == "CANCEL"
    event = only_event(calendar)
    assert event["STATUS"] == "CANCELLED"
    assert event["SEQUENCE"] == 4
    assert event["UID"] == original.uid
    with pytest.raises(ValueError, match=r"cancel it with \.cancelled\(\) first"):
        cancellation(original)
    with pytest.raises(ValueError, match="send a cancellation instead"):
        invitation(cancelled)
    with pytest.raises(ValueError, match="already cancelled"):
        cancelled.cancelled(STAMP)


def test_itip_messages_need_an_organizer_and_attendees():
    with pytest.raises(ValueError, match="REQUEST needs an organizer"):
        invitation(meeting(utc(2026, 1, 9, 13), organizer=None))
    with pytest.raises(ValueError, match="CANCEL needs at least one attendee"):
        cancellation(meeting(utc(2026, 1, 9, 13), attendees=()).cancelled(STAMP))
    # A feed needs neither.
    feed([meeting(utc(2026, 1, 9, 13), organizer=None, attendees=())], "RCP")


def test_event_uids_are_stable_and_checked():
    assert event_uid("board-meeting", "42", "Concilium.Example.FR") == (
        "board-meeting-42@concilium.example.fr"
    )
    with pytest.raises(ValueError, match="key must be letters"):
        event_uid("board-meeting", "4 2", DOMAIN)
    with pytest.raises(ValueError, match="domain must be a host name"):
        event_uid("board-meeting", "42", "not a host")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"stamp": datetime(2026, 1, 9, 14)}, "stamp must be a datetime with a time zone"),
        ({"end": utc(2026, 1, 9, 13)}, "must be after start"),
        ({"summary": "  "}, "summary must not be empty"),
        ({"summary": "RCP\nbis"}, "summary must not hold control characters"),
        ({"description": "bell\x07"}, "description must not hold control characters"),
        ({"url": "javascript:alert(1)"}, "url must be an absolute http"),
        ({"timezone": "Mars/Olympus"}, "unknown IANA time zone"),
        ({"sequence": -1}, "sequence must be a non-negative integer"),
        ({"status": "CONFIRMED"}, "status must be an EventStatus"),
        ({"uid": ""}, "uid must be a non-empty line"),
        (
            {"attendees": (CalendarUser("a@b.fr"), CalendarUser("A@b.fr"))},
            "an attendee is listed twice",
        ),
    ],
)
def test_bad_events_are_refused_at_construction(overrides, message):
    with pytest.raises(ValueError, match=message):
        meeting(utc(2026, 1, 9, 13), **overrides)


def test_bad_calendar_users_are_refused():
    with pytest.raises(ValueError, match="email must be a mail address"):
        CalendarUser("mailto:a@b.fr")
    with pytest.raises(ValueError, match="role must be a Role"):
        CalendarUser("a@b.fr", role="CHAIR")
    with pytest.raises(ValueError, match="a feed holds one revision of each event"):
        feed([meeting(utc(2026, 1, 9, 13))] * 2, "RCP")
    assert EventStatus.CANCELLED.value == "CANCELLED"
