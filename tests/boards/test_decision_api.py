"""The decisions' JSON API: read a case's decision and its versions, validate it with the
facilitator's second factor, sign an addendum; every refusal a problem (RFC 9457): no
quorum (409, the specialties missing), wrong code and refused access (403, audited),
immutability (409), bad fields (422). (That the API is in the OpenAPI document is
tests/portal/test_ops.py's test of every JSON route.)"""

from __future__ import annotations

from sqlalchemy import select

from concilium.platform.audit import AuditEvent

from .meeting_world import arrive, at, build_meeting, leave, take_up
from .test_case_pages import signed_in

BODY = {
    "proposal": "R-CHOP 6 cures puis TEP d'évaluation",
    "guideline": "Référentiel régional LDGCB 2026",
    "trial": "POLARIX-2",
}
PROBLEM = "application/problem+json"


def _ready(world, clock):
    mw = build_meeting(world, clock)
    cw = mw.cw
    for user in (cw.pathologist, cw.haematologist, mw.radiologist):
        arrive(world, mw, user, 0, at(1))
    take_up(world, mw, mw.cases[0], at(2))
    clock.now = at(3)
    return mw


def _url(case_id: int, what: str = "decision") -> str:
    return f"/api/v1/boards/cases/{case_id}/{what}"


def test_validate_read_and_correct_a_decision(app, world, clock):
    mw = _ready(world, clock)
    cw = mw.cw
    facilitator = signed_in(app, world, cw.pathologist)
    case = mw.cases[0]
    clock.now = at(10)
    body = {**BODY, "referent_id": cw.referrer.id, "code": world.code(cw.pathologist)}
    made = facilitator.post(_url(case), json=body)
    assert made.status_code == 201, made.text
    (version,) = made.json()["versions"]
    assert version["version"] == 1 and version["trial"] == "POLARIX-2"
    assert {p["specialty"] for p in version["participants"]} == {
        "haematology",
        "pathology",
        "radiology",
    }
    assert version["signed_by"]["id"] == cw.pathologist.id
    # A member reads it (an audited view of the case); the patient is never in it.
    member = signed_in(app, world, cw.haematologist)
    read = member.get(_url(case))
    assert read.status_code == 200
    assert read.json()["intact"] is True and read.json()["case"]["status"] == "decided"
    assert "Lemoine" not in read.text and "BRY-1" not in read.text
    # Validating again is refused: the record is immutable.
    clock.now = at(11)
    again = facilitator.post(_url(case), json={**body, "code": world.code(cw.pathologist)})
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
    assert again.json()["reason"] == "immutable"
    # A correction is an addendum, the next version, signed the same way.
    clock.now = at(12)
    addendum = facilitator.post(
        _url(case, "addenda"),
        json={**body, "trial": "", "reason": "Essai clos", "code": world.code(cw.pathologist)},
    )
    assert addendum.status_code == 201, addendum.text
    versions = addendum.json()["versions"]
    assert [v["version"] for v in versions] == [1, 2] and versions[1]["reason"] == "Essai clos"
    assert versions[0]["trial"] == "POLARIX-2"
    with world.runtime.sessions() as db:
        views = db.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "board_case.read", AuditEvent.actor_id == cw.haematologist.id
            )
        ).all()
        assert views and views[-1].patient_id == cw.patient_id


def test_every_refusal_is_a_problem(app, world, clock):
    mw = _ready(world, clock)
    cw = mw.cw
    case = mw.cases[0]
    facilitator = signed_in(app, world, cw.pathologist)
    # Another board's member may not read the case: 403, audited with the patient.
    outsider = signed_in(app, world, cw.outsider)
    refused = outsider.get(_url(case))
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
    with world.runtime.sessions() as db:
        entry = db.scalars(
            select(AuditEvent)
            .where(AuditEvent.actor_id == cw.outsider.id, AuditEvent.outcome == "refused")
            .order_by(AuditEvent.seq.desc())
        ).first()
        assert entry is not None and entry.patient_id == cw.patient_id
    # A member who is not a facilitator may not validate.
    member = signed_in(app, world, cw.haematologist)
    body = {**BODY, "referent_id": cw.referrer.id}
    assert member.post(_url(case), json={**body, "code": "000000"}).status_code == 403
    # Bad fields: 422 with the field named.
    bad = facilitator.post(_url(case), json={**body, "outside_guidelines": True, "code": "1"})
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
    assert facilitator.post(_url(case), json={"code": "1"}).status_code == 422
    # A wrong code: 403, audited.
    wrong = facilitator.post(_url(case), json={**body, "code": "000000"})
    assert wrong.status_code == 403 and wrong.headers["content-type"] == PROBLEM
    with world.runtime.sessions() as db:
        reasons = [
            e.detail
            for e in db.scalars(
                select(AuditEvent).where(
                    AuditEvent.actor_id == cw.pathologist.id, AuditEvent.outcome == "refused"
                )
            )
        ]
        assert any("second factor not confirmed" in str(r) for r in reasons)
    # No addendum to a decision not yet validated.
    early = facilitator.post(
        _url(case, "addenda"), json={**body, "reason": "x", "code": world.code(cw.pathologist)}
    )
    assert early.status_code == 409
    # The radiologist leaves: no quorum, 409 naming radiology, the case on the next meeting.
    leave(world, mw, mw.radiologist, 4, at(5))
    clock.now = at(6)
    short = facilitator.post(_url(case), json={**body, "code": world.code(cw.pathologist)})
    assert short.status_code == 409 and short.headers["content-type"] == PROBLEM
    problem = short.json()
    assert problem["reason"] == "quorum" and problem["missing"] == ["Radiology"]
    assert problem["missing_requirements"] == [["radiology"]]
    assert problem["postponed_to"]["meeting_id"] == cw.meetings[1]
    assert problem["status"] == 409 and "Radiology" in problem["detail"]
