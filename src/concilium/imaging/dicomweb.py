"""DICOMweb (PS3.18): STOW-RS, QIDO-RS, WADO-RS and WADO-URI over the archive.

Thin HTTP adapters over `concilium.imaging.service`: every route authenticates through
`concilium.web.context.gate` (session cookie or bearer token with ``imaging:read`` /
``imaging:write``), the service asks the policy about each study, and each request leaves
one audit entry of the read it did (the service records it). Studies a caller may not see do
not exist for them: QIDO-RS leaves them out, WADO-RS and WADO-URI answer 404.

Paths follow PS3.18 10.4 (retrieve), 10.5 (store) and 10.6 (search) under ``/dicomweb``;
WADO-URI (PS3.18 9) is ``/wado``.
"""

from __future__ import annotations

import asyncio
import collections
import fnmatch
import json
import os
import re
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pydicom
from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, ExplicitVRLittleEndian
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from concilium.config import Settings
from concilium.imaging import render, service
from concilium.imaging.actions import ImagingAction
from concilium.imaging.dicom_json import (
    attributes_to_dicom_json,
    element_at_bulk_data_path,
    to_dicom_json,
)
from concilium.imaging.multipart import (
    BodyTooLarge,
    MultipartError,
    OutgoingPart,
    Part,
    PartTooLarge,
    boundary_from_content_type,
    multipart_content_type,
    new_boundary,
    parse_content_type,
    parse_multipart_related,
    write_multipart_related,
)
from concilium.imaging.parsing import STOW_RS_FAILURE_REASON, FailureReason, failure_reason
from concilium.imaging.process import ImagingProcess
from concilium.imaging.service import Archive, IngestOutcome, Level
from concilium.platform import audit
from concilium.platform.errors import ConciliumError, NotFound
from concilium.web.context import Ctx, gate, process_of, runtime_of

__all__ = ["DicomwebCORSMiddleware", "archive_of", "router"]

router = APIRouter(tags=["dicomweb"])

DICOM_JSON = "application/dicom+json"
DICOM = "application/dicom"
OCTET_STREAM = "application/octet-stream"
_READ = Annotated[Ctx, gate(ImagingAction.STUDY_READ)]
_STORE = Annotated[Ctx, gate(ImagingAction.STUDY_STORE)]
_BASE = "/dicomweb"
MAX_RESULTS = 1000
"""Most matches one QIDO-RS response returns; more are paged with ``offset`` (8.3.4.4)."""
THUMBNAIL_SIZE = 128
"""Largest side, in pixels, of a thumbnail asked for without a viewport."""
# Warning Reason (0008,1196) for an instance re-sent with other bytes while the archive keeps
# the stored ones (PS3.18 Table 10.5.3-1 "Elements Discarded"): the client's copy was dropped.
_ELEMENTS_DISCARDED = 0xB006
# Media type of a frame's codestream, by transfer syntax (PS3.18 Table 8.7.3-2 and -5).
_FRAME_MEDIA_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.5": "image/x-dicom-rle",
}


