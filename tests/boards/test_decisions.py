"""Attendance, the live quorum of the case under discussion and the decision: someone
leaving mid-case makes the validation refused and the case re-listed on the next meeting
with the missing specialty named; someone joining makes it accepted; a validated decision
is never changed, its corrections are signed versions kept with it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from concilium.boards import attendance, case_store, decisions, registry
from concilium.boards.tables import BoardCaseTransition, BoardDecision
from concilium.platform import i18n
from concilium.platform.audit import AuditEvent
from concilium.platform.db import transaction
from concilium.platform.errors import Conflict, InvalidInput
from concilium.platform.i18n import using_locale
from concilium.services import LOCALE_FOLDERS

from .cases_world import actor
from .meeting_world import arrive, at, build_meeting, leave, take_up

FIELDS = decisions.DecisionFields(
    proposal="R-CHOP 6 cures puis TEP d'évaluation",
    guideline="Référentiel régional LDGCB 2026",
    trial="POLARIX-2",
    further_exams="TEP-TDM à mi-traitement",
)


def _fields(mw, **changes):
    values = {**FIELDS.__dict__, "referent_id": mw.cw.referrer.id, **changes}
    return decisions.DecisionFields(**values)


def _live(world, mw, case_id, now):
    with transaction(world.runtime.sessions) as db:
        case = case_store.get_case(db, case_id)
        board = registry.get_board(db, case.board_id)
        discussion = attendance.discussion_of(db, case)
        assert discussion is not None
        return attendance.case_quorum(db, board, case, discussion.started_at, now)


def _validate(world, mw, case_id, now, **changes):
    i18n.load_catalogues(LOCALE_FOLDERS)
    with using_locale("fr"), transaction(world.runtime.sessions) as db:
        case = case_store.get_case(db, case_id)
        outcome = decisions.validate(
            db, actor(mw.cw.pathologist), case, _fields(mw, **changes), now
        )
        return (
            outcome.decision.id if outcome.decision else None,
            outcome.missing,
            (outcome.postponed_to.id if outcome.postponed_to else None),
        )


def test_leaving_mid_case_refuses_the_decision_and_relists_the_case(world, clock):
    mw = build_meeting(world, clock)
    cw = mw.cw
    clock.now = at(5)
    for user in (cw.pathologist, cw.haematologist, mw.radiologist):
        arrive(world, mw, user, 0, clock.now)
    first, second = mw.cases
    take_up(world, mw, first, at(5))
    live = _live(world, mw, first, at(6))
    assert live.met and live.specialties == {"haematology", "pathology", "radiology"}
    # The radiologist leaves while the case is discussed: the live quorum drops.
    leave(world, mw, mw.radiologist, 8, at(9))
    live = _live(world, mw, first, at(9))
    assert not live.met and live.missing_required == (frozenset({"radiology"}),)
    # Validation is refused and the case goes onto the next meeting, radiology named.
    decision_id, missing, postponed_to = _validate(world, mw, first, at(10))
    assert decision_id is None and missing == ("radiologie",)
    assert postponed_to == cw.meetings[1]
    with transaction(world.runtime.sessions) as db:
        case = case_store.get_case(db, first)
        assert (case.status, case.meeting_id, case.postponements) == (
            "on_agenda",
            cw.meetings[1],
            1,
        )
        last = db.scalars(
            select(BoardCaseTransition)
            .where(BoardCaseTransition.case_id == first)
            .order_by(BoardCaseTransition.id.desc())
        ).first()
        assert last.event == "postpone" and "manque : radiologie" in last.detail
        assert db.scalar(select(BoardDecision).where(BoardDecision.case_id == first)) is None
    # Another radiologist joins before the next case: its decision is accepted.
    arrive(world, mw, mw.second_radiologist, 11, at(11))
    take_up(world, mw, second, at(12))
    decision_id, missing, _ = _validate(world, mw, second, at(20))
    assert decision_id is not None and missing == ()
    with transaction(world.runtime.sessions) as db:
        case = case_store.get_case(db, second)
        assert case.status == "decided"
        row = db.get(BoardDecision, decision_id)
        counted = {p["user"]: p["specialty"] for p in row.participants}
        assert counted == {
            cw.pathologist.id: "pathology",
            cw.haematologist.id: "haematology",
            mw.second_radiologist.id: "radiology",
        }
        assert row.signed_by_id == cw.pathologist.id and row.version == 1
        audited = db.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "board_meeting.run", AuditEvent.patient_id == cw.patient_id
            )
        ).all()
        assert any("decision validated" in e.detail for e in audited)


def test_someone_arriving_mid_case_does_not_count(world, clock):
    mw = build_meeting(world, clock)
    cw = mw.cw
    for user in (cw.pathologist, cw.haematologist):
        arrive(world, mw, user, 0, at(1))
    take_up(world, mw, mw.cases[0], at(2))
    arrive(world, mw, mw.radiologist, 3, at(3))
    assert not _live(world, mw, mw.cases[0], at(4)).met


def test_bad_attendance_and_forms_are_refused(world, clock):
    mw = build_meeting(world, clock)
    cw = mw.cw
    arrive(world, mw, cw.pathologist, 0, at(1))
    with pytest.raises(Conflict):
        arrive(world, mw, cw.pathologist, 2, at(3))
    with pytest.raises(InvalidInput):
        arrive(world, mw, cw.outsider, 2, at(3))  # not a member of the board
    with pytest.raises(InvalidInput):
        arrive(world, mw, cw.haematologist, 10, at(3))  # in the future
    with pytest.raises(Conflict):
        leave(world, mw, cw.haematologist, 4, at(5))  # not present
    take_up(world, mw, mw.cases[0], at(5))
    with pytest.raises(Conflict):
        take_up(world, mw, mw.cases[1], at(6))  # one case at a time
    with pytest.raises(InvalidInput, match="justification"):
        _validate(world, mw, mw.cases[0], at(7), outside_guidelines=True)
    with pytest.raises(InvalidInput):
        _validate(world, mw, mw.cases[0], at(7), proposal=" ")
    with pytest.raises(InvalidInput):
        _validate(world, mw, mw.cases[0], at(7), referent_id=cw.outsider.id)
    with transaction(world.runtime.sessions) as db:
        assert case_store.get_case(db, mw.cases[0]).status == "discussed"


def test_a_decision_is_immutable_and_corrected_by_signed_addenda(world, clock):
    mw = build_meeting(world, clock)
    cw = mw.cw
    for user in (cw.pathologist, cw.haematologist, mw.radiologist):
        arrive(world, mw, user, 0, at(1))
    take_up(world, mw, mw.cases[0], at(2))
    _validate(world, mw, mw.cases[0], at(10))
    with transaction(world.runtime.sessions) as db:
        case = case_store.get_case(db, mw.cases[0])
        with pytest.raises(Conflict):  # a decided case cannot be validated again
            decisions.validate(db, actor(cw.pathologist), case, _fields(mw), at(11))
        with pytest.raises(InvalidInput):
            decisions.add_addendum(db, actor(cw.pathologist), case, _fields(mw), " ", at(11))
        decisions.add_addendum(
            db,
            actor(cw.pathologist),
            case,
            _fields(mw, trial="", proposal="R-CHOP 6 cures"),
            "L'essai POLARIX-2 est clos.",
            at(12),
        )
    with transaction(world.runtime.sessions) as db:
        case = case_store.get_case(db, mw.cases[0])
        versions = decisions.decisions_of(db, case)
        assert [v.version for v in versions] == [1, 2]
        assert versions[0].trial == "POLARIX-2" and versions[1].trial == ""
        assert versions[1].reason == "L'essai POLARIX-2 est clos."
        assert decisions.intact(versions)
        versions[0].proposal = "autre chose"  # a change behind the store's back shows
        assert not decisions.intact(versions)
        db.rollback()
