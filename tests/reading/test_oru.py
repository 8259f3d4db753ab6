"""ORU^R01 reports: built from plain data, read back by the parser unchanged."""

from __future__ import annotations

import base64
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from concilium.reading.adt import Patient, Sex, Visit, read_patient
from concilium.reading.hl7v2 import Message, parse_message
from concilium.reading.hl7v2_datatypes import (
    CodedElement,
    EntityIdentifier,
    HierarchicDesignator,
    PersonIdentifier,
    PersonName,
    Practitioner,
)
from concilium.reading.oru import (
    CONCLUSIONS,
    FINDINGS,
    Envelope,
    ImagingReport,
    ReportSection,
    ResultStatus,
    build_oru_r01,
)

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2025, 3, 15, 22, 41, tzinfo=PARIS)
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
FINDINGS_TEXT = (
    "Épanchement pleural droit de 3 cm | aspect ^ liquidien & libre.\n"
    "\n"
    "Pas de pneumothorax ~ ni d'embolie (C:\\dossier)."
)
PATIENT = Patient(
    identifiers=(
        PersonIdentifier(
            "8001234", HierarchicDesignator("CHU-NORD", "1.2.250.1.71.4.2.1", "ISO"), "PI"
        ),
    ),
    names=(PersonName("Lefèvre", "Hélène", name_type="L"),),
    birth_date=date(1985, 5, 23),
    sex=Sex.FEMALE,
)
ENVELOPE = Envelope(
    HierarchicDesignator("CONCILIUM"),
    HierarchicDesignator("GHT"),
    HierarchicDesignator("RIS"),
    HierarchicDesignator("CHU-NORD"),
)


def report(**changes: object) -> ImagingReport:
    values: dict[str, object] = {
        "patient": PATIENT,
        "accession_number": "ACC-1",
        "procedure": CodedElement("TDM-THX", "Scanner thorax", "LOCAL"),
        "status": ResultStatus.FINAL,
        "observed_at": datetime(2025, 3, 15, 21, 5, tzinfo=PARIS),
        "reported_at": datetime(2025, 3, 15, 22, 40, tzinfo=PARIS),
        "sections": (
            ReportSection(FINDINGS, FINDINGS_TEXT),
            ReportSection(CONCLUSIONS, "Épanchement pleural droit isolé."),
        ),
        "placer_order_number": EntityIdentifier("PL-77", "HIS"),
        "filler_order_number": EntityIdentifier("FL-99", "RIS"),
        "requested_procedure_id": "RP-1",
        "modality": "CT",
        "study_instance_uid": "1.2.250.1.59.2025.1",
        "interpreter": Practitioner("10101", "Moreau", "Élise", prefix="DR"),
        "pdf": PDF,
    }
    values.update(changes)
    return ImagingReport(**values)  # type: ignore[arg-type]


def sections_of(message: Message) -> dict[str, str]:
    lines: dict[str, list[str]] = {}
    for obx in message.all("OBX"):
        if obx.get(2) in ("TX", "FT"):
            lines.setdefault(f"{obx.get(3)}/{obx.get(4)}", []).append(obx.get(5))
    return {key: "\n".join(value) for key, value in lines.items()}


def test_the_oru_parses_back_with_header_patient_order_and_status() -> None:
    message = parse_message(build_oru_r01(report(), ENVELOPE, now=NOW, control_id="ORU1"))

    assert str(message.header.message_type) == "ORU^R01^ORU_R01"
    assert message.header.version == "2.5.1"
    assert message.header.control_id == "ORU1"
    assert message.header.charset == "UNICODE UTF-8"
    assert [s.id for s in message.segments[:5]] == ["MSH", "PID", "ORC", "OBR", "OBX"]
    patient = read_patient(message.require("PID"))
    assert patient == PATIENT
    orc, obr = message.require("ORC"), message.require("OBR")
    assert (orc.get(1), orc.get(2), orc.get(3), orc.get(5)) == ("SC", "PL-77", "FL-99", "CM")
    assert (obr.get(2), obr.get(2, 2), obr.get(3)) == ("PL-77", "HIS", "FL-99")
    assert (obr.get(4, 1), obr.get(4, 2)) == ("TDM-THX", "Scanner thorax")
    assert (obr.get(18), obr.get(19), obr.get(24), obr.get(25)) == ("ACC-1", "RP-1", "CT", "F")
    assert obr.get(7) == "20250315210500+0100"
    assert obr.get(22) == "20250315224000+0100"
    assert [obr.get(32, 1, s) for s in (1, 2, 3, 6)] == ["10101", "Moreau", "Élise", "DR"]


