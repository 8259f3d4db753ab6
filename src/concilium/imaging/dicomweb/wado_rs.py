"""WADO-RS Retrieve Transaction (PS3.18 10.4): instances, metadata, bulk data, frames, rendered
images and thumbnails of a study, series or instance.

Instances go as stored, or decompressed to an uncompressed transfer syntax when the Accept
header asks for one (`concilium.imaging.render.transcode`); metadata are derived once per
stored object and cached.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pydicom
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydicom.uid import UID, ExplicitVRLittleEndian

from concilium.imaging import render
from concilium.imaging.dicom_json import element_at_bulk_data_path, to_dicom_json
from concilium.imaging.dicomweb.errors import bad_request, not_acceptable
from concilium.imaging.dicomweb.media import (
    DICOM,
    DICOM_JSON,
    OCTET_STREAM,
    Accepted,
    accepted,
    matches,
    split_accept,
    syntax_for,
)
from concilium.imaging.dicomweb.resources import (
    READ,
    archive_of,
    base_url,
    decoding_limits,
    instance_url,
    int_param,
    rendered,
    renderer_of,
    target_instances,
)
from concilium.imaging.dicomweb.streaming import (
    ReadAhead,
    multipart_response,
    stored_file,
    transcoded,
)
from concilium.imaging.multipart import OutgoingPart, parse_content_type
from concilium.imaging.retrieve import RetrievableInstance
from concilium.platform.errors import NotFound
from concilium.platform.i18n import _
from concilium.web.context import Ctx

__all__ = [
    "THUMBNAIL_SIZE",
    "retrieve_bulkdata",
    "retrieve_frames",
    "retrieve_instance",
    "retrieve_instance_metadata",
    "retrieve_instance_thumbnail",
    "retrieve_rendered_frames",
    "retrieve_rendered_instance",
    "retrieve_series",
    "retrieve_series_metadata",
    "retrieve_series_thumbnail",
    "retrieve_study",
    "retrieve_study_metadata",
    "retrieve_study_thumbnail",
]

router = APIRouter()


THUMBNAIL_SIZE = 128
"""Largest side, in pixels, of a thumbnail asked for without a viewport."""


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
    choices = [c for c in accepted(request, DICOM) if c.multipart and matches(c, DICOM)]
    if not choices:
        raise not_acceptable(f'instances are sent as multipart/related; type="{DICOM}"')
    wanted = [c.transfer_syntax for c in choices]
    found = target_instances(request, ctx, study, series, instance)
    syntaxes = [syntax_for(i.transfer_syntax_uid, wanted) for i in found]
    pairs = list(zip(found, syntaxes, strict=True))
    refused = sorted({i.transfer_syntax_uid for i, ts in pairs if ts is None})
    if refused:
        asked = ", ".join(str(w) for w in wanted)
        produced = ", ".join(sorted(render.UNCOMPRESSED_SYNTAXES))
        raise not_acceptable(
            f"transfer syntax {asked} cannot be produced from {', '.join(refused)}: instances "
            f"are sent as stored, or decompressed to {produced}; never to a lossy syntax"
        )
    if len(found) == 1 and syntaxes[0] != found[0].transfer_syntax_uid:
        # One instance: transcoded before answering, so that a failure is still a 406.
        (item,), (syntax,) = found, syntaxes
        try:
            with decoding_limits():
                data = renderer_of(request).transcode(item.path, str(syntax))
        except render.RenderError as exc:
            raise not_acceptable(f"cannot be sent in {syntax}: {exc}") from exc
        part = OutgoingPart(f"{DICOM}; transfer-syntax={syntax}", data)
        return multipart_response([part], DICOM)
    renderer = renderer_of(request)
    with decoding_limits():  # refused before the first part rather than midway
        for item, syntax in pairs:
            if syntax != item.transfer_syntax_uid:
                renderer.check_transcoding(item.path)
    sources = [
        stored_file(i.path, i.size)
        if ts == i.transfer_syntax_uid
        else transcoded(renderer, i.path, str(ts))
        for i, ts in pairs
    ]
    reader = ReadAhead(sources, [i.path for i in found])
    parts = [
        OutgoingPart(f"{DICOM}; transfer-syntax={ts}", reader.part(index))
        for index, ts in enumerate(syntaxes)
    ]
    as_stored = all(ts == i.transfer_syntax_uid for i, ts in pairs)
    return multipart_response(parts, DICOM, [i.size for i in found] if as_stored else None)


@router.get("/dicomweb/studies/{study}")
def retrieve_study(request: Request, study: str, ctx: READ) -> Response:
    """WADO-RS Retrieve Study (PS3.18 10.4.1, resource ``/studies/{study}``)."""
    return _instances_response(request, ctx, study)


@router.get("/dicomweb/studies/{study}/series/{series}")
def retrieve_series(request: Request, study: str, series: str, ctx: READ) -> Response:
    """WADO-RS Retrieve Series (PS3.18 10.4.1)."""
    return _instances_response(request, ctx, study, series)


@router.get("/dicomweb/studies/{study}/series/{series}/instances/{instance}")
def retrieve_instance(
    request: Request, study: str, series: str, instance: str, ctx: READ
) -> Response:
    """WADO-RS Retrieve Instance (PS3.18 10.4.1)."""
    return _instances_response(request, ctx, study, series, instance)


_BASE_PLACEHOLDER = "\x00BASE\x00"
"""Stands for the base URL in cached metadata (no DICOM text value holds a NUL)."""


def _instance_metadata(request: Request, item: RetrievableInstance) -> str:
    """The instance's DICOM JSON text; computed once per stored object, then cached."""
    store = archive_of(request).store
    base = base_url(request)
    text = store.read_cache("metadata", item.path.name)
    if text is None:
        ds = pydicom.dcmread(item.path, defer_size=1024)
        series = str(ds.SeriesInstanceUID)
        url = instance_url(request, item.study_instance_uid, series, item.sop_instance_uid)
        prefix = _BASE_PLACEHOLDER + url.removeprefix(base) + "/bulkdata"
        text = json.dumps(to_dicom_json(ds, bulk_data_uri_prefix=prefix))
        store.write_cache("metadata", item.path.name, text)
    return text.replace(json.dumps(_BASE_PLACEHOLDER)[1:-1], json.dumps(base)[1:-1])


