"""The site's patients kept in step with its hospital system (IHE RAD-1, RAD-12, ITI-30).

What ``adt.py`` reads becomes calls to the platform's patient functions: a site knows each
patient under one identifier (its IPP, PID-3), so a message's patient is found by that
identifier at the sender's site, following merges, and created when unknown. ADT^A40
retires the merged identifier and merges the records (an identifier merged away keeps
leading to the survivor); ADT^A47 changes the identifier. Every change is audited by the
platform with the sender as actor. Anything the platform refuses becomes an
:class:`HL7Error` that says which field, never a half-applied message (the caller holds
the transaction).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from concilium.platform import audit, patients
from concilium.platform.errors import ConciliumError, Conflict, InvalidInput
from concilium.platform.tables import Patient as PlatformPatient
from concilium.reading import versions
from concilium.reading.adt import (
    Patient,
    PatientIdentifierChange,
    PatientMerge,
    PatientUpdate,
    Sex,
)
from concilium.reading.hl7v2_datatypes import PersonIdentifier
from concilium.reading.hl7v2_errors import ErrorCode, ErrorLocation, HL7Error
from concilium.reading.tables import ImagingOrderRecord, MergedIdentifier

__all__ = [
    "apply_adt",
    "identifier_at_site",
    "patient_for",
    "resolve",
]

_SEXES = {
    Sex.FEMALE: "F",
    Sex.MALE: "M",
    Sex.OTHER: "O",
    Sex.AMBIGUOUS: "O",
    Sex.UNKNOWN: "U",
    Sex.NOT_APPLICABLE: "U",
}


def identifier_at_site(patient: Patient) -> PersonIdentifier:
    """The identifier the site gives the patient: the first PID-3 of type ``PI`` (patient
    internal identifier, the IPP), else the first one."""
    return (
        next((i for i in patient.identifiers if i.identifier_type == "PI"), None)
        or (patient.identifiers[0])
    )


def _survivor(session: Session, patient: PlatformPatient) -> PlatformPatient:
    seen = {patient.id}
    while patient.merged_into_id is not None:
        patient = patients.get_patient(session, patient.merged_into_id)
        if patient.id in seen:  # pragma: no cover - a cycle the platform never writes
            break
        seen.add(patient.id)
    return patient


def resolve(session: Session, site_id: int, value: str) -> PlatformPatient | None:
    """The patient a site's identifier designates now: through merges, and through an
    identifier an ADT^A40 merged away; None when the site never used it."""
    found = patients.find_by_identifier(session, site_id, value)
    if found is None:
        merged = session.execute(
            select(MergedIdentifier.patient_id).where(
                MergedIdentifier.site_id == site_id, MergedIdentifier.value == value
            )
        ).scalar_one_or_none()
        if merged is None:
            return None
        found = patients.get_patient(session, merged)
    return _survivor(session, found)


def _demographics(patient: Patient, location: ErrorLocation) -> patients.Demographics:
    name = patient.name
    try:
        return patients.Demographics(
            family_name=name.family if name else "",
            given_name=name.given if name else "",
            birth_date=patient.birth_date,
            sex=_SEXES.get(patient.sex, "U") if patient.sex else "U",
        )
    except InvalidInput as exc:
        raise HL7Error(
            ErrorCode.REQUIRED_FIELD_MISSING,
            "PID-5 needs a family and a given name, and PID-7 a birth date not in the future",
            location,
        ) from exc


def _checked(value: str, location: ErrorLocation) -> str:
    if not patients.IDENTIFIER_RE.match(value.strip()):
        raise HL7Error(
            ErrorCode.DATA_TYPE_ERROR,
            "the patient identifier must be 1-64 letters, digits, '.', '_', '/' or '-'",
            location,
        )
    return value.strip()


def patient_for(
    session: Session,
    actor: audit.Actor,
    site_id: int,
    patient: Patient,
    *,
    update_known: bool,
    sequence: int = 1,
) -> PlatformPatient:
    """The platform patient a PID designates at the site, created when unknown (and its
    demographics updated when ``update_known``)."""
    pid3 = ErrorLocation("PID", sequence, 3)
    value = _checked(identifier_at_site(patient).id, pid3)
    who = _demographics(patient, ErrorLocation("PID", sequence, 5))
    found = resolve(session, site_id, value)
    if found is None:
        try:
            return patients.create_patient(session, actor, site_id, value, who)
        except Conflict as exc:
            # Created meanwhile by a message of another connection, just committed.
            found = resolve(session, site_id, value)
            if found is None:
                raise _refusal(exc, pid3) from exc
        except ConciliumError as exc:
            raise _refusal(exc, pid3) from exc
    try:
        if update_known:
            patients.update_demographics(session, actor, found, who)
            versions.bump(session, versions.PATIENT, found.id)
    except ConciliumError as exc:
        raise _refusal(exc, pid3) from exc
    return found


def apply_adt(
    session: Session,
    actor: audit.Actor,
    site_id: int,
    event: PatientUpdate | PatientMerge | PatientIdentifierChange,
) -> PlatformPatient:
    """Apply an ADT message at the site; the (last) patient it concerned."""
    if isinstance(event, PatientUpdate):
        return patient_for(session, actor, site_id, event.patient, update_known=True)
    if isinstance(event, PatientMerge):
        result = None
        for index, merge in enumerate(event.merges, start=1):
            prior = identifier_at_site(_prior(merge.prior_identifiers))
            result = _merge(session, actor, site_id, merge.surviving, prior.id, index)
        assert result is not None  # read_adt reads at least one pair
        return result
    changed = None
    for index, change in enumerate(event.changes, start=1):
        changed = _change(
            session, actor, site_id, change.new_identifier.id, change.old_identifier.id, index
        )
    assert changed is not None
    return changed


def _prior(identifiers: tuple[PersonIdentifier, ...]) -> Patient:
    return Patient(identifiers=identifiers)


def _merge(
    session: Session,
    actor: audit.Actor,
    site_id: int,
    surviving: Patient,
    prior_value: str,
    sequence: int,
) -> PlatformPatient:
    mrg1 = ErrorLocation("MRG", sequence, 1)
    prior_value = _checked(prior_value, mrg1)
    survivor_value = _checked(identifier_at_site(surviving).id, ErrorLocation("PID", sequence, 3))
    duplicate = resolve(session, site_id, prior_value)
    survivor = resolve(session, site_id, survivor_value)
    try:
        if duplicate is not None and survivor is None:
            # Only the merged record is known: it takes the surviving identifier.
            patients.change_identifier(session, actor, duplicate, site_id, survivor_value)
            survivor = duplicate
        elif survivor is None:
            survivor = patient_for(
                session, actor, site_id, surviving, update_known=False, sequence=sequence
            )
        elif duplicate is not None and duplicate.id != survivor.id:
            if patients.find_by_identifier(session, site_id, prior_value) is duplicate:
                patients.retire_identifier(session, actor, duplicate, site_id)
            patients.merge(session, actor, survivor, duplicate)
            session.execute(
                update(ImagingOrderRecord)
                .where(ImagingOrderRecord.patient_id == duplicate.id)
                .values(patient_id=survivor.id)
            )
    except ConciliumError as exc:
        raise _refusal(exc, mrg1) from exc
    _remember_merged(session, site_id, prior_value, survivor.id)
    return survivor


def _remember_merged(session: Session, site_id: int, value: str, patient_id: int) -> None:
    if patients.find_by_identifier(session, site_id, value) is not None:
        return  # still in use (the surviving identifier itself)
    existing = session.execute(
        select(MergedIdentifier).where(
            MergedIdentifier.site_id == site_id, MergedIdentifier.value == value
        )
    ).scalar_one_or_none()
    if existing is None:
        session.add(MergedIdentifier(site_id=site_id, value=value, patient_id=patient_id))
    else:
        existing.patient_id = patient_id
    session.flush()


def _change(
    session: Session, actor: audit.Actor, site_id: int, new: str, old: str, sequence: int
) -> PlatformPatient:
    mrg1 = ErrorLocation("MRG", sequence, 1)
    old = _checked(old, mrg1)
    new = _checked(new, ErrorLocation("PID", sequence, 3))
    patient = patients.find_by_identifier(session, site_id, old)
    if patient is None:
        already = patients.find_by_identifier(session, site_id, new)
        if already is not None:
            return already  # the change was applied before
        raise HL7Error(
            ErrorCode.UNKNOWN_KEY_IDENTIFIER,
            "no patient of this site has the identifier of MRG-1",
            mrg1,
        )
    try:
        patients.change_identifier(session, actor, patient, site_id, new)
    except ConciliumError as exc:
        raise _refusal(exc, ErrorLocation("PID", sequence, 3)) from exc
    return patient


def _refusal(exc: ConciliumError, location: ErrorLocation) -> HL7Error:
    code = (
        ErrorCode.DUPLICATE_KEY_IDENTIFIER
        if isinstance(exc, Conflict)
        else ErrorCode.UNKNOWN_KEY_IDENTIFIER
        if exc.status == 404
        else ErrorCode.DATA_TYPE_ERROR
    )
    return HL7Error(code, exc.detail, location)