class DicomwebError(ConciliumError):
    """A request PS3.18 answers with a client error; ``status`` is set per instance."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title


def _bad_request(detail: str) -> DicomwebError:
    return DicomwebError(400, "Bad request", detail)


def _not_acceptable(detail: str) -> DicomwebError:
    return DicomwebError(406, "Not acceptable", detail)


# --------------------------------------------------------------------------------------------
# The archive the HTTP side writes to and reads from


def archive_of(request: Request) -> Archive:
    """The archive of this process (see :class:`ImagingProcess`): the HTTP side shares the
    database sessions, event bus and clock of everything else in the process."""
    return process_of(request.app, ImagingProcess).archive


def _base_url(request: Request) -> str:
    # Retrieve and BulkData URIs go to other machines: they are built on the public URL,
    # not on whatever Host header this request happened to carry.
    return runtime_of(request).settings.public_url.rstrip("/") + _BASE


def _study_url(request: Request, study: str) -> str:
    return f"{_base_url(request)}/studies/{study}"


def _series_url(request: Request, study: str, series: str) -> str:
    return f"{_study_url(request, study)}/series/{series}"


def _instance_url(request: Request, study: str, series: str, instance: str) -> str:
    return f"{_series_url(request, study, series)}/instances/{instance}"


# --------------------------------------------------------------------------------------------
# STOW-RS, PS3.18 10.5


@dataclass
class _StowOutcome:
    referenced: list[Dataset]
    failed: list[Dataset]
    refused: int = 0
    warnings: int = 0


def _sender(ctx: Ctx) -> service.Sender:
    # A new study belongs to the site where the caller may store; with several such sites
    # the lowest id is taken, so the owner never depends on dictionary order.
    # The gate let the caller in, so they hold a storing role somewhere.
    sites = ctx.principal.sites_with(ImagingAction.STUDY_STORE.rule.roles)
    return service.Sender(ctx.principal, ctx.actor, min(sites))


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            yield chunk


def _uids_of(path: Path) -> tuple[str, str, str]:
    """(SOP Class, SOP Instance, Study Instance) UIDs of a received part, or blanks."""
    try:
        ds = pydicom.dcmread(
            path,
            stop_before_pixels=True,
            specific_tags=["SOPClassUID", "SOPInstanceUID", "StudyInstanceUID"],
        )
    except (InvalidDicomError, ValueError, EOFError, OSError, KeyError, TypeError):
        return "", "", ""
    meta = getattr(ds, "file_meta", None)
    sop_class = str(ds.get("SOPClassUID", "") or "") or str(
        getattr(meta, "MediaStorageSOPClassUID", "") or ""
    )
    sop_instance = str(ds.get("SOPInstanceUID", "") or "") or str(
        getattr(meta, "MediaStorageSOPInstanceUID", "") or ""
    )
    return sop_class, sop_instance, str(ds.get("StudyInstanceUID", "") or "")


def _failed_item(sop_class: str, sop_instance: str, reason: int) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class or None
    item.ReferencedSOPInstanceUID = sop_instance or None
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


def _referenced_item(request: Request, result: service.IngestResult) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = result.sop_class_uid
    item.ReferencedSOPInstanceUID = result.sop_instance_uid
    item.RetrieveURL = _instance_url(
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
        raise _bad_request(str(exc)) from exc
    limit = runtime_of(request).settings.dicomweb_max_stow_bytes
    tmp = archive.store.root / "tmp"
    parts: list[Part] = []
    try:
        async for part in parse_multipart_related(
            request.stream(), boundary, tmp_dir=tmp, max_body_size=limit
        ):
            parts.append(part)
    except (BodyTooLarge, PartTooLarge) as exc:
        _discard(parts)
        raise DicomwebError(413, "Content too large", str(exc)) from exc
    except MultipartError as exc:
        _discard(parts)
        raise _bad_request(str(exc)) from exc
    except BaseException:
        _discard(parts)
        raise
    if not parts:
        raise _bad_request("the body holds no instance")
    return parts


def _discard(parts: Sequence[Part]) -> None:
    # A part committed to the store is no longer there: unlinking it is harmless.
    for part in parts:
        part.discard()


def _store_all(
    archive: Archive, sender: service.Sender, parts: list[Part], study: str | None, req: Request
) -> _StowOutcome:
    """Every part answered on its own; those that may be stored go in as one batch."""
    outcome = _StowOutcome([], [])
    try:
        readable = [i for i, part in enumerate(parts) if part.content_type in (DICOM, None)]
        files = [(parts[i].path, parts[i].sha256 or None) for i in readable]
        received = dict(zip(readable, service.receive_files(archive, files), strict=True))
        accepted: list[service.ReceivedInstance] = []
        for i, part in enumerate(parts):
            got = received.get(i)  # None: not application/dicom, never read
            if isinstance(got, service.ReceivedInstance):
                instance = got.record.instance
                study_uid = got.record.study.study_instance_uid
                reason = _refusal_before_ingest(part, study, study_uid)
                if reason is None:
                    accepted.append(got)
                    continue
                got.staged.discard()
                sop_class, sop_instance = instance.sop_class_uid, instance.sop_instance_uid
            else:
                # Not an instance we can store: named as well as its bytes allow.
                sop_class, sop_instance, study_uid = _uids_of(part.path)
                reason = _refusal_before_ingest(part, study, study_uid)
                if reason is None:
                    kind = (
                        failure_reason(got) if got is not None else FailureReason.CANNOT_UNDERSTAND
                    )
                    reason = STOW_RS_FAILURE_REASON[kind]
            outcome.failed.append(_failed_item(sop_class, sop_instance, reason))
        results = service.ingest_batch(archive, sender, accepted)
        for item, result in zip(accepted, results, strict=True):
            if isinstance(result, Exception):  # answered per instance, never as a crash
                kind = failure_reason(result)
                reason = STOW_RS_FAILURE_REASON[kind]
                instance = item.record.instance
                failed = _failed_item(instance.sop_class_uid, instance.sop_instance_uid, reason)
                outcome.failed.append(failed)
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
        body.RetrieveURL = _study_url(request, study)
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
async def store_instances(request: Request, ctx: _STORE) -> Response:
    """STOW-RS Store Instances (PS3.18 10.5): every part of the body, each on its own."""
    return await _stow(request, ctx, None)


@router.post("/dicomweb/studies/{study}")
async def store_study_instances(request: Request, study: str, ctx: _STORE) -> Response:
    """STOW-RS Store Instances in a given study (PS3.18 10.5); other studies' parts fail."""
    return await _stow(request, ctx, study)


# --------------------------------------------------------------------------------------------
# QIDO-RS, PS3.18 10.6

