"""What a DICOMweb request names: the archive behind the routes, the URLs of its studies,
series and instances (PS3.18 10.4 Retrieve URL, 10.6.3.3), the UID of a path segment, integer
query parameters, and the instances of a target resource the caller may read.

Routes authenticate through `concilium.web.context.gate` (session cookie, or bearer token with
``imaging:read`` / ``imaging:write``). Studies a caller may not see do not exist for them: a
target resource with nothing readable in it is a 404, and the attempt is audited.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Request
from pydicom.dataset import Dataset

from concilium.imaging import render
from concilium.imaging.access import NotAuthorized
from concilium.imaging.actions import ImagingAction
from concilium.imaging.archive import Archive
from concilium.imaging.dicomweb.errors import DicomwebError, bad_request
from concilium.imaging.matching import InvalidQuery, Level
from concilium.imaging.process import ImagingProcess
from concilium.imaging.retrieve import RetrievableInstance, locate
from concilium.platform import audit
from concilium.platform.errors import NotFound
from concilium.platform.i18n import _
from concilium.web.context import Ctx, gate, process_of, runtime_of

__all__ = [
    "BASE",
    "READ",
    "STORE",
    "archive_of",
    "base_url",
    "check_uid",
    "decoding_limits",
    "instance_url",
    "int_param",
    "rendered",
    "renderer_of",
    "series_url",
    "study_url",
    "target_instances",
]


READ = Annotated[Ctx, gate(ImagingAction.STUDY_READ)]
"""The caller of a search or retrieval: signed in, or a token with ``imaging:read``."""
STORE = Annotated[Ctx, gate(ImagingAction.STUDY_STORE)]
"""The caller of a store: signed in, or a token with ``imaging:write``."""
BASE = "/dicomweb"
"""Where the PS3.18 10 resources are (the service's base URL, under the public URL)."""


def archive_of(request: Request) -> Archive:
    """The archive of this process (see :class:`ImagingProcess`): the HTTP side shares the
    database sessions, event bus and clock of everything else in the process."""
    return process_of(request.app, ImagingProcess).archive


def renderer_of(request: Request) -> render.Renderer:
    """The process's `Renderer`: every decoding of pixel data for a reader goes through it."""
    return process_of(request.app, ImagingProcess).renderer


@contextlib.contextmanager
def decoding_limits() -> Iterator[None]:
    """Answer a decoding refused by the `Renderer`: beyond its limits 413, no decoding slot in
    time 503 (problem details)."""
    try:
        yield
    except render.TooLarge as exc:
        raise DicomwebError(413, "Content too large", str(exc)) from exc
    except render.Busy as exc:
        raise DicomwebError(503, "Service unavailable", str(exc), retry_after=5) from exc


def rendered(request: Request, found: RetrievableInstance, index: int, **options: Any) -> bytes:
    """A frame rendered by the process's `Renderer`: beyond its limits 413, no decoding slot
    in time 503 (problem details), any other rendering failure 400."""
    try:
        with decoding_limits():
            return renderer_of(request).render(found.path, index, **options)
    except render.RenderError as exc:
        raise bad_request(str(exc)) from exc


def base_url(request: Request) -> str:
    # Retrieve and BulkData URIs go to other machines: they are built on the public URL,
    # not on whatever Host header this request happened to carry.
    return runtime_of(request).settings.public_url.rstrip("/") + BASE


def study_url(request: Request, study: str) -> str:
    return f"{base_url(request)}/studies/{study}"


def series_url(request: Request, study: str, series: str) -> str:
    return f"{study_url(request, study)}/series/{series}"


def instance_url(request: Request, study: str, series: str, instance: str) -> str:
    return f"{series_url(request, study, series)}/instances/{instance}"


_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def check_uid(uid: str | None) -> None:
    # A path segment is one UID (PS3.5 9.1): no list (backslash), no wildcard.
    if uid is not None and (len(uid) > 64 or not _UID.fullmatch(uid)):
        raise bad_request(f"not a UID: {uid[:70]!r}")


def int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise bad_request(f"{name} must be an integer") from exc
    if value < 0:
        raise bad_request(f"{name} must not be negative")
    return value


def target_instances(
    request: Request, ctx: Ctx, study: str, series: str | None = None, instance: str | None = None
) -> list[RetrievableInstance]:
    """Instances of a target resource the caller may read; 404 when there are none."""
    for uid in (study, series, instance):
        check_uid(uid)
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
        found = locate(
            archive_of(request), ctx.db, ctx.principal, ctx.actor, identifier, now=ctx.now
        )
    except InvalidQuery as exc:
        raise bad_request(str(exc)) from exc
    except NotAuthorized as exc:
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
        raise NotFound(_("no such study, series or instance"))
    ctx.commit()
    return found