def _metadata(request: Request, found: list[RetrievableInstance]) -> Response:
    """DICOM JSON of each instance, binary values as BulkDataURIs (PS3.18 10.4.1.1.2)."""
    body = "[" + ",".join(_instance_metadata(request, item) for item in found) + "]"
    return Response(body, media_type=DICOM_JSON)


@router.get("/dicomweb/studies/{study}/metadata")
def retrieve_study_metadata(request: Request, study: str, ctx: READ) -> Response:
    """WADO-RS Retrieve Study Metadata (PS3.18 10.4.1.1.2)."""
    return _metadata(request, target_instances(request, ctx, study))


@router.get("/dicomweb/studies/{study}/series/{series}/metadata")
def retrieve_series_metadata(request: Request, study: str, series: str, ctx: READ) -> Response:
    """WADO-RS Retrieve Series Metadata (PS3.18 10.4.1.1.2)."""
    return _metadata(request, target_instances(request, ctx, study, series))


@router.get("/dicomweb/studies/{study}/series/{series}/instances/{instance}/metadata")
def retrieve_instance_metadata(
    request: Request, study: str, series: str, instance: str, ctx: READ
) -> Response:
    """WADO-RS Retrieve Instance Metadata (PS3.18 10.4.1.1.2)."""
    return _metadata(request, target_instances(request, ctx, study, series, instance))


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
    request: Request, study: str, series: str, instance: str, path: str, ctx: READ
) -> Response:
    """WADO-RS Retrieve Bulkdata (PS3.18 10.4.1.1.5): the value a BulkDataURI points at."""
    if not any(c.multipart and matches(c, OCTET_STREAM) for c in accepted(request, OCTET_STREAM)):
        raise not_acceptable(f'bulk data are sent as multipart/related; type="{OCTET_STREAM}"')
    (found,) = target_instances(request, ctx, study, series, instance)
    ds = pydicom.dcmread(found.path)
    try:
        elem = element_at_bulk_data_path(ds, path)
    except KeyError as exc:
        raise NotFound(_("no bulk data at %(path)s") % {"path": path}) from exc
    value = elem.value
    if not isinstance(value, bytes | bytearray):
        raise NotFound(_("%(path)s is not a binary value") % {"path": path})
    data = bytes(value)
    if not ds.is_little_endian:
        data = _little_endian(data, str(elem.VR))
    return multipart_response([OutgoingPart(OCTET_STREAM, data)], OCTET_STREAM)