# Default return attributes (PS3.18 Tables 10.6.3-3 to 10.6.3-5), besides the unique keys.
_STUDY_DEFAULTS = (
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "InstanceAvailability",
    "ModalitiesInStudy",
    "ReferringPhysicianName",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyID",
    "StudyDescription",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
_SERIES_DEFAULTS = (
    "Modality",
    "SeriesDescription",
    "SeriesNumber",
    "PerformedProcedureStepStartDate",
    "NumberOfSeriesRelatedInstances",
)
_INSTANCE_DEFAULTS = (
    "SOPClassUID",
    "InstanceAvailability",
    "InstanceNumber",
    "Rows",
    "Columns",
    "BitsAllocated",
    "NumberOfFrames",
)
_DEFAULTS = {
    Level.STUDY: _STUDY_DEFAULTS,
    Level.SERIES: _SERIES_DEFAULTS,
    Level.IMAGE: _INSTANCE_DEFAULTS,
}
# Everything the index can answer at each level, for ``includefield=all``.
_ALL_FIELDS = {
    Level.STUDY: (*_STUDY_DEFAULTS, "IssuerOfPatientID", "InstitutionName", "SOPClassesInStudy"),
    Level.SERIES: (*_SERIES_DEFAULTS, "BodyPartExamined", "SeriesDate", "SeriesTime"),
    Level.IMAGE: (*_INSTANCE_DEFAULTS, "ContentDate", "ContentTime", "PhotometricInterpretation"),
}
_CONTROL_PARAMETERS = frozenset({"includefield", "limit", "offset", "fuzzymatching"})
_FUZZY_KEYS = frozenset({"PatientName", "ReferringPhysicianName"})


def _keyword_of(name: str) -> str:
    """Keyword of a query key given as a keyword or as 8 hex digits (PS3.18 8.3.4.1)."""
    if len(name) == 8 and all(c in "0123456789abcdefABCDEF" for c in name):
        keyword = keyword_for_tag(int(name, 16))
        if keyword:
            return str(keyword)
    elif tag_for_keyword(name) is not None:
        return name
    raise _bad_request(f"unknown attribute {name!r}")


def _set_key(ds: Dataset, keyword: str, value: str | None) -> None:
    tag = tag_for_keyword(keyword)
    assert tag is not None  # keywords are checked by _keyword_of
    vr = dictionary_VR(tag)
    if vr == "SQ":
        ds.add(DataElement(tag, vr, []))
        return
    ds.add(DataElement(tag, vr, value or None))


def _fold(text: str) -> str:
    """Case- and accent-insensitive form of a name, for fuzzy matching."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def fuzzy_name_match(pattern: str, name: str) -> bool:
    """Fuzzy semantic matching of a person name (PS3.4 C.2.2.2.1.1, ``fuzzymatching=true``).

    Insensitive to case and accents; ``*`` and ``?`` keep their meaning; without wildcards,
    each component given (family, given...) must begin the same component of the name.
    """
    folded_name = _fold(name)
    folded_pattern = _fold(pattern.strip())
    if not folded_pattern or folded_pattern == "*":
        return True
    if "*" in folded_pattern or "?" in folded_pattern:
        return fnmatch.fnmatchcase(folded_name, folded_pattern)
    wanted = folded_pattern.split("^")
    have = folded_name.split("^")
    return all(
        i < len(have) and have[i].strip().startswith(w.strip())
        for i, w in enumerate(wanted)
        if w.strip()
    )


@dataclass
class _Search:
    identifier: Dataset
    fuzzy: dict[str, str]
    limit: int | None
    offset: int


def _search(request: Request, level: Level, fixed: dict[str, str]) -> _Search:
    """The C-FIND identifier a QIDO-RS query string stands for (PS3.18 8.3.4)."""
    ds = Dataset()
    ds.QueryRetrieveLevel = str(level)
    params = request.query_params
    fuzzy_on = params.get("fuzzymatching", "false").lower() == "true"
    fuzzy: dict[str, str] = {}
    requested: list[str] = []
    for name, value in params.multi_items():
        if name in _CONTROL_PARAMETERS:
            continue
        if "." in name:
            raise _bad_request(f"sequence matching is not supported: {name!r}")
        keyword = _keyword_of(name)
        if fuzzy_on and keyword in _FUZZY_KEYS:
            fuzzy[keyword] = value
            requested.append(keyword)
            continue
        if dictionary_VR(keyword) == "UI":
            # UID list matching (PS3.18 8.3.4.1) is comma-separated in a query string.
            value = "\\".join(v.strip() for v in value.split(","))
        _set_key(ds, keyword, value)
    for keyword, value in fixed.items():
        _check_uid(value)
        _set_key(ds, keyword, value)
    fields: list[str] = []
    for value in params.getlist("includefield"):
        fields += [f.strip() for f in value.split(",") if f.strip()]
    wanted = list(_DEFAULTS[level]) + requested
    if level is not Level.STUDY:
        wanted += _STUDY_DEFAULTS if "StudyInstanceUID" not in fixed else ()
    for field_name in fields:
        if field_name == "all":
            for lvl in (Level.STUDY, Level.SERIES, Level.IMAGE):
                wanted += _ALL_FIELDS[lvl]
                if lvl is level:
                    break
        else:
            wanted.append(_keyword_of(field_name))
    for keyword in wanted:
        if keyword not in ds:
            _set_key(ds, keyword, None)
    return _Search(ds, fuzzy, _int_param(request, "limit"), _int_param(request, "offset") or 0)


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise _bad_request(f"{name} must be an integer") from exc
    if value < 0:
        raise _bad_request(f"{name} must not be negative")
    return value


def _names(match: service.Match, keyword: str) -> str:
    value = match.value(keyword)
    return "\\".join(map(str, value)) if isinstance(value, list) else str(value)


_JSON_TYPES = frozenset({DICOM_JSON, "application/json", "application/*", "*/*", "*"})


def _qido(request: Request, ctx: Ctx, level: Level, fixed: dict[str, str]) -> Response:
    accept = request.headers.get("accept", "")
    if accept and not any(parse_content_type(e)[0] in _JSON_TYPES for e in _split_accept(accept)):
        # Results are given as DICOM JSON only (PS3.18 10.6.3.2); XML is not offered.
        raise _not_acceptable(f"search results are {DICOM_JSON}")
    search = _search(request, level, fixed)
    limit = min(search.limit if search.limit is not None else MAX_RESULTS, MAX_RESULTS)
    # Without fuzzy matching the archive pages for us (one more than asked, to know whether
    # more results exist); fuzzy matching filters afterwards, so it needs every match.
    paged = not search.fuzzy
    try:
        matches = service.search(
            ctx.db,
            ctx.principal,
            ctx.actor,
            search.identifier,
            now=ctx.now,
            limit=limit + 1 if paged else None,
            offset=search.offset if paged else 0,
        )
    except service.InvalidQuery as exc:
        raise _bad_request(str(exc)) from exc
    except service.NotAuthorized as exc:
        raise DicomwebError(403, "Forbidden", str(exc)) from exc
    ctx.commit()
    if search.fuzzy:
        matches = [
            m
            for m in matches
            if all(fuzzy_name_match(p, _names(m, k)) for k, p in search.fuzzy.items())
        ]
    start = 0 if paged else search.offset
    page = matches[start : start + limit]
    results = [_qido_result(request, m, level) for m in page]
    headers = {}
    if len(matches) > start + limit:
        # PS3.18 8.3.4.4: tell the client that more results exist past this page.
        headers["Warning"] = '299 concilium: "There are additional results that can be requested"'
    return JSONResponse(results, media_type=DICOM_JSON, headers=headers)


_STUDY_INSTANCE_UID = 0x0020000D
_SERIES_INSTANCE_UID = 0x0020000E
_SOP_INSTANCE_UID = 0x00080018
_RETRIEVE_URL = 0x00081190


def _qido_result(request: Request, match: service.Match, level: Level) -> dict[str, Any]:
    """One result (PS3.18 10.6.3.3), with the Retrieve URL of what it matched."""
    attributes = dict(match.attributes)
    study = str(attributes[_STUDY_INSTANCE_UID])
    if level is Level.STUDY:
        url = _study_url(request, study)
    elif level is Level.SERIES:
        url = _series_url(request, study, str(attributes[_SERIES_INSTANCE_UID]))
    else:
        series = str(attributes[_SERIES_INSTANCE_UID])
        url = _instance_url(request, study, series, str(attributes[_SOP_INSTANCE_UID]))
    attributes[_RETRIEVE_URL] = url
    return attributes_to_dicom_json(attributes)


@router.get("/dicomweb/studies")
def search_for_studies(request: Request, ctx: _READ) -> Response:
    """QIDO-RS Search for Studies (PS3.18 10.6.1, resource ``/studies``)."""
    return _qido(request, ctx, Level.STUDY, {})


@router.get("/dicomweb/series")
def search_for_series(request: Request, ctx: _READ) -> Response:
    """QIDO-RS Search for Series of every study (PS3.18 10.6.1, resource ``/series``)."""
    return _qido(request, ctx, Level.SERIES, {})


@router.get("/dicomweb/studies/{study}/series")
def search_for_study_series(request: Request, study: str, ctx: _READ) -> Response:
    """QIDO-RS Search for Series of one study (PS3.18 10.6.1)."""
    return _qido(request, ctx, Level.SERIES, {"StudyInstanceUID": study})


@router.get("/dicomweb/instances")
def search_for_instances(request: Request, ctx: _READ) -> Response:
    """QIDO-RS Search for Instances of every study (PS3.18 10.6.1, ``/instances``)."""
    return _qido(request, ctx, Level.IMAGE, {})


@router.get("/dicomweb/studies/{study}/instances")
def search_for_study_instances(request: Request, study: str, ctx: _READ) -> Response:
    """QIDO-RS Search for Instances of one study (PS3.18 10.6.1)."""
    return _qido(request, ctx, Level.IMAGE, {"StudyInstanceUID": study})


@router.get("/dicomweb/studies/{study}/series/{series}/instances")
def search_for_series_instances(request: Request, study: str, series: str, ctx: _READ) -> Response:
    """QIDO-RS Search for Instances of one series (PS3.18 10.6.1)."""
    return _qido(
        request, ctx, Level.IMAGE, {"StudyInstanceUID": study, "SeriesInstanceUID": series}
    )


# --------------------------------------------------------------------------------------------
# WADO-RS, PS3.18 10.4

_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def _check_uid(uid: str | None) -> None:
    # A path segment is one UID (PS3.5 9.1): no list (backslash), no wildcard.
    if uid is not None and (len(uid) > 64 or not _UID.fullmatch(uid)):
        raise _bad_request(f"not a UID: {uid[:70]!r}")


def _locate(
    request: Request, ctx: Ctx, study: str, series: str | None = None, instance: str | None = None
) -> list[service.RetrievableInstance]:
    """Instances of a target resource the caller may read; 404 when there are none."""
    for uid in (study, series, instance):
        _check_uid(uid)
    identifier = Dataset()
    identifier.QueryRetrieveLevel = str(
        Level.IMAGE if instance else Level.SERIES if series else Level.STUDY
    )
    identifier.StudyInstanceUID = study
    if series is not None:
        identifier.SeriesInstanceUID = series
    if instance is not None:
        identifier.SOPInstanceUID = instance
    try:
        found = service.locate(
            archive_of(request), ctx.db, ctx.principal, ctx.actor, identifier, now=ctx.now
        )
    except service.InvalidQuery as exc:
        raise _bad_request(str(exc)) from exc
    except service.NotAuthorized as exc:
        raise DicomwebError(403, "Forbidden", str(exc)) from exc
    if not found:
        # Invisible and absent look the same; the attempt is still in the audit trail.
        ctx.db.rollback()
        audit.record(
            ctx.db,
            ctx.actor,
            "study.retrieve",
            "failure",
            object_kind="study",
            object_id=study,
            detail={"series": series, "instance": instance, "reason": "not found"},
        )
        ctx.commit()
        raise NotFound("no such study, series or instance")
    ctx.commit()
    return found


@dataclass(frozen=True)
class _Accepted:
    media_type: str
    """The part's (or the whole body's) media type."""
    transfer_syntax: str | None
    """The ``transfer-syntax`` parameter, if given."""
    multipart: bool


def _accepted(request: Request, default: str) -> list[_Accepted]:
    """The media types an Accept header allows, in order (PS3.18 8.7.1, 8.7.3.5)."""
    header = request.headers.get("accept", "") or f'multipart/related; type="{default}"'
    accepted = []
    for entry in _split_accept(header):
        media_type, params = parse_content_type(entry)
        if media_type == "multipart/related":
            part_type = params.get("type", default).lower()
            accepted.append(_Accepted(part_type, params.get("transfer-syntax"), True))
        elif media_type in ("*/*", "*", "multipart/*"):
            # Anything will do: the resource's default representation.
            accepted.append(_Accepted(default, None, True))
        else:
            accepted.append(_Accepted(media_type, params.get("transfer-syntax"), False))
    return accepted


def _split_accept(header: str) -> list[str]:
    # Commas inside quoted parameters (type="...") do not separate entries.
    entries: list[str] = []
    current: list[str] = []
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            entries.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    entries.append("".join(current).strip())
    return [e for e in entries if e]


def _matches(accepted: _Accepted, media_type: str) -> bool:
    if accepted.media_type in ("*/*", "*", media_type):
        return True
    major = media_type.split("/")[0]
    return accepted.media_type == f"{major}/*"


class _MultipartResponse(StreamingResponse):
    """A multipart/related body (PS3.18 8.7.3), streamed.

    When the length of every part is known the body goes with its Content-Length instead of
    chunked: a client then reads what arrives as it is, without parsing chunk framing, which
    for a study of a thousand instances is most of what the client has to do.
    """

    def __init__(
        self, parts: list[OutgoingPart], part_type: str, lengths: list[int] | None = None
    ) -> None:
        boundary = new_boundary()
        super().__init__(
            write_multipart_related(parts, boundary),
            media_type=None,
            headers={"content-type": multipart_content_type(part_type, boundary)},
        )
        in_memory = [p.content for p in parts if isinstance(p.content, bytes)]
        if lengths is None and len(in_memory) == len(parts):
            lengths = [len(content) for content in in_memory]
        self._framing = [OutgoingPart(p.content_type, b"", p.headers) for p in parts]
        self._boundary = boundary
        self._lengths = lengths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._lengths is not None:
            # The writer's own framing of the same parts without their content: the body's
            # length never depends on how the writer happens to lay out its delimiters.
            framing = write_multipart_related(self._framing, self._boundary)
            overhead = sum([len(chunk) async for chunk in framing])
            self.headers["content-length"] = str(overhead + sum(self._lengths))
        await super().__call__(scope, receive, send)


def _multipart_response(
    parts: list[OutgoingPart], part_type: str, lengths: list[int] | None = None
) -> StreamingResponse:
    return _MultipartResponse(parts, part_type, lengths)


_READ_PIECE = 1 << 20
"""Largest piece of a stored file read at a time while sending it."""
_READ_BATCH = 4 << 20
"""Bytes read per trip to the worker thread, so that the trips cost little next to the reads."""
_WILL_NEED = 16
"""Stored files the kernel is asked to start reading ahead of the one being read: a disk
serves several requests at once much faster than the same requests one after another."""
_Piece = tuple[int, bytes, bool]
"""(part index, bytes, whether they end the part)."""


class _ReadAhead:
    """Produces the contents of a response's parts in a worker thread, a batch of pieces
    ahead of what is being sent: the disk (or the decoder) and the socket work at the same
    time, and the event loop never waits for either. Parts are consumed in order, as the
    writer does.
    """

    def __init__(
        self, sources: Sequence[Callable[[], Iterator[bytes]]], files: Sequence[Path] = ()
    ) -> None:
        self._pieces = self._produce(sources, files)
        self._ready: collections.deque[_Piece] = collections.deque()
        self._ahead: asyncio.Future[list[_Piece]] | None = None
        self._exhausted = False

    @staticmethod
    def _produce(
        sources: Sequence[Callable[[], Iterator[bytes]]], files: Sequence[Path]
    ) -> Iterator[_Piece]:
        for path in files[:_WILL_NEED]:
            _will_need(path)
        for index, source in enumerate(sources):
            if index + _WILL_NEED < len(files):
                _will_need(files[index + _WILL_NEED])
            previous: bytes | None = None
            for piece in source():
                if previous is not None:
                    yield index, previous, False
                previous = piece
            yield index, previous or b"", True

    def _batch(self) -> list[_Piece]:
        batch: list[_Piece] = []
        size = 0
        for piece in self._pieces:
            batch.append(piece)
            size += len(piece[1])
            if size >= _READ_BATCH:
                break
        return batch

    def _read_ahead(self) -> None:
        if self._ahead is None and not self._exhausted:
            self._ahead = asyncio.get_running_loop().run_in_executor(None, self._batch)

    async def _next(self) -> _Piece | None:
        if not self._ready:
            self._read_ahead()
            if self._ahead is None:
                return None
            batch = await self._ahead
            self._ahead = None
            self._exhausted = not batch
            self._ready.extend(batch)
            self._read_ahead()
        return self._ready.popleft() if self._ready else None

    async def part(self, index: int) -> AsyncIterator[bytes]:
        """The content of part ``index``, once the parts before it have been read."""
        while (piece := await self._next()) is not None:
            at, data, last = piece
            if at != index:
                raise RuntimeError(f"part {index} read out of order (at {at})")
            if data:
                yield data
            if last:
                return
        raise RuntimeError(f"part {index} has no content")


def _will_need(path: Path) -> None:
    """Ask the kernel to read ``path`` into its cache in the background (a hint only)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # reading it will report the problem
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


