"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import os
import tempfile
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from concilium.platform.db import ping
from concilium.platform.policy import PlatformAction
from concilium.web.context import Ctx, gate, runtime_of

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """Readiness: the database answers and the data dir accepts a durable write."""
    runtime = runtime_of(request)
    checks: dict[str, str] = {}
    try:
        ping(runtime.engine)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"failed: {type(exc).__name__}"
    try:
        with tempfile.NamedTemporaryFile(dir=runtime.settings.data_dir, prefix=".ready-") as f:
            f.write(b"ready")
            f.flush()
            os.fsync(f.fileno())
        checks["data_dir"] = "ok"
    except OSError as exc:
        checks["data_dir"] = f"failed: {exc.strerror}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics")
def metrics(ctx: Annotated[Ctx, gate(PlatformAction.METRICS_READ)]) -> Response:
    """Prometheus exposition; needs a token with the ``metrics`` scope."""
    ctx.authorize(PlatformAction.METRICS_READ)
    registry = ctx.request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