def _frame_numbers(frames: str) -> list[int]:
    try:
        numbers = [int(f) for f in frames.split(",") if f.strip()]
    except ValueError as exc:
        raise bad_request("frame list: comma-separated positive integers") from exc
    if not numbers or any(n < 1 for n in numbers):
        raise bad_request("frame numbers start at 1")
    return numbers


def _frame_parts(
    renderer: render.Renderer,
    found: RetrievableInstance,
    numbers: list[int],
    choices: list[Accepted],
) -> tuple[list[OutgoingPart], str]:
    """Frames as stored or as Explicit VR Little Endian, per the Accept header (8.7.3.5);
    frames that must be decoded are decoded within the `Renderer`'s limits."""
    stored = UID(found.transfer_syntax_uid)
    native = not stored.is_encapsulated and stored.is_little_endian and not stored.is_deflated
    compressed_type = _FRAME_MEDIA_TYPES.get(str(stored), OCTET_STREAM)
    for choice in choices:
        if not choice.multipart:
            continue
        ts = choice.transfer_syntax
        if matches(choice, OCTET_STREAM) and ts in (None, str(ExplicitVRLittleEndian)):
            if native:
                return _frames(found, numbers, OCTET_STREAM, render.extract_frame), OCTET_STREAM
            return (
                _frames(found, numbers, OCTET_STREAM, renderer.decoded_frame),
                OCTET_STREAM,
            )
        if ts == "*" or ts == str(stored):
            part_type = compressed_type if stored.is_encapsulated else OCTET_STREAM
            if choice.media_type not in ("*/*", "*"):
                part_type = choice.media_type
            # Big endian and deflated frames are never sent as such (PS3.18 8.7.3.5.2).
            extract = (
                renderer.decoded_frame
                if not stored.is_encapsulated and not native
                else render.extract_frame
            )
            return _frames(found, numbers, part_type, extract), part_type
    raise not_acceptable(
        f"frames are available as {OCTET_STREAM} (Explicit VR Little Endian) or as stored "
        f"({stored})"
    )


def _frames(
    found: RetrievableInstance,
    numbers: list[int],
    part_type: str,
    extract: Any,
) -> list[OutgoingPart]:
    parts = []
    for number in numbers:
        try:
            with decoding_limits():
                frame: render.RawFrame = extract(found.path, number - 1)
        except render.RenderError as exc:
            raise bad_request(str(exc)) from exc
        parts.append(
            OutgoingPart(f"{part_type}; transfer-syntax={frame.transfer_syntax_uid}", frame.data)
        )
    return parts


@router.get("/dicomweb/studies/{study}/series/{series}/instances/{instance}/frames/{frames}")
def retrieve_frames(
    request: Request, study: str, series: str, instance: str, frames: str, ctx: READ
) -> Response:
    """WADO-RS Retrieve Frames (PS3.18 10.4.1.1.4)."""
    numbers = _frame_numbers(frames)
    (found,) = target_instances(request, ctx, study, series, instance)
    parts, part_type = _frame_parts(
        renderer_of(request), found, numbers, accepted(request, OCTET_STREAM)
    )
    return multipart_response(parts, part_type)


