"""ADT messages read into patients, visits, merges and identifier changes."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from concilium.reading.adt import (
    PatientIdentifierChange,
    PatientMerge,
    PatientUpdate,
    Sex,
    read_adt,
)
from concilium.reading.hl7v2 import parse_message
from concilium.reading.hl7v2_errors import ErrorCode, HL7Error

PARIS = ZoneInfo("Europe/Paris")
PID = (
    "PID|1||8001234^^^CHU-NORD&1.2.250.1.71.4.2.1&ISO^PI~1850575123456^^^ASIP-SANTE-NIR"
    "&1.2.250.1.213.1.4.8&ISO^NH||Lefèvre^Hélène^Marie^^MME^^L~Dupont^Hélène^^^^^D||"
    "19850523|F|||12 rue de l'Église^Bât. B^Lille^59^59000^FRA^H||"
    "^PRN^PH^^33^3^20445566~^NET^Internet^helene@example.fr|0320000000^WPN^PH||||V0042^^^CHU-NORD"
)
PV1 = (
    "PV1|1|O|RADIO^12^1^CHU-NORD||||10001^Martin^Paul^^^DR|10002^Durand^Anne^^^DR|||||||||||"
    "V0042^^^CHU-NORD|||||||||||||||||||||||||20250314080000"
)


def adt(event: str, *segments: str, version: str = "2.5.1") -> bytes:
    structure = {"A40": "ADT_A39", "A47": "ADT_A30", "A31": "ADT_A05"}.get(event, "ADT_A01")
    header = (
        f"MSH|^~\\&|HIS|CHU-NORD|CONCILIUM|GHT|20250314093000||ADT^{event}^{structure}|"
        f"M{event}|P|{version}||||||UNICODE UTF-8"
    )
    return "\r".join([header, f"EVN|{event}|20250314093000", *segments]).encode()


def refused(raw: bytes) -> HL7Error:
    with pytest.raises(HL7Error) as caught:
        read_adt(parse_message(raw))
    return caught.value


@pytest.mark.parametrize("event", ["A01", "A04", "A08", "A31"])
def test_registration_and_update_events_give_the_patient_and_visit(event: str) -> None:
    update = read_adt(parse_message(adt(event, PID, PV1)))

    assert isinstance(update, PatientUpdate)
    assert update.event == event
    assert update.recorded_at == datetime(2025, 3, 14, 9, 30, tzinfo=PARIS)
    patient = update.patient
    local, national = patient.identifiers
    assert local.id == "8001234"
    assert local.assigning_authority is not None
    assert local.assigning_authority.namespace_id == "CHU-NORD"
    assert local.assigning_authority.universal_id == "1.2.250.1.71.4.2.1"
    assert local.identifier_type == "PI"
    assert national.identifier_type == "NH"
    assert patient.identifier("1.2.250.1.213.1.4.8") == national
    assert patient.identifier("CHU-NORD") == local
    assert patient.name is not None
    assert (patient.name.family, patient.name.given, patient.name.middle) == (
        "Lefèvre",
        "Hélène",
        "Marie",
    )
    assert patient.names[1].family == "Dupont" and patient.names[1].name_type == "D"
    assert patient.birth_date == date(1985, 5, 23)
    assert patient.sex is Sex.FEMALE
    address = patient.addresses[0]
    assert (address.street, address.other, address.city, address.postal_code) == (
        "12 rue de l'Église",
        "Bât. B",
        "Lille",
        "59000",
    )
    assert [p.number for p in patient.phones] == ["33 3 20445566", "", "0320000000"]
    assert patient.phones[1].email == "helene@example.fr"
    assert patient.account_number is not None and patient.account_number.id == "V0042"
    visit = update.visit
    assert visit is not None
    assert visit.patient_class == "O"
    assert visit.location is not None and visit.location.point_of_care == "RADIO"
    assert visit.referring_doctor is not None
    assert (visit.referring_doctor.id, visit.referring_doctor.family) == ("10002", "Durand")
    assert visit.attending_doctor is not None and visit.attending_doctor.family == "Martin"
    assert visit.visit_number is not None and visit.visit_number.id == "V0042"
    assert visit.admitted_at == datetime(2025, 3, 14, 8, 0, tzinfo=PARIS)


def test_the_legal_name_is_preferred_whatever_its_position() -> None:
    pid = "PID|1||42^^^CHU||Usage^Jean^^^^^D~Naissance^Jean^^^^^L"

    update = read_adt(parse_message(adt("A08", pid)))

    assert isinstance(update, PatientUpdate)
    assert update.patient.name is not None and update.patient.name.family == "Naissance"
    assert update.visit is None


def test_a_birth_date_sent_as_a_timestamp_keeps_its_date() -> None:
    update = read_adt(parse_message(adt("A04", "PID|1||42^^^CHU||Nom^Prénom||198505230000|M")))

    assert isinstance(update, PatientUpdate)
    assert update.patient.birth_date == date(1985, 5, 23)
    assert update.patient.sex is Sex.MALE


def test_a40_merges_the_mrg_identifiers_into_the_pid_patient() -> None:
    raw = adt(
        "A40",
        "PID|1||100^^^CHU^PI||Martin^Luc",
        "MRG|200^^^CHU^PI~201^^^CHU^PI",
        "PID|2||300^^^CHU^PI||Petit^Zoé",
        "MRG|400^^^CHU^PI",
    )

    merge = read_adt(parse_message(raw))

    assert isinstance(merge, PatientMerge)
    assert [m.surviving.identifiers[0].id for m in merge.merges] == ["100", "300"]
    assert [[i.id for i in m.prior_identifiers] for m in merge.merges] == [["200", "201"], ["400"]]


def test_a47_changes_the_mrg_identifier_into_the_pid_identifier() -> None:
    raw = adt("A47", "PID|1||NEW-1^^^CHU^PI||Martin^Luc", "MRG|OLD-1^^^CHU^PI")

    change = read_adt(parse_message(raw))

    assert isinstance(change, PatientIdentifierChange)
    (item,) = change.changes
    assert item.new_identifier.id == "NEW-1"
    assert item.old_identifier.id == "OLD-1"
    assert item.old_identifier.assigning_authority == item.new_identifier.assigning_authority


@pytest.mark.parametrize(
    ("raw", "code", "location"),
    [
        (adt("A01", "PV1|1|O"), ErrorCode.SEGMENT_SEQUENCE_ERROR, "PID"),
        (adt("A01", "PID|1||||Nom^Prénom"), ErrorCode.REQUIRED_FIELD_MISSING, "PID-3"),
        (adt("A08", "PID|1||42^^^CHU"), ErrorCode.REQUIRED_FIELD_MISSING, "PID-5"),
        (adt("A08", "PID|1||42^^^CHU||N^P||23/05/1985"), ErrorCode.DATA_TYPE_ERROR, "PID-7"),
        (adt("A08", "PID|1||42^^^CHU||N^P|||X"), ErrorCode.TABLE_VALUE_NOT_FOUND, "PID-8"),
        (adt("A40", "PID|1||42^^^CHU||N^P"), ErrorCode.SEGMENT_SEQUENCE_ERROR, "PID"),
        (adt("A40", "MRG|41", "PID|1||42||N^P"), ErrorCode.SEGMENT_SEQUENCE_ERROR, "MRG"),
        (adt("A47", "PID|1||42^^^CHU||N^P", "MRG|"), ErrorCode.REQUIRED_FIELD_MISSING, "MRG-1"),
        (
            adt("A40", "PID|1||1||A^B", "MRG|2", "PID|2||3||C^D"),
            ErrorCode.SEGMENT_SEQUENCE_ERROR,
            "PID[2]",
        ),
        (adt("A02", "PID|1||42||N^P"), ErrorCode.UNSUPPORTED_EVENT_CODE, "MSH-9.2"),
    ],
)
def test_bad_adt_messages_are_refused_with_code_and_location(
    raw: bytes, code: ErrorCode, location: str
) -> None:
    error = refused(raw)

    assert error.code == code
    assert str(error.location) == location


def test_error_texts_do_not_repeat_patient_data() -> None:
    error = refused(adt("A08", "PID|1||42^^^CHU||Lefèvre^Hélène||23/05/1985"))

    assert str(error.location) == "PID-7"
    assert "23/05/1985" not in str(error) and "Lef" not in str(error)
