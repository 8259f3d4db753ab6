"""FHIR REST shared by the services: resources read and validated, errors as
``OperationOutcome``, versions as weak ETags, and the capability statement.

Concilium speaks FHIR R4B (4.3) with the ``fhir.resources.R4B`` models: for the resources
used here (Patient, ServiceRequest, CarePlan, Encounter, Communication, Bundle,
OperationOutcome, CapabilityStatement) R4B is wire-compatible with R4 (4.0.1), so an R4
client reads and writes them unchanged. The statement says ``fhirVersion`` 4.3.0.

Every error of a FHIR interaction is answered with an ``OperationOutcome`` (FHIR R4 3.1.0.4,
"Handling Errors"): the platform's errors keep their HTTP status and become one issue whose
code follows it (:data:`ISSUE_CODES`); a resource that does not validate is a 400 listing
every validation message with the FHIRPath of the element (``Issue.expression``).

Nothing here knows HTTP frameworks: the web layer turns these into responses. The models
are imported on first use, so that reading the services' registry (which names each
service's :class:`ResourceSupport`) loads no FHIR model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic

from concilium.platform.errors import ConciliumError, InvalidInput
from concilium.platform.i18n import N_, _

__all__ = [
    "FHIR_JSON",
    "FHIR_VERSION",
    "ISSUE_CODES",
    "BusinessRuleViolation",
    "InvalidResource",
    "Issue",
    "PreconditionFailed",
    "ResourceSupport",
    "UnsupportedMediaType",
    "capability_statement",
    "expected_version",
    "operation_outcome",
    "read_resource",
    "weak_etag",
]

FHIR_JSON = "application/fhir+json"
"""The FHIR JSON media type (FHIR R4 2.21.0.6)."""
FHIR_VERSION = "4.3.0"
"""FHIR R4B: wire-compatible with R4 (4.0.1) for the resources served here."""
ACCEPTED_MEDIA_TYPES = frozenset({FHIR_JSON, "application/json", "application/json+fhir"})
"""Bodies read: FHIR JSON, plain JSON, and the DSTU2 name some clients still send."""

ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    415: "not-supported",
    422: "business-rule",
    429: "throttled",
}
"""The ``OperationOutcome.issue.code`` (value set issue-type) of each HTTP status."""

if TYPE_CHECKING:
    from fhir.resources.R4B.resource import Resource

T = TypeVar("T", bound="Resource")


@dataclass(frozen=True)
class Issue:
    """One issue of an ``OperationOutcome``."""

    code: str
    """Issue type: ``invalid``, ``structure``, ``required``, ``value``, ``not-found``..."""
    diagnostics: str
    """What is wrong, for the person reading it."""
    expression: str = ""
    """FHIRPath of the element concerned (``ServiceRequest.code.coding[0].system``)."""
    severity: str = "error"


class InvalidResource(ConciliumError):
    """A body that is not a valid resource of the expected type (HTTP 400)."""

    status = 400
    title = N_("Invalid resource")

    def __init__(self, detail: str, issues: Sequence[Issue] = ()) -> None:
        super().__init__(detail)
        self.issues = tuple(issues) or (Issue("invalid", detail),)


class PreconditionFailed(ConciliumError):
    """``If-Match`` names a version that is not the current one (HTTP 412)."""

    status = 412
    title = N_("Precondition failed")


class UnsupportedMediaType(ConciliumError):
    """A body in a format other than FHIR JSON (HTTP 415)."""

    status = 415
    title = N_("Unsupported media type")


def operation_outcome(error: ConciliumError) -> dict[str, Any]:
    """The ``OperationOutcome`` answering ``error`` (its detail in the person's language)."""
    issues = getattr(error, "issues", None) or (
        Issue(ISSUE_CODES.get(error.status, "processing"), error.detail),
    )
    return outcome(issues, _(error.title))


def outcome(issues: Iterable[Issue], title: str = "") -> dict[str, Any]:
    """An ``OperationOutcome`` of ``issues``; ``title`` (the kind of problem) is its text."""
    body: dict[str, Any] = {"resourceType": "OperationOutcome", "issue": []}
    for issue in issues:
        entry: dict[str, Any] = {
            "severity": issue.severity,
            "code": issue.code,
            "diagnostics": issue.diagnostics,
        }
        if title:
            entry["details"] = {"text": title}
        if issue.expression:
            entry["expression"] = [issue.expression]
        body["issue"].append(entry)
    from fhir.resources.R4B.operationoutcome import OperationOutcome

    OperationOutcome.model_validate(body)
    return body


def check_media_type(content_type: str) -> None:
    """Refuse a body that is not JSON (415); ``charset`` and other parameters are ignored."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in ACCEPTED_MEDIA_TYPES:
        raise UnsupportedMediaType(
            _("Send the resource as %(type)s.") % {"type": FHIR_JSON}
            + (f" ({media_type[:80]})" if media_type else "")
        )


def _path(resource_type: str, location: Sequence[int | str]) -> str:
    path = resource_type
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part and not part.startswith(("function-", "constrained-")):
            path += f".{part}"
    return path


_CODES_OF_ERRORS = {"missing": "required", "extra_forbidden": "structure"}


def read_resource(body: bytes, model: type[T]) -> T:
    """The resource of type ``model`` a request body holds, validated; else
    :class:`InvalidResource` naming every problem and where it is."""
    expected = model.get_resource_type()
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidResource(
            _("The body is not JSON."), [Issue("structure", str(exc)[:200])]
        ) from None
    if not isinstance(data, dict):
        raise InvalidResource(_("The body is not a FHIR resource (a JSON object)."))
    if data.get("resourceType") != expected:
        raise InvalidResource(
            _("Expected a %(type)s resource.") % {"type": expected},
            [Issue("invalid", _("Expected a %(type)s resource.") % {"type": expected}, expected)],
        )
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        issues = [
            Issue(
                _CODES_OF_ERRORS.get(error["type"], "value"),
                str(error["msg"]).strip()[:300],
                _path(expected, error["loc"]),
            )
            for error in exc.errors()
        ]
        detail = _("The %(type)s does not validate.") % {"type": expected}
        raise InvalidResource(detail, issues) from None
    except (ValueError, TypeError, RecursionError) as exc:  # a validator raising plainly
        raise InvalidResource(str(exc)[:300]) from None


def weak_etag(version: int) -> str:
    """The ETag of a resource version: ``W/"3"`` (FHIR R4 3.1.0.5.1)."""
    return f'W/"{version}"'


_ETAG = re.compile(r'^\s*(?:W/)?"(\d{1,9})"\s*$')


def expected_version(if_match: str | None, current: int) -> None:
    """Refuse an update whose ``If-Match`` names another version than ``current`` (412);
    no header means an unconditional update."""
    if if_match is None or not if_match.strip():
        return
    found = _ETAG.match(if_match)
    if found is None or int(found.group(1)) != current:
        raise PreconditionFailed(
            _("The resource has changed: its current version is %(version)s.")
            % {"version": current}
        )


@dataclass(frozen=True)
class ResourceSupport:
    """A resource type a service serves, as its capability statement says it."""

    type: str
    """FHIR resource type, e.g. ``ServiceRequest``."""
    interactions: tuple[str, ...]
    """``read``, ``create``, ``update``... (FHIR R4 restful-interaction)."""
    conditional_create: bool = False
    """``If-None-Exist`` honoured on create."""
    search_params: tuple[tuple[str, str], ...] = ()
    """``(name, type)`` of each search parameter (and of ``If-None-Exist``)."""
    documentation: str = ""
    """One line on what it maps to."""
    operations: tuple[str, ...] = ()
    """Custom paths under the resource (``$export``)."""

    def __post_init__(self) -> None:
        if not self.type.isalpha() or not self.type[:1].isupper():
            raise ValueError(f"a FHIR resource type reads like 'Patient', got {self.type!r}")


def capability_statement(
    supported: Iterable[ResourceSupport], *, software_version: str, now: datetime
) -> dict[str, Any]:
    """The server's ``CapabilityStatement`` (``GET /fhir/metadata``), one entry per resource
    type the services registered (interactions merged when two services serve one type)."""
    merged: dict[str, dict[str, Any]] = {}
    for support in supported:
        entry = merged.setdefault(
            support.type,
            {"type": support.type, "interaction": [], "searchParam": []},
        )
        for code in support.interactions:
            if {"code": code} not in entry["interaction"]:
                entry["interaction"].append({"code": code})
        for name, kind in support.search_params:
            entry["searchParam"].append({"name": name, "type": kind})
        if support.conditional_create:
            entry["conditionalCreate"] = True
        if support.interactions and "update" in support.interactions:
            entry["versioning"] = "versioned-update"
        if support.documentation:
            entry["documentation"] = support.documentation
        for operation in support.operations:
            entry.setdefault("operation", []).append(
                {
                    "name": operation.lstrip("$"),
                    "definition": f"urn:concilium:operation:{operation.lstrip('$')}",
                }
            )
    resources = [{k: v for k, v in merged[name].items() if v != []} for name in sorted(merged)]
    body: dict[str, Any] = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": now.isoformat(timespec="seconds"),
        "kind": "instance",
        "software": {"name": "Concilium", "version": software_version},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [{"mode": "server", "resource": resources}],
    }
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    CapabilityStatement.model_validate(body)
    return body


class BusinessRuleViolation(InvalidInput):
    """A valid resource that the server cannot accept (HTTP 422): an unknown patient, a
    missing accession number, a status the interaction does not allow."""

    def __init__(self, detail: str, expression: str = "", code: str = "business-rule") -> None:
        super().__init__(detail)
        self.issues = (Issue(code, detail, expression),)
