"""Invitations to live sessions by e-mail: the invitee reads them in their language and zone,
their calendar gets the session (METHOD:REQUEST), is updated when it moves (same UID, higher
SEQUENCE) and loses it when it is cancelled (METHOD:CANCEL); all sent through the outbox to a
real SMTP server and read back with a calendar library."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import icalendar
import pytest
from sqlalchemy import select

from concilium.live import invitations, lifecycle, lookup
from concilium.platform import audit, i18n
from concilium.platform.db import transaction
from concilium.platform.errors import Conflict
from concilium.platform.tables import AuditEvent, OutboxMail, Share, User
from concilium.services import LOCALE_FOLDERS
from mail_delivery import attachment, deliver, html_of, text_of

START = datetime(2026, 12, 15, 13, 30, tzinfo=UTC)  # 14:30 in Paris, 09:30 in Martinique
MOVED = datetime(2026, 12, 16, 8, 0, tzinfo=UTC)  # 09:00 in Paris, 04:00 in Martinique


@pytest.fixture(autouse=True)
def catalogues():
    i18n.load_catalogues(LOCALE_FOLDERS)


def _people(world):
    organiser = world.user("metz-cardio", (world.metz, "specialist"))
    expert = world.user("briey-expert", (world.briey, "specialist"))
    student = world.user("briey-student", (world.briey, "learner"))
    with transaction(world.runtime.sessions) as db:
        for person, name, email, locale, zone in (
            (organiser, "Dr Paul Lefèvre", "p.lefevre@chr-metz.fr", "fr", None),
            (expert, "Dr Anne Roux", "a.roux@ch-briey.fr", None, None),
            (student, "Sam Baker", "s.baker@chu-martinique.fr", "en", "America/Martinique"),
        ):
            found = db.get(User, person.id)
            found.full_name, found.email = name, email
            found.locale, found.timezone = locale, zone
    return organiser, expert, student


def _schedule(world, organiser, *invitees):
    actor = audit.Actor(organiser.id, organiser.username)
    now = world.runtime.now()
    with transaction(world.runtime.sessions) as db:
        live = lifecycle.create_session(
            db,
            actor,
            kind="supervision",
            title="Coronary angioplasty",
            site_id=world.metz.id,
            scheduled_at=START,
            now=now,
        )
        for invitee in invitees:
            invitations.invite(db, actor, live, user_id=invitee.id, role="participant", now=now)
        return live.id


def _calendar(message, filename="invitation.ics"):
    return icalendar.Calendar.from_ical(attachment(message, filename))


def _event(calendar):
    [event] = calendar.walk("VEVENT")
    return event


def _by_recipient(messages):
    return {message["To"].addresses[0].addr_spec: message for message in messages}


def test_an_invitee_gets_the_session_in_their_language_and_zone_with_a_calendar_invitation(
    world, clock
):
    clock.now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    organiser, expert, student = _people(world)
    session_id = _schedule(world, organiser, expert, student)
    messages = _by_recipient(deliver(world.runtime))
    # The organiser invited nobody but the two others; nobody is told of their own act.
    assert set(messages) == {"a.roux@ch-briey.fr", "s.baker@chu-martinique.fr"}

    french = messages["a.roux@ch-briey.fr"]
    assert french["Subject"] == "Invitation : Coronary angioplasty"
    assert french["Content-Language"] == "fr"
    text = text_of(french)
    assert text.startswith("Bonjour Dr Anne Roux,")
    assert "Dr Paul Lefèvre vous invite à la session en direct « Coronary angioplasty »" in text
    assert "mardi 15 décembre 2026 à 14:30 (heure Europe/Paris)" in text
    link = f"http://127.0.0.1:8000/live/{session_id}"
    assert f"La page de la session, pour la rejoindre quand elle commence : {link}" in text
    assert f'href="{link}"' in html_of(french)

    english = messages["s.baker@chu-martinique.fr"]
    assert english["Subject"] == "Invitation: Coronary angioplasty"
    text = text_of(english)
    assert "Dr Paul Lefèvre invites you to the live session “Coronary angioplasty”" in text
    assert "Tuesday, 15 December 2026 at 09:30 (America/Martinique time)" in text

    calendar = _calendar(english)
    assert calendar["METHOD"] == "REQUEST"
    event = _event(calendar)
    assert event.decoded("DTSTART").astimezone(UTC) == START
    assert str(event["UID"]) == f"live-{session_id}@127.0.0.1"
    assert int(event["SEQUENCE"]) == 0
    assert str(event["SUMMARY"]) == "Coronary angioplasty"
    assert str(event["ORGANIZER"]) == "mailto:p.lefevre@chr-metz.fr"
    assert str(event["ATTENDEE"]) == "mailto:s.baker@chu-martinique.fr"
    assert _event(_calendar(french))["UID"] == event["UID"]

    # Inviting again only changes the role: no second invitation.
    with transaction(world.runtime.sessions) as db:
        live = lookup.get_session(db, session_id)
        actor = audit.Actor(organiser.id, organiser.username)
        invitations.invite(db, actor, live, user_id=expert.id, role="moderator", now=clock.now)
    assert deliver(world.runtime) == []


def test_a_moved_session_updates_the_invitees_calendars_and_a_cancelled_one_leaves_them(
    world, clock
):
    clock.now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    organiser, expert, student = _people(world)
    session_id = _schedule(world, organiser, expert, student)
    [first, _] = deliver(world.runtime)
    uid = _event(_calendar(first))["UID"]
    actor = audit.Actor(organiser.id, organiser.username)

    with transaction(world.runtime.sessions) as db:
        live = lookup.get_session(db, session_id)
        lifecycle.reschedule(
            db, actor, live, scheduled_at=MOVED, now=clock.now, title="Angioplasty, second look"
        )
    moved = _by_recipient(deliver(world.runtime))
    assert set(moved) == {"a.roux@ch-briey.fr", "s.baker@chu-martinique.fr"}
    english = moved["s.baker@chu-martinique.fr"]
    assert english["Subject"] == "New time: Angioplasty, second look"
    assert "Wednesday, 16 December 2026 at 04:00 (America/Martinique time)" in text_of(english)
    assert "mercredi 16 décembre 2026 à 09:00" in text_of(moved["a.roux@ch-briey.fr"])
    calendar = _calendar(english)
    assert calendar["METHOD"] == "REQUEST"
    event = _event(calendar)
    assert event["UID"] == uid
    assert int(event["SEQUENCE"]) == 1
    assert event.decoded("DTSTART").astimezone(UTC) == MOVED
    with world.runtime.sessions() as db:
        # The invitee of another site is still let in until a day after the new time.
        shares = db.execute(select(Share).where(Share.to_user_id == student.id)).scalars()
        assert [s.expires_at for s in shares] == [MOVED + timedelta(days=1)]
        assert db.execute(
            select(AuditEvent.action).where(AuditEvent.action == "live.reschedule")
        ).scalars().all() == ["live.reschedule"]

    # A session moved again, then invited to: the newcomer gets the current revision.
    late = world.user("metz-nurse", (world.metz, "coordinator"))
    with transaction(world.runtime.sessions) as db:
        found = db.get(User, late.id)
        found.email = "nurse@chr-metz.fr"
        live = lookup.get_session(db, session_id)
        lifecycle.reschedule(
            db, actor, live, scheduled_at=MOVED + timedelta(hours=1), now=clock.now
        )
        invitations.invite(db, actor, live, user_id=late.id, role="viewer", now=clock.now)
    again = _by_recipient(deliver(world.runtime))
    assert int(_event(_calendar(again["nurse@chr-metz.fr"]))["SEQUENCE"]) == 2
    assert int(_event(_calendar(again["a.roux@ch-briey.fr"]))["SEQUENCE"]) == 2

    with transaction(world.runtime.sessions) as db:
        live = lookup.get_session(db, session_id)
        lifecycle.end(db, actor, live, clock.now)
    cancelled = _by_recipient(deliver(world.runtime))
    assert set(cancelled) == {
        "a.roux@ch-briey.fr",
        "s.baker@chu-martinique.fr",
        "nurse@chr-metz.fr",
    }
    french = cancelled["a.roux@ch-briey.fr"]
    assert french["Subject"] == "Annulée : Angioplasty, second look"
    assert "Dr Paul Lefèvre a annulé la session en direct" in text_of(french)
    calendar = _calendar(french, "cancellation.ics")
    assert calendar["METHOD"] == "CANCEL"
    event = _event(calendar)
    assert event["UID"] == uid
    assert int(event["SEQUENCE"]) == 3
    assert str(event["STATUS"]) == "CANCELLED"

    with transaction(world.runtime.sessions) as db, pytest.raises(Conflict):
        lifecycle.reschedule(
            db, actor, lookup.get_session(db, session_id), scheduled_at=MOVED, now=clock.now
        )


def test_a_session_that_went_live_ends_without_a_cancellation(world, clock):
    clock.now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    organiser, expert, _student = _people(world)
    session_id = _schedule(world, organiser, expert)
    actor = audit.Actor(organiser.id, organiser.username)
    with transaction(world.runtime.sessions) as db:
        live = lookup.get_session(db, session_id)
        lifecycle.start(db, actor, live, clock.now, teaching_consent=False)
        lifecycle.end(db, actor, live, clock.now)
    with world.runtime.sessions() as db:
        kinds = db.execute(select(OutboxMail.kind)).scalars().all()
    assert kinds == ["live.invitation"]


def test_a_mistyped_address_does_not_stop_the_invitation(world, clock):
    clock.now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    organiser, expert, _student = _people(world)
    with transaction(world.runtime.sessions) as db:
        db.get(User, expert.id).email = "anne.roux-ch-briey.fr"
    session_id = _schedule(world, organiser, expert)
    with world.runtime.sessions() as db:
        assert (
            invitations.role_of(db, lookup.get_session(db, session_id), expert.id) == "participant"
        )
        assert db.execute(select(OutboxMail)).scalars().all() == []


@pytest.mark.parametrize("name", ["invitation.txt", "invitation.html"])
def test_the_invitation_templates_show_no_text_outside_the_catalogues(name):
    from concilium.live import invitation_mail
    from test_translations import _untranslated

    folder = Path(invitation_mail.__file__).with_name("templates") / "mail"
    assert _untranslated((folder / name).read_text(encoding="utf-8")) == []
