"""STOW-RS Store Instances (PS3.18 10.5), and the Failure Reasons it answers with.

The body is parsed to files in the archive's receiving area, then its parts go through the
archive's one ingest pipeline (`concilium.imaging.ingest`) as one batch: each part is answered
on its own, as a Referenced SOP Sequence item or a Failed SOP Sequence item whose Failure
Reason (0008,1197) comes from `STOW_RS_FAILURE_REASON` (PS3.18 Table 10.5.3-1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydicom.dataset import Dataset

from concilium.imaging.actions import ImagingAction
from concilium.imaging.archive import Archive
from concilium.imaging.dicom_json import to_dicom_json
from concilium.imaging.dicomweb.errors import DicomwebError, bad_request
from concilium.imaging.dicomweb.media import DICOM, DICOM_JSON
from concilium.imaging.dicomweb.resources import STORE, archive_of, instance_url, study_url
from concilium.imaging.ingest import (
    IngestOutcome,
    IngestResult,
    ReceivedInstance,
    Sender,
    ingest_batch,
    receive_files,
    receiving_area,
)
from concilium.imaging.multipart import (
    BodyTooLarge,
    MultipartError,
    Part,
    PartTooLarge,
    boundary_from_content_type,
    parse_content_type,
    parse_multipart_related,
)
from concilium.imaging.parsing import FailureReason, Identification, InvalidInstance, failure_reason
from concilium.web.context import Ctx, runtime_of

__all__ = ["STOW_RS_FAILURE_REASON", "store_instances", "store_study_instances"]

router = APIRouter()


STOW_RS_FAILURE_REASON: Mapping[FailureReason, int] = MappingProxyType(
    {
        FailureReason.OUT_OF_RESOURCES: 0xA700,
        FailureReason.DATASET_DOES_NOT_MATCH_SOP_CLASS: 0xA900,
        FailureReason.CANNOT_UNDERSTAND: 0xC000,
        FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED: 0xC122,
        FailureReason.SOP_CLASS_NOT_SUPPORTED: 0x0122,
        FailureReason.PROCESSING_FAILURE: 0x0110,
        FailureReason.NOT_AUTHORIZED: 0x0124,
        FailureReason.DUPLICATE_SOP_INSTANCE: 0x0111,
    }
)
"""Failure Reason (0008,1197) of a Failed SOP Sequence item, by reason (PS3.18 Table 10.5.3-1)."""
# Warning Reason (0008,1196) for an instance re-sent with other bytes while the archive keeps
# the stored ones (PS3.18 Table 10.5.3-1 "Elements Discarded"): the client's copy was dropped.
_ELEMENTS_DISCARDED = 0xB006


@dataclass
class _StowOutcome:
    referenced: list[Dataset]
    failed: list[Dataset]
    refused: int = 0
    warnings: int = 0


def _sender(ctx: Ctx) -> Sender:
    # A new study belongs to the site where the caller may store; with several such sites
    # the lowest id is taken, so the owner never depends on dictionary order.
    # The gate let the caller in, so they hold a storing role somewhere.
    sites = ctx.principal.sites_with(ImagingAction.STUDY_STORE.rule.roles)
    return Sender(ctx.principal, ctx.actor, min(sites))


def _identification(got: ReceivedInstance | Exception | None) -> Identification:
    """What a part names itself by, as far as the ingest pipeline could read it."""
    if isinstance(got, ReceivedInstance):
        return Identification.of(got.record)
    if isinstance(got, InvalidInstance):
        return got.identification
    return Identification()


def _failed_item(named: Identification, reason: int) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = named.sop_class_uid or None
    item.ReferencedSOPInstanceUID = named.sop_instance_uid or None
    item.FailureReason = reason
    return item


def _refusal_before_ingest(part: Part, study: str | None, study_uid: str) -> int | None:
    """The STOW-RS failure reason of a part refused before ingest, if any."""
    if part.content_type not in (DICOM, None):
        return STOW_RS_FAILURE_REASON[FailureReason.CANNOT_UNDERSTAND]
    if study is not None and study_uid and study_uid != study:
        # An instance of another study than the target resource is not stored: a "Study
        # Instance UID mismatch" conflict (PS3.18 10.5.3).
        return STOW_RS_FAILURE_REASON[FailureReason.DATASET_DOES_NOT_MATCH_SOP_CLASS]
    return None


def _referenced_item(request: Request, result: IngestResult) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = result.sop_class_uid
    item.ReferencedSOPInstanceUID = result.sop_instance_uid
    item.RetrieveURL = instance_url(
        request, result.study_instance_uid, result.series_instance_uid, result.sop_instance_uid
    )
    if result.outcome is IngestOutcome.KEPT:
        item.WarningReason = _ELEMENTS_DISCARDED
    return item


async def _receive_parts(request: Request, archive: Archive) -> list[Part]:
    """The whole body, parsed to temporary files (each hashed as it is written) before any
    instance is stored.

    Framing is checked to the close delimiter first, so a malformed body (400) or one over
    the size limit (413) stores nothing. Parts are validated only then, not while the body
    arrives: validation holds the interpreter, and would slow the event loop receiving the
    rest of the body more than it gains.
    """
    content_type = request.headers.get("content-type", "")
    media_type, params = parse_content_type(content_type)
    if media_type != "multipart/related":
        raise DicomwebError(415, "Unsupported media type", "send multipart/related")
    part_type = params.get("type", DICOM).lower()
    if part_type != DICOM:
        raise DicomwebError(
            415, "Unsupported media type", f'only type="{DICOM}" parts are accepted'
        )
    try:
        boundary = boundary_from_content_type(content_type)
    except MultipartError as exc:
        raise bad_request(str(exc)) from exc
    limit = runtime_of(request).settings.dicomweb_max_stow_bytes
    parts: list[Part] = []
    try:
        async for part in parse_multipart_related(
            request.stream(), boundary, tmp_dir=receiving_area(archive), max_body_size=limit
        ):
            parts.append(part)
    except (BodyTooLarge, PartTooLarge) as exc:
        _discard(parts)
        raise DicomwebError(413, "Content too large", str(exc)) from exc
    except MultipartError as exc:
        _discard(parts)
        raise bad_request(str(exc)) from exc
    except BaseException:
        _discard(parts)
        raise
    if not parts:
        raise bad_request("the body holds no instance")
    return parts


def _discard(parts: Sequence[Part]) -> None:
    # A part committed to the store is no longer there: unlinking it is harmless.
    for part in parts:
        part.discard()


def _store_all(
    archive: Archive, sender: Sender, parts: list[Part], study: str | None, req: Request
) -> _StowOutcome:
    """Every part answered on its own; those that may be stored go in as one batch."""
    outcome = _StowOutcome([], [])
    try:
        readable = [i for i, part in enumerate(parts) if part.content_type in (DICOM, None)]
        files = [(parts[i].path, parts[i].sha256 or None) for i in readable]
        received = dict(zip(readable, receive_files(archive, files), strict=True))
        accepted: list[ReceivedInstance] = []
        for i, part in enumerate(parts):
            got = received.get(i)  # None: not application/dicom, never read
            named = _identification(got)
            reason = _refusal_before_ingest(part, study, named.study_instance_uid)
            if reason is None:
                if isinstance(got, ReceivedInstance):
                    accepted.append(got)
                    continue
                kind = failure_reason(got) if got is not None else FailureReason.CANNOT_UNDERSTAND
                reason = STOW_RS_FAILURE_REASON[kind]
            elif isinstance(got, ReceivedInstance):
                got.staged.discard()
            outcome.failed.append(_failed_item(named, reason))
        results = ingest_batch(archive, sender, accepted)
        for item, result in zip(accepted, results, strict=True):
            if isinstance(result, Exception):  # answered per instance, never as a crash
                kind = failure_reason(result)
                reason = STOW_RS_FAILURE_REASON[kind]
                outcome.failed.append(_failed_item(Identification.of(item.record), reason))
                outcome.refused += kind is FailureReason.NOT_AUTHORIZED
            else:
                referenced = _referenced_item(req, result)
                outcome.referenced.append(referenced)
                outcome.warnings += "WarningReason" in referenced
    finally:
        _discard(parts)
    return outcome


def _stow_status(outcome: _StowOutcome) -> int:
    """HTTP status of a STOW-RS response (PS3.18 10.5.3)."""
    if not outcome.referenced:
        # Nothing stored: when the policy refused every instance, say so plainly.
        return 403 if outcome.refused == len(outcome.failed) else 409
    if outcome.failed or outcome.warnings:
        return 202
    return 200


async def _stow(request: Request, ctx: Ctx, study: str | None) -> Response:
    archive = archive_of(request)
    # Authentication may have touched the token's last use: end that transaction now, as
    # the batch is indexed in one of its own and SQLite lets one writer in at a time.
    ctx.commit()
    parts = await _receive_parts(request, archive)
    outcome = await run_in_threadpool(_store_all, archive, _sender(ctx), parts, study, request)
    body = Dataset()
    if study is not None:
        body.RetrieveURL = study_url(request, study)
    else:
        studies = {str(i.RetrieveURL).split("/series/")[0] for i in outcome.referenced}
        if len(studies) == 1:
            body.RetrieveURL = studies.pop()
    body.ReferencedSOPSequence = outcome.referenced
    if outcome.failed:
        body.FailedSOPSequence = outcome.failed
    return JSONResponse(
        to_dicom_json(body), status_code=_stow_status(outcome), media_type=DICOM_JSON
    )


@router.post("/dicomweb/studies")
async def store_instances(request: Request, ctx: STORE) -> Response:
    """STOW-RS Store Instances (PS3.18 10.5): every part of the body, each on its own."""
    return await _stow(request, ctx, None)


@router.post("/dicomweb/studies/{study}")
async def store_study_instances(request: Request, study: str, ctx: STORE) -> Response:
    """STOW-RS Store Instances in a given study (PS3.18 10.5); other studies' parts fail."""
    return await _stow(request, ctx, study)
