"""A validated board decision as FHIR R4 resources, for the patient's record in the hospital
systems: a ``Bundle`` of type ``collection`` holding

- the ``CarePlan`` proposed (intent ``proposal``, status ``active``), its description the
  collective proposal, its notes the guideline or reference used, the clinical trial
  proposed, the justification of a proposal outside guidelines, the further examinations
  and a new presentation asked;
- the ``Encounter`` of the meeting (class ``VR``, virtual, of HL7 v3 ActCode), its period
  and its participants with the specialty each counted for;
- the ``Communication`` of the fiche RCP to the patient's general practitioner (the PDF
  attached), or ``not-done`` when the case records no GP address.

Built with the FHIR R4B (4.3) models of ``fhir.resources`` and validated before it leaves;
R4B is wire-compatible with R4 for these resources. The texts are in French, as the fiche
is. The patient is referenced as the FHIR ``Patient`` of this server (``Patient/<id>``).
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from concilium.boards import fiche, registry
from concilium.boards.specialties import specialty_label
from concilium.boards.tables import BoardCase, BoardDecision, BoardMeeting
from concilium.platform.i18n import _, using_locale
from concilium.platform.tables import User

__all__ = ["decision_bundle"]

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_NAMESPACE = uuid.UUID("5b0e2a52-3f0c-4b8e-9a55-6d1f0d6c1e21")
"""Namespace of the entries' ``urn:uuid`` (the same decision gives the same addresses)."""


def _address(case: BoardCase, decision: BoardDecision, kind: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{case.id}/{decision.version}/{kind}')}"


def _person(session: Session, user_id: int) -> dict[str, Any]:
    user = session.get(User, user_id)
    return {"type": "Practitioner", "display": user.full_name if user is not None else "?"}


def _notes(decision: BoardDecision) -> list[dict[str, str]]:
    notes = [_("Guideline or reference used: %(text)s") % {"text": decision.guideline}]
    if decision.outside_guidelines:
        notes.append(_("Outside guidelines: %(text)s") % {"text": decision.justification})
    if decision.trial:
        notes.append(_("Clinical trial proposed: %(text)s") % {"text": decision.trial})
    if decision.further_exams:
        notes.append(_("Further examinations: %(text)s") % {"text": decision.further_exams})
    if decision.represent:
        notes.append(_("To be presented again to the board."))
    if decision.reason:
        notes.append(_("Addendum: %(text)s") % {"text": decision.reason})
    return [{"text": note} for note in notes]


def _encounter(
    session: Session, case: BoardCase, decision: BoardDecision, meeting: BoardMeeting
) -> dict[str, Any]:
    board = registry.get_board(session, case.board_id)
    participants = []
    for entry in decision.participants:
        person = _person(session, int(entry["user"]))
        specialty = str(entry.get("specialty", ""))
        participant: dict[str, Any] = {"individual": person}
        if specialty:
            participant["type"] = [{"text": specialty_label(specialty)}]
        participants.append(participant)
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": ACT_CODE, "code": "VR", "display": "virtual"},
        "type": [{"text": _("Multidisciplinary meeting")}],
        "serviceType": {"text": board.name},
        "subject": {"reference": f"Patient/{case.patient_id}"},
        "participant": participants,
        "period": {"start": meeting.starts_at.isoformat(), "end": meeting.ends_at.isoformat()},
    }


def _care_plan(session: Session, case: BoardCase, decision: BoardDecision) -> dict[str, Any]:
    return {
        "resourceType": "CarePlan",
        "identifier": [
            {"system": "urn:concilium:boards:decision", "value": f"{case.id}-v{decision.version}"}
        ],
        "status": "active",
        "intent": "proposal",
        "title": _("Multidisciplinary meeting proposal"),
        "description": decision.proposal,
        "subject": {"reference": f"Patient/{case.patient_id}"},
        "encounter": {"reference": _address(case, decision, "Encounter")},
        "created": decision.signed_at.isoformat(),
        "author": _person(session, decision.signed_by_id),
        "contributor": [_person(session, decision.referent_id)],
        "note": _notes(decision),
    }


def _communication(case: BoardCase, decision: BoardDecision) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Communication",
        "basedOn": [{"reference": _address(case, decision, "CarePlan")}],
        "subject": {"reference": f"Patient/{case.patient_id}"},
        "encounter": {"reference": _address(case, decision, "Encounter")},
        "payload": [{"contentString": decision.proposal}],
    }
    if case.gp_email:
        body["status"] = "completed"
        body["sent"] = decision.signed_at.isoformat()
        body["recipient"] = [
            {
                "type": "Practitioner",
                "identifier": {"system": "urn:ietf:rfc:3986", "value": f"mailto:{case.gp_email}"},
                "display": _("General practitioner"),
            }
        ]
    else:
        body["status"] = "not-done"
        body["statusReason"] = {"text": _("No general practitioner's address is recorded.")}
    if decision.fiche_pdf:
        body["payload"].append(
            {
                "contentAttachment": {
                    "contentType": "application/pdf",
                    "language": "fr",
                    "data": base64.b64encode(decision.fiche_pdf).decode("ascii"),
                    "title": fiche.filename(case, decision),
                }
            }
        )
    return body


def decision_bundle(
    session: Session, case: BoardCase, decision: BoardDecision, now: datetime
) -> dict[str, Any]:
    """The decision (a validated version) as a ``Bundle`` of type ``collection``, validated
    with the R4B models."""
    from fhir.resources.R4B.bundle import Bundle

    meeting = session.get(BoardMeeting, decision.meeting_id)
    if meeting is None:  # pragma: no cover - a foreign key keeps the meeting
        raise LookupError("the decision's meeting is missing")
    with using_locale("fr"):
        resources = {
            "CarePlan": _care_plan(session, case, decision),
            "Encounter": _encounter(session, case, decision, meeting),
            "Communication": _communication(case, decision),
        }
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "identifier": {
            "system": "urn:concilium:boards:decision",
            "value": f"{case.id}-v{decision.version}",
        },
        "type": "collection",
        "timestamp": now.isoformat(timespec="seconds"),
        "entry": [
            {"fullUrl": _address(case, decision, kind), "resource": resource}
            for kind, resource in resources.items()
        ],
    }
    Bundle.model_validate(bundle)
    return bundle
