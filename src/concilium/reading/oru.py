"""Imaging reports sent out as ORU^R01 (HL7 v2.5.1 §7.3.1), in the shape IHE Radiology's
report transactions (RAD-128) and dcm4chee-arc use for results distribution.

The message is MSH, PID, PV1 (when the visit is known), ORC (SC, status CM: the procedure
is done), OBR with the order's numbers, procedure, accession number (OBR-18), requested
procedure ID (OBR-19), modality (OBR-24), result status (OBR-25: P preliminary, F final, C
correction or addendum) and interpreter (OBR-32), then OBX segments:

- the Study Instance UID as ST with code 113014 "DICOM Study" (DCM), when known;
- the text of each report section, coded by its DICOM heading (CID 7001: 121070 Findings,
  121072 Impressions...), either as TX with one OBX per line (OBX-4 numbering the
  section, so a receiver can put the lines back together) or as FT with one OBX per
  section and ``\\.br\\`` line breaks;
- the signed PDF as ED, OBX-5 ``^application^PDF^Base64^<data>``, coded LOINC 18748-4
  "Diagnostic imaging study".
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from concilium.reading.adt import Patient, Visit
from concilium.reading.hl7v2 import MessageHeader, MessageType, new_control_id
from concilium.reading.hl7v2_charsets import UTF_8, encode_message, normalise
from concilium.reading.hl7v2_datatypes import (
    CodedElement,
    EntityIdentifier,
    HierarchicDesignator,
    Practitioner,
    format_date,
    format_datetime,
)
from concilium.reading.hl7v2_encoding import (
    DEFAULT_ENCODING,
    compose_field,
    compose_segment,
    escape,
)

HISTORY = CodedElement("121060", "History", "DCM")
"""Report section heading, DICOM CID 7001."""
PROCEDURE = CodedElement("121064", "Current Procedure Descriptions", "DCM")
"""Report section heading, DICOM CID 7001 (the technique)."""
FINDINGS = CodedElement("121070", "Findings", "DCM")
"""Report section heading, DICOM CID 7001."""
IMPRESSIONS = CodedElement("121072", "Impressions", "DCM")
"""Report section heading, DICOM CID 7001."""
RECOMMENDATIONS = CodedElement("121074", "Recommendations", "DCM")
"""Report section heading, DICOM CID 7001."""
CONCLUSIONS = CodedElement("121076", "Conclusions", "DCM")
"""Report section heading, DICOM CID 7001."""
ADDENDUM = CodedElement("121078", "Addendum", "DCM")
"""Report section heading, DICOM CID 7001."""
INDICATIONS = CodedElement("121109", "Indications for Procedure", "DCM")
"""Report section heading, DICOM CID 7001."""
STUDY_INSTANCE_UID = CodedElement("113014", "DICOM Study", "DCM")
"""OBX-3 of the OBX carrying the Study Instance UID."""
REPORT_DOCUMENT = CodedElement("18748-4", "Diagnostic imaging study", "LN")
"""OBX-3 of the OBX carrying the PDF."""

ORU_VERSION = "2.5.1"
"""MSH-12 of the messages built here."""


class ResultStatus(StrEnum):
    """OBR-25 (table 0123) and OBX-11 (table 0085) of a report."""

    PRELIMINARY = "P"
    FINAL = "F"
    CORRECTED = "C"


@dataclass(frozen=True)
class ReportSection:
    """One titled part of a report."""

    heading: CodedElement
    """Section code, e.g. :data:`FINDINGS`."""
    text: str
    """Plain text; line breaks are kept."""


@dataclass(frozen=True)
class ImagingReport:
    """A report about one ordered procedure, ready to be sent."""

    patient: Patient
    """PID: identifiers and demographics as the hospital knows them."""
    accession_number: str
    """OBR-18."""
    procedure: CodedElement
    """OBR-4, the requested procedure."""
    status: ResultStatus
    """OBR-25 and OBX-11."""
    observed_at: datetime
    """OBR-7, when the images were acquired (aware)."""
    reported_at: datetime
    """OBR-22, when the report reached this status (aware)."""
    sections: tuple[ReportSection, ...] = ()
    """The text, in reading order."""
    placer_order_number: EntityIdentifier | None = None
    """ORC-2 and OBR-2."""
    filler_order_number: EntityIdentifier | None = None
    """ORC-3 and OBR-3."""
    requested_procedure_id: str = ""
    """OBR-19."""
    modality: str = ""
    """OBR-24."""
    study_instance_uid: str | None = None
    """Sent in an OBX of type ST."""
    interpreter: Practitioner | None = None
    """OBR-32, the radiologist who signed."""
    visit: Visit | None = None
    """PV1, when known."""
    pdf: bytes | None = None
    """The signed report as PDF, sent in an OBX of type ED."""

    def __post_init__(self) -> None:
        if not self.accession_number.strip():
            raise ValueError("a report needs the accession number of its order")
        if not self.patient.identifiers:
            raise ValueError("a report needs at least one patient identifier")
        if not self.sections and self.pdf is None:
            raise ValueError("a report needs text sections, a PDF or both")
        for name in ("observed_at", "reported_at"):
            if getattr(self, name).utcoffset() is None:
                raise ValueError(f"{name} must be an aware datetime")
        if self.pdf is not None and not self.pdf.startswith(b"%PDF-"):
            raise ValueError("pdf does not hold a PDF document")


@dataclass(frozen=True)
class Envelope:
    """Who sends an outbound message to whom (MSH-3 to MSH-6) and how."""

    sending_application: HierarchicDesignator
    """MSH-3."""
    sending_facility: HierarchicDesignator
    """MSH-4."""
    receiving_application: HierarchicDesignator
    """MSH-5."""
    receiving_facility: HierarchicDesignator
    """MSH-6."""
    processing_id: str = "P"
    """MSH-11 (table 0103)."""
    charset: str = UTF_8
    """MSH-18 (table 0211) and the encoding of the bytes."""

    def __post_init__(self) -> None:
        if self.processing_id not in ("P", "D", "T"):
            raise ValueError(f"processing_id must be P, D or T, got {self.processing_id!r}")
        normalise(self.charset)


def build_oru_r01(
    report: ImagingReport,
    envelope: Envelope,
    *,
    now: datetime,
    control_id: str | None = None,
    text_type: Literal["TX", "FT"] = "TX",
) -> bytes:
    """The ORU^R01 carrying a report, encoded in the envelope's character set.

    Raises :class:`UnicodeEncodeError` when the report holds characters the character set
    cannot carry (choose UTF-8, the default, for any text).
    """
    segments = compose_oru_r01(
        report, envelope, now=now, control_id=control_id, text_type=text_type
    )
    return encode_message("\r".join(segments) + "\r", envelope.charset)


def compose_oru_r01(
    report: ImagingReport,
    envelope: Envelope,
    *,
    now: datetime,
    control_id: str | None = None,
    text_type: Literal["TX", "FT"] = "TX",
) -> list[str]:
    """The segments :func:`build_oru_r01` encodes."""
    header = MessageHeader(
        message_type=MessageType("ORU", "R01", "ORU_R01"),
        control_id=control_id or new_control_id(),
        processing_id=envelope.processing_id,
        version=ORU_VERSION,
        sending_application=envelope.sending_application,
        sending_facility=envelope.sending_facility,
        receiving_application=envelope.receiving_application,
        receiving_facility=envelope.receiving_facility,
        date_time=format_datetime(now),
        charset=normalise(envelope.charset),
    )
    segments = [header.compose(), _pid(report.patient)]
    if report.visit is not None:
        segments.append(_pv1(report.visit))
    segments += [_orc(report), _obr(report)]
    segments += _observations(report, text_type)
    return segments


def _pid(patient: Patient) -> str:
    enc = DEFAULT_ENCODING
    fields = [""] * 18
    fields[0] = "1"
    fields[2] = enc.repetition.join(i.compose(enc) for i in patient.identifiers)
    fields[4] = enc.repetition.join(n.compose(enc) for n in patient.names)
    fields[6] = format_date(patient.birth_date) if patient.birth_date else ""
    fields[7] = patient.sex.value if patient.sex else ""
    fields[17] = patient.account_number.compose(enc) if patient.account_number else ""
    return compose_segment("PID", fields, enc)


def _pv1(visit: Visit) -> str:
    enc = DEFAULT_ENCODING
    fields = [""] * 19
    fields[0] = "1"
    fields[1] = compose_field(visit.patient_class or "U", encoding=enc)
    fields[7] = visit.referring_doctor.compose(enc) if visit.referring_doctor else ""
    fields[18] = visit.visit_number.compose(enc) if visit.visit_number else ""
    return compose_segment("PV1", fields, enc)


def _orc(report: ImagingReport) -> str:
    enc = DEFAULT_ENCODING
    placer, filler = report.placer_order_number, report.filler_order_number
    fields = ["SC", placer.compose(enc) if placer else "", filler.compose(enc) if filler else ""]
    fields += ["", "CM"]
    return compose_segment("ORC", fields, enc)


def _obr(report: ImagingReport) -> str:
    enc = DEFAULT_ENCODING
    placer, filler = report.placer_order_number, report.filler_order_number
    fields = [""] * 32
    fields[0] = "1"
    fields[1] = placer.compose(enc) if placer else ""
    fields[2] = filler.compose(enc) if filler else ""
    fields[3] = report.procedure.compose(enc)
    fields[6] = format_datetime(report.observed_at)
    fields[17] = compose_field(report.accession_number, encoding=enc)
    fields[18] = compose_field(report.requested_procedure_id, encoding=enc)
    fields[21] = format_datetime(report.reported_at)
    fields[23] = compose_field(report.modality, encoding=enc)
    fields[24] = report.status.value
    fields[31] = report.interpreter.compose_cnn(enc) if report.interpreter else ""
    return compose_segment("OBR", fields, enc)


def _observations(report: ImagingReport, text_type: Literal["TX", "FT"]) -> list[str]:
    enc = DEFAULT_ENCODING
    rows: list[tuple[str, CodedElement, str, str, str]] = []
    if report.study_instance_uid:
        uid = compose_field(report.study_instance_uid, encoding=enc)
        rows.append(("ST", STUDY_INSTANCE_UID, "", uid, "O"))
    status = report.status.value
    for number, section in enumerate(report.sections, start=1):
        text = section.text.replace("\r\n", "\n").replace("\r", "\n")
        if text_type == "FT":
            rows.append(("FT", section.heading, str(number), escape(text, enc), status))
            continue
        for line in text.split("\n"):
            rows.append(("TX", section.heading, str(number), escape(line, enc), status))
    if report.pdf is not None:
        data = base64.b64encode(report.pdf).decode("ascii")
        value = compose_field("", "application", "PDF", "Base64", data, encoding=enc)
        rows.append(("ED", REPORT_DOCUMENT, "", value, status))
    observed = format_datetime(report.observed_at)
    segments = []
    for set_id, (value_type, code, sub_id, value, result_status) in enumerate(rows, start=1):
        fields = [str(set_id), value_type, code.compose(enc), sub_id, value]
        fields += ["", "", "", "", "", result_status, "", "", observed]
        segments.append(compose_segment("OBX", fields, enc))
    return segments
