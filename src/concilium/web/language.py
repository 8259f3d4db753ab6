"""The language of each request: the reader's choice (a cookie set at sign-in and when they
change it), else their browser's, else French; held for the whole request
(:mod:`concilium.platform.i18n`)."""

from __future__ import annotations

from http.cookies import SimpleCookie

from starlette.types import ASGIApp, Receive, Scope, Send

from concilium.platform.i18n import LOCALES, negotiate, set_locale

LANGUAGE_COOKIE = "concilium_lang"
"""Remembers the reader's language between requests (not a secret, not a session)."""


def requested_locale(headers: dict[bytes, bytes]) -> str:
    """The language a request asks for: its language cookie, else ``Accept-Language``."""
    raw = headers.get(b"cookie", b"").decode("latin-1")
    if raw:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except Exception:  # a malformed cookie header is no reason to refuse a page
            jar = SimpleCookie()
        chosen = jar.get(LANGUAGE_COOKIE)
        if chosen is not None and chosen.value in LOCALES:
            return chosen.value
    return negotiate(headers.get(b"accept-language", b"").decode("latin-1"))


class LanguageMiddleware:
    """Sets the request's language before anything else runs (pure ASGI, so that the
    setting is seen by the handler, its worker threads and the error handlers alike)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            set_locale(requested_locale(dict(scope.get("headers", []))))
        await self.app(scope, receive, send)