def _stored_file(path: Path, length: int) -> Callable[[], Iterator[bytes]]:
    def read() -> Iterator[bytes]:
        sent = 0
        with path.open("rb", buffering=0) as fh:
            while piece := fh.read(_READ_PIECE):
                sent += len(piece)
                yield piece
        if sent != length:
            # The declared Content-Length is the index's: a file that differs cannot be sent.
            raise OSError(f"{path.name}: {sent} bytes stored, {length} indexed")

    return read


def _transcoded(path: Path, transfer_syntax: str) -> Callable[[], Iterator[bytes]]:
    def produce() -> Iterator[bytes]:
        yield render.transcode(path, transfer_syntax)

    return produce


def _syntax_for(stored: str, wanted: Sequence[str | None]) -> str | None:
    """The transfer syntax to send an instance stored in ``stored`` in: the first of the
    accepted ``transfer-syntax`` values (None when absent) it can be sent in, else None."""
    for syntax in wanted:
        if syntax is None or syntax == "*" or syntax == stored:
            return stored
        if render.can_transcode(stored, syntax):
            return syntax
    return None


def _instances_response(
    request: Request, ctx: Ctx, study: str, series: str | None = None, instance: str | None = None
) -> Response:
    """Each instance as a Part 10 object (PS3.18 10.4.1.1.1), in the first transfer syntax
    the Accept header allows (8.7.3.5.2).

    With ``transfer-syntax`` absent, ``*`` or the stored one, the stored bytes go as they are.
    Explicit VR Little Endian and Implicit VR Little Endian are produced from any stored
    syntax whose pixel data the archive decodes (`render.transcode`); anything else, a lossy
    syntax above all, is refused with 406. Instances are transcoded as they are sent: one
    whose pixel data turn out undecodable past the first part ends the response early.
    """
    choices = [c for c in _accepted(request, DICOM) if c.multipart and _matches(c, DICOM)]
    if not choices:
        raise _not_acceptable(f'instances are sent as multipart/related; type="{DICOM}"')
    wanted = [c.transfer_syntax for c in choices]
    found = _locate(request, ctx, study, series, instance)
    syntaxes = [_syntax_for(i.transfer_syntax_uid, wanted) for i in found]
    pairs = list(zip(found, syntaxes, strict=True))
    refused = sorted({i.transfer_syntax_uid for i, ts in pairs if ts is None})
    if refused:
        asked = ", ".join(str(w) for w in wanted)
        produced = ", ".join(sorted(render.UNCOMPRESSED_SYNTAXES))
        raise _not_acceptable(
            f"transfer syntax {asked} cannot be produced from {', '.join(refused)}: instances "
            f"are sent as stored, or decompressed to {produced}; never to a lossy syntax"
        )
    if len(found) == 1 and syntaxes[0] != found[0].transfer_syntax_uid:
        # One instance: transcoded before answering, so that a failure is still a 406.
        (item,), (syntax,) = found, syntaxes
        try:
            data = render.transcode(item.path, str(syntax))
        except render.RenderError as exc:
            raise _not_acceptable(f"cannot be sent in {syntax}: {exc}") from exc
        part = OutgoingPart(f"{DICOM}; transfer-syntax={syntax}", data)
        return _multipart_response([part], DICOM)
    sources = [
        _stored_file(i.path, i.size)
        if ts == i.transfer_syntax_uid
        else _transcoded(i.path, str(ts))
        for i, ts in pairs
    ]
    reader = _ReadAhead(sources, [i.path for i in found])
    parts = [
        OutgoingPart(f"{DICOM}; transfer-syntax={ts}", reader.part(index))
        for index, ts in enumerate(syntaxes)
    ]
    as_stored = all(ts == i.transfer_syntax_uid for i, ts in pairs)
    return _multipart_response(parts, DICOM, [i.size for i in found] if as_stored else None)


