"""A board's meetings in the members' calendars: invitations by e-mail (received by a real
SMTP server, aiosmtpd) with an iCalendar object a calendar acts on, at the right wall-clock
time on both sides of a change of time, updated and cancelled with the same UID; and each
member's calendar feed behind a revocable address, audited, never naming a patient."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import icalendar
from sqlalchemy import select

from concilium.boards import case_store, meetings, registry
from concilium.boards.tables import BoardCalendarToken
from concilium.platform.db import transaction
from concilium.platform.tables import AuditEvent, User
from mail_delivery import attachment, deliver, text_of

from . import cases_world
from .boards_world import OPERATOR, fields, make_board
from .test_case_pages import signed_in

PARIS = ZoneInfo("Europe/Paris")
LONDON = ZoneInfo("Europe/London")
MONDAY = datetime(2027, 3, 15, 8, tzinfo=UTC)
"""Fridays 19 and 26 March (CET) then 2 April (CEST): Europe changes time on 28 March."""


def _board_with_members(world, clock):
    clock.now = MONDAY
    board = make_board(world.runtime, world.metz.id)
    paris = world.user("dr-paris", (world.metz, "specialist"))
    london = world.user("dr-london", (world.briey, "specialist"))
    with transaction(world.runtime.sessions) as db:
        found = registry.get_board(db, board.id)
        for user, specialty, role, email, zone in (
            (paris, "haematology", "coordinator", "dr.paris@chr-metz.fr", None),
            (london, "pathology", "member", "dr.london@exemple.fr", "Europe/London"),
        ):
            person = db.get(User, user.id)
            person.email, person.timezone = email, zone
            registry.set_member(db, OPERATOR, found, person, frozenset({specialty}), role)
    return board


def _generate(world, board_id, weeks=3):
    with transaction(world.runtime.sessions) as db:
        board = registry.get_board(db, board_id)
        return meetings.generate_meetings(db, OPERATOR, board, MONDAY, weeks)


def _event(message) -> tuple[icalendar.Calendar, icalendar.Event]:
    name = "cancellation.ics" if "annul" in message["Subject"].lower() else "invitation.ics"
    calendar = icalendar.Calendar.from_ical(attachment(message, name))
    (event,) = calendar.walk("VEVENT")
    return calendar, event


def _by_recipient(messages):
    found: dict[str, list] = {}
    for message in messages:
        found.setdefault(message["To"].split("<")[-1].rstrip(">"), []).append(message)
    return found


def test_members_are_invited_at_their_wall_clock_time_across_the_change_of_time(app, world, clock):
    board = _board_with_members(world, clock)
    assert _generate(world, board.id).added == 3
    clock.now = MONDAY.replace(minute=1)
    mails = _by_recipient(deliver(world.runtime))
    assert sorted(mails) == ["dr.london@exemple.fr", "dr.paris@chr-metz.fr"]
    assert all(len(received) == 3 for received in mails.values())
    uids = set()
    for address, zone, hour in (
        ("dr.paris@chr-metz.fr", PARIS, 14),
        ("dr.london@exemple.fr", LONDON, 13),
    ):
        starts = []
        for message in mails[address]:
            calendar, event = _event(message)
            assert calendar["METHOD"] == "REQUEST"
            assert int(event["SEQUENCE"]) == 0
            start = event.decoded("DTSTART")
            # Written in the member's zone, with its VTIMEZONE: the wall-clock time is theirs.
            assert str(event["DTSTART"].params["TZID"]) == zone.key
            assert (start.hour, start.minute) == (hour, 0)
            assert event.decoded("DTEND") - start == (
                datetime(2027, 1, 1, 16) - datetime(2027, 1, 1, 14)
            )
            assert str(event["SUMMARY"]) == "RCP régionale d'hématologie"
            assert str(event["ATTENDEE"]) == f"mailto:{address}"
            starts.append(start.astimezone(UTC))
            uids.add(str(event["UID"]))
        # The same instants for both, 14:00 in Paris: 13:00 UTC before the change, 12:00 after.
        assert sorted(starts) == [
            datetime(2027, 3, 19, 13, tzinfo=UTC),
            datetime(2027, 3, 26, 13, tzinfo=UTC),
            datetime(2027, 4, 2, 12, tzinfo=UTC),
        ]
    assert len(uids) == 3 and all(u.startswith("rcp-rcp-hemato.2027-") for u in uids)
    # French by default; the day in the reader's zone; the organizer is the coordinator.
    first = sorted(mails["dr.paris@chr-metz.fr"], key=lambda m: _event(m)[1].decoded("DTSTART"))[0]
    assert first["Subject"] == "Invitation à la réunion : RCP régionale d'hématologie, 19/03/2027"
    assert "vendredi 19 mars 2027 de 14:00 à 16:00" in text_of(first)
    assert str(_event(first)[1]["ORGANIZER"]) == "mailto:dr.paris@chr-metz.fr"
    # Generating again changes nothing and sends nothing.
    _generate(world, board.id)
    assert deliver(world.runtime) == []


def test_a_moved_meeting_is_updated_and_a_dropped_one_cancelled_with_the_same_uid(
    app, world, clock
):
    board = _board_with_members(world, clock)
    _generate(world, board.id, 2)
    original = {str(_event(m)[1]["UID"]) for m in deliver(world.runtime)}
    # The board now starts at 15:00: both meetings move, SEQUENCE 1, the same UIDs.
    with transaction(world.runtime.sessions) as db:
        found = registry.get_board(db, board.id)
        registry.update_board(db, OPERATOR, found, fields(world.metz.id, at=time(15, 0)))
        assert meetings.follow_schedule(db, OPERATOR, found, MONDAY).moved == 2
    moved = _by_recipient(deliver(world.runtime))["dr.paris@chr-metz.fr"]
    assert len(moved) == 2
    for message in moved:
        calendar, event = _event(message)
        assert calendar["METHOD"] == "REQUEST" and int(event["SEQUENCE"]) == 1
        assert str(event["UID"]) in original
        assert event.decoded("DTSTART").hour == 15
        assert message["Subject"].startswith("Réunion déplacée")
    # Then it meets on Thursdays: the Friday meetings are cancelled, Thursday's invited.
    with transaction(world.runtime.sessions) as db:
        found = registry.get_board(db, board.id)
        registry.update_board(db, OPERATOR, found, fields(world.metz.id, at=time(15, 0), weekday=3))
        done = meetings.follow_schedule(db, OPERATOR, found, MONDAY)
        assert done is not None and done.cancelled == 2
    received = _by_recipient(deliver(world.runtime))["dr.london@exemple.fr"]
    cancelled = [m for m in received if "annul" in m["Subject"].lower()]
    assert len(cancelled) == 2
    for message in cancelled:
        calendar, event = _event(message)
        assert calendar["METHOD"] == "CANCEL"
        assert str(event["STATUS"]) == "CANCELLED" and int(event["SEQUENCE"]) == 2
        assert str(event["UID"]) in original


def test_the_feed_lists_coming_meetings_behind_a_revocable_address(app, world, clock):
    cw = cases_world.build(world, clock)
    cases_world.consent(world, cw)
    case_id = cases_world.draft(world, cw)
    with transaction(world.runtime.sessions) as db:
        case_store.submit(
            db, cases_world.actor(cw.referrer), case_store.get_case(db, case_id), cases_world.NOW
        )
    browser = signed_in(app, world, cw.haematologist)
    page = browser.get("/boards")
    assert page.status_code == 200 and "/boards/calendar" in page.text
    made = browser.post("/boards/calendar")
    assert made.status_code == 200
    start = made.text.index('id="f-feed" readonly value="') + len('id="f-feed" readonly value="')
    url = made.text[start : made.text.index('"', start)]
    path = url.split("testserver", 1)[-1].split("8000", 1)[-1]
    assert path.startswith("/boards/calendar/") and path.endswith(".ics")
    with world.runtime.sessions() as db:
        (token,) = db.scalars(select(BoardCalendarToken)).all()
        assert token.secret_hash not in url and len(token.secret_hash) == 64
    # The feed needs no session: the address is the credential.
    reader = world.client(app)
    served = reader.get(path)
    assert served.status_code == 200, served.text
    assert served.headers["content-type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(served.content)
    assert "METHOD" not in calendar
    events = calendar.walk("VEVENT")
    assert len(events) == 3
    assert {str(e["SUMMARY"]) for e in events} == {"RCP régionale d'hématologie"}
    assert sorted(e.decoded("DTSTART").astimezone(UTC) for e in events)[-1] == datetime(
        2027, 4, 2, 12, tzinfo=UTC
    )
    assert b"Lemoine" not in served.content and b"LEMOINE" not in served.content
    assert b"BRY-1" not in served.content
    # Not another board's meetings: the outsider's feed is empty.
    other = signed_in(app, world, cw.outsider).post("/boards/calendar")
    start = other.text.index('readonly value="') + len('readonly value="')
    other_path = (
        "/boards/calendar/" + other.text[start : other.text.index('"', start)].rsplit("/", 1)[-1]
    )
    assert icalendar.Calendar.from_ical(reader.get(other_path).content).walk("VEVENT") == []
    # A new address stops the old one; revoking stops the new one.
    again = browser.post("/boards/calendar")
    start = again.text.index('readonly value="') + len('readonly value="')
    newer = (
        "/boards/calendar/" + again.text[start : again.text.index('"', start)].rsplit("/", 1)[-1]
    )
    assert reader.get(path).status_code == 404
    assert reader.get(newer).status_code == 200
    assert "An address made on" in browser.get("/boards").text
    assert browser.post("/boards/calendar/revoke").status_code == 303
    refused = reader.get(newer)
    assert refused.status_code == 404
    assert reader.get("/boards/calendar/not-a-secret.ics").status_code == 404
    with world.runtime.sessions() as db:
        trail = [
            (e.action, e.outcome, e.actor_id)
            for e in db.scalars(
                select(AuditEvent)
                .where(AuditEvent.action.like("board_calendar.%"))
                .order_by(AuditEvent.seq)
            )
        ]
    me = cw.haematologist.id
    assert trail.count(("board_calendar.token_create", "success", me)) == 2
    assert ("board_calendar.token_revoke", "success", me) in trail
    assert trail.count(("board_calendar.feed", "success", me)) == 2
    assert trail.count(("board_calendar.feed", "refused", None)) == 3
