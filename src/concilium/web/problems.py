"""Errors as RFC 9457 problem details (JSON API) or as a page (browser)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from concilium.platform.errors import ConciliumError
from concilium.platform.i18n import N_, _
from concilium.web import fhir

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "https://concilium.invalid/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"
INVALID_INPUT = N_("Invalid input")
SERVER_ERROR = N_("Server error")
HTTP_TITLES = {404: N_("Not found"), 405: N_("Method not allowed")}
"""Problems the framework raises itself, by status."""
HTTP_DETAILS = {
    404: N_("There is nothing at this address. Check it, or start again from the home page."),
    405: N_("This address does not accept that kind of request."),
}


def wants_page(request: Request) -> bool:
    path = request.url.path
    return not (
        fhir.is_fhir(request)
        or path.startswith(("/api/", "/dicomweb/", "/janus/"))
        or path in {"/metrics", "/healthz", "/readyz", "/dicomweb", "/wado", "/janus"}
    )


def problem(
    status: int,
    title: str,
    detail: str,
    request: Request,
    *,
    retry_after: int | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": PROBLEM_TYPE_BASE + title.lower().replace(" ", "-"),
        "title": _(title),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    headers = {"WWW-Authenticate": 'Bearer realm="concilium"'} if status == 401 else {}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _page(request: Request, status: int, title: str, detail: str) -> Response:
    from concilium.web.rendering import render_error

    if status == 401:
        target = request.url.path
        return RedirectResponse(f"/login?next={target}", status_code=303)
    return render_error(request, status, _(title), detail)


def install(app: FastAPI) -> None:
    @app.exception_handler(ConciliumError)
    async def _domain(request: Request, exc: ConciliumError) -> Response:
        if fhir.is_fhir(request):
            return fhir.error_response(exc)
        if wants_page(request):
            return _page(request, exc.status, exc.title, exc.detail)
        return problem(exc.status, exc.title, exc.detail, request, retry_after=exc.retry_after)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"location": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors)
        if fhir.is_fhir(request):
            return fhir.failure_response(400, _(INVALID_INPUT), detail, "invalid")
        if wants_page(request):
            return _page(request, 422, INVALID_INPUT, detail)
        return problem(422, INVALID_INPUT, detail, request, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        title = HTTP_TITLES.get(exc.status_code, N_("Error"))
        detail = _(HTTP_DETAILS[exc.status_code]) if exc.status_code in HTTP_DETAILS else ""
        detail = detail or str(exc.detail)
        if fhir.is_fhir(request):
            code = {404: "not-found", 405: "not-supported"}.get(exc.status_code, "processing")
            return fhir.failure_response(exc.status_code, _(title), detail, code)
        if wants_page(request):
            return _page(request, exc.status_code, title, detail)
        return problem(exc.status_code, title, detail, request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error", extra={"path_template": _template(request)})
        detail = _("An unexpected error occurred; it was logged and nothing was saved.")
        if fhir.is_fhir(request):
            return fhir.failure_response(500, _(SERVER_ERROR), detail, "exception")
        if wants_page(request):
            return _page(request, 500, SERVER_ERROR, detail)
        return problem(500, SERVER_ERROR, detail, request)


def _template(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", "unmatched"))
