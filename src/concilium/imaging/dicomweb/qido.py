"""QIDO-RS Search Transaction (PS3.18 10.6): a query string turned into a C-FIND identifier
(8.3.4), matched by the archive's search, answered in DICOM JSON (10.6.3) and paged with
``limit`` and ``offset`` (8.3.4.4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from concilium.imaging.access import NotAuthorized
from concilium.imaging.dicom_json import attributes_to_dicom_json
from concilium.imaging.dicomweb.errors import DicomwebError, bad_request, not_acceptable
from concilium.imaging.dicomweb.media import DICOM_JSON, split_accept
from concilium.imaging.dicomweb.resources import (
    READ,
    check_uid,
    instance_url,
    int_param,
    series_url,
    study_url,
)
from concilium.imaging.matching import InvalidQuery, Level
from concilium.imaging.multipart import parse_content_type
from concilium.imaging.query import Match, search_page
from concilium.web.context import Ctx

__all__ = [
    "MAX_RESULTS",
    "search_for_instances",
    "search_for_series",
    "search_for_series_instances",
    "search_for_studies",
    "search_for_study_instances",
    "search_for_study_series",
]

router = APIRouter()


MAX_RESULTS = 1000
"""Most matches one QIDO-RS response returns; more are paged with ``offset`` (8.3.4.4)."""


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


def _keyword_of(name: str) -> str:
    """Keyword of a query key given as a keyword or as 8 hex digits (PS3.18 8.3.4.1)."""
    if len(name) == 8 and all(c in "0123456789abcdefABCDEF" for c in name):
        keyword = keyword_for_tag(int(name, 16))
        if keyword:
            return str(keyword)
    elif tag_for_keyword(name) is not None:
        return name
    raise bad_request(f"unknown attribute {name!r}")


def _set_key(ds: Dataset, keyword: str, value: str | None) -> None:
    tag = tag_for_keyword(keyword)
    assert tag is not None  # keywords are checked by _keyword_of
    vr = dictionary_VR(tag)
    if vr == "SQ":
        ds.add(DataElement(tag, vr, []))
        return
    ds.add(DataElement(tag, vr, value or None))


@dataclass
class _Search:
    identifier: Dataset
    fuzzy: bool
    """``fuzzymatching=true``: person names by fuzzy semantic matching (8.3.4.1)."""
    limit: int | None
    offset: int


def _search(request: Request, level: Level, fixed: dict[str, str]) -> _Search:
    """The C-FIND identifier a QIDO-RS query string stands for (PS3.18 8.3.4)."""
    ds = Dataset()
    ds.QueryRetrieveLevel = str(level)
    params = request.query_params
    fuzzy = params.get("fuzzymatching", "false").lower() == "true"
    for name, value in params.multi_items():
        if name in _CONTROL_PARAMETERS:
            continue
        if "." in name:
            raise bad_request(f"sequence matching is not supported: {name!r}")
        keyword = _keyword_of(name)
        if dictionary_VR(keyword) == "UI":
            # UID list matching (PS3.18 8.3.4.1) is comma-separated in a query string.
            value = "\\".join(v.strip() for v in value.split(","))
        _set_key(ds, keyword, value)
    for keyword, value in fixed.items():
        check_uid(value)
        _set_key(ds, keyword, value)
    fields: list[str] = []
    for value in params.getlist("includefield"):
        fields += [f.strip() for f in value.split(",") if f.strip()]
    wanted = list(_DEFAULTS[level])
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
    return _Search(ds, fuzzy, int_param(request, "limit"), int_param(request, "offset") or 0)


_JSON_TYPES = frozenset({DICOM_JSON, "application/json", "application/*", "*/*", "*"})


def _qido(request: Request, ctx: Ctx, level: Level, fixed: dict[str, str]) -> Response:
    accept = request.headers.get("accept", "")
    if accept and not any(parse_content_type(e)[0] in _JSON_TYPES for e in split_accept(accept)):
        # Results are given as DICOM JSON only (PS3.18 10.6.3.2); XML is not offered.
        raise not_acceptable(f"search results are {DICOM_JSON}")
    asked = _search(request, level, fixed)
    limit = min(asked.limit if asked.limit is not None else MAX_RESULTS, MAX_RESULTS)
    try:
        page = search_page(
            ctx.db,
            ctx.principal,
            ctx.actor,
            asked.identifier,
            now=ctx.now,
            limit=limit,
            offset=asked.offset,
            fuzzy=asked.fuzzy,
        )
    except InvalidQuery as exc:
        raise bad_request(str(exc)) from exc
    except NotAuthorized as exc:
        raise DicomwebError(403, "Forbidden", str(exc)) from exc
    ctx.commit()
    results = [_qido_result(request, m, level) for m in page.matches]
    headers = {}
    if page.more:
        # PS3.18 8.3.4.4: tell the client that more results exist past this page.
        headers["Warning"] = '299 concilium: "There are additional results that can be requested"'
    return JSONResponse(results, media_type=DICOM_JSON, headers=headers)


_STUDY_INSTANCE_UID = 0x0020000D
_SERIES_INSTANCE_UID = 0x0020000E
_SOP_INSTANCE_UID = 0x00080018
_RETRIEVE_URL = 0x00081190


def _qido_result(request: Request, match: Match, level: Level) -> dict[str, Any]:
    """One result (PS3.18 10.6.3.3), with the Retrieve URL of what it matched."""
    attributes = dict(match.attributes)
    study = str(attributes[_STUDY_INSTANCE_UID])
    if level is Level.STUDY:
        url = study_url(request, study)
    elif level is Level.SERIES:
        url = series_url(request, study, str(attributes[_SERIES_INSTANCE_UID]))
    else:
        series = str(attributes[_SERIES_INSTANCE_UID])
        url = instance_url(request, study, series, str(attributes[_SOP_INSTANCE_UID]))
    attributes[_RETRIEVE_URL] = url
    return attributes_to_dicom_json(attributes)


@router.get("/dicomweb/studies")
def search_for_studies(request: Request, ctx: READ) -> Response:
    """QIDO-RS Search for Studies (PS3.18 10.6.1, resource ``/studies``)."""
    return _qido(request, ctx, Level.STUDY, {})


@router.get("/dicomweb/series")
def search_for_series(request: Request, ctx: READ) -> Response:
    """QIDO-RS Search for Series of every study (PS3.18 10.6.1, resource ``/series``)."""
    return _qido(request, ctx, Level.SERIES, {})


@router.get("/dicomweb/studies/{study}/series")
def search_for_study_series(request: Request, study: str, ctx: READ) -> Response:
    """QIDO-RS Search for Series of one study (PS3.18 10.6.1)."""
    return _qido(request, ctx, Level.SERIES, {"StudyInstanceUID": study})


@router.get("/dicomweb/instances")
def search_for_instances(request: Request, ctx: READ) -> Response:
    """QIDO-RS Search for Instances of every study (PS3.18 10.6.1, ``/instances``)."""
    return _qido(request, ctx, Level.IMAGE, {})


@router.get("/dicomweb/studies/{study}/instances")
def search_for_study_instances(request: Request, study: str, ctx: READ) -> Response:
    """QIDO-RS Search for Instances of one study (PS3.18 10.6.1)."""
    return _qido(request, ctx, Level.IMAGE, {"StudyInstanceUID": study})


@router.get("/dicomweb/studies/{study}/series/{series}/instances")
def search_for_series_instances(request: Request, study: str, series: str, ctx: READ) -> Response:
    """QIDO-RS Search for Instances of one series (PS3.18 10.6.1)."""
    return _qido(
        request, ctx, Level.IMAGE, {"StudyInstanceUID": study, "SeriesInstanceUID": series}
    )
