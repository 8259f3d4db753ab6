"""Teleradiology: orders from the hospital information system, worklists, rota and routing,
reports and results.

This is the public face of the service's foundation: HL7 v2 parsing and acknowledgments,
patient and order messages read into plain data, ORU^R01 reports, the MLLP transport, and
the on-call rota and routing decisions. Everything there is free of storage and web
concerns; adapters call these functions.

And of its storage, imported on first use (``public_face``): the scheduled procedure steps
as a modality worklist reads them (`scheduled_steps` → `WorklistItem`, `StepKey`,
`set_step_status` for MPPS), the application side of the MLLP listener (`receive`,
`Receipt`), the registered senders (`add_sender`, `list_senders`, `sender_of`), the
`ReadingAction` actions and the process runtime `ReadingProcess`.
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
    from concilium.reading.process import ReadingProcess
    from concilium.reading.senders import add_sender, list_senders, sender_of
    from concilium.reading.worklist_store import (
        StepKey,
        WorklistItem,
        scheduled_steps,
        set_step_status,
    )

_MODULE_OF = {
    "ReadingAction": "concilium.reading.actions",
    "Receipt": "concilium.reading.inbound",
    "receive": "concilium.reading.inbound",
    "ReadingProcess": "concilium.reading.process",
    "add_sender": "concilium.reading.senders",
    "list_senders": "concilium.reading.senders",
    "sender_of": "concilium.reading.senders",
    "StepKey": "concilium.reading.worklist_store",
    "WorklistItem": "concilium.reading.worklist_store",
    "scheduled_steps": "concilium.reading.worklist_store",
    "set_step_status": "concilium.reading.worklist_store",
}
"""The module each name of the storage side of the public face comes from."""

__getattr__ = public_face(__name__, _MODULE_OF)

__all__ = [
    "SUPPORTED_VERSIONS",
    "AcknowledgmentCode",
    "AdtEvent",
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
    "Merge",
    "Message",
    "MessageHeader",
    "MessageType",
    "MllpConnection",
    "MllpError",
    "MllpServer",
    "MllpServerSettings",
    "MllpTimeout",
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
    "ScheduledProcedureStep",
    "Severity",
    "Sex",
    "StepKey",
    "Visit",
    "WeekendShift",
    "WorklistItem",
    "acknowledgment_code_for",
    "add_sender",
    "build_ack",
    "build_oru_r01",
    "check_message_type",
    "explain_route",
    "list_senders",
    "new_control_id",
    "order_status",
    "parse_message",
    "peek_header",
    "read_adt",
    "read_order_message",
    "read_patient",
    "read_visit",
    "receive",
    "respond",
    "route",
    "scheduled_steps",
    "send_message",
    "sender_of",
    "set_step_status",
]
