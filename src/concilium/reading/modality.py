"""The modality side on the archive's DICOM listener: Modality Worklist C-FIND (PS3.4 K.6)
and Modality Performed Procedure Step N-CREATE / N-SET (PS3.4 F.7), as `DimseExtension`s
given to ``ImagingProcess.add_dimse_service`` before the listener starts.

The archive admits the association (a registered node, from its network identity) and
calls these handlers with the `CallingNode`: a node sees the worklist of its own site and
creates or sets the performed steps of its own site only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from concilium.imaging import CallingNode, DimseExtension, FindRequest, NResult
from concilium.reading.mpps import (
    MODALITY_PERFORMED_PROCEDURE_STEP,
    MppsError,
    MppsSink,
    n_create,
    n_set,
)
from concilium.reading.worklist import MODALITY_WORKLIST_FIND, WorklistSource, find_worklist

__all__ = [
    "COMBINED_DATETIME_MATCHING",
    "FUZZY_SEMANTIC_MATCHING",
    "mpps_service",
    "worklist_extended_negotiation",
    "worklist_service",
]

log = logging.getLogger(__name__)

SUCCESS = 0x0000

COMBINED_DATETIME_MATCHING = 1
"""Offset of the "date-time matching" byte of the C-FIND application information (PS3.4
Table C.5-1, byte 2), which the worklist accepts (K.3.1 refers to C.5.1.1)."""
FUZZY_SEMANTIC_MATCHING = 2
"""Offset of the "fuzzy semantic matching of person names" byte (byte 3)."""


def _asks(info: bytes, offset: int) -> bool:
    return len(info) > offset and info[offset] == 1


def worklist_extended_negotiation(asked: bytes) -> bytes:
    """Of the C-FIND options a modality asks for, combined date-time matching and fuzzy
    semantic matching of person names are accepted, relational queries and others not."""
    reply = bytearray(len(asked))
    for offset in (COMBINED_DATETIME_MATCHING, FUZZY_SEMANTIC_MATCHING):
        if _asks(asked, offset):
            reply[offset] = 1
    return bytes(reply)


def worklist_service(source: WorklistSource) -> DimseExtension:
    """Modality Worklist Information Model - FIND served from ``source``."""

    def find(request: FindRequest) -> Iterable[Dataset]:
        caller = request.caller
        sites = (caller.site_id,)
        found = find_worklist(
            source,
            sites,
            request.identifier,
            fuzzy=_asks(request.extended_negotiation, FUZZY_SEMANTIC_MATCHING),
            combined_datetime=_asks(request.extended_negotiation, COMBINED_DATETIME_MATCHING),
        )
        source.disclosed(caller, sites, [item for item, _ in found])
        log.info(
            "modality worklist query answered",
            extra={"calling_ae": caller.ae_title, "matches": len(found)},
        )
        return [response for _, response in found]

    return DimseExtension(
        sop_class_uid=MODALITY_WORKLIST_FIND,
        name="modality worklist",
        find=find,
        extended_negotiation=worklist_extended_negotiation,
    )


def _result(operation: Callable[[], object], uid: str, *, created: bool) -> NResult:
    try:
        operation()
    except MppsError as exc:
        log.warning("MPPS refused: %s", exc.comment, extra={"status": hex(exc.status)})
        return NResult(
            exc.status,
            error_comment=exc.comment,
            attribute_identifiers=exc.offending,
            error_id=exc.error_id,
        )
    return NResult(SUCCESS, affected_sop_instance_uid=uid if created else "")


def mpps_service(sink: MppsSink) -> DimseExtension:
    """Modality Performed Procedure Step SOP Class, N-CREATE and N-SET, kept in ``sink``."""

    def create(caller: CallingNode, uid: str, attributes: Dataset) -> NResult:
        # F.7.2.1.1: the SCU may leave the instance UID to the SCP, which then gives one.
        given = uid or str(generate_uid())
        return _result(
            lambda: n_create(sink, caller.site_id, caller.actor, given, attributes),
            given,
            created=not uid,
        )

    def modify(caller: CallingNode, uid: str, modification: Dataset) -> NResult:
        return _result(
            lambda: n_set(sink, caller.site_id, caller.actor, uid, modification),
            uid,
            created=False,
        )

    return DimseExtension(
        sop_class_uid=MODALITY_PERFORMED_PROCEDURE_STEP,
        name="modality performed procedure step",
        n_create=create,
        n_set=modify,
    )
