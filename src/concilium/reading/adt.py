"""Patient administration messages read into plain data (HL7 v2.5.1 chapter 3).

Handled events, as IHE uses them to keep a department's patients in step with the
hospital (IHE RAD-1 "Patient Registration", RAD-12 "Patient Update", ITI-30):

- ADT^A01 admit (§3.3.1), A04 register an outpatient (§3.3.4), A08 update patient
  information (§3.3.8), A31 update person information (§3.3.31): :class:`PatientUpdate`;
- ADT^A40 merge patient, identifier list (§3.3.40): :class:`PatientMerge`, PID the
  surviving patient and MRG-1 the identifiers that disappear into it;
- ADT^A47 change patient identifier list (§3.3.47): :class:`IdentifierChange`, PID-3 the
  new identifier and MRG-1 the old one.

The readers only read: what to do with a patient (match, create, merge) is the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from enum import StrEnum
from zoneinfo import ZoneInfo

from concilium.reading.hl7v2 import Message, check_message_type
from concilium.reading.hl7v2_datatypes import (
    Address,
    PatientLocation,
    PersonIdentifier,
    PersonName,
    Practitioner,
    Telecom,
    read_date,
    read_datetime,
)
from concilium.reading.hl7v2_encoding import Segment
from concilium.reading.hl7v2_errors import ErrorCode, HL7Error

PARIS = ZoneInfo("Europe/Paris")
"""Time zone of date/times sent without an offset, unless the caller says otherwise."""

UPDATE_EVENTS = frozenset({"A01", "A04", "A08", "A31"})
"""Trigger events read as :class:`PatientUpdate`."""
ADT_EVENTS = UPDATE_EVENTS | {"A40", "A47"}
"""Every ADT trigger event :func:`read_adt` reads."""


class Sex(StrEnum):
    """HL7 table 0001, administrative sex (PID-8)."""

    FEMALE = "F"
    MALE = "M"
    OTHER = "O"
    UNKNOWN = "U"
    AMBIGUOUS = "A"
    NOT_APPLICABLE = "N"


@dataclass(frozen=True)
class Patient:
    """Demographics of a PID segment (§3.4.2)."""

    identifiers: tuple[PersonIdentifier, ...]
    """PID-3, every identifier with its assigning authority; at least one."""
    names: tuple[PersonName, ...] = ()
    """PID-5, every name sent (legal, usual...)."""
    birth_date: date | None = None
    """PID-7."""
    sex: Sex | None = None
    """PID-8."""
    addresses: tuple[Address, ...] = ()
    """PID-11."""
    phones: tuple[Telecom, ...] = ()
    """PID-13 (home) then PID-14 (business)."""
    account_number: PersonIdentifier | None = None
    """PID-18, the administrative stay (numéro de venue / dossier)."""
    death_date: datetime | None = None
    """PID-29."""

    @property
    def name(self) -> PersonName | None:
        """The legal name (XPN-7 ``L``) if sent, otherwise the first name sent."""
        legal = next((n for n in self.names if n.name_type == "L"), None)
        return legal or (self.names[0] if self.names else None)

    def identifier(self, authority: str) -> PersonIdentifier | None:
        """The identifier issued by an authority, by namespace or universal ID."""
        for identifier in self.identifiers:
            issuer = identifier.assigning_authority
            if issuer and authority in (issuer.namespace_id, issuer.universal_id):
                return identifier
        return None


@dataclass(frozen=True)
class Visit:
    """The basics of a PV1 segment (§3.4.3)."""

    patient_class: str
    """PV1-2 (table 0004: ``I`` inpatient, ``O`` outpatient, ``E`` emergency...)."""
    location: PatientLocation | None = None
    """PV1-3, assigned patient location."""
    attending_doctor: Practitioner | None = None
    """PV1-7."""
    referring_doctor: Practitioner | None = None
    """PV1-8."""
    visit_number: PersonIdentifier | None = None
    """PV1-19."""
    admitted_at: datetime | None = None
    """PV1-44."""


@dataclass(frozen=True)
class PatientUpdate:
    """ADT^A01, A04, A08 or A31: the patient as the hospital now knows them."""

    event: str
    """Trigger event, e.g. ``A08``."""
    patient: Patient
    """Demographics and identifiers."""
    visit: Visit | None = None
    """PV1 when sent."""
    recorded_at: datetime | None = None
    """EVN-2, when the event was recorded."""


@dataclass(frozen=True)
class Merge:
    """One PID/MRG pair of an A40: ``prior_identifiers`` merge into ``surviving``."""

    surviving: Patient
    """The patient that remains (PID)."""
    prior_identifiers: tuple[PersonIdentifier, ...]
    """MRG-1, the identifiers of the patient that disappears."""


@dataclass(frozen=True)
class PatientMerge:
    """ADT^A40: one or more patient merges."""

    merges: tuple[Merge, ...]
    """One per PID/MRG pair, in message order."""
    recorded_at: datetime | None = None
    """EVN-2."""
    event: str = "A40"
    """Trigger event."""


@dataclass(frozen=True)
class IdentifierChange:
    """One PID/MRG pair of an A47: ``old_identifier`` becomes ``new_identifier``."""

    patient: Patient
    """The patient, as PID describes them (PID-3 with the new identifier)."""
    new_identifier: PersonIdentifier
    """PID-3 (first repetition)."""
    old_identifier: PersonIdentifier
    """MRG-1 (first repetition)."""


@dataclass(frozen=True)
class PatientIdentifierChange:
    """ADT^A47: one or more identifier corrections."""

    changes: tuple[IdentifierChange, ...]
    """One per PID/MRG pair, in message order."""
    recorded_at: datetime | None = None
    """EVN-2."""
    event: str = "A47"
    """Trigger event."""


AdtEvent = PatientUpdate | PatientMerge | PatientIdentifierChange
"""What :func:`read_adt` returns."""


def read_adt(message: Message, *, zone: tzinfo = PARIS) -> AdtEvent:
    """Read an ADT message; raises :class:`HL7Error` with the location of what is wrong.

    200/201 for a message type or event not listed in :data:`ADT_EVENTS`, 100 for a missing
    PID or MRG, 101 for a missing PID-3, PID-5 or MRG-1, 102 for a malformed date, 103 for
    a sex not in table 0001. Date/times without an offset are local time in ``zone``.
    """
    check_message_type(message, {"ADT": ADT_EVENTS})
    event = message.header.message_type.trigger
    recorded_at = _recorded_at(message, zone)
    if event in UPDATE_EVENTS:
        pv1 = message.segment("PV1")
        return PatientUpdate(
            event,
            read_patient(message.require("PID"), zone=zone),
            read_visit(pv1, zone=zone) if pv1 else None,
            recorded_at,
        )
    pairs = _pid_mrg_pairs(message)
    if event == "A40":
        merges = tuple(
            Merge(read_patient(pid, zone=zone), _prior_identifiers(mrg)) for pid, mrg in pairs
        )
        return PatientMerge(merges, recorded_at)
    changes = []
    for pid, mrg in pairs:
        patient = read_patient(pid, zone=zone)
        changes.append(
            IdentifierChange(patient, patient.identifiers[0], _prior_identifiers(mrg)[0])
        )
    return PatientIdentifierChange(tuple(changes), recorded_at)


def read_patient(pid: Segment, *, zone: tzinfo = PARIS) -> Patient:
    """Read a PID segment (§3.4.2): PID-3 and PID-5 are required."""
    pid.require(3, name="patient identifier list")
    identifiers = PersonIdentifier.read_all(pid, 3)
    pid.require(5, name="patient name")
    return Patient(
        identifiers=identifiers,
        names=PersonName.read_all(pid, 5),
        birth_date=read_date(pid, 7, name="date of birth"),
        sex=_sex(pid),
        addresses=Address.read_all(pid, 11),
        phones=Telecom.read_all(pid, 13) + Telecom.read_all(pid, 14),
        account_number=PersonIdentifier.read(pid, 18),
        death_date=read_datetime(pid, 29, zone, name="death date and time"),
    )


def read_visit(pv1: Segment, *, zone: tzinfo = PARIS) -> Visit:
    """Read the basics of a PV1 segment (§3.4.3)."""
    return Visit(
        patient_class=pv1.get(2),
        location=PatientLocation.read(pv1, 3),
        attending_doctor=Practitioner.read(pv1, 7),
        referring_doctor=Practitioner.read(pv1, 8),
        visit_number=PersonIdentifier.read(pv1, 19),
        admitted_at=read_datetime(pv1, 44, zone, name="admit date/time"),
    )


def _recorded_at(message: Message, zone: tzinfo) -> datetime | None:
    evn = message.segment("EVN")
    return read_datetime(evn, 2, zone, name="recorded date/time") if evn else None


def _pid_mrg_pairs(message: Message) -> list[tuple[Segment, Segment]]:
    """The PATIENT groups of ADT_A39/ADT_A30: each PID followed, before the next, by an MRG."""
    pairs: list[tuple[Segment, Segment]] = []
    pid: Segment | None = None
    for segment in message.segments:
        if segment.id == "PID":
            if pid is not None:
                raise _missing_mrg(pid)
            pid = segment
        elif segment.id == "MRG":
            if pid is None:
                raise HL7Error(
                    ErrorCode.SEGMENT_SEQUENCE_ERROR,
                    "an MRG segment must follow the PID of its patient",
                    segment.location(),
                )
            pairs.append((pid, segment))
            pid = None
    if pid is not None:
        raise _missing_mrg(pid)
    if not pairs:
        message.require("PID")
    return pairs


def _missing_mrg(pid: Segment) -> HL7Error:
    return HL7Error(
        ErrorCode.SEGMENT_SEQUENCE_ERROR,
        f"the PID segment {pid.sequence} has no MRG segment after it",
        pid.location(),
    )


def _prior_identifiers(mrg: Segment) -> tuple[PersonIdentifier, ...]:
    mrg.require(1, name="prior patient identifier list")
    return PersonIdentifier.read_all(mrg, 1)


def _sex(pid: Segment) -> Sex | None:
    value = pid.get(8).strip().upper()
    if not value:
        return None
    try:
        return Sex(value)
    except ValueError:
        raise HL7Error(
            ErrorCode.TABLE_VALUE_NOT_FOUND,
            "PID-8 (administrative sex) is not a value of table 0001 (F, M, O, U, A, N)",
            pid.location(8),
        ) from None