def _rendered_type(request: Request) -> str:
    """Media type of a rendered resource: ``accept`` parameter, then header (8.3.5.1)."""
    wanted = request.query_params.get("accept") or request.headers.get("accept", "")
    for entry in split_accept(wanted or "image/jpeg"):
        media_type = parse_content_type(entry)[0]
        if media_type in render.MEDIA_TYPES:
            return media_type
        if media_type in ("*/*", "image/*", "*"):
            return "image/jpeg"
    raise not_acceptable(f"rendered media types: {', '.join(render.MEDIA_TYPES)}")


def _render(request: Request, found: RetrievableInstance, index: int | None = None) -> Response:
    """One frame rendered (PS3.18 8.3.5.1 ``window``, ``viewport``, ``quality``).

    Without a frame index this is a thumbnail: the middle frame, in `THUMBNAIL_SIZE` pixels
    unless a viewport says otherwise.
    """
    media_type = _rendered_type(request)
    params = request.query_params
    try:
        window = render.parse_window(params["window"]) if params.get("window") else None
        viewport = render.parse_viewport(params["viewport"]) if params.get("viewport") else None
        quality = int_param(request, "quality") or 90
        if index is None:
            header = pydicom.dcmread(found.path, stop_before_pixels=True)
            index = render.number_of_frames(header) // 2
            viewport = viewport or render.Viewport(THUMBNAIL_SIZE, THUMBNAIL_SIZE)
    except render.RenderError as exc:
        raise bad_request(str(exc)) from exc
    data = rendered(
        request,
        found,
        index,
        media_type=media_type,
        window=window,
        viewport=viewport,
        quality=quality,
    )
    return Response(data, media_type=media_type)


def _middle(found: list[RetrievableInstance]) -> RetrievableInstance:
    # The representative image of a study or series: its middle instance.
    return found[len(found) // 2]


@router.get("/dicomweb/studies/{study}/series/{series}/instances/{instance}/rendered")
def retrieve_rendered_instance(
    request: Request, study: str, series: str, instance: str, ctx: READ
) -> Response:
    """WADO-RS Retrieve Rendered Instance (PS3.18 10.4.1.1.3): its first frame."""
    (found,) = target_instances(request, ctx, study, series, instance)
    return _render(request, found, 0)


@router.get(
    "/dicomweb/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/rendered"
)
def retrieve_rendered_frames(
    request: Request, study: str, series: str, instance: str, frames: str, ctx: READ
) -> Response:
    """WADO-RS Retrieve Rendered Frames (PS3.18 10.4.1.1.3): one frame per request."""
    numbers = _frame_numbers(frames)
    if len(numbers) != 1:
        raise bad_request("one frame at a time is rendered")
    (found,) = target_instances(request, ctx, study, series, instance)
    return _render(request, found, numbers[0] - 1)


@router.get("/dicomweb/studies/{study}/thumbnail")
def retrieve_study_thumbnail(request: Request, study: str, ctx: READ) -> Response:
    """WADO-RS Retrieve Study Thumbnail (PS3.18 10.4.1.1.3, ``thumbnail``)."""
    return _render(request, _middle(target_instances(request, ctx, study)))


@router.get("/dicomweb/studies/{study}/series/{series}/thumbnail")
def retrieve_series_thumbnail(request: Request, study: str, series: str, ctx: READ) -> Response:
    """WADO-RS Retrieve Series Thumbnail (PS3.18 10.4.1.1.3, ``thumbnail``)."""
    return _render(request, _middle(target_instances(request, ctx, study, series)))


@router.get("/dicomweb/studies/{study}/series/{series}/instances/{instance}/thumbnail")
def retrieve_instance_thumbnail(
    request: Request, study: str, series: str, instance: str, ctx: READ
) -> Response:
    """WADO-RS Retrieve Instance Thumbnail (PS3.18 10.4.1.1.3, ``thumbnail``)."""
    (found,) = target_instances(request, ctx, study, series, instance)
    return _render(request, found)
