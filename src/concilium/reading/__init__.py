"""Teleradiology: orders from the hospital information system, worklists, rota and routing,
reports and results.

This is the public face of the service. Its foundation, free of storage and web concerns:
HL7 v2 parsing and acknowledgments, patient and order messages read into plain data,
ORU^R01 reports, the MLLP transport, and the on-call rota and routing decisions.

Imported on first use (``public_face``), so that `import concilium.reading` (the
installation's actions) brings no DICOM library or storage along: the modality side —
worklist items matched and answered as PS3.4 K.6 says, performed procedure steps checked as
PS3.4 F.7 says, and the DIMSE services that serve them on the archive's listener from a
`WorklistSource` and into an `MppsSink`; and the storage side — the scheduled procedure steps
with their order and patient (`scheduled_steps` → `ScheduledExam`, `StepKey`,
`set_step_status` for MPPS), the worklist and the performed steps in the database
(`DatabaseWorklist`, `DatabaseMpps`), the application side of the MLLP listener (`receive`,
`Receipt`), the registered senders (`add_sender`, `list_senders`, `sender_of`), the
report's ORU^R01 queued for the ordering hospital in the signer's transaction
(`queue_report`, the queue's `OutboundState`), the `ReadingAction` actions and the process
runtime `ReadingProcess`.
"""

from typing import TYPE_CHECKING

from concilium.platform.services import public_face
from concilium.reading.adt import (
    AdtEvent,
    IdentifierChange,
    Merge,
    Patient,
    PatientIdentifierChange,
    PatientMerge,
    PatientUpdate,
    Sex,
    Visit,
    read_adt,
    read_patient,
    read_visit,
)
from concilium.reading.hl7v2 import (
    SUPPORTED_VERSIONS,
    Message,
    MessageHeader,
    MessageType,
    check_message_type,
    new_control_id,
    parse_message,
    peek_header,
)
from concilium.reading.hl7v2_ack import (
    AcknowledgmentCode,
    acknowledgment_code_for,
    build_ack,
    respond,
)
from concilium.reading.hl7v2_errors import ErrorCode, ErrorLocation, HL7Error, Severity
from concilium.reading.mllp import (
    MllpConnection,
    MllpError,
    MllpServer,
    MllpServerSettings,
    MllpTimeout,
    PeerInfo,
    send_message,
)
from concilium.reading.orders import (
    ImagingOrder,
    OrderAction,
    OrderMessage,
    OrderStatus,
    Priority,
    ScheduledProcedureStep,
    order_status,
    read_order_message,
)
from concilium.reading.oru import (
    Envelope,
    ImagingReport,
    ReportSection,
    ResultStatus,
    build_oru_r01,
)
from concilium.reading.rota import (
    FixedPeriod,
    HolidayShift,
    NightShift,
    OnCallPeriod,
    Rota,
    WeekendShift,
)
from concilium.reading.routing import (
    ExamFacts,
    NoRoute,
    RoutingDecision,
    RoutingRule,
    RoutingTable,
    explain_route,
    route,
)

if TYPE_CHECKING:
    from concilium.reading.actions import ReadingAction
    from concilium.reading.inbound import Receipt, receive
    from concilium.reading.modality import mpps_service, worklist_service
    from concilium.reading.mpps import (
        MODALITY_PERFORMED_PROCEDURE_STEP,
        InMemoryMpps,
        MppsError,
        MppsSink,
        PerformedSeries,
        PerformedStep,
        PpsStatus,
        ScheduledStepReference,
        scheduled_status,
    )
    from concilium.reading.mpps_store import DatabaseMpps
    from concilium.reading.outbound_store import OutboundState
    from concilium.reading.process import ReadingProcess
    from concilium.reading.results import queue_report
    from concilium.reading.senders import add_sender, list_senders, sender_of
    from concilium.reading.worklist import (
        MODALITY_WORKLIST_FIND,
        Code,
        InMemoryWorklist,
        StepStatus,
        WorklistFilter,
        WorklistItem,
        WorklistSource,
        WorklistStep,
        item_dataset,
    )
    from concilium.reading.worklist_source import DatabaseWorklist
    from concilium.reading.worklist_store import (
        ScheduledExam,
        StepKey,
        scheduled_steps,
        set_step_status,
    )

