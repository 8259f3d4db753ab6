"""Status (0000,0900) of the DIMSE responses the archive sends (PS3.7 Annex C, PS3.4).

The DICOM server (`concilium.imaging.dimse`) answers with these codes only: the domain
raises protocol-neutral exceptions, and `C_STORE_STATUS` turns the `FailureReason` of a
refused instance into the code PS3.4 Table B.2-1 gives it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from concilium.imaging.parsing import FailureReason

__all__ = [
    "CANCEL",
    "C_STORE_STATUS",
    "IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS",
    "NOT_AUTHORIZED",
    "PENDING",
    "SUCCESS",
    "UNABLE_TO_PROCESS",
]

SUCCESS = 0x0000
"""Success (PS3.7 C.1)."""
PENDING = 0xFF00
"""Pending: a C-FIND match or a C-GET / C-MOVE sub-operation follows (PS3.4 C.4.1.1.4)."""
CANCEL = 0xFE00
"""Matching or sub-operations terminated due to Cancel request (PS3.4 C.4.1.1.4)."""
NOT_AUTHORIZED = 0x0124
"""Refused: Not Authorized (PS3.7 C.4.2)."""
IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900
"""Identifier does not match SOP Class (PS3.4 C.4.1.1.4, C.4.2.1.5)."""
UNABLE_TO_PROCESS = 0xC001
"""Unable to process (PS3.4 C.4.1.1.4, C.4.2.1.5)."""

C_STORE_STATUS: Mapping[FailureReason, int] = MappingProxyType(
    {
        FailureReason.OUT_OF_RESOURCES: 0xA700,
        FailureReason.DATASET_DOES_NOT_MATCH_SOP_CLASS: 0xA900,
        FailureReason.CANNOT_UNDERSTAND: 0xC000,
        # Transfer syntaxes are negotiated per presentation context; an object whose
        # encoding we cannot read is reported as "cannot understand".
        FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED: 0xC000,
        FailureReason.SOP_CLASS_NOT_SUPPORTED: 0x0122,
        FailureReason.PROCESSING_FAILURE: 0x0110,
        FailureReason.NOT_AUTHORIZED: NOT_AUTHORIZED,
        FailureReason.DUPLICATE_SOP_INSTANCE: 0x0111,
    }
)
"""Status of a failed C-STORE, by reason (PS3.4 Table B.2-1, PS3.7 C.4)."""
