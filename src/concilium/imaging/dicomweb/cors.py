"""Cross-origin requests to the DICOMweb paths, for viewers served from other origins."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from concilium.config import Settings
from concilium.imaging.dicomweb.resources import BASE

__all__ = ["DicomwebCORSMiddleware", "install_cors"]


class DicomwebCORSMiddleware:
    """CORS for the DICOMweb paths only, for viewers served from other origins.

    Origins come from ``dicomweb_cors_origins``; with none, requests pass through untouched.
    Pages and the JSON API stay same-origin whatever this setting says.
    """

    def __init__(self, app: ASGIApp, origins: Sequence[str] = ()) -> None:
        self.app = app
        self.cors: ASGIApp | None = (
            CORSMiddleware(
                app,
                allow_origins=list(origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", "Accept"],
                expose_headers=["Warning", "Content-Location", "Content-Type"],
                max_age=600,
            )
            if origins
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if self.cors is not None and scope["type"] == "http" and _is_dicomweb_path(path):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _is_dicomweb_path(path: str) -> bool:
    return path.startswith(f"{BASE}/") or path == BASE or path == "/wado"


def install_cors(app: FastAPI, settings: Settings) -> None:
    """Let the configured viewer origins call ``/dicomweb`` and ``/wado`` across origins."""
    app.add_middleware(DicomwebCORSMiddleware, origins=settings.dicomweb_cors_origins)
