"""Boards in the database: created, edited, their members, sites and quorum, audited."""

from __future__ import annotations

from datetime import time

import pytest
from sqlalchemy import select

from concilium.boards import registry
from concilium.boards.actions import BoardAction
from concilium.boards.quorum import HAEMATOLOGY, QuorumRules
from concilium.boards.tables import Board
from concilium.platform import accounts
from concilium.platform.audit import AuditEvent
from concilium.platform.db import transaction
from concilium.platform.errors import Conflict, InvalidInput, NotFound
from concilium.platform.i18n import using_locale
from concilium.platform.policy import Principal, decide

from .boards_world import OPERATOR, fields, make_board


@pytest.fixture(autouse=True)
def _english():
    """Messages in English, whichever catalogues an earlier test loaded (French is the
    default, tested with the pages and the command)."""
    with using_locale("en"):
        yield


def test_a_board_starts_with_its_types_rules_and_its_organising_site(runtime, world):
    made = make_board(runtime, world.metz.id)
    with runtime.sessions() as db:
        board = registry.get_board(db, made.id)
        assert registry.rules_of(board) == HAEMATOLOGY
        assert registry.site_ids_of(db, board) == {world.metz.id}
        schedule = registry.schedule_of(board)
        assert schedule.board == "rcp-hemato"
        assert schedule.recurrence.at == time(14, 0) and schedule.recurrence.weekday == 4
        event = db.scalars(select(AuditEvent).where(AuditEvent.object_kind == "board")).one()
        assert event.action == "board.manage" and event.object_id == "rcp-hemato"
        assert '"change": "created"' in event.detail and event.site_id == world.metz.id


@pytest.mark.parametrize(
    ("code", "overrides", "message"),
    [
        ("Bad Code", {}, "The code is lower-case"),
        ("ok", {"name": " "}, "Give the board a name"),
        ("ok", {"weekday": 7}, "day of the week"),
        ("ok", {"duration_minutes": 0}, "duration is 1 to"),
        ("ok", {"timezone": "Mars/Olympus"}, "is not a time zone"),
        ("ok", {"holiday_region": "XX"}, "region"),
        ("ok", {"on_holiday": "maybe"}, "public holiday"),
        ("ok", {"board_type": "astrology"}, "type of board"),
        ("ok", {"interval_weeks": 60}, "every 1 to 52 weeks"),
    ],
)
def test_bad_boards_are_refused_with_what_to_write(runtime, world, code, overrides, message):
    with runtime.sessions() as db, pytest.raises(InvalidInput, match=message):
        registry.create_board(db, OPERATOR, code, fields(world.metz.id, **overrides))
    with runtime.sessions() as db:
        assert db.scalars(select(Board)).first() is None


def test_a_code_names_one_board_only(runtime, world):
    make_board(runtime, world.metz.id)
    with runtime.sessions() as db, pytest.raises(Conflict):
        registry.create_board(db, OPERATOR, "rcp-hemato", fields(world.briey.id))


def test_members_sites_and_rules_are_kept_and_audited(runtime, world):
    made = make_board(runtime, world.metz.id)
    doctor = world.user("dr-path", (world.briey, "specialist"))
    with transaction(runtime.sessions) as db:
        board = registry.get_board(db, made.id)
        user = accounts.get_user(db, doctor.id)
        registry.set_member(db, OPERATOR, board, user, frozenset({"pathology"}), "member")
        registry.set_member(
            db, OPERATOR, board, user, frozenset({"pathology", "haematology"}), "facilitator"
        )
        registry.add_site(db, OPERATOR, board, world.briey.id)
        with pytest.raises(Conflict):
            registry.add_site(db, OPERATOR, board, world.briey.id)
        rules = registry.check_rules(4, registry.parse_requirements("pathology, surgery|oncology"))
        registry.set_rules(db, OPERATOR, board, rules)
    with transaction(runtime.sessions) as db:
        board = registry.get_board(db, made.id)
        [member] = registry.members_of(db, board)
        assert member.specialties == ["haematology", "pathology"]
        assert member.role == "facilitator"
        assert registry.site_ids_of(db, board) == {world.metz.id, world.briey.id}
        assert registry.rules_of(board) == QuorumRules(
            4, (frozenset({"pathology"}), frozenset({"surgery", "oncology"}))
        )
        assert registry.show_requirements(board.required_specialties) == (
            "pathology, oncology | surgery"
        )
        with pytest.raises(InvalidInput, match="organising site"):
            registry.remove_site(db, OPERATOR, board, world.metz.id)
        registry.remove_site(db, OPERATOR, board, world.briey.id)
        registry.remove_member(db, OPERATOR, board, doctor.id)
        with pytest.raises(NotFound):
            registry.remove_member(db, OPERATOR, board, doctor.id)
    with runtime.sessions() as db:
        changes = [
            e.detail
            for e in db.scalars(
                select(AuditEvent).where(AuditEvent.object_kind == "board").order_by(AuditEvent.seq)
            )
        ]
    kinds = [d.split('"change": "')[1].split('"')[0] for d in changes]
    assert kinds == [
        "created",
        "member added",
        "member changed",
        "site added",
        "quorum",
        "site removed",
        "member removed",
    ]


def test_the_policy_lets_members_see_and_organisers_manage(runtime, world):
    made = make_board(runtime, world.metz.id)
    member = world.user("member", (world.briey, "specialist"))
    colleague = world.user("colleague", (world.metz, "specialist"))
    organiser = world.user("organiser", (world.metz, "coordinator"))
    with transaction(runtime.sessions) as db:
        board = registry.get_board(db, made.id)
        registry.set_member(
            db, OPERATOR, board, accounts.get_user(db, member.id), frozenset({"pathology"})
        )
    with runtime.sessions() as db:
        target = registry.board_target(db, registry.get_board(db, made.id))

    def who(user, site, role):
        return Principal(user.id, user.username, {site.id: frozenset({role})})

    read, manage = BoardAction.BOARD_READ, BoardAction.BOARD_MANAGE
    assert decide(who(member, world.briey, "specialist"), read, target).allowed
    assert not decide(who(member, world.briey, "specialist"), manage, target).allowed
    assert not decide(who(colleague, world.metz, "specialist"), read, target).allowed
    assert decide(who(organiser, world.metz, "coordinator"), manage, target).allowed
    assert decide(who(organiser, world.metz, "coordinator"), read, target).allowed
    assert not decide(who(organiser, world.briey, "coordinator"), read, target).allowed
    briey_admin = Principal(99, "briey-admin", {world.briey.id: frozenset({"admin"})})
    assert not decide(briey_admin, manage, target).allowed


@pytest.mark.parametrize(
    ("text", "message"),
    [("Pathology!", "not a specialty code"), ("1st", "not a specialty code")],
)
def test_specialty_codes_are_checked(text, message):
    with pytest.raises(InvalidInput, match=message):
        registry.parse_specialties(text)


def test_a_specialty_cannot_meet_two_requirements():
    with pytest.raises(InvalidInput, match="appears in two requirements"):
        registry.check_rules(3, registry.parse_requirements("surgery, surgery | oncology"))
    with pytest.raises(InvalidInput, match="1 to 30"):
        registry.check_rules(0, ())
