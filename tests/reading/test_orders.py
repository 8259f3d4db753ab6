"""ORM^O01 and OMI^O23 read as IHE RAD-4 / RAD-13 orders with their scheduled steps."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from concilium.reading.hl7v2 import parse_message
from concilium.reading.hl7v2_errors import ErrorCode, HL7Error
from concilium.reading.orders import (
    OrderAction,
    OrderMessage,
    OrderStatus,
    Priority,
    order_status,
    read_order_message,
)

PARIS = ZoneInfo("Europe/Paris")
PID = "PID|1||8001234^^^CHU-NORD^PI||Lefèvre^Hélène||19850523|F"
PV1 = "PV1|1|E|URG^^^CHU-NORD|||||10002^Durand^Anne^^^DR"


def orm(*segments: str) -> bytes:
    header = "MSH|^~\\&|RIS|CHU-NORD|CONCILIUM|GHT|20250314093000||ORM^O01|ORM1|P|2.3.1||||||8859/1"
    return "\r".join([header, PID, PV1, *segments]).encode("iso8859-1")


def omi(*segments: str) -> bytes:
    header = (
        "MSH|^~\\&|RIS|CHU-NORD|CONCILIUM|GHT|20250314093000||OMI^O23^OMI_O23|OMI1|P|2.5.1"
        "||||||UNICODE UTF-8"
    )
    return "\r".join([header, PID, PV1, *segments]).encode("utf-8")


def orc(control: str = "NW", status: str = "SC", timing: str = "^^^20250315143000^^S") -> str:
    return (
        f"ORC|{control}|PL-77^HIS|FL-99^RIS||{status}||{timing}||20250314092500|||"
        "20001^Bernard^Luc^^^DR||||||CT01"
    )


def obr(
    accession: str = "ACC-1", rp: str = "RP-1", sps: str = "SPS-1", modality: str = "CT"
) -> str:
    fields = ["OBR", "1", "PL-77^HIS", "FL-99^RIS", "TDM-THX^Scanner thorax^LOCAL^P1^Protocole 1^L"]
    fields += [""] * 8 + ["Douleur thoracique aiguë"]  # OBR-13
    fields += ["", "", "20001^Bernard^Luc^^^DR", "", accession, rp, sps]  # OBR-16 .. OBR-20
    fields += ["", "", "", modality]  # OBR-24
    fields += ["", "^^^20250315143000^^S", "", "", "", "", "R07.4^Douleur thoracique^CIM10"]
    return "|".join(fields)


def read(raw: bytes) -> OrderMessage:
    return read_order_message(parse_message(raw))


def refused(raw: bytes) -> HL7Error:
    with pytest.raises(HL7Error) as caught:
        read(raw)
    return caught.value


def test_an_ihe_orm_new_order_gives_a_scheduled_rad4_order() -> None:
    message = read(orm(orc(), obr(), "ZDS|1.2.250.1.59.2025.1^RIS^Application^DICOM"))

    assert message.message_type == "ORM^O01"
    assert message.patient.identifiers[0].id == "8001234"
    assert message.patient.name is not None and message.patient.name.family == "Lefèvre"
    (order,) = message.orders
    assert order.transaction == "RAD-4"
    assert order.action is OrderAction.NEW
    assert order.status is OrderStatus.SCHEDULED
    assert (order.placer_order_number.entity_id, order.placer_order_number.namespace_id) == (
        "PL-77",
        "HIS",
    )
    assert order.filler_order_number is not None
    assert order.filler_order_number.entity_id == "FL-99"
    assert (order.procedure.code, order.procedure.text) == ("TDM-THX", "Scanner thorax")
    assert order.priority is Priority.STAT
    assert order.ordering_provider is not None and order.ordering_provider.family == "Bernard"
    assert order.referring_physician is not None and order.referring_physician.id == "10002"
    assert order.reason is not None and order.reason.code == "R07.4"
    assert order.clinical_information == "Douleur thoracique aiguë"
    assert order.ordered_at == datetime(2025, 3, 14, 9, 25, tzinfo=PARIS)
    assert order.accession_number == "ACC-1"
    (step,) = order.steps
    assert (step.accession_number, step.requested_procedure_id, step.step_id) == (
        "ACC-1",
        "RP-1",
        "SPS-1",
    )
    assert step.modality == "CT"
    assert step.study_instance_uid == "1.2.250.1.59.2025.1"
    assert step.scheduled_start == datetime(2025, 3, 15, 14, 30, tzinfo=PARIS)
    assert step.station_ae_title == "CT01"
    assert [(c.code, c.text) for c in step.protocol_codes] == [("P1", "Protocole 1")]


def test_orm_pairs_of_one_order_are_one_order_with_several_steps() -> None:
    raw = orm(orc(), obr(sps="SPS-1"), orc(), obr(sps="SPS-2", modality="MR"))

    (order,) = read(raw).orders

    assert [(s.step_id, s.modality) for s in order.steps] == [("SPS-1", "CT"), ("SPS-2", "MR")]
    assert all(s.study_instance_uid is None for s in order.steps)


def test_an_orm_without_requested_procedure_or_step_id_uses_the_accession_number() -> None:
    (order,) = read(orm(orc(), obr(rp="", sps=""))).orders

    step = order.steps[0]
    assert step.requested_procedure_id == step.step_id == "ACC-1"


def test_an_omi_gives_one_step_per_ipc_with_ipc_identifiers() -> None:
    ipc1 = "IPC|ACC-5^RIS|RP-5|1.2.250.1.59.5|SPS-5|CT|P1^Sans injection^L|SCANNER 1|SALLE 2|CT01"
    ipc2 = "IPC|ACC-5^RIS|RP-5|1.2.250.1.59.5|SPS-6|CT^CT^DCM||SCANNER 2||CT02"
    tq1 = "TQ1|1||||||20250316081500|20250316090000|A^ASAP^HL70078"

    message = read(
        omi(orc(timing=""), tq1, obr(accession="", rp="", sps="", modality=""), ipc1, ipc2)
    )

    assert message.message_type == "OMI^O23"
    (order,) = message.orders
    assert order.priority is Priority.ASAP
    first, second = order.steps
    assert (first.accession_number, first.requested_procedure_id) == ("ACC-5", "RP-5")
    assert first.study_instance_uid == "1.2.250.1.59.5"
    assert (first.step_id, second.step_id) == ("SPS-5", "SPS-6")
    assert first.station_ae_title == "CT01" and second.station_ae_title == "CT02"
    assert first.station_name == "SCANNER 1" and first.location == "SALLE 2"
    assert [c.text for c in first.protocol_codes] == ["Sans injection"]
    assert first.scheduled_start == datetime(2025, 3, 16, 8, 15, tzinfo=PARIS)


def test_an_omi_ipc_without_ae_title_takes_orc18() -> None:
    ipc = "IPC|ACC-5|RP-5|1.2.3|SPS-5|MR"

    (order,) = read(omi(orc(), "TQ1|1", obr(), ipc)).orders

    assert order.steps[0].station_ae_title == "CT01"


@pytest.mark.parametrize(
    ("control", "status", "action", "result"),
    [
        ("NW", "SC", OrderAction.NEW, OrderStatus.SCHEDULED),
        ("NW", "", OrderAction.NEW, OrderStatus.SCHEDULED),
        ("SC", "SC", OrderAction.STATUS_CHANGE, OrderStatus.SCHEDULED),
        ("SC", "IP", OrderAction.STATUS_CHANGE, OrderStatus.IN_PROGRESS),
        ("CA", "CA", OrderAction.CANCEL, OrderStatus.CANCELLED),
        ("DC", "DC", OrderAction.DISCONTINUE, OrderStatus.DISCONTINUED),
        ("XO", "CM", OrderAction.CHANGE, OrderStatus.COMPLETED),
        ("XO", "SC", OrderAction.CHANGE, OrderStatus.SCHEDULED),
    ],
)
def test_order_control_and_status_give_action_and_state(
    control: str, status: str, action: OrderAction, result: OrderStatus
) -> None:
    (order,) = read(orm(orc(control, status), obr())).orders

    assert (order.action, order.status) == (action, result)
    assert order.transaction == ("RAD-4" if control == "NW" else "RAD-13")


def test_order_status_is_a_pure_table() -> None:
    assert order_status(OrderAction.CANCEL, "SC") is OrderStatus.CANCELLED
    assert order_status(OrderAction.CHANGE, "HD") is OrderStatus.ON_HOLD
    assert order_status(OrderAction.CHANGE, "ZZ") is None


@pytest.mark.parametrize(
    ("raw", "code", "location"),
    [
        (orm(obr()), ErrorCode.SEGMENT_SEQUENCE_ERROR, "OBR"),
        (orm(orc()), ErrorCode.SEGMENT_SEQUENCE_ERROR, "ORC"),
        (orm(orc(), "ZDS|1.2.3"), ErrorCode.SEGMENT_SEQUENCE_ERROR, "ZDS"),
        (orm(), ErrorCode.SEGMENT_SEQUENCE_ERROR, "ORC"),
        (orm(orc(control="ZZ"), obr()), ErrorCode.TABLE_VALUE_NOT_FOUND, "ORC-1"),
        (orm(orc(status="QQ"), obr()), ErrorCode.TABLE_VALUE_NOT_FOUND, "ORC-5"),
        (orm(orc(control=""), obr()), ErrorCode.REQUIRED_FIELD_MISSING, "ORC-1"),
        (orm(orc(), obr(accession="")), ErrorCode.REQUIRED_FIELD_MISSING, "OBR-18"),
        (orm(orc(), obr(modality="")), ErrorCode.REQUIRED_FIELD_MISSING, "OBR-24"),
        (orm(orc(timing="^^^2025-03-15"), obr()), ErrorCode.DATA_TYPE_ERROR, "ORC-7.4"),
        (orm(orc(timing="^^^^^X"), obr()), ErrorCode.TABLE_VALUE_NOT_FOUND, "ORC-7.6"),
        (
            orm(orc(), obr(), orc(), obr(accession="")),
            ErrorCode.REQUIRED_FIELD_MISSING,
            "OBR[2]-18",
        ),
        (omi(orc(), "TQ1|1", obr()), ErrorCode.SEGMENT_SEQUENCE_ERROR, "OBR"),
        (
            omi(orc(), obr(), "IPC|ACC|RP||SPS|CT"),
            ErrorCode.REQUIRED_FIELD_MISSING,
            "IPC-3",
        ),
        (
            omi(orc(), obr(), "IPC|ACC|RP|1.2|SPS|CT", "IPC|ACC|RP|1.2||CT"),
            ErrorCode.REQUIRED_FIELD_MISSING,
            "IPC[2]-4",
        ),
    ],
)
def test_bad_orders_are_refused_with_code_and_location(
    raw: bytes, code: ErrorCode, location: str
) -> None:
    error = refused(raw)

    assert error.code == code
    assert str(error.location) == location


def test_a_missing_placer_order_number_is_reported_on_orc2() -> None:
    raw = orm(orc().replace("PL-77^HIS", ""), obr().replace("PL-77^HIS", ""))

    error = refused(raw)

    assert (error.code, str(error.location)) == (ErrorCode.REQUIRED_FIELD_MISSING, "ORC-2")


def test_an_adt_is_not_an_order() -> None:
    raw = orm(orc(), obr()).replace(b"ORM^O01", b"ADT^A01")

    assert refused(raw).code == ErrorCode.UNSUPPORTED_MESSAGE_TYPE
