"""Errors as RFC 9457 problem details (JSON API) or as a page (browser)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from concilium.platform.errors import ConciliumError

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "https://concilium.invalid/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


def wants_page(request: Request) -> bool:
    path = request.url.path
    return not (
        path.startswith(("/api/", "/dicomweb/"))
        or path in {"/metrics", "/healthz", "/readyz", "/dicomweb", "/wado"}
    )


def problem(status: int, title: str, detail: str, request: Request, **extra: Any) -> JSONResponse:
    body = {
        "type": PROBLEM_TYPE_BASE + title.lower().replace(" ", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    headers = {"WWW-Authenticate": 'Bearer realm="concilium"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _page(request: Request, status: int, title: str, detail: str) -> Response:
    from concilium.web.rendering import render_error

    if status == 401:
        target = request.url.path
        return RedirectResponse(f"/login?next={target}", status_code=303)
    return render_error(request, status, title, detail)


def install(app: FastAPI) -> None:
    @app.exception_handler(ConciliumError)
    async def _domain(request: Request, exc: ConciliumError) -> Response:
        if wants_page(request):
            return _page(request, exc.status, exc.title, exc.detail)
        return problem(exc.status, exc.title, exc.detail, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"location": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors)
        if wants_page(request):
            return _page(request, 422, "Invalid input", detail)
        return problem(422, "Invalid input", detail, request, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        if wants_page(request):
            return _page(request, exc.status_code, title, str(exc.detail))
        return problem(exc.status_code, title, str(exc.detail), request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error", extra={"path_template": _template(request)})
        detail = "an unexpected error occurred; it was logged and nothing was saved"
        if wants_page(request):
            return _page(request, 500, "Server error", detail)
        return problem(500, "Server error", detail, request)


def _template(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", "unmatched"))
