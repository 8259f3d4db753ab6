"""The boards' pages: an organiser creates and edits a board, a member sees their coming
meetings in their own time zone, and nobody else sees the board."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import select

from concilium.boards import registry
from concilium.boards.tables import Board, BoardMeeting, BoardMember
from concilium.platform import audit
from concilium.platform.audit import AuditEvent
from concilium.platform.db import transaction
from concilium.platform.tables import User

from .boards_world import make_board

BOARD_FORM = {
    "code": "rcp-hemato-ouest",
    "name": "RCP régionale d'hématologie",
    "board_type": "haematology",
    "starts_on": "2027-01-01",
    "until": "",
    "weekday": "4",
    "at": "14:00",
    "duration_minutes": "120",
    "timezone": "Europe/Paris",
    "interval_weeks": "1",
    "holiday_region": "FR",
    "on_holiday": "skip",
}


def signed_in(app, world, user):
    browser = world.client(app)
    browser.headers["x-csrf-token"] = world.sign_in(browser, user)
    return browser


def organiser_browser(app, world):
    organiser = world.user("coord", (world.metz, "coordinator"), with_totp=True)
    return signed_in(app, world, organiser)


def test_an_organiser_creates_a_board_adds_members_and_generates_meetings(app, world, clock):
    clock.now = datetime(2027, 3, 15, 8, tzinfo=UTC)
    browser = organiser_browser(app, world)
    world.user("dr-path", (world.briey, "specialist"))
    created = browser.post("/admin/boards", data={**BOARD_FORM, "site_id": world.metz.id})
    assert created.status_code == 303, created.text
    page_url = created.headers["location"]
    page = browser.get(page_url)
    assert page.status_code == 200
    assert "RCP régionale d&#39;hématologie" in page.text
    # A haematology board starts requiring a haematologist and a pathologist.
    assert 'value="haematology, pathology"' in page.text
    # The codes to type are listed with the specialty each names.
    assert "<li>Pathology: <code>pathology</code></li>" in page.text
    added = browser.post(
        f"{page_url}/members",
        data={"username": "dr-path", "specialties": "pathology", "role": "facilitator"},
    )
    assert added.status_code == 303
    assert browser.post(f"{page_url}/sites", data={"site_id": world.briey.id}).status_code == 303
    quorum = browser.post(
        f"{page_url}/quorum", data={"min_specialties": "4", "required": "pathology"}
    )
    assert quorum.status_code == 303
    generated = browser.post(f"{page_url}/meetings", data={"weeks": "4"})
    assert generated.status_code == 303
    again = browser.post(f"{page_url}/meetings", data={"weeks": "4"})
    assert again.status_code == 303
    page = browser.get(page_url)
    assert "Dr-Path" in page.text and "Facilitator" in page.text
    assert "CH Briey" in page.text
    # 26 March 2027 at 14:00 in Paris, then 2 April after the change to summer time.
    assert "Friday, 26 March 2027, 14:00" in page.text
    assert "Friday, 2 April 2027, 14:00" in page.text
    with world.runtime.sessions() as db:
        board = db.scalars(select(Board)).one()
        assert board.min_specialties == 4 and board.required_specialties == [["pathology"]]
        assert len(db.scalars(select(BoardMeeting)).all()) == 4
    listed = browser.get("/admin/boards")
    assert "rcp-hemato-ouest" in listed.text
    # A new start time moves the meetings already planned, which keep their key.
    moved = browser.post(page_url, data={**BOARD_FORM, "at": "15:30"})
    assert moved.status_code == 303
    assert "Friday, 26 March 2027, 15:30" in browser.get(page_url).text
    with world.runtime.sessions() as db:
        keys = [m.key for m in db.scalars(select(BoardMeeting).order_by(BoardMeeting.starts_at))]
        assert keys[0] == "rcp-hemato-ouest.2027-03-19" and len(keys) == 4
    # The organiser sees the board as its members do, though not a member.
    assert browser.get(page_url.replace("/admin", "")).status_code == 200


def test_bad_input_shows_the_form_again_in_french_and_saves_nothing(app, world):
    browser = organiser_browser(app, world)
    browser.headers["Accept-Language"] = "fr"
    bad = browser.post(
        "/admin/boards", data={**BOARD_FORM, "timezone": "Mars/Olympus", "site_id": world.metz.id}
    )
    assert bad.status_code == 422
    assert "Mars/Olympus n&#39;est pas un fuseau horaire" in bad.text
    assert 'value="rcp-hemato-ouest"' in bad.text  # what was typed is kept
    bad_time = browser.post(
        "/admin/boards", data={**BOARD_FORM, "at": "quatorze", "site_id": world.metz.id}
    )
    assert bad_time.status_code == 422 and "HH:MM" in bad_time.text
    no_site = browser.post("/admin/boards", data={**BOARD_FORM, "site_id": "Rennes"})
    assert no_site.status_code == 422
    assert "Choisissez l&#39;établissement organisateur" in no_site.text
    with world.runtime.sessions() as db:
        assert db.scalars(select(Board)).first() is None
    board = make_board(world.runtime, world.metz.id)
    url = f"/admin/boards/{board.id}"
    for path, data, message in [
        ("/members", {"username": "nobody", "specialties": "pathology"}, "Aucun compte nobody"),
        ("/members", {"username": "coord", "specialties": "Path!"}, "code de spécialité"),
        ("/quorum", {"min_specialties": "trois", "required": ""}, "est un nombre"),
        ("/quorum", {"min_specialties": "3", "required": "surgery, surgery"}, "deux exigences"),
        ("/meetings", {"weeks": "500"}, "1 à 104 semaines"),
        ("", {**BOARD_FORM, "duration_minutes": "0"}, "La durée est de 1 à 720 minutes"),
        ("/sites", {"site_id": ""}, "Choisissez un établissement"),
    ]:
        response = browser.post(url + path, data=data)
        assert response.status_code == 422, (path, response.status_code)
        assert message in response.text, path
        if path == "/members":  # what was typed is kept
            assert f'value="{data["specialties"]}"' in response.text
    with world.runtime.sessions() as db:
        assert db.scalars(select(BoardMember)).first() is None
        assert db.scalars(select(BoardMeeting)).first() is None


def test_a_member_sees_their_coming_meetings_in_their_time_zone(app, world, clock):
    clock.now = datetime(2027, 3, 15, 8, tzinfo=UTC)
    board = make_board(world.runtime, world.metz.id)
    other = make_board(world.runtime, world.metz.id, "rcp-digestive", name="RCP digestive")
    member = world.user("dr-hemato", (world.briey, "specialist"), with_totp=True)
    with transaction(world.runtime.sessions) as db:
        user = db.get(User, member.id)
        user.timezone = "America/Martinique"
        from concilium.boards import meetings

        for made in (board, other):
            found = registry.get_board(db, made.id)
            meetings.generate_meetings(db, audit.SYSTEM, found, clock.now, 2)
        registry.set_member(
            db, audit.SYSTEM, registry.get_board(db, board.id), user, frozenset({"haematology"})
        )
    browser = signed_in(app, world, member)
    mine = browser.get("/boards")
    assert mine.status_code == 200
    # 14:00 in Paris on 19 March is 09:00 in Martinique (UTC-4, no summer time).
    assert "Friday, 19 March 2027, 09:00" in mine.text
    assert "RCP digestive" not in mine.text
    seen = browser.get(f"/boards/{board.id}")
    assert seen.status_code == 200 and "Dr-Hemato" in seen.text
    assert "Friday, 26 March 2027, 09:00" in seen.text
    # Specialties are named in the reader's language, never by their codes.
    assert "(Haematology)" in mine.text
    browser.headers["Accept-Language"] = "fr"
    mine = browser.get("/boards")
    assert "(hématologie)" in mine.text and "haematology" not in mine.text
    seen = browser.get(f"/boards/{board.id}")
    assert "dont hématologie, anatomopathologie" in seen.text
    assert ">hématologie</td>" in seen.text
    assert "haematology" not in seen.text and "pathology" not in seen.text


def test_nobody_but_its_members_sees_a_board(app, world):
    board = make_board(world.runtime, world.metz.id)
    digestive = make_board(world.runtime, world.metz.id, "rcp-digestive", name="RCP digestive")
    member = world.user("member", (world.briey, "specialist"), with_totp=True)
    outsider = world.user("outsider", (world.metz, "specialist"), with_totp=True)
    with transaction(world.runtime.sessions) as db:
        for made, user in ((board, member), (digestive, outsider)):
            registry.set_member(
                db,
                audit.SYSTEM,
                registry.get_board(db, made.id),
                db.get(User, user.id),
                frozenset({"pathology"}),
            )
    # A member of another board, though of the organising hospital, is refused.
    browser = signed_in(app, world, outsider)
    assert browser.get(f"/boards/{board.id}").status_code == 403
    assert browser.get(f"/boards/{digestive.id}").status_code == 200
    mine = browser.get("/boards").text
    assert f'href="/boards/{board.id}"' not in mine and f'href="/boards/{digestive.id}"' in mine
    # A member manages nothing; a site administrator elsewhere neither.
    member_browser = signed_in(app, world, member)
    assert member_browser.get(f"/admin/boards/{board.id}").status_code == 403
    briey_admin = world.user("briey-admin", (world.briey, "admin"), with_totp=True)
    admin_browser = signed_in(app, world, briey_admin)
    assert admin_browser.get(f"/admin/boards/{board.id}").status_code == 403
    removed = admin_browser.post(f"/admin/boards/{board.id}/members/{member.id}/remove")
    assert removed.status_code == 403
    assert f'href="/admin/boards/{board.id}"' not in admin_browser.get("/admin/boards").text
    with world.runtime.sessions() as db:
        refusals = db.scalars(select(AuditEvent).where(AuditEvent.outcome == "refused")).all()
        # Refused on the board itself, or (holding no organiser's role) before any board.
        assert {(r.actor, r.action, r.object_kind, r.object_id) for r in refusals} >= {
            ("outsider", "board.read", "board", str(board.id)),
            ("briey-admin", "board.manage", "board", str(board.id)),
            ("member", "board.manage", "", ""),
        }
        kept = db.scalars(select(BoardMember).where(BoardMember.board_id == board.id)).one()
        assert kept.user_id == member.id


def test_the_menu_shows_my_boards_and_the_administration_to_organisers(app, world):
    browser = organiser_browser(app, world)
    home = browser.get("/")
    assert re.search(r'href="/boards"', home.text) and 'href="/admin/boards"' in home.text
