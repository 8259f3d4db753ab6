"""Teleradiology: orders from the hospital information system, worklists, rota and routing,
reports and results.

This is the public face of the service's foundation: HL7 v2 parsing and acknowledgments,
patient and order messages read into plain data, ORU^R01 reports, the MLLP transport, and
the on-call rota and routing decisions; the modality side — worklist items matched and
answered as PS3.4 K.6 says, performed procedure steps checked as PS3.4 F.7 says, and the
DIMSE services that serve them on the archive's listener from a `WorklistSource` and into an
`MppsSink`. Everything here is free of storage and web concerns; adapters call these
functions.
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

__all__ = [
    "MODALITY_PERFORMED_PROCEDURE_STEP",
    "MODALITY_WORKLIST_FIND",
    "SUPPORTED_VERSIONS",
    "AcknowledgmentCode",
    "AdtEvent",
    "Code",
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
    "Patient",
    "PatientIdentifierChange",
    "PatientMerge",
    "PatientUpdate",
    "PeerInfo",
    "PerformedSeries",
    "PerformedStep",
    "PpsStatus",
    "Priority",
    "ReportSection",
    "ResultStatus",
    "Rota",
    "RoutingDecision",
    "RoutingRule",
    "RoutingTable",
    "ScheduledProcedureStep",
    "ScheduledStepReference",
    "Severity",
    "Sex",
    "StepStatus",
    "Visit",
    "WeekendShift",
    "WorklistFilter",
    "WorklistItem",
    "WorklistSource",
    "WorklistStep",
    "acknowledgment_code_for",
    "build_ack",
    "build_oru_r01",
    "check_message_type",
    "explain_route",
    "item_dataset",
    "mpps_service",
    "new_control_id",
    "order_status",
    "parse_message",
    "peek_header",
    "read_adt",
    "read_order_message",
    "read_patient",
    "read_visit",
    "respond",
    "route",
    "scheduled_status",
    "send_message",
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
}
"""The modality side, imported on first use: `import concilium.reading` (the installation's
actions) brings no DICOM library along."""

__getattr__ = public_face(__name__, _MODULE_OF)
