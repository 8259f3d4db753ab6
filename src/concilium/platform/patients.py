"""Patients: one person, identified by each hospital under its own number; consent per purpose."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import false, or_, select
from sqlalchemy.orm import Session

from concilium.platform import audit
from concilium.platform.db import utcnow
from concilium.platform.errors import Conflict, InvalidInput, NotFound
from concilium.platform.i18n import _
from concilium.platform.policy import Target
from concilium.platform.sharing import active_share_targets
from concilium.platform.tables import Consent, Patient, PatientIdentifier

MDT_PRESENTATION = "mdt_presentation"
"""The patient, informed, does not object to their case being presented to a
multidisciplinary meeting (RCP): a case cannot be submitted or listed without it."""
PURPOSES = ("remote_reading", MDT_PRESENTATION, "teaching", "telesurgery")
"""Purposes a patient consents to (or opposes): remote reading, multidisciplinary meeting,
teaching broadcast and recording, telesurgery."""
DECISIONS = ("granted", "refused", "withdrawn")
SEXES = ("F", "M", "O", "U")
IDENTIFIER_RE = re.compile(r"^[A-Za-z0-9._/-]{1,64}$")


@dataclass(frozen=True)
class Demographics:
    family_name: str
    given_name: str
    birth_date: date | None = None
    sex: str = "U"

    def __post_init__(self) -> None:
        if not self.family_name.strip() or not self.given_name.strip():
            raise InvalidInput(_("family and given names are required"))
        if self.sex not in SEXES:
            raise InvalidInput(f"sex must be one of {', '.join(SEXES)}")
        if self.birth_date is not None and self.birth_date > date.today():
            raise InvalidInput(_("birth date is in the future"))


def _check_identifier(value: str) -> str:
    value = value.strip()
    if not IDENTIFIER_RE.match(value):
        raise InvalidInput(_("hospital identifier: 1-64 letters, digits, '.', '_', '/' or '-'"))
    return value


def create_patient(
    session: Session, actor: audit.Actor, site_id: int, identifier: str, who: Demographics
) -> Patient:
    identifier = _check_identifier(identifier)
    if find_by_identifier(session, site_id, identifier) is not None:
        raise Conflict(f"identifier {identifier} is already used at this site")
    patient = Patient(
        family_name=who.family_name.strip(),
        given_name=who.given_name.strip(),
        birth_date=who.birth_date,
        sex=who.sex,
    )
    patient.identifiers = [PatientIdentifier(site_id=site_id, value=identifier)]
    session.add(patient)
    session.flush()
    audit.record(
        session,
        actor,
        "patient.create",
        "success",
        object_kind="patient",
        object_id=patient.id,
        patient_id=patient.id,
        site_id=site_id,
    )
    return patient


def update_demographics(
    session: Session, actor: audit.Actor, patient: Patient, who: Demographics
) -> None:
    patient.family_name = who.family_name.strip()
    patient.given_name = who.given_name.strip()
    patient.birth_date = who.birth_date
    patient.sex = who.sex
    patient.updated_at = utcnow()
    audit.record(
        session,
        actor,
        "patient.update",
        "success",
        object_kind="patient",
        object_id=patient.id,
        patient_id=patient.id,
    )


def add_identifier(
    session: Session, actor: audit.Actor, patient: Patient, site_id: int, value: str
) -> PatientIdentifier:
    """Cross-reference: the same person is known to another hospital under this number."""
    value = _check_identifier(value)
    existing = find_by_identifier(session, site_id, value)
    if existing is not None:
        raise Conflict(f"identifier {value} already designates patient {existing.id} there")
    if any(i.site_id == site_id for i in patient.identifiers):
        raise Conflict(_("the patient already has an identifier at this site; merge instead"))
    ident = PatientIdentifier(patient_id=patient.id, site_id=site_id, value=value)
    session.add(ident)
    session.flush()
    session.refresh(patient)
    audit.record(
        session,
        actor,
        "patient.identifier.create",
        "success",
        object_kind="patient",
        object_id=patient.id,
        patient_id=patient.id,
        site_id=site_id,
    )
    return ident


def change_identifier(
    session: Session, actor: audit.Actor, patient: Patient, site_id: int, value: str
) -> PatientIdentifier:
    """The site corrects the identifier it gives the patient (HL7 ADT^A47): its one
    identifier there takes the new value."""
    value = _check_identifier(value)
    existing = find_by_identifier(session, site_id, value)
    if existing is not None and existing.id != patient.id:
        raise Conflict(f"identifier {value} already designates patient {existing.id} there")
    ident = next((i for i in patient.identifiers if i.site_id == site_id), None)
    if ident is None:
        raise NotFound(_("the patient has no identifier at this site"))
    ident.value = value
    session.flush()
    audit.record(
        session,
        actor,
        "patient.identifier.update",
        "success",
        object_kind="patient",
        object_id=patient.id,
        patient_id=patient.id,
        site_id=site_id,
    )
    return ident


def retire_identifier(session: Session, actor: audit.Actor, patient: Patient, site_id: int) -> str:
    """The site stops using its identifier of the patient, because it merges the record into
    another one it keeps (HL7 ADT^A40): the identifier is removed; its value is returned."""
    ident = next((i for i in patient.identifiers if i.site_id == site_id), None)
    if ident is None:
        raise NotFound(_("the patient has no identifier at this site"))
    value = ident.value
    session.delete(ident)
    session.flush()
    session.refresh(patient)
    audit.record(
        session,
        actor,
        "patient.identifier.delete",
        "success",
        object_kind="patient",
        object_id=patient.id,
        patient_id=patient.id,
        site_id=site_id,
    )
    return value


def find_by_identifier(session: Session, site_id: int, value: str) -> Patient | None:
    return session.execute(
        select(Patient)
        .join(PatientIdentifier)
        .where(PatientIdentifier.site_id == site_id, PatientIdentifier.value == value)
    ).scalar_one_or_none()


def get_patient(session: Session, patient_id: int) -> Patient:
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise NotFound(f"patient {patient_id} not found")
    return patient


def patient_target(session: Session, patient: Patient, now: datetime) -> Target:
    """The facts the policy needs about a patient: owning sites and active shares.

    A merged record is governed by the record it was merged into (it holds its identifiers).
    """
    survivor = patient
    while survivor.merged_into_id is not None:
        survivor = get_patient(session, survivor.merged_into_id)
    sites, users = active_share_targets(session, "patient", str(survivor.id), now)
    return Target(
        kind="patient",
        id=str(patient.id),
        site_ids=frozenset(i.site_id for i in survivor.identifiers),
        patient_id=survivor.id,
        shared_site_ids=sites,
        shared_user_ids=users,
    )


def search_patients(
    session: Session,
    site_ids: frozenset[int] | None,
    extra_patient_ids: frozenset[int],
    text: str = "",
    limit: int = 50,
    offset: int = 0,
) -> Sequence[Patient]:
    """Patients known at ``site_ids`` (None: anywhere) or listed in ``extra_patient_ids``."""
    query = select(Patient).where(Patient.merged_into_id.is_(None))
    visible = []
    if site_ids is not None:
        visible.append(
            Patient.id.in_(
                select(PatientIdentifier.patient_id).where(PatientIdentifier.site_id.in_(site_ids))
            )
        )
        if extra_patient_ids:
            visible.append(Patient.id.in_(extra_patient_ids))
        query = query.where(or_(*visible)) if visible else query.where(false())
    if text.strip():
        pattern = f"%{text.strip().lower()}%"
        query = query.where(
            or_(
                Patient.family_name.ilike(pattern),
                Patient.given_name.ilike(pattern),
                Patient.id.in_(
                    select(PatientIdentifier.patient_id).where(
                        PatientIdentifier.value.ilike(pattern)
                    )
                ),
            )
        )
    query = query.order_by(Patient.family_name, Patient.given_name, Patient.id)
    return session.execute(query.limit(limit).offset(offset)).scalars().all()


def merge(session: Session, actor: audit.Actor, survivor: Patient, duplicate: Patient) -> None:
    """Merge ``duplicate`` into ``survivor``: identifiers and consent move; the duplicate stays
    as a pointer so that old references resolve."""
    if survivor.id == duplicate.id:
        raise InvalidInput(_("a patient cannot be merged into itself"))
    if duplicate.merged_into_id is not None or survivor.merged_into_id is not None:
        raise Conflict(_("one of these patients was already merged"))
    survivor_sites = {i.site_id for i in survivor.identifiers}
    clash = [i for i in duplicate.identifiers if i.site_id in survivor_sites]
    if clash:
        raise Conflict(
            _("both patients have an identifier at the same site; the site must resolve it first")
        )
    for ident in list(duplicate.identifiers):
        ident.patient_id = survivor.id
    for consent in session.execute(
        select(Consent).where(Consent.patient_id == duplicate.id)
    ).scalars():
        consent.patient_id = survivor.id
    duplicate.merged_into_id = survivor.id
    session.flush()
    session.refresh(survivor)
    session.refresh(duplicate)
    audit.record(
        session,
        actor,
        "patient.merge",
        "success",
        object_kind="patient",
        object_id=survivor.id,
        patient_id=survivor.id,
        detail={"merged": duplicate.id},
    )


def record_consent(
    session: Session,
    actor: audit.Actor,
    patient: Patient,
    purpose: str,
    decision: str,
    site_id: int,
    note: str = "",
) -> Consent:
    if purpose not in PURPOSES:
        raise InvalidInput(f"purpose must be one of {', '.join(PURPOSES)}")
    if decision not in DECISIONS:
        raise InvalidInput(f"decision must be one of {', '.join(DECISIONS)}")
    if actor.user_id is None:
        raise InvalidInput(_("consent must be recorded by a person"))
    consent = Consent(
        patient_id=patient.id,
        purpose=purpose,
        decision=decision,
        site_id=site_id,
        recorded_by_id=actor.user_id,
        note=note.strip()[:2000],
    )
    session.add(consent)
    session.flush()
    audit.record(
        session,
        actor,
        "consent.create",
        "success",
        object_kind="consent",
        object_id=consent.id,
        patient_id=patient.id,
        site_id=site_id,
        detail={"purpose": purpose, "decision": decision},
    )
    return consent


def consent_history(session: Session, patient_id: int) -> Sequence[Consent]:
    return (
        session.execute(
            select(Consent)
            .where(Consent.patient_id == patient_id)
            .order_by(Consent.recorded_at.desc(), Consent.id.desc())
        )
        .scalars()
        .all()
    )


def current_consent(session: Session, patient_id: int) -> dict[str, str]:
    """The standing decision per purpose ("none" when never asked)."""
    standing = dict.fromkeys(PURPOSES, "none")
    seen: set[str] = set()
    for consent in consent_history(session, patient_id):
        if consent.purpose not in seen:
            standing[consent.purpose] = consent.decision
            seen.add(consent.purpose)
    return standing


def has_consent(session: Session, patient_id: int, purpose: str) -> bool:
    """What other services ask before a remote reading, an MDT, a broadcast or telesurgery."""
    return current_consent(session, patient_id).get(purpose) == "granted"
