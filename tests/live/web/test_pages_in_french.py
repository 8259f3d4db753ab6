"""The live pages in French by default and in English on request, times in the reader's
zone on the 24-hour clock, and the scheduling form read in the reader's zone across the
changes of time."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from starlette.websockets import WebSocketDisconnect

from concilium.live.tables import LiveSession
from concilium.live.web.pages import local_to_utc
from concilium.platform import i18n
from concilium.platform.db import transaction
from concilium.platform.errors import InvalidInput

FRENCH = {"Accept-Language": "fr-FR,fr;q=0.9"}
PARIS = i18n.zone("Europe/Paris")


@pytest.mark.parametrize(
    ("typed", "instant"),
    [
        # The last Sunday of March 2030 is the 31st: Paris goes from UTC+1 to UTC+2.
        ("2030-03-30T10:00", datetime(2030, 3, 30, 9, 0, tzinfo=UTC)),
        ("2030-03-31T01:59", datetime(2030, 3, 31, 0, 59, tzinfo=UTC)),
        ("2030-03-31T03:00", datetime(2030, 3, 31, 1, 0, tzinfo=UTC)),
        ("2030-03-31T10:00", datetime(2030, 3, 31, 8, 0, tzinfo=UTC)),
        # The last Sunday of October 2030 is the 27th: back from UTC+2 to UTC+1; 02:30
        # happens twice and is taken at its first passing, in summer time.
        ("2030-10-26T10:00", datetime(2030, 10, 26, 8, 0, tzinfo=UTC)),
        ("2030-10-27T02:30", datetime(2030, 10, 27, 0, 30, tzinfo=UTC)),
        ("2030-10-27T10:00", datetime(2030, 10, 27, 9, 0, tzinfo=UTC)),
    ],
)
def test_a_time_typed_in_paris_is_stored_as_the_instant_it_names(typed, instant):
    assert local_to_utc(typed, PARIS) == instant


def test_a_time_the_clocks_skip_or_an_unreadable_one_is_refused():
    with i18n.using_locale("en"), pytest.raises(InvalidInput, match="does not exist"):
        local_to_utc("2030-03-31T02:30", PARIS)
    with i18n.using_locale("en"), pytest.raises(InvalidInput, match="date and a time"):
        local_to_utc("tomorrow at eight", PARIS)


def _stored_start(world, session_path: str) -> datetime:
    with transaction(world.runtime.sessions) as db:
        live = db.get(LiveSession, int(session_path.rsplit("/", 1)[1]))
        assert live is not None
        value = live.scheduled_at
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@pytest.mark.parametrize(
    ("typed", "stored", "shown"),
    [
        ("2030-03-31T10:00", datetime(2030, 3, 31, 8, 0, tzinfo=UTC), "31 mars 2030"),
        ("2030-10-27T10:00", datetime(2030, 10, 27, 9, 0, tzinfo=UTC), "27 octobre 2030"),
    ],
)
def test_the_scheduling_form_is_read_in_the_reader_zone_across_dst(
    signed_in, world, people, typed, stored, shown
):
    coord = signed_in(people["coord"])
    form = coord.get("/live", headers=FRENCH)
    assert "Heure du fuseau Europe/Paris." in form.text
    assert "(UTC)" not in form.text
    created = coord.post(
        "/live",
        data={
            "kind": "supervision",
            "title": "Angioplastie carotidienne",
            "site_id": world.metz.id,
            "scheduled_at": typed,
        },
        headers=FRENCH,
    )
    assert created.status_code == 303, created.text
    assert _stored_start(world, created.headers["location"]) == stored
    page = coord.get(created.headers["location"], headers=FRENCH).text
    assert f"{shown} à 10:00" in page
    assert f'datetime="{stored.isoformat()}"' in page
    listed = coord.get("/live", headers=FRENCH).text
    assert shown[:2] in listed and "10:00" in listed


def test_a_skipped_time_re_shows_the_form_with_the_reason_in_french(signed_in, world, people):
    coord = signed_in(people["coord"])
    refused = coord.post(
        "/live",
        data={
            "kind": "broadcast",
            "title": "Valve aortique",
            "site_id": world.metz.id,
            "scheduled_at": "2030-03-31T02:30",
        },
        headers=FRENCH,
    )
    assert refused.status_code == 422
    assert "02:30 n'existe pas dans le fuseau Europe/Paris" in html.unescape(refused.text)
    # What was typed is kept, the kind and the title too.
    assert 'value="2030-03-31T02:30"' in refused.text
    assert 'value="Valve aortique"' in refused.text
    assert re.search(r'<option value="broadcast" selected>Diffusion</option>', refused.text)


def test_the_list_and_session_pages_are_french_by_default_and_english_on_request(
    signed_in, world, people, live_id
):
    coord = signed_in(people["coord"])
    french = coord.get("/live", headers=FRENCH).text
    assert "<h1>Sessions en direct</h1>" in french and "Programmer une session" in french
    assert ">en direct</span>" in french and "Diffusion" in french
    assert "1 session." in french
    english = coord.get("/live").text
    assert "<h1>Live sessions</h1>" in english and "Schedule a session" in english
    assert ">live</span>" in english

    page = coord.get(f"/live/{live_id}", headers=FRENCH).text
    # Two people invited: the coordinator moderates, the student watches.
    assert "2 personnes invitées." in page
    assert ">modérateur</td>" in page and ">spectateur</td>" in page
    assert "Terminer cette session pour tout le monde ?" in page
    assert 'data-people-search="/api/v1/people"' in page
    english_page = coord.get(f"/live/{live_id}").text
    assert "2 people invited." in english_page and ">moderator</td>" in english_page


def test_one_person_invited_is_singular_and_two_plural(signed_in, world, people):
    """The organiser is invited with the session; each invitation adds one person."""
    coord = signed_in(people["coord"])
    created = coord.post(
        "/live",
        data={
            "kind": "conference",
            "title": "Staff",
            "site_id": world.metz.id,
            "scheduled_at": (world.runtime.now() + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M"),
        },
    )
    path = created.headers["location"]
    assert "1 personne invitée." in coord.get(path, headers=FRENCH).text
    assert "1 person invited." in coord.get(path).text
    invited = coord.post(f"{path}/invite", data={"username": "metz-tech", "role": "presenter"})
    assert invited.status_code == 303, re.findall(r"class=\"error\"[^<]*", invited.text)
    assert "2 personnes invitées." in coord.get(path, headers=FRENCH).text
    assert "2 people invited." in coord.get(path).text


def test_an_unknown_invitee_is_reported_in_french(signed_in, world, people, live_id):
    coord = signed_in(people["coord"])
    refused = coord.post(
        f"/live/{live_id}/invite",
        data={"username": "nobody-here", "role": "viewer"},
        headers=FRENCH,
    )
    assert refused.status_code == 422
    assert "Aucun compte actif ne s'appelle nobody-here." in html.unescape(refused.text)


def test_the_join_page_offers_microphone_camera_and_self_view_switches(
    signed_in, world, people, live_id
):
    tech = signed_in(people["tech"])
    french = tech.get(f"/live/{live_id}/join", headers=FRENCH).text
    for attribute, label in (
        ("data-toggle-microphone", "Couper le micro"),
        ("data-toggle-camera", "Couper la caméra"),
        ("data-toggle-self-view", "Afficher ma propre image"),
    ):
        assert re.search(rf'<button type="button" {attribute} aria-pressed="\w+">{label}<', french)
    assert re.search(r"<video data-self-view autoplay playsinline muted", french)
    assert "Rejoindre avec la caméra" in french
    english = tech.get(f"/live/{live_id}/join").text
    assert "Mute microphone" in english and "Turn camera off" in english


def test_the_watch_page_has_no_native_controls_and_says_when_nothing_is_live(
    signed_in, world, people, live_id
):
    viewer = signed_in(people["viewer"])
    french = viewer.get(f"/live/{live_id}/watch", headers=FRENCH).text
    assert "Rien n'est encore en direct" in french
    assert " controls" not in french
    # The page's scripts get their messages in the page's language.
    assert '"Watching as %(role)s.": "Vous regardez en tant que %(role)s."' in french
    english = viewer.get(f"/live/{live_id}/watch").text
    assert "Nothing is live yet" in english


def test_api_problems_are_worded_in_the_reader_language(signed_in, people):
    coord = signed_in(people["coord"])
    french = coord.get("/api/v1/live/sessions/987654", headers=FRENCH)
    assert french.status_code == 404
    assert french.json()["detail"] == "session en direct 987654 introuvable"
    english = coord.get("/api/v1/live/sessions/987654")
    assert english.json()["detail"] == "live session 987654 not found"


def test_the_websocket_refuses_a_stranger_in_french(signed_in, people, live_id, hub):
    stranger = signed_in(people["stranger"])
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        hub(stranger, live_id, **{"accept-language": "fr"}) as ws,
    ):
        ws.receive_json()
    assert refused.value.code == 1008
    assert refused.value.reason == "vous n'êtes pas invité à cette session"
