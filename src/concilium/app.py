"""The ASGI application of one process: every service's routes, pages and static files on
one assembly, behind the platform's security headers, access log and problem responses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from concilium import __version__
from concilium.assembly import Assembly
from concilium.config import Settings
from concilium.platform.policy import PlatformAction
from concilium.platform.runtime import Runtime
from concilium.platform.services import resolve
from concilium.web import problems
from concilium.web.context import Ctx, gate
from concilium.web.language import LanguageMiddleware
from concilium.web.observability import AccessLogMiddleware, Metrics, SecurityHeadersMiddleware
from concilium.web.rendering import STATIC_DIR, Pages


def routers_of(assembly: Assembly) -> tuple[APIRouter, ...]:
    """Every router of the assembled services, in matching order."""
    return tuple(resolve(ref, APIRouter) for s in assembly.services for ref in s.routers)


def iter_routes(app: FastAPI) -> Iterator[APIRoute]:
    """Every endpoint route of the application (for route audits and documentation)."""
    routers: tuple[APIRouter, ...] = app.state.routers
    for router in (*routers, app.router):
        for route in router.routes:
            if isinstance(route, APIRoute):
                yield route


def application(assembly: Assembly, *, serve: bool = False, owned: bool = False) -> FastAPI:
    """The application of ``assembly`` (opened by the caller). With ``serve``, the services'
    listeners and media server run for the life of the application; with ``owned``, the
    application closes the assembly when it stops."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            if serve:
                async with assembly.serve():
                    yield
            else:
                yield
        finally:
            if owned:
                assembly.close()

    app = FastAPI(
        title="Concilium",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    runtime = assembly.runtime
    app.state.assembly = assembly
    app.state.runtime = runtime
    app.state.metrics = Metrics()
    app.state.pages = Pages.build(
        ((s.name, s.templates) for s in assembly.services if s.templates),
        (entry for s in assembly.services for entry in s.nav),
    )
    problems.install(app)
    app.state.routers = routers_of(assembly)
    for router in app.state.routers:
        app.include_router(router)
    for service in assembly.services:
        if service.static is not None:
            app.mount(
                f"/static/{service.name}",
                StaticFiles(directory=service.static),
                name=f"static-{service.name}",
            )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    documented = [
        resolve(ref, APIRouter) for s in assembly.services for ref in s.documented_routers
    ]

    @app.get("/api/openapi.json", tags=["operations"], include_in_schema=False)
    def openapi(ctx: Annotated[Ctx, gate(PlatformAction.HOME)]) -> dict[str, Any]:
        """The OpenAPI document of every JSON API, for signed-in users and tokens."""
        ctx.authorize(PlatformAction.HOME)
        return get_openapi(
            title="Concilium API",
            version=__version__,
            routes=[route for router in documented for route in router.routes],
        )

    for service in assembly.services:
        if service.middleware:
            install = resolve(service.middleware, object)
            assert callable(install), service.middleware
            install(app, runtime.settings)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(LanguageMiddleware)
    app.add_middleware(AccessLogMiddleware, metrics=app.state.metrics)
    return app


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    """An application on a new, opened assembly that it closes when it stops (tests and
    embedding; ``concilium serve`` builds the assembly itself)."""
    assembly = Assembly.build(settings, runtime)
    assembly.open()
    return application(assembly, owned=True)
