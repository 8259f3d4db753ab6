"""Moving a scheduled session and calling it off, from its page and through the API: the
new start is typed in the reader's zone across the change of time, the invitees' calendars
are updated or emptied through a real SMTP server, and only its organisers may do either."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import icalendar
import pytest
from sqlalchemy import select

from concilium.live import invitations, lifecycle
from concilium.live.tables import LiveSession
from concilium.platform import audit, i18n
from concilium.platform.db import transaction
from concilium.platform.tables import AuditEvent, User
from concilium.services import LOCALE_FOLDERS
from mail_delivery import attachment, deliver, text_of

FRENCH = {"Accept-Language": "fr-FR,fr;q=0.9"}
NOW = datetime(2030, 3, 20, 9, 0, tzinfo=UTC)  # 10:00 in Paris, winter time
START = datetime(2030, 3, 30, 9, 0, tzinfo=UTC)  # 10:00 in Paris, the day before the change
EXPERT, STUDENT = "a.roux@ch-briey.fr", "s.baker@ch-briey.fr"


@pytest.fixture(autouse=True)
def catalogues():
    i18n.load_catalogues(LOCALE_FOLDERS)


@pytest.fixture
def scheduled(world, people, clock):
    """A Metz supervision due on 30 March 2030 at 10:00 in Paris, organised by the
    coordinator, two Briey people invited (their invitations already sent)."""
    clock.now = NOW
    coord = people["coord"]
    with transaction(world.runtime.sessions) as db:
        for person, email, locale in (
            (people["stranger"], EXPERT, "fr"),
            (people["viewer"], STUDENT, "en"),
        ):
            found = db.get(User, person.id)
            found.email, found.locale = email, locale
        actor = audit.Actor(coord.id, coord.username)
        live = lifecycle.create_session(
            db,
            actor,
            kind="supervision",
            title="Carotid stenting",
            site_id=world.metz.id,
            scheduled_at=START,
            now=NOW,
        )
        for invitee in (people["stranger"], people["viewer"]):
            invitations.invite(db, actor, live, user_id=invitee.id, role="participant", now=NOW)
        session_id = live.id
    assert len(deliver(world.runtime)) == 2
    return session_id


def _stored(world, session_id: int) -> tuple[datetime, str]:
    with world.runtime.sessions() as db:
        live = db.get(LiveSession, session_id)
        assert live is not None
        return live.scheduled_at.astimezone(UTC), live.status


def _calendars(messages, filename):
    found = {}
    for message in messages:
        calendar = icalendar.Calendar.from_ical(attachment(message, filename))
        [event] = calendar.walk("VEVENT")
        found[message["To"].addresses[0].addr_spec] = (calendar, event)
    return found


def test_moving_a_session_across_the_change_of_time_updates_the_invitees_calendars(
    signed_in, world, people, scheduled
):
    coord = signed_in(people["coord"])
    page = html.unescape(coord.get(f"/live/{scheduled}", headers=FRENCH).text)
    assert "<h2>Déplacer la session</h2>" in page
    # The form starts on the current start, in Paris, on the 24-hour clock.
    assert 'name="scheduled_at" type="datetime-local" value="2030-03-30T10:00"' in page
    assert "Heure du fuseau Europe/Paris. Les invités reçoivent le nouvel horaire" in page

    # 10:00 on 31 March is summer time in Paris: 08:00 UTC, not 09:00.
    moved = coord.post(
        f"/live/{scheduled}/reschedule", data={"scheduled_at": "2030-03-31T10:00"}, headers=FRENCH
    )
    assert moved.status_code == 303, moved.text
    assert moved.headers["location"] == f"/live/{scheduled}"
    new_start = datetime(2030, 3, 31, 8, 0, tzinfo=UTC)
    assert _stored(world, scheduled) == (new_start, "scheduled")
    page = coord.get(f"/live/{scheduled}", headers=FRENCH).text
    assert "31 mars 2030 à 10:00" in page
    assert 'value="2030-03-31T10:00"' in page

    messages = deliver(world.runtime)
    calendars = _calendars(messages, "invitation.ics")
    assert set(calendars) == {EXPERT, STUDENT}
    for calendar, event in calendars.values():
        assert calendar["METHOD"] == "REQUEST"
        assert str(event["UID"]).startswith(f"live-{scheduled}@")
        assert int(event["SEQUENCE"]) == 1
        assert event.decoded("DTSTART").astimezone(UTC) == new_start
    french = next(m for m in messages if m["To"].addresses[0].addr_spec == EXPERT)
    assert "dimanche 31 mars 2030 à 10:00" in text_of(french)
    with world.runtime.sessions() as db:
        moves = db.execute(
            select(AuditEvent.actor_id).where(AuditEvent.action == "live.reschedule")
        ).scalars()
        assert list(moves) == [people["coord"].id]


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        # 09:59 in Paris on the day, when it is already 10:00 there.
        ("2030-03-20T09:59", "Cette heure est déjà passée : choisissez-en une plus tardive."),
        # The clocks go from 02:00 to 03:00 that night.
        (
            "2030-03-31T02:30",
            "02:30 n'existe pas dans le fuseau Europe/Paris : on avance l'heure à ce "
            "moment-là. Choisissez une autre heure.",
        ),
    ],
)
def test_a_past_or_skipped_time_re_shows_the_form_with_the_reason_in_french(
    signed_in, world, people, scheduled, typed, message
):
    coord = signed_in(people["coord"])
    refused = coord.post(
        f"/live/{scheduled}/reschedule", data={"scheduled_at": typed}, headers=FRENCH
    )
    assert refused.status_code == 422
    text = html.unescape(refused.text)
    assert message in text
    assert f'value="{typed}"' in text  # what was typed is kept
    assert _stored(world, scheduled) == (START, "scheduled")
    assert deliver(world.runtime) == []


def test_calling_off_a_session_sends_the_invitees_a_cancellation(
    signed_in, world, people, scheduled
):
    coord = signed_in(people["coord"])
    page = html.unescape(coord.get(f"/live/{scheduled}", headers=FRENCH).text)
    assert f'action="/live/{scheduled}/cancel"' in page
    assert (
        'data-confirm="Annuler cette session ? Les invités en seront prévenus par courriel.">'
        "Annuler la session</button>"
    ) in page
    assert f'action="/live/{scheduled}/end"' not in page

    called_off = coord.post(f"/live/{scheduled}/cancel")
    assert called_off.status_code == 303
    assert _stored(world, scheduled) == (START, "ended")
    calendars = _calendars(deliver(world.runtime), "cancellation.ics")
    assert set(calendars) == {EXPERT, STUDENT}
    for calendar, event in calendars.values():
        assert calendar["METHOD"] == "CANCEL"
        assert str(event["STATUS"]) == "CANCELLED"
        assert int(event["SEQUENCE"]) == 1

    page = coord.get(f"/live/{scheduled}", headers=FRENCH).text
    assert "Déplacer la session" not in page and "/cancel" not in page
    again = coord.post(f"/live/{scheduled}/cancel", headers=FRENCH)
    assert again.status_code == 409
    assert "Seule une session qui n&#39;a pas commencé peut être annulée." in again.text
    assert deliver(world.runtime) == []


def test_who_may_not_manage_the_session_is_refused_and_nothing_changes(
    signed_in, world, people, scheduled
):
    # A technologist of Metz sees the session; the invited student takes part in it.
    for who in ("tech", "viewer"):
        browser = signed_in(people[who])
        page = browser.get(f"/live/{scheduled}")
        assert page.status_code == 200
        assert "/reschedule" not in page.text and "/cancel" not in page.text
        assert (
            browser.post(
                f"/live/{scheduled}/reschedule", data={"scheduled_at": "2030-04-02T10:00"}
            ).status_code
            == 403
        )
        assert browser.post(f"/live/{scheduled}/cancel").status_code == 403
        api = f"/api/v1/live/sessions/{scheduled}"
        refused = browser.post(f"{api}/reschedule", json={"scheduled_at": "2030-04-02T08:00Z"})
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        assert browser.post(f"{api}/cancel").status_code == 403
    assert _stored(world, scheduled) == (START, "scheduled")
    assert deliver(world.runtime) == []
    with world.runtime.sessions() as db:
        refusals = db.execute(
            select(AuditEvent.action).where(
                AuditEvent.outcome == "refused", AuditEvent.action == "live.manage"
            )
        ).scalars()
        assert len(list(refusals)) == 8


def test_the_api_moves_and_calls_off_with_problems_in_the_reader_language(
    signed_in, world, people, scheduled, live_id
):
    deliver(world.runtime)  # the student's invitation to the live session
    coord = signed_in(people["coord"])
    api = f"/api/v1/live/sessions/{scheduled}"
    past = coord.post(
        f"{api}/reschedule", json={"scheduled_at": "2030-03-19T08:00Z"}, headers=FRENCH
    )
    assert past.status_code == 422
    assert past.headers["content-type"] == "application/problem+json"
    assert past.json()["detail"] == "Cette heure est déjà passée : choisissez-en une plus tardive."
    naive = coord.post(f"{api}/reschedule", json={"scheduled_at": "2030-04-02T10:00"})
    assert naive.status_code == 422  # a time without its zone names no instant

    moved = coord.post(
        f"{api}/reschedule",
        json={"scheduled_at": "2030-04-02T10:00+02:00", "title": "Carotid stenting, second side"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["title"] == "Carotid stenting, second side"
    assert datetime.fromisoformat(moved.json()["scheduled_at"]) == datetime(
        2030, 4, 2, 8, 0, tzinfo=UTC
    )
    [english, french] = sorted(deliver(world.runtime), key=lambda m: m["Content-Language"])
    assert english["Subject"] == "New time: Carotid stenting, second side"
    assert french["Subject"] == "Nouvel horaire : Carotid stenting, second side"

    # A session that went live is neither moved nor called off: it is ended.
    live_api = f"/api/v1/live/sessions/{live_id}"
    not_moved = coord.post(
        f"{live_api}/reschedule", json={"scheduled_at": "2030-04-02T08:00Z"}, headers=FRENCH
    )
    assert not_moved.status_code == 409
    assert not_moved.json()["detail"] == (
        "Seule une session qui n'a pas commencé peut être déplacée."
    )
    not_called_off = coord.post(f"{live_api}/cancel", headers=FRENCH)
    assert not_called_off.status_code == 409
    assert coord.get(live_api).json()["status"] == "live"

    cancelled = coord.post(f"{api}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "ended"
    assert {m["Subject"] for m in deliver(world.runtime)} == {
        "Cancelled: Carotid stenting, second side",
        "Annulée : Carotid stenting, second side",
    }
