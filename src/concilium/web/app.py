"""The ASGI application: pages, JSON API and operations endpoints on one runtime."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from concilium import __version__
from concilium.config import Settings
from concilium.imaging import dicomweb, ohif
from concilium.imaging import pages as imaging_pages
from concilium.imaging import viewer as imaging_viewer
from concilium.live import playback_web as live_playback_web
from concilium.live import web as live_web
from concilium.platform.audit_checkpoints import AuditCheckpointer
from concilium.platform.policy import Action
from concilium.telesurgery import web as telesurgery_web
from concilium.web import api, ops, pages, problems
from concilium.web.context import Ctx, gate
from concilium.web.observability import AccessLogMiddleware, Metrics, SecurityHeadersMiddleware
from concilium.web.runtime import Runtime

STATIC_DIR = Path(__file__).with_name("static")
ROUTERS: tuple[APIRouter, ...] = (
    ops.router,
    api.router,
    dicomweb.router,
    pages.router,
    imaging_pages.router,
    imaging_viewer.router,
    ohif.router,
    live_web.api_router,
    live_playback_web.api_router,
    live_playback_web.router,
    live_web.router,
    telesurgery_web.api_router,
    telesurgery_web.router,
)
"""Every router of the application, in matching order."""
DOCUMENTED_ROUTERS: tuple[APIRouter, ...] = (
    ops.router,
    api.router,
    live_web.api_router,
    live_playback_web.api_router,
    telesurgery_web.api_router,
    dicomweb.router,
)
"""Routers whose JSON endpoints the OpenAPI document describes."""


def iter_routes(app: FastAPI) -> Iterator[APIRoute]:
    """Every endpoint route of the application (for route audits and documentation)."""
    for router in (*ROUTERS, app.router):
        for route in router.routes:
            if isinstance(route, APIRoute):
                yield route


def audit_checkpointer(runtime: Runtime) -> AuditCheckpointer:
    """Checkpoints of the audit chain for as long as the server runs (see the settings)."""
    settings = runtime.settings
    return AuditCheckpointer(
        runtime.read_sessions,
        runtime.audit_checkpoints,
        runtime.now,
        every=timedelta(seconds=settings.audit_checkpoint_seconds),
        entries=settings.audit_checkpoint_entries,
        poll=min(settings.audit_checkpoint_seconds, 5.0),
    )


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    runtime = runtime or Runtime.start(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        checkpointer = audit_checkpointer(runtime)
        await asyncio.to_thread(checkpointer.start)
        yield
        await asyncio.to_thread(checkpointer.stop)
        runtime.close()

    app = FastAPI(
        title="Concilium",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.runtime = runtime
    app.state.metrics = Metrics()
    problems.install(app)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/api/openapi.json", tags=["operations"], include_in_schema=False)
    def openapi(ctx: Annotated[Ctx, gate(Action.HOME)]) -> dict[str, Any]:
        """The OpenAPI document of every JSON API, for signed-in users and tokens."""
        ctx.authorize(Action.HOME)
        return get_openapi(
            title="Concilium API",
            version=__version__,
            routes=[route for router in DOCUMENTED_ROUTERS for route in router.routes],
        )

    app.add_middleware(dicomweb.DicomwebCORSMiddleware, origins=settings.dicomweb_cors_origins)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(AccessLogMiddleware, metrics=app.state.metrics)
    return app