__all__ = [
    "MODALITY_PERFORMED_PROCEDURE_STEP",
    "MODALITY_WORKLIST_FIND",
    "SUPPORTED_VERSIONS",
    "AcknowledgmentCode",
    "AdtEvent",
    "Code",
    "DatabaseMpps",
    "DatabaseWorklist",
    "Envelope",
    "ErrorCode",
    "ErrorLocation",
    "ExamFacts",
    "FixedPeriod",
    "HL7Error",
    "HolidayShift",
    "IdentifierChange",
    "ImagingOrder",
    "ImagingReport",
    "InMemoryMpps",
    "InMemoryWorklist",
    "Merge",
    "Message",
    "MessageHeader",
    "MessageType",
    "MllpConnection",
    "MllpError",
    "MllpServer",
    "MllpServerSettings",
    "MllpTimeout",
    "MppsError",
    "MppsSink",
    "NightShift",
    "NoRoute",
    "OnCallPeriod",
    "OrderAction",
    "OrderMessage",
    "OrderStatus",
    "OutboundState",
    "Patient",
    "PatientIdentifierChange",
    "PatientMerge",
    "PatientUpdate",
    "PeerInfo",
    "PerformedSeries",
    "PerformedStep",
    "PpsStatus",
    "Priority",
    "ReadingAction",
    "ReadingProcess",
    "Receipt",
    "ReportSection",
    "ResultStatus",
    "Rota",
    "RoutingDecision",
    "RoutingRule",
    "RoutingTable",
    "ScheduledExam",
    "ScheduledProcedureStep",
    "ScheduledStepReference",
    "Severity",
    "Sex",
    "StepKey",
    "StepStatus",
    "Visit",
    "WeekendShift",
    "WorklistFilter",
    "WorklistItem",
    "WorklistSource",
    "WorklistStep",
    "acknowledgment_code_for",
    "add_sender",
    "build_ack",
    "build_oru_r01",
    "check_message_type",
    "explain_route",
    "item_dataset",
    "list_senders",
    "mpps_service",
    "new_control_id",
    "order_status",
    "parse_message",
    "peek_header",
    "queue_report",
    "read_adt",
    "read_order_message",
    "read_patient",
    "read_visit",
    "receive",
    "respond",
    "route",
    "scheduled_status",
    "scheduled_steps",
    "send_message",
    "sender_of",
    "set_step_status",
    "worklist_service",
]

_MODULE_OF = {
    "mpps_service": "concilium.reading.modality",
    "worklist_service": "concilium.reading.modality",
    "MODALITY_PERFORMED_PROCEDURE_STEP": "concilium.reading.mpps",
    "InMemoryMpps": "concilium.reading.mpps",
    "MppsError": "concilium.reading.mpps",
    "MppsSink": "concilium.reading.mpps",
    "PerformedSeries": "concilium.reading.mpps",
    "PerformedStep": "concilium.reading.mpps",
    "PpsStatus": "concilium.reading.mpps",
    "ScheduledStepReference": "concilium.reading.mpps",
    "scheduled_status": "concilium.reading.mpps",
    "MODALITY_WORKLIST_FIND": "concilium.reading.worklist",
    "Code": "concilium.reading.worklist",
    "InMemoryWorklist": "concilium.reading.worklist",
    "StepStatus": "concilium.reading.worklist",
    "WorklistFilter": "concilium.reading.worklist",
    "WorklistItem": "concilium.reading.worklist",
    "WorklistSource": "concilium.reading.worklist",
    "WorklistStep": "concilium.reading.worklist",
    "item_dataset": "concilium.reading.worklist",
    "ReadingAction": "concilium.reading.actions",
    "Receipt": "concilium.reading.inbound",
    "receive": "concilium.reading.inbound",
    "DatabaseMpps": "concilium.reading.mpps_store",
    "DatabaseWorklist": "concilium.reading.worklist_source",
    "ReadingProcess": "concilium.reading.process",
    "OutboundState": "concilium.reading.outbound_store",
    "queue_report": "concilium.reading.results",
    "add_sender": "concilium.reading.senders",
    "list_senders": "concilium.reading.senders",
    "sender_of": "concilium.reading.senders",
    "ScheduledExam": "concilium.reading.worklist_store",
    "StepKey": "concilium.reading.worklist_store",
    "scheduled_steps": "concilium.reading.worklist_store",
    "set_step_status": "concilium.reading.worklist_store",
}
"""The modality and storage sides, imported on first use: `import concilium.reading` (the
installation's actions) brings no DICOM library along."""

__getattr__ = public_face(__name__, _MODULE_OF)
