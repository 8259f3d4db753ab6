"""The meeting page as the facilitator runs it: attendance recorded, a case taken up with
its live quorum shown (specialties present and missing), the decision validated with the
facilitator's second factor only when the quorum is met (409 and the case re-listed with
the missing specialty named otherwise), addenda signed the same way; members see the page
but may not run it, a member of another board is refused; bad input shows the form again
(422), in French."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from concilium.boards import case_store
from concilium.boards.tables import BoardAttendance, BoardDecision
from concilium.platform.audit import AuditEvent
from concilium.platform.db import transaction

from .meeting_world import at, build_meeting
from .test_case_pages import signed_in

DECISION = {
    "proposal": "R-CHOP 6 cures puis TEP d'évaluation",
    "guideline": "Référentiel régional LDGCB 2026",
    "trial": "POLARIX-2",
    "further_exams": "",
}


def _tick(clock, seconds: int = 31) -> None:
    """Move on to a fresh step of the authenticators."""
    clock.now = clock.now + timedelta(seconds=seconds)


def test_the_facilitator_runs_the_meeting_and_validates_a_decision(app, world, clock):
    mw = build_meeting(world, clock)
    cw = mw.cw
    clock.now = at(1)
    facilitator = signed_in(app, world, cw.pathologist, "fr")
    url = f"/boards/meetings/{mw.meeting_id}"
    page = facilitator.get(url)
    assert page.status_code == 200 and "Présence" in page.text
    for user in (cw.pathologist, cw.haematologist, mw.radiologist):
        done = facilitator.post(
            f"{url}/attendance", data={"user_id": str(user.id), "event": "arrived", "at": "14:00"}
        )
        assert done.status_code == 303, done.text
    bad = facilitator.post(
        f"{url}/attendance",
        data={"user_id": str(cw.coordinator.id), "event": "arrived", "at": "2h"},
    )
    assert bad.status_code == 422 and "heures et minutes" in bad.text
    first, second = mw.cases
    clock.now = at(2)
    assert facilitator.post(f"{url}/discuss", data={"case_id": str(first)}).status_code == 303
    page = facilitator.get(url)
    live = page.text[page.text.index('id="live-quorum"') :]
    assert "quorum atteint" in live and "radiologie" in live[: live.index("</div>")]
    form = {**DECISION, "referent_id": str(cw.referrer.id)}
    # Outside guidelines without a justification: the form again, nothing saved.
    refused = facilitator.post(
        f"/boards/cases/{first}/decision", data={**form, "outside_guidelines": "1", "code": "1"}
    )
    assert refused.status_code == 422 and "justification" in refused.text
    assert "R-CHOP 6 cures" in refused.text  # what was typed is kept
    # No second factor, or a wrong one: refused, audited.
    clock.now = at(5)
    refused = facilitator.post(f"/boards/cases/{first}/decision", data={**form, "code": "000000"})
    assert refused.status_code == 403 and "authentificateur" in refused.text
    # The radiologist leaves mid-case: the page shows radiology missing, validation refused.
    clock.now = at(8)
    facilitator.post(
        f"{url}/attendance", data={"user_id": str(mw.radiologist.id), "event": "left", "at": ""}
    )
    page = facilitator.get(url)
    assert 'id="quorum-missing">radiologie' in page.text
    assert "radiology" not in page.text  # the specialty is named, not its code
    _tick(clock)
    refused = facilitator.post(
        f"/boards/cases/{first}/decision", data={**form, "code": world.code(cw.pathologist)}
    )
    assert refused.status_code == 409, refused.text
    assert "manque : radiologie" in refused.text and "radiology" not in refused.text
    assert "reporté à la réunion du 26 mars 2027" in refused.text
    with transaction(world.runtime.sessions) as db:
        case = case_store.get_case(db, first)
        assert (case.status, case.meeting_id) == ("on_agenda", cw.meetings[1])
        assert db.scalar(select(BoardDecision).where(BoardDecision.case_id == first)) is None
    # Another radiologist joins; the next case is decided.
    clock.now = at(10)
    facilitator.post(
        f"{url}/attendance",
        data={"user_id": str(mw.second_radiologist.id), "event": "arrived", "at": ""},
    )
    clock.now = at(11)
    facilitator.post(f"{url}/discuss", data={"case_id": str(second)})
    clock.now = at(20)
    done = facilitator.post(
        f"/boards/cases/{second}/decision", data={**form, "code": world.code(cw.pathologist)}
    )
    assert done.status_code == 303, done.text
    page = facilitator.get(f"/boards/cases/{second}")
    assert 'id="decision-v1"' in page.text
    assert "R-CHOP 6 cures puis TEP" in page.text and "Dr-Path" in page.text
    # A correction is an addendum; the decision stays as it was.
    clock.now = at(25)
    addendum = {
        **form,
        "trial": "",
        "reason": "Essai clos au recrutement.",
        "code": world.code(cw.pathologist),
    }
    done = facilitator.post(f"/boards/cases/{second}/addenda", data=addendum)
    assert done.status_code == 303, done.text
    page = facilitator.get(f"/boards/cases/{second}")
    assert 'id="decision-v1"' in page.text and 'id="decision-v2"' in page.text
    assert "POLARIX-2" in page.text and "Essai clos au recrutement." in page.text
    _tick(clock)
    refused = facilitator.post(
        f"/boards/cases/{second}/addenda", data={**addendum, "code": "123456"}
    )
    assert refused.status_code == 403
    with transaction(world.runtime.sessions) as db:
        assert len(db.scalars(select(BoardDecision)).all()) == 2
        assert db.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "board_meeting.run", AuditEvent.outcome == "refused"
            )
        ).all()


def test_members_see_the_meeting_but_only_facilitators_run_it(app, world, clock):
    mw = build_meeting(world, clock)
    cw = mw.cw
    clock.now = at(1)
    url = f"/boards/meetings/{mw.meeting_id}"
    member = signed_in(app, world, cw.haematologist)
    page = member.get(url)
    assert page.status_code == 200 and 'id="attendance-list"' in page.text
    assert 'action="/boards/meetings' not in page.text
    refused = member.post(
        f"{url}/attendance", data={"user_id": str(cw.haematologist.id), "event": "arrived"}
    )
    assert refused.status_code == 403
    assert member.post(f"{url}/discuss", data={"case_id": str(mw.cases[0])}).status_code == 403
    outsider = signed_in(app, world, cw.outsider)
    assert outsider.get(url).status_code == 403
    with transaction(world.runtime.sessions) as db:
        assert db.scalars(select(BoardAttendance)).all() == []