@router.get("/dicomweb/studies/{study}")
def retrieve_study(request: Request, study: str, ctx: _READ) -> Response:
    """WADO-RS Retrieve Study (PS3.18 10.4.1, resource ``/studies/{study}``)."""
    return _instances_response(request, ctx, study)


@router.get("/dicomweb/studies/{study}/series/{series}")
def retrieve_series(request: Request, study: str, series: str, ctx: _READ) -> Response:
    """WADO-RS Retrieve Series (PS3.18 10.4.1)."""
    return _instances_response(request, ctx, study, series)


@router.get("/dicomweb/studies/{study}/series/{series}/instances/{instance}")
def retrieve_instance(
    request: Request, study: str, series: str, instance: str, ctx: _READ
) -> Response:
    """WADO-RS Retrieve Instance (PS3.18 10.4.1)."""
    return _instances_response(request, ctx, study, series, instance)


_BASE_PLACEHOLDER = "\x00BASE\x00"
"""Stands for the base URL in cached metadata (no DICOM text value holds a NUL)."""


def _instance_metadata(request: Request, item: service.RetrievableInstance) -> str:
    """The instance's DICOM JSON text; computed once per stored object, then cached."""
    store = archive_of(request).store
    base = _base_url(request)
    text = store.read_cache("metadata", item.path.name)
    if text is None:
        ds = pydicom.dcmread(item.path, defer_size=1024)
        series = str(ds.SeriesInstanceUID)
        url = _instance_url(request, item.study_instance_uid, series, item.sop_instance_uid)
        prefix = _BASE_PLACEHOLDER + url.removeprefix(base) + "/bulkdata"
        text = json.dumps(to_dicom_json(ds, bulk_data_uri_prefix=prefix))
        store.write_cache("metadata", item.path.name, text)
    return text.replace(json.dumps(_BASE_PLACEHOLDER)[1:-1], json.dumps(base)[1:-1])


