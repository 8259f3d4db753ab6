"""FHIR over HTTP: request bodies read as resources, resources answered as
``application/fhir+json`` with their version (``ETag``, ``Location``), errors as
``OperationOutcome`` (``concilium.platform.fhir``) for every path under ``/fhir``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse

from concilium.platform.errors import ConciliumError, NotFound
from concilium.platform.fhir import (
    FHIR_JSON,
    Issue,
    check_media_type,
    operation_outcome,
    outcome,
    read_resource,
    weak_etag,
)
from concilium.platform.i18n import _

if TYPE_CHECKING:
    from fhir.resources.R4B.resource import Resource

T = TypeVar("T", bound="Resource")

FHIR_BASE = "/fhir"


def is_fhir(request: Request) -> bool:
    """Whether the request is a FHIR interaction (its errors are OperationOutcomes)."""
    path = request.url.path
    return path == FHIR_BASE or path.startswith(FHIR_BASE + "/")


class FhirResponse(JSONResponse):
    media_type = FHIR_JSON


def resource_response(
    body: dict[str, Any],
    *,
    version: int | None = None,
    status_code: int = 200,
    location: str = "",
) -> FhirResponse:
    """A resource answered with its version: ``ETag: W/"n"``, and ``Location`` (the
    version's address) after a create or an update."""
    headers: dict[str, str] = {}
    if version is not None:
        headers["ETag"] = weak_etag(version)
    if location:
        headers["Location"] = location
    return FhirResponse(body, status_code=status_code, headers=headers)


def error_response(error: ConciliumError) -> FhirResponse:
    """The ``OperationOutcome`` answering a platform error, with its status."""
    headers = {"WWW-Authenticate": 'Bearer realm="concilium"'} if error.status == 401 else {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return FhirResponse(operation_outcome(error), status_code=error.status, headers=headers)


def failure_response(status: int, title: str, detail: str, code: str) -> FhirResponse:
    """An ``OperationOutcome`` for an error the framework raised (404, 405, 500...)."""
    return FhirResponse(outcome([Issue(code, detail)], title), status_code=status)


async def read_body(request: Request, model: type[T]) -> T:
    """The request's resource of type ``model``: 415 for another format, 400 (with every
    validation message and its element) for anything that is not a valid one."""
    check_media_type(request.headers.get("content-type", ""))
    return read_resource(await request.body(), model)


def numeric_id(value: str) -> int:
    """A logical id of the resources Concilium numbers; any other is unknown (404)."""
    if not value.isdigit() or len(value) > 18:
        raise NotFound(_("no such resource"))
    return int(value)
