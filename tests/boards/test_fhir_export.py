"""A validated decision exported as FHIR R4: the CarePlan proposed, the meeting's virtual
Encounter with its participants, the Communication of the fiche to the GP, as one Bundle
that the R4B models validate; served to who may read the case, the export audited."""

from __future__ import annotations

import base64

from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select

from concilium.boards import case_store, decisions, fiche
from concilium.platform.db import transaction
from concilium.platform.tables import AuditEvent

from .cases_world import actor
from .meeting_world import arrive, at, build_meeting, take_up
from .test_case_pages import signed_in
from .test_decisions import FIELDS


def test_the_decision_is_exported_as_a_validated_fhir_bundle(app, world, clock):
    mw = build_meeting(world, clock)
    cw = mw.cw
    case_id = mw.cases[0]
    with transaction(world.runtime.sessions) as db:
        case_store.get_case(db, case_id).gp_email = "medecin.traitant@exemple.fr"
    for user in (cw.pathologist, cw.haematologist, mw.radiologist):
        arrive(world, mw, user, 0, at(1))
    take_up(world, mw, case_id, at(2))
    browser = signed_in(app, world, cw.haematologist)
    assert browser.get(f"/boards/cases/{case_id}/fhir").status_code == 404  # not decided yet
    with transaction(world.runtime.sessions) as db:
        case = case_store.get_case(db, case_id)
        fields = decisions.DecisionFields(
            **{
                **FIELDS.__dict__,
                "referent_id": cw.referrer.id,
                "outside_guidelines": True,
                "justification": "Âge physiologique élevé, comorbidités",
            }
        )
        outcome = decisions.validate(db, actor(cw.pathologist), case, fields, at(10))
        assert outcome.decision is not None
        fiche.file_and_send(db, world.runtime, case, outcome.decision, [], at(10))
        patient_id = case.patient_id

    served = browser.get(f"/boards/cases/{case_id}/fhir")
    assert served.status_code == 200, served.text
    assert served.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate(served.json())
    assert bundle.type == "collection"
    resources = {entry.resource.get_resource_type(): entry for entry in bundle.entry}
    assert set(resources) == {"CarePlan", "Encounter", "Communication"}

    plan = resources["CarePlan"].resource
    assert (plan.status, plan.intent) == ("active", "proposal")
    assert plan.subject.reference == f"Patient/{patient_id}"
    assert plan.description == FIELDS.proposal
    notes = " | ".join(note.text for note in plan.note)
    assert FIELDS.guideline in notes and FIELDS.trial in notes
    assert "Hors référentiel : Âge physiologique élevé, comorbidités" in notes
    assert plan.encounter.reference == resources["Encounter"].fullUrl

    encounter = resources["Encounter"].resource
    assert encounter.class_fhir.code == "VR"
    people = {p.individual.display: p.type[0].text for p in encounter.participant}
    assert people["Dr-Path"] == "anatomopathologie"
    assert len(people) == 3

    letter = resources["Communication"].resource
    assert letter.status == "completed"
    assert letter.recipient[0].identifier.value == "mailto:medecin.traitant@exemple.fr"
    assert letter.basedOn[0].reference == resources["CarePlan"].fullUrl
    attached = served.json()["entry"][2]["resource"]["payload"][1]["contentAttachment"]
    pdf = base64.b64decode(attached["data"])
    assert pdf.startswith(b"%PDF-")

    # Someone who may not read the case is refused, and the export is audited.
    refused = signed_in(app, world, cw.outsider).get(f"/boards/cases/{case_id}/fhir")
    assert refused.status_code == 403
    with world.runtime.sessions() as db:
        views = (
            db.execute(
                select(AuditEvent.detail).where(
                    AuditEvent.patient_id == patient_id, AuditEvent.outcome == "success"
                )
            )
            .scalars()
            .all()
        )
    assert any("fhir v1" in str(detail) for detail in views)
