"""The "images available" message to the ordering hospital: its order's study is complete
in the archive.

Three shapes, chosen per hospital system (``concilium.reading.senders.ImagesAvailable``):

- ``orm``: ORM^O01 (v2.3.1, IHE SWF) — ORC-1 ``SC`` (status changed), ORC-5 ``CM``
  (completed), OBR with the order's numbers, the accession number (OBR-18), the requested
  procedure ID (OBR-19), the step ID (OBR-20), the modality (OBR-24), OBR-25 ``R``;
- ``omi``: OMI^O23 (v2.5.1, IHE SWF.b) — the same ORC and OBR, with an IPC giving the
  accession number, requested procedure ID, Study Instance UID, step ID and modality;
- ``oru``: ORU^R01 (v2.5.1) as dcm4chee-arc notifies the availability of imaging results
  (IHE RAD ORU "imaging results available") — ORC ``SC``/``CM``, OBR-25 ``R`` (results
  stored, not yet verified) and one OBX carrying the Study Instance UID (ST, 113014 "DICOM
  Study").
"""

from __future__ import annotations

from datetime import datetime

from concilium.reading.hl7v2 import MessageHeader, MessageType, new_control_id
from concilium.reading.hl7v2_charsets import UTF_8, encode_message
from concilium.reading.hl7v2_datatypes import format_date, format_datetime
from concilium.reading.hl7v2_encoding import DEFAULT_ENCODING, compose_field, compose_segment
from concilium.reading.oru import STUDY_INSTANCE_UID, Envelope
from concilium.reading.senders import ImagesAvailable
from concilium.reading.tables import ImagingOrderRecord
from concilium.reading.worklist_store import ScheduledExam

__all__ = ["build_images_available"]

_TYPES = {
    ImagesAvailable.ORM: (MessageType("ORM", "O01"), "2.3.1"),
    ImagesAvailable.OMI: (MessageType("OMI", "O23", "OMI_O23"), "2.5.1"),
    ImagesAvailable.ORU: (MessageType("ORU", "R01", "ORU_R01"), "2.5.1"),
}


def build_images_available(
    mode: ImagesAvailable,
    order: ImagingOrderRecord,
    exam: ScheduledExam,
    envelope: Envelope,
    *,
    now: datetime,
    control_id: str | None = None,
) -> bytes:
    """The message telling that the study of ``order`` (``exam`` is its first step, with
    the patient as the site knows them) is available, UTF-8 encoded."""
    if mode is ImagesAvailable.NONE:
        raise ValueError("no message for the mode none")
    message_type, version = _TYPES[mode]
    header = MessageHeader(
        message_type=message_type,
        control_id=control_id or new_control_id(),
        processing_id=envelope.processing_id,
        version=version,
        sending_application=envelope.sending_application,
        sending_facility=envelope.sending_facility,
        receiving_application=envelope.receiving_application,
        receiving_facility=envelope.receiving_facility,
        date_time=format_datetime(now),
        charset=UTF_8,
    )
    segments = [header.compose(), _pid(order, exam), _orc(order), _obr(order, exam, now)]
    if mode is ImagesAvailable.OMI:
        segments.append(_ipc(exam))
    if mode is ImagesAvailable.ORU:
        uid = compose_field(exam.study_instance_uid)
        code = STUDY_INSTANCE_UID.compose(DEFAULT_ENCODING)
        segments.append(compose_segment("OBX", ["1", "ST", code, "", uid, "", "", "", "", "", "R"]))
    return encode_message("\r".join(segments) + "\r", UTF_8)


def _pid(order: ImagingOrderRecord, exam: ScheduledExam) -> str:
    fields = [""] * 8
    fields[0] = "1"
    fields[2] = compose_field(exam.patient_identifier, "", "", order.issuer_of_patient_id, "PI")
    fields[4] = compose_field(exam.patient_family_name, exam.patient_given_name)
    fields[6] = format_date(exam.patient_birth_date) if exam.patient_birth_date else ""
    fields[7] = compose_field(exam.patient_sex)
    return compose_segment("PID", fields)


def _number(value: str, issuer: str) -> str:
    return compose_field(value, issuer) if value else ""


def _orc(order: ImagingOrderRecord) -> str:
    placer = _number(order.placer_order_number, order.placer_issuer)
    filler = _number(order.filler_order_number, order.filler_issuer)
    return compose_segment("ORC", ["SC", placer, filler, "", "CM"])


def _obr(order: ImagingOrderRecord, exam: ScheduledExam, now: datetime) -> str:
    fields = [""] * 25
    fields[0] = "1"
    fields[1] = _number(order.placer_order_number, order.placer_issuer)
    fields[2] = _number(order.filler_order_number, order.filler_issuer)
    fields[3] = compose_field(
        order.procedure_code, order.procedure_description, order.procedure_coding_system
    )
    fields[6] = format_datetime(exam.start or now)
    fields[17] = compose_field(order.accession_number)
    fields[18] = compose_field(exam.requested_procedure_id)
    fields[19] = compose_field(exam.step_id)
    fields[23] = compose_field(exam.modality)
    fields[24] = "R"
    return compose_segment("OBR", fields)


def _ipc(exam: ScheduledExam) -> str:
    return compose_segment(
        "IPC",
        [
            compose_field(exam.accession_number),
            compose_field(exam.requested_procedure_id),
            compose_field(exam.study_instance_uid),
            compose_field(exam.step_id),
            compose_field(exam.modality),
        ],
    )
