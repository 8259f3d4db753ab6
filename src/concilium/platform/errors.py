"""Domain errors: each maps to one HTTP status and problem type in the web adapter."""

from __future__ import annotations


class ConciliumError(Exception):
    """Base of the errors a user can be told about."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(ConciliumError):
    status = 422
    title = "Invalid input"


class NotFound(ConciliumError):
    status = 404
    title = "Not found"


class Conflict(ConciliumError):
    status = 409
    title = "Conflict"


class Unauthenticated(ConciliumError):
    status = 401
    title = "Authentication required"


class Forbidden(ConciliumError):
    status = 403
    title = "Forbidden"


class SecondFactorRefused(Forbidden):
    """Acting on another person's account needs the actor's own second factor once more."""


class TooManyRequests(ConciliumError):
    status = 429
    title = "Too many requests"
