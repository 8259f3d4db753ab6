"""The store of cases: a draft becomes a submitted case once complete and the patient's
non-opposition recorded, is listed on a meeting, postponed onto the next one by itself,
recorded without discussion where the charter allows it, and every change is kept with
who and when, and audited with the patient."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from concilium.boards import agenda, case_files, case_store, registry
from concilium.boards.tables import BoardCase, BoardCaseDocument, BoardCaseTransition, BoardMeeting
from concilium.platform.audit import AuditEvent
from concilium.platform.db import transaction
from concilium.platform.errors import Conflict, InvalidInput
from concilium.platform.i18n import using_locale

from .cases_world import NOW, PDF, PNG, SUMMARY, actor, build, consent, draft, listed, submitted


@pytest.fixture(autouse=True)
def _english():
    with using_locale("en"):
        yield


def test_a_case_is_submitted_only_complete_and_with_the_patients_non_opposition(world, clock):
    cw = build(world, clock)
    case_id = draft(world, cw, replace(SUMMARY, stage="", performance_status=None), False)
    with transaction(world.runtime.sessions) as db:
        case = case_store.get_case(db, case_id)
        assert case_store.missing_of(db, case) == (
            "non_opposition",
            "summary.stage",
            "summary.performance_status",
            "documents",
        )
        with pytest.raises(InvalidInput) as refused:
            case_store.submit(db, actor(cw.referrer), case, NOW)
        assert "non-opposition" in refused.value.detail and "the stage" in refused.value.detail
    consent(world, cw)
    with transaction(world.runtime.sessions) as db:
        case = case_store.get_case(db, case_id)
        case_store.update_draft(db, actor(cw.referrer), case, SUMMARY, NOW)
        case_files.add_document(db, actor(cw.referrer), case, "imaging_report", "ct.png", PNG, NOW)
        assert case_store.missing_of(db, case) == ()
        case_store.submit(db, actor(cw.referrer), case, NOW)
    with world.runtime.sessions() as db:
        case = db.get(BoardCase, case_id)
        assert case.status == "submitted" and case.submitted_at == NOW
        history = db.scalars(
            select(BoardCaseTransition).where(BoardCaseTransition.case_id == case_id)
        ).all()
        assert [(t.event, t.from_status, t.to_status, t.actor_id) for t in history] == [
            ("create", "draft", "draft", cw.referrer.id),
            ("submit", "draft", "submitted", cw.referrer.id),
        ]
        entries = db.scalars(select(AuditEvent).where(AuditEvent.object_kind == "board_case")).all()
        assert {e.patient_id for e in entries} == {cw.patient_id}
        changes = [json.loads(e.detail)["change"] for e in entries]
        assert changes == ["draft created", "edited", "document added", "submit"]
        assert all("Lemoine" not in e.detail for e in entries)
        # A submitted case is no draft any more: its summary stays as submitted.
        with pytest.raises(Conflict):
            case_store.update_draft(db, actor(cw.referrer), case, SUMMARY, NOW)


def test_a_case_whose_non_opposition_was_withdrawn_cannot_be_listed(world, clock):
    cw = build(world, clock)
    consent(world, cw)
    case_id = submitted(world, cw)
    consent(world, cw, "withdrawn")
    with transaction(world.runtime.sessions) as db:
        case = case_store.get_case(db, case_id)
        meeting = case_store.get_meeting(db, cw.meetings[0])
        with pytest.raises(InvalidInput) as refused:
            case_store.list_on_meeting(db, actor(cw.coordinator), case, meeting, NOW)
        assert "non-opposition" in refused.value.detail
    with world.runtime.sessions() as db:
        assert db.get(BoardCase, case_id).status == "submitted"


def test_a_postponed_case_goes_onto_the_next_meeting_by_itself(world, clock):
    cw = build(world, clock)
    consent(world, cw)
    case_id = listed(world, cw, meeting=2)  # the last meeting generated
    with transaction(world.runtime.sessions) as db:
        case = case_store.get_case(db, case_id)
        assert case.agenda_order == 1
        with pytest.raises(InvalidInput):
            case_store.postpone(db, actor(cw.coordinator), case, "  ", NOW)
        moved_to = case_store.postpone(
            db, actor(cw.coordinator), case, "PET-CT awaited", NOW + timedelta(days=1)
        )
        assert moved_to is not None
    with world.runtime.sessions() as db:
        case = db.get(BoardCase, case_id)
        third = db.get(BoardMeeting, cw.meetings[2])
        fourth = db.get(BoardMeeting, case.meeting_id)
        # The meeting after the last one generated is added from the schedule.
        assert fourth.id not in cw.meetings and fourth.starts_at - third.starts_at == timedelta(7)
        assert (case.status, case.postponements) == ("on_agenda", 1)
        last = db.scalars(
            select(BoardCaseTransition)
            .where(BoardCaseTransition.case_id == case_id)
            .order_by(BoardCaseTransition.id.desc())
        ).first()
        assert (last.event, last.detail, last.meeting_id, last.actor_id) == (
            "postpone",
            "PET-CT awaited",
            fourth.id,
            cw.coordinator.id,
        )


def test_recording_without_discussion_needs_the_charter_and_becomes_an_earlier_decision(
    world, clock
):
    cw = build(world, clock)
    consent(world, cw)
    case_id = listed(world, cw)
    with transaction(world.runtime.sessions) as db:
        case = case_store.get_case(db, case_id)
        with pytest.raises(Conflict, match="charter"):
            case_store.record_without_discussion(db, actor(cw.coordinator), case, "INCa 2024", NOW)
    with transaction(world.runtime.sessions) as db:
        board = registry.get_board(db, cw.board_id)
        rules = registry.rules_of(board)
        registry.set_rules(db, actor(cw.coordinator), board, rules, True)
    with transaction(world.runtime.sessions) as db:
        case = case_store.get_case(db, case_id)
        case_store.record_without_discussion(db, actor(cw.coordinator), case, "INCa 2024", NOW)
    later = draft(world, cw)
    with world.runtime.sessions() as db:
        assert db.get(BoardCase, case_id).status == "recorded"
        earlier = case_store.earlier_decisions(db, case_store.get_case(db, later))
        assert [(d.case.id, d.detail, d.board.id) for d in earlier] == [
            (case_id, "INCa 2024", cw.board_id)
        ]
        assert case_store.earlier_decisions(db, case_store.get_case(db, case_id)) == []


def test_a_withdrawn_case_changes_no_more(world, clock):
    cw = build(world, clock)
    consent(world, cw)
    case_id = listed(world, cw)
    with transaction(world.runtime.sessions) as db:
        case = case_store.get_case(db, case_id)
        case_store.withdraw(db, actor(cw.referrer), case, "patient moved", NOW)
        assert case.meeting_id is None
        with pytest.raises(Conflict, match="withdrawn"):
            case_store.withdraw(db, actor(cw.referrer), case, "again", NOW)


def test_documents_are_pdf_png_or_jpeg_of_bounded_size(world, clock, monkeypatch):
    cw = build(world, clock)
    case_id = draft(world, cw, document=False)
    with transaction(world.runtime.sessions) as db:
        case = case_store.get_case(db, case_id)
        who = actor(cw.referrer)
        for kind, data, message in [
            ("pathology_report", b"MZ\x90\x00 not a document", "PDF, PNG or JPEG"),
            ("pathology_report", b"", "empty"),
            ("prescription", PDF, "kind of document"),
        ]:
            with pytest.raises(InvalidInput, match=message):
                case_files.add_document(db, who, case, kind, "x.pdf", data, NOW)
        monkeypatch.setattr(case_files, "MAX_DOCUMENT_BYTES", 100)
        with pytest.raises(InvalidInput, match="at most"):
            case_files.add_document(db, who, case, "other", "big.pdf", PDF + b" " * 100, NOW)
        kept = case_files.add_document(db, who, case, "other", "../../etc/cr\x00.pdf", PDF, NOW)
        assert (kept.filename, kept.media_type, kept.size) == (
            "cr_.pdf",
            "application/pdf",
            len(PDF),
        )
    with world.runtime.sessions() as db:
        assert [d.content for d in db.scalars(select(BoardCaseDocument))] == [PDF]


def test_the_agenda_is_ordered_planned_and_forecasts_each_cases_quorum(world, clock):
    cw = build(world, clock)
    consent(world, cw)
    first, second, third = (listed(world, cw) for _ in range(3))
    with transaction(world.runtime.sessions) as db:
        meeting = case_store.get_meeting(db, cw.meetings[0])
        who = actor(cw.coordinator)
        case_store.plan_case(
            db, who, case_store.get_case(db, second), 20, frozenset({"surgery"}), NOW
        )
        with pytest.raises(InvalidInput):
            case_store.reorder(db, who, meeting, [third, first], NOW)
        case_store.reorder(db, who, meeting, [third, second, first], NOW)
    with world.runtime.sessions() as db:
        meeting = case_store.get_meeting(db, cw.meetings[0])
        board = registry.get_board(db, cw.board_id)
        forecast = agenda.forecast(db, board, meeting)
        assert [item.case.id for item in forecast.items] == [third, second, first]
        assert [item.planned.start - meeting.starts_at for item in forecast.items] == [
            timedelta(0),
            timedelta(minutes=10),
            timedelta(minutes=30),
        ]
        # Two haematologists and a pathologist: haematology and pathology, two specialties
        # of the three the board needs, and no surgeon for the second case.
        assert [m.case.id for m in forecast.missing_quorum] == [third, second, first]
        needs = {item.case.id: item.planned.quorum for item in forecast.items}
        assert needs[second].missing_required == (frozenset({"surgery"}),)
        assert needs[first].more_needed == 1 and needs[first].missing_required == ()
    with transaction(world.runtime.sessions) as db:
        board = registry.get_board(db, cw.board_id)
        rules = registry.check_rules(2, registry.parse_requirements("haematology, pathology"))
        registry.set_rules(db, actor(cw.coordinator), board, rules)
    with world.runtime.sessions() as db:
        meeting = case_store.get_meeting(db, cw.meetings[0])
        forecast = agenda.forecast(db, registry.get_board(db, cw.board_id), meeting)
        assert [m.case.id for m in forecast.missing_quorum] == [second]


def test_a_case_is_listed_only_on_a_coming_meeting_of_its_board(world, clock):
    cw = build(world, clock)
    consent(world, cw)
    case_id = submitted(world, cw)
    with transaction(world.runtime.sessions) as db:
        case = case_store.get_case(db, case_id)
        meeting = case_store.get_meeting(db, cw.meetings[0])
        with pytest.raises(InvalidInput, match="not over"):
            case_store.list_on_meeting(
                db, actor(cw.coordinator), case, meeting, meeting.ends_at + timedelta(1)
            )
        other = BoardMeeting(
            board_id=cw.other_board_id,
            key="rcp-digestive.2027-03-19",
            scheduled_day=meeting.scheduled_day,
            starts_at=meeting.starts_at,
            ends_at=meeting.ends_at,
            status="planned",
            moved_for="",
        )
        db.add(other)
        db.flush()
        with pytest.raises(InvalidInput, match="this board"):
            case_store.list_on_meeting(db, actor(cw.coordinator), case, other, NOW)