def _metadata(request: Request, found: list[service.RetrievableInstance]) -> Response:
    """DICOM JSON of each instance, binary values as BulkDataURIs (PS3.18 10.4.1.1.2)."""
    body = "[" + ",".join(_instance_metadata(request, item) for item in found) + "]"
    return Response(body, media_type=DICOM_JSON)


@router.get("/dicomweb/studies/{study}/metadata")
def retrieve_study_metadata(request: Request, study: str, ctx: _READ) -> Response:
    """WADO-RS Retrieve Study Metadata (PS3.18 10.4.1.1.2)."""
    return _metadata(request, _locate(request, ctx, study))


@router.get("/dicomweb/studies/{study}/series/{series}/metadata")
def retrieve_series_metadata(request: Request, study: str, series: str, ctx: _READ) -> Response:
    """WADO-RS Retrieve Series Metadata (PS3.18 10.4.1.1.2)."""
    return _metadata(request, _locate(request, ctx, study, series))


@router.get("/dicomweb/studies/{study}/series/{series}/instances/{instance}/metadata")
def retrieve_instance_metadata(
    request: Request, study: str, series: str, instance: str, ctx: _READ
) -> Response:
    """WADO-RS Retrieve Instance Metadata (PS3.18 10.4.1.1.2)."""
    return _metadata(request, _locate(request, ctx, study, series, instance))


def _little_endian(value: bytes, vr: str) -> bytes:
    # Bulk data travel little endian (PS3.18 8.7.3.3.2), whatever the stored encoding.
    width = {"OW": 2, "US": 2, "SS": 2, "OF": 4, "OL": 4, "FL": 4, "UL": 4, "SL": 4}.get(vr)
    if vr in ("OD", "FD", "OV", "SV", "UV"):
        width = 8
    if width is None or len(value) % width:
        return value
    return np.frombuffer(value, dtype=f">u{width}").astype(f"<u{width}").tobytes()


