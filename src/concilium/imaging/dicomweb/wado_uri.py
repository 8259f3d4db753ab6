"""WADO-URI (PS3.18 9): one object by its three UIDs, as stored or rendered."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from concilium.imaging import render
from concilium.imaging.dicomweb.errors import bad_request, not_acceptable
from concilium.imaging.dicomweb.media import DICOM, syntax_for
from concilium.imaging.dicomweb.resources import (
    READ,
    decoding_limits,
    rendered,
    renderer_of,
    target_instances,
)
from concilium.imaging.dicomweb.streaming import file_chunks
from concilium.imaging.retrieve import RetrievableInstance

__all__ = ["wado_uri"]

router = APIRouter()


@router.get("/wado")
def wado_uri(request: Request, ctx: READ) -> Response:
    """WADO-URI Retrieve Instance (PS3.18 9.1): the object as stored, or rendered.

    ``contentType=application/dicom`` gives the Part 10 object: as stored, or in the
    ``transferSyntax`` asked for when the archive can produce it, as
    WADO-RS does (`render.transcode`); else 406. ``image/jpeg`` (default) or ``image/png``
    give a rendered frame (``frameNumber``, ``windowCenter``/``windowWidth``,
    ``rows``/``columns``).
    """
    params = request.query_params
    if params.get("requestType") != "WADO":
        raise bad_request("requestType must be WADO")
    uids = [params.get(name, "") for name in ("studyUID", "seriesUID", "objectUID")]
    if not all(uids):
        raise bad_request("studyUID, seriesUID and objectUID are required")
    (found,) = target_instances(request, ctx, *uids)
    content_type = params.get("contentType", "image/jpeg").split(",")[0].strip()
    if content_type == DICOM:
        return _wado_uri_object(request, found, params.get("transferSyntax") or None)
    if content_type not in render.MEDIA_TYPES:
        raise not_acceptable(f"contentType: {DICOM} or one of {', '.join(render.MEDIA_TYPES)}")
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
    except (ValueError, render.RenderError) as exc:
        raise bad_request(str(exc)) from exc
    data = rendered(
        request, found, frame, media_type=content_type, window=window, viewport=viewport
    )
    return Response(data, media_type=content_type)


def _wado_uri_object(request: Request, found: RetrievableInstance, wanted: str | None) -> Response:
    """The Part 10 object in ``wanted`` (absent or ``*``: as stored); decoding it is bound
    by the process's `render.Renderer` (413 beyond its limits, 503 without a slot)."""
    stored = found.transfer_syntax_uid
    syntax = syntax_for(stored, [wanted])
    if syntax is None:
        produced = ", ".join(sorted(render.UNCOMPRESSED_SYNTAXES))
        raise not_acceptable(
            f"transfer syntax {wanted} cannot be produced from {stored}: objects are sent as "
            f"stored, or decompressed to {produced}; never to a lossy syntax"
        )
    if syntax == stored:
        return StreamingResponse(file_chunks(found.path), media_type=DICOM)
    try:
        with decoding_limits():
            data = renderer_of(request).transcode(found.path, syntax)
    except render.RenderError as exc:
        raise not_acceptable(f"cannot be sent in {syntax}: {exc}") from exc
    return Response(data, media_type=DICOM)