@pytest.mark.parametrize("status", list(ResultStatus))
def test_result_status_goes_in_obr25_and_every_result_obx11(status: ResultStatus) -> None:
    message = parse_message(build_oru_r01(report(status=status), ENVELOPE, now=NOW))

    assert message.require("OBR").get(25) == status.value
    results = [obx for obx in message.all("OBX") if obx.get(2) != "ST"]
    assert {obx.get(11) for obx in results} == {status.value}


def test_tx_sends_one_obx_per_line_and_the_text_comes_back_escaped_correctly() -> None:
    raw = build_oru_r01(report(), ENVELOPE, now=NOW)
    message = parse_message(raw)

    text_obx = [obx for obx in message.all("OBX") if obx.get(2) == "TX"]
    assert len(text_obx) == 4
    assert sections_of(message) == {
        "121070/1": FINDINGS_TEXT,
        "121076/2": "Épanchement pleural droit isolé.",
    }
    assert b"3 cm \\F\\ aspect \\S\\ liquidien \\T\\ libre" in raw
    assert b"\\R\\ ni d'embolie (C:\\E\\dossier)" in raw
    assert [obx.get(1) for obx in message.all("OBX")] == [str(n) for n in range(1, 7)]


def test_ft_sends_one_obx_per_section_with_line_breaks() -> None:
    raw = build_oru_r01(report(), ENVELOPE, now=NOW, text_type="FT")
    message = parse_message(raw)

    assert [obx.get(2) for obx in message.all("OBX")] == ["ST", "FT", "FT", "ED"]
    assert sections_of(message)["121070/1"] == FINDINGS_TEXT
    assert b"libre.\\.br\\\\.br\\Pas de" in raw


def test_the_pdf_travels_as_encapsulated_base64_data() -> None:
    message = parse_message(build_oru_r01(report(), ENVELOPE, now=NOW))

    (ed,) = [obx for obx in message.all("OBX") if obx.get(2) == "ED"]
    assert [ed.get(5, c) for c in (2, 3, 4)] == ["application", "PDF", "Base64"]
    assert base64.b64decode(ed.get(5, 5)) == PDF
    assert ed.get(3) == "18748-4"


def test_the_study_instance_uid_is_an_st_observation() -> None:
    message = parse_message(build_oru_r01(report(), ENVELOPE, now=NOW))

    first = message.all("OBX")[0]
    assert (first.get(2), first.get(3), first.get(5)) == ("ST", "113014", "1.2.250.1.59.2025.1")


def test_a_report_in_latin1_keeps_its_accents() -> None:
    envelope = Envelope(*(HierarchicDesignator(n) for n in "ABCD"), charset="8859/1")

    raw = build_oru_r01(report(pdf=None), envelope, now=NOW)

    assert "Épanchement".encode("iso8859-1") in raw
    message = parse_message(raw)
    assert message.header.charset == "8859/1"
    assert sections_of(message)["121076/2"] == "Épanchement pleural droit isolé."


def test_a_character_set_that_cannot_carry_the_text_refuses_to_build() -> None:
    envelope = Envelope(*(HierarchicDesignator(n) for n in "ABCD"), charset="ASCII")

    with pytest.raises(UnicodeEncodeError):
        build_oru_r01(report(), envelope, now=NOW)


def test_the_visit_is_sent_in_pv1_when_known() -> None:
    visit = Visit("E", referring_doctor=Practitioner("10002", "Durand", "Anne"))

    message = parse_message(build_oru_r01(report(visit=visit), ENVELOPE, now=NOW))

    pv1 = message.require("PV1")
    assert (pv1.get(2), pv1.get(8), pv1.get(8, 2)) == ("E", "10002", "Durand")


def test_a_pdf_only_report_is_accepted_and_an_empty_one_refused() -> None:
    message = parse_message(build_oru_r01(report(sections=()), ENVELOPE, now=NOW))

    assert [obx.get(2) for obx in message.all("OBX")] == ["ST", "ED"]
    with pytest.raises(ValueError, match="sections, a PDF"):
        report(sections=(), pdf=None)
    with pytest.raises(ValueError, match="aware"):
        report(observed_at=datetime(2025, 3, 15, 21, 5))
    with pytest.raises(ValueError, match="PDF"):
        report(pdf=b"<html>")