@router.get("/dicomweb/studies/{study}/series/{series}/instances/{instance}/bulkdata/{path:path}")
def retrieve_bulkdata(
    request: Request, study: str, series: str, instance: str, path: str, ctx: _READ
) -> Response:
    """WADO-RS Retrieve Bulkdata (PS3.18 10.4.1.1.5): the value a BulkDataURI points at."""
    if not any(c.multipart and _matches(c, OCTET_STREAM) for c in _accepted(request, OCTET_STREAM)):
        raise _not_acceptable(f'bulk data are sent as multipart/related; type="{OCTET_STREAM}"')
    (found,) = _locate(request, ctx, study, series, instance)
    ds = pydicom.dcmread(found.path)
    try:
        elem = element_at_bulk_data_path(ds, path)
    except KeyError as exc:
        raise NotFound(f"no bulk data at {path}") from exc
    value = elem.value
    if not isinstance(value, bytes | bytearray):
        raise NotFound(f"{path} is not a binary value")
    data = bytes(value)
    if not ds.is_little_endian:
        data = _little_endian(data, str(elem.VR))
    return _multipart_response([OutgoingPart(OCTET_STREAM, data)], OCTET_STREAM)


def _frame_numbers(frames: str) -> list[int]:
    try:
        numbers = [int(f) for f in frames.split(",") if f.strip()]
    except ValueError as exc:
        raise _bad_request("frame list: comma-separated positive integers") from exc
    if not numbers or any(n < 1 for n in numbers):
        raise _bad_request("frame numbers start at 1")
    return numbers


def _frame_parts(
    found: service.RetrievableInstance, numbers: list[int], choices: list[_Accepted]
) -> tuple[list[OutgoingPart], str]:
    """Frames as stored or as Explicit VR Little Endian, per the Accept header (8.7.3.5)."""
    stored = UID(found.transfer_syntax_uid)
    native = not stored.is_encapsulated and stored.is_little_endian and not stored.is_deflated
    compressed_type = _FRAME_MEDIA_TYPES.get(str(stored), OCTET_STREAM)
    for choice in choices:
        if not choice.multipart:
            continue
        ts = choice.transfer_syntax
        if _matches(choice, OCTET_STREAM) and ts in (None, str(ExplicitVRLittleEndian)):
            if native:
                return _frames(found, numbers, OCTET_STREAM, render.extract_frame), OCTET_STREAM
            return (
                _frames(found, numbers, OCTET_STREAM, render.frame_as_explicit_vr_little_endian),
                OCTET_STREAM,
            )
        if ts == "*" or ts == str(stored):
            part_type = compressed_type if stored.is_encapsulated else OCTET_STREAM
            if choice.media_type not in ("*/*", "*"):
                part_type = choice.media_type
            # Big endian and deflated frames are never sent as such (PS3.18 8.7.3.5.2).
            extract = (
                render.frame_as_explicit_vr_little_endian
                if not stored.is_encapsulated and not native
                else render.extract_frame
            )
            return _frames(found, numbers, part_type, extract), part_type
    raise _not_acceptable(
        f"frames are available as {OCTET_STREAM} (Explicit VR Little Endian) or as stored "
        f"({stored})"
    )


def _frames(
    found: service.RetrievableInstance,
    numbers: list[int],
    part_type: str,
    extract: Any,
) -> list[OutgoingPart]:
    parts = []
    for number in numbers:
        try:
            frame: render.RawFrame = extract(found.path, number - 1)
        except render.RenderError as exc:
            raise _bad_request(str(exc)) from exc
        parts.append(
            OutgoingPart(f"{part_type}; transfer-syntax={frame.transfer_syntax_uid}", frame.data)
        )
    return parts


@router.get("/dicomweb/studies/{study}/series/{series}/instances/{instance}/frames/{frames}")
def retrieve_frames(
    request: Request, study: str, series: str, instance: str, frames: str, ctx: _READ
) -> Response:
    """WADO-RS Retrieve Frames (PS3.18 10.4.1.1.4)."""
    numbers = _frame_numbers(frames)
    (found,) = _locate(request, ctx, study, series, instance)
    parts, part_type = _frame_parts(found, numbers, _accepted(request, OCTET_STREAM))
    return _multipart_response(parts, part_type)


def _rendered_type(request: Request) -> str:
    """Media type of a rendered resource: ``accept`` parameter, then header (8.3.5.1)."""
    wanted = request.query_params.get("accept") or request.headers.get("accept", "")
    for entry in _split_accept(wanted or "image/jpeg"):
        media_type = parse_content_type(entry)[0]
        if media_type in render.MEDIA_TYPES:
            return media_type
        if media_type in ("*/*", "image/*", "*"):
            return "image/jpeg"
    raise _not_acceptable(f"rendered media types: {', '.join(render.MEDIA_TYPES)}")


def _render(
    request: Request, found: service.RetrievableInstance, index: int | None = None
) -> Response:
    """One frame rendered (PS3.18 8.3.5.1 ``window``, ``viewport``, ``quality``).

    Without a frame index this is a thumbnail: the middle frame, in `THUMBNAIL_SIZE` pixels
    unless a viewport says otherwise.
    """
    media_type = _rendered_type(request)
    params = request.query_params
    try:
        window = render.parse_window(params["window"]) if params.get("window") else None
        viewport = render.parse_viewport(params["viewport"]) if params.get("viewport") else None
        quality = _int_param(request, "quality") or 90
        if index is None:
            header = pydicom.dcmread(found.path, stop_before_pixels=True)
            index = render.number_of_frames(header) // 2
            viewport = viewport or render.Viewport(THUMBNAIL_SIZE, THUMBNAIL_SIZE)
        data = render.render(
            found.path,
            index,
            media_type=media_type,
            window=window,
            viewport=viewport,
            quality=quality,
        )
    except render.RenderError as exc:
        raise _bad_request(str(exc)) from exc
    return Response(data, media_type=media_type)


