"""Domain errors: each maps to one HTTP status and problem type in the web adapter.

A ``title`` names the kind of problem in English (it also forms the problem type URI) and is
translated where it is shown; a ``detail`` is written for the person, in their language
(``_("...")`` where it is raised).
"""

from __future__ import annotations

from concilium.platform.i18n import N_


class ConciliumError(Exception):
    """Base of the errors a user can be told about."""

    status = 400
    title = N_("Bad request")
    retry_after: int | None = None
    """Seconds after which trying again may succeed (``Retry-After``, RFC 9110 10.2.3)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(ConciliumError):
    status = 422
    title = N_("Invalid input")


class NotFound(ConciliumError):
    status = 404
    title = N_("Not found")


class Conflict(ConciliumError):
    status = 409
    title = N_("Conflict")


class Unauthenticated(ConciliumError):
    status = 401
    title = N_("Authentication required")


class Forbidden(ConciliumError):
    status = 403
    title = N_("Forbidden")


class SecondFactorRefused(Forbidden):
    """Acting on another person's account needs the actor's own second factor once more."""


class TooManyRequests(ConciliumError):
    status = 429
    title = N_("Too many requests")
