"""``GET /fhir/metadata``: the FHIR server's capability statement (FHIR R4 3.1.0.13),
built from the resource types each assembled service registers (``ServiceDescriptor.fhir``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from concilium import __version__
from concilium.platform.fhir import capability_statement
from concilium.platform.policy import PlatformAction
from concilium.platform.services import ServiceDescriptor
from concilium.web.context import Ctx, gate
from concilium.web.fhir import FHIR_BASE, resource_response

router = APIRouter(include_in_schema=False)


@router.get(FHIR_BASE + "/metadata")
def metadata(request: Request, ctx: Annotated[Ctx, gate(PlatformAction.HOME)]) -> Response:
    """What this server serves over FHIR, for any signed-in account or token."""
    ctx.authorize(PlatformAction.HOME)
    services: tuple[ServiceDescriptor, ...] = request.app.state.assembly.services
    return resource_response(
        capability_statement(
            (support for service in services for support in service.fhir),
            software_version=__version__,
            now=ctx.now,
        )
    )