def _middle(found: list[service.RetrievableInstance]) -> service.RetrievableInstance:
    # The representative image of a study or series: its middle instance.
    return found[len(found) // 2]


@router.get("/dicomweb/studies/{study}/series/{series}/instances/{instance}/rendered")
def retrieve_rendered_instance(
    request: Request, study: str, series: str, instance: str, ctx: _READ
) -> Response:
    """WADO-RS Retrieve Rendered Instance (PS3.18 10.4.1.1.3): its first frame."""
    (found,) = _locate(request, ctx, study, series, instance)
    return _render(request, found, 0)


@router.get(
    "/dicomweb/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/rendered"
)
def retrieve_rendered_frames(
    request: Request, study: str, series: str, instance: str, frames: str, ctx: _READ
) -> Response:
    """WADO-RS Retrieve Rendered Frames (PS3.18 10.4.1.1.3): one frame per request."""
    numbers = _frame_numbers(frames)
    if len(numbers) != 1:
        raise _bad_request("one frame at a time is rendered")
    (found,) = _locate(request, ctx, study, series, instance)
    return _render(request, found, numbers[0] - 1)


@router.get("/dicomweb/studies/{study}/thumbnail")
def retrieve_study_thumbnail(request: Request, study: str, ctx: _READ) -> Response:
    """WADO-RS Retrieve Study Thumbnail (PS3.18 10.4.1.1.3, ``thumbnail``)."""
    return _render(request, _middle(_locate(request, ctx, study)))


@router.get("/dicomweb/studies/{study}/series/{series}/thumbnail")
def retrieve_series_thumbnail(request: Request, study: str, series: str, ctx: _READ) -> Response:
    """WADO-RS Retrieve Series Thumbnail (PS3.18 10.4.1.1.3, ``thumbnail``)."""
    return _render(request, _middle(_locate(request, ctx, study, series)))


@router.get("/dicomweb/studies/{study}/series/{series}/instances/{instance}/thumbnail")
def retrieve_instance_thumbnail(
    request: Request, study: str, series: str, instance: str, ctx: _READ
) -> Response:
    """WADO-RS Retrieve Instance Thumbnail (PS3.18 10.4.1.1.3, ``thumbnail``)."""
    (found,) = _locate(request, ctx, study, series, instance)
    return _render(request, found)


# --------------------------------------------------------------------------------------------
# WADO-URI, PS3.18 9


@router.get("/wado")
def wado_uri(request: Request, ctx: _READ) -> Response:
    """WADO-URI Retrieve Instance (PS3.18 9.1): the object as stored, or rendered.

    ``contentType=application/dicom`` gives the Part 10 object: as stored, or in the
    ``transferSyntax`` asked for when the archive can produce it, as
    WADO-RS does (`render.transcode`); else 406. ``image/jpeg`` (default) or ``image/png``
    give a rendered frame (``frameNumber``, ``windowCenter``/``windowWidth``,
    ``rows``/``columns``).
    """
    params = request.query_params
    if params.get("requestType") != "WADO":
        raise _bad_request("requestType must be WADO")
    uids = [params.get(name, "") for name in ("studyUID", "seriesUID", "objectUID")]
    if not all(uids):
        raise _bad_request("studyUID, seriesUID and objectUID are required")
    (found,) = _locate(request, ctx, *uids)
    content_type = params.get("contentType", "image/jpeg").split(",")[0].strip()
    if content_type == DICOM:
        return _wado_uri_object(found, params.get("transferSyntax") or None)
    if content_type not in render.MEDIA_TYPES:
        raise _not_acceptable(f"contentType: {DICOM} or one of {', '.join(render.MEDIA_TYPES)}")
    try:
        frame = int(params.get("frameNumber", "1")) - 1
        window = None
        if params.get("windowCenter") and params.get("windowWidth"):
            window = render.Window(float(params["windowCenter"]), float(params["windowWidth"]))
        viewport = None
        rows, columns = params.get("rows"), params.get("columns")
        if rows or columns:
            size = int(rows or columns or 0), int(columns or rows or 0)
            viewport = render.Viewport(size[1], size[0])
        data = render.render(
            found.path, frame, media_type=content_type, window=window, viewport=viewport
        )
    except (ValueError, render.RenderError) as exc:
        raise _bad_request(str(exc)) from exc
    return Response(data, media_type=content_type)


def _wado_uri_object(found: service.RetrievableInstance, wanted: str | None) -> Response:
    """The Part 10 object in ``wanted`` (absent or ``*``: as stored)."""
    stored = found.transfer_syntax_uid
    syntax = _syntax_for(stored, [wanted])
    if syntax is None:
        produced = ", ".join(sorted(render.UNCOMPRESSED_SYNTAXES))
        raise _not_acceptable(
            f"transfer syntax {wanted} cannot be produced from {stored}: objects are sent as "
            f"stored, or decompressed to {produced}; never to a lossy syntax"
        )
    if syntax == stored:
        return StreamingResponse(_file_chunks(found.path), media_type=DICOM)
    try:
        data = render.transcode(found.path, syntax)
    except render.RenderError as exc:
        raise _not_acceptable(f"cannot be sent in {syntax}: {exc}") from exc
    return Response(data, media_type=DICOM)


# --------------------------------------------------------------------------------------------
# Cross-origin viewers


class DicomwebCORSMiddleware:
    """CORS for the DICOMweb paths only, for viewers served from other origins.

    Origins come from ``dicomweb_cors_origins``; with none, requests pass through untouched.
    Pages and the JSON API stay same-origin whatever this setting says.
    """

    def __init__(self, app: ASGIApp, origins: Sequence[str] = ()) -> None:
        self.app = app
        self.cors: ASGIApp | None = (
            CORSMiddleware(
                app,
                allow_origins=list(origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", "Accept"],
                expose_headers=["Warning", "Content-Location", "Content-Type"],
                max_age=600,
            )
            if origins
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if self.cors is not None and scope["type"] == "http" and _is_dicomweb_path(path):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _is_dicomweb_path(path: str) -> bool:
    return path.startswith(f"{_BASE}/") or path == _BASE or path == "/wado"


def install_cors(app: FastAPI, settings: Settings) -> None:
    """Let the configured viewer origins call ``/dicomweb`` and ``/wado`` across origins."""
    app.add_middleware(DicomwebCORSMiddleware, origins=settings.dicomweb_cors_origins)
