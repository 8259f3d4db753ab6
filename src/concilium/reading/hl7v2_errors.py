"""HL7 v2 error conditions, as an ACK reports them (HL7 v2.5.1 chapter 2, §2.15.5 ERR).

:class:`ErrorCode` is HL7 table 0357 "Message error condition codes", :class:`Severity`
table 0516 "Error severity" and :class:`ErrorLocation` the ERL data type (§2.A.26) that
ERR-2 carries. Every refusal of an inbound message is an :class:`HL7Error`, so one
``except HL7Error`` at the protocol boundary is enough to answer with an ACK.

The ``text`` of an error is written for people reading an interface log: it names fields
and what is wrong with them, never the patient data they contain.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from enum import IntEnum, StrEnum


class ErrorCode(IntEnum):
    """HL7 table 0357, message error condition codes."""

    MESSAGE_ACCEPTED = 0
    SEGMENT_SEQUENCE_ERROR = 100
    REQUIRED_FIELD_MISSING = 101
    DATA_TYPE_ERROR = 102
    TABLE_VALUE_NOT_FOUND = 103
    UNSUPPORTED_MESSAGE_TYPE = 200
    UNSUPPORTED_EVENT_CODE = 201
    UNSUPPORTED_PROCESSING_ID = 202
    UNSUPPORTED_VERSION_ID = 203
    UNKNOWN_KEY_IDENTIFIER = 204
    DUPLICATE_KEY_IDENTIFIER = 205
    APPLICATION_RECORD_LOCKED = 206
    APPLICATION_INTERNAL_ERROR = 207

    @property
    def text(self) -> str:
        """The description of the code in table 0357."""
        return _CODE_TEXT[self]


_CODE_TEXT = {
    ErrorCode.MESSAGE_ACCEPTED: "Message accepted",
    ErrorCode.SEGMENT_SEQUENCE_ERROR: "Segment sequence error",
    ErrorCode.REQUIRED_FIELD_MISSING: "Required field missing",
    ErrorCode.DATA_TYPE_ERROR: "Data type error",
    ErrorCode.TABLE_VALUE_NOT_FOUND: "Table value not found",
    ErrorCode.UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    ErrorCode.UNSUPPORTED_EVENT_CODE: "Unsupported event code",
    ErrorCode.UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    ErrorCode.UNSUPPORTED_VERSION_ID: "Unsupported version id",
    ErrorCode.UNKNOWN_KEY_IDENTIFIER: "Unknown key identifier",
    ErrorCode.DUPLICATE_KEY_IDENTIFIER: "Duplicate key identifier",
    ErrorCode.APPLICATION_RECORD_LOCKED: "Application record locked",
    ErrorCode.APPLICATION_INTERNAL_ERROR: "Application internal error",
}

# Codes that refuse the message as a whole rather than its content: HL7 v2.5.1 §2.9.2
# answers them with AR (reject) where a content error gets AE.
REJECTING_CODES = frozenset(
    {
        ErrorCode.UNSUPPORTED_MESSAGE_TYPE,
        ErrorCode.UNSUPPORTED_EVENT_CODE,
        ErrorCode.UNSUPPORTED_PROCESSING_ID,
        ErrorCode.UNSUPPORTED_VERSION_ID,
        ErrorCode.APPLICATION_INTERNAL_ERROR,
    }
)
"""Error codes acknowledged with AR (application reject) instead of AE (application error)."""


class Severity(StrEnum):
    """HL7 table 0516, error severity (ERR-4)."""

    ERROR = "E"
    WARNING = "W"
    INFORMATION = "I"


@dataclass(frozen=True)
class ErrorLocation:
    """Where an error lies in a message: the ERL data type of ERR-2 (HL7 v2.5.1 §2.A.26)."""

    segment_id: str
    """Three-letter segment ID, e.g. ``PID``."""
    sequence: int = 1
    """Which occurrence of that segment in the message, counting from 1."""
    field: int | None = None
    """Field position within the segment (MSH-1 is the field separator)."""
    repetition: int | None = None
    """Which repetition of the field, counting from 1."""
    component: int | None = None
    """Component number within the field."""
    subcomponent: int | None = None
    """Sub-component number within the component."""

    def __post_init__(self) -> None:
        if self.sequence < 1:
            raise ValueError(f"sequence counts from 1, got {self.sequence}")
        for name in ("field", "repetition", "component", "subcomponent"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} counts from 1, got {value}")

    def __str__(self) -> str:
        """The notation of the standard's text: ``PID-3``, ``MSH-9.2``, ``OBR[2]-18``."""
        text = self.segment_id if self.sequence == 1 else f"{self.segment_id}[{self.sequence}]"
        if self.field is None:
            return text
        text += f"-{self.field}"
        if self.repetition is not None and self.repetition > 1:
            text += f"({self.repetition})"
        if self.component is not None:
            text += f".{self.component}"
            if self.subcomponent is not None:
                text += f".{self.subcomponent}"
        return text


class HL7Error(Exception):
    """An inbound HL7 v2 message, or part of it, that cannot be accepted."""

    def __init__(
        self,
        code: ErrorCode,
        text: str,
        location: ErrorLocation | None = None,
        *,
        severity: Severity = Severity.ERROR,
    ) -> None:
        self.code = code
        """Table 0357 condition, sent in ERR-3."""
        self.text = text
        """Explanation for people, sent in ERR-8; names fields, never their content."""
        self.location = location
        """Where the error lies, sent in ERR-2; None when it concerns the whole message."""
        self.severity = severity
        """Table 0516 severity, sent in ERR-4."""
        where = f" at {location}" if location is not None else ""
        super().__init__(f"{int(code)} {code.text}{where}: {text}")

    @property
    def rejects(self) -> bool:
        """True when the error refuses the whole message (AR) rather than its content (AE)."""
        return self.code in REJECTING_CODES


def failure_trace(exc: BaseException) -> str:
    """An unexpected exception for a log line: its class and stack, not its message.

    The message of an exception raised while handling a message can quote patient data;
    the stack shows where it happened without it.
    """
    stack = "".join(traceback.format_tb(exc.__traceback__))
    return f"{type(exc).__name__}\n{stack}".rstrip()
