"""What every page with a form shares: the redirect after success, form fields, and running
a form's action so that a user error shows the form again and saves nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated

from fastapi import Form
from fastapi.responses import RedirectResponse, Response

from concilium.platform.errors import ConciliumError, InvalidInput
from concilium.platform.i18n import _
from concilium.web.context import Ctx

Text = Annotated[str, Form(max_length=2000)]
"""A free-text form field of reasonable length."""


def redirect_to(url: str) -> RedirectResponse:
    """After a successful POST: see the result (303, so a reload does not post again)."""
    return RedirectResponse(url, status_code=303)


def date_or_none(text: str) -> date | None:
    """A form's ``YYYY-MM-DD`` date; None when left empty."""
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInput(_("Write dates as YYYY-MM-DD, or pick them in the calendar.")) from exc


def run_form_action(
    ctx: Ctx,
    run: Callable[[], object],
    redisplay: Callable[[ConciliumError], Response],
    done: str,
) -> Response:
    """Run a form's action. A user error shows the form again with the message and saves
    nothing; refusals (401, 403, 404) go to the error handlers; success goes to ``done``."""
    try:
        run()
    except ConciliumError as exc:
        ctx.db.rollback()
        if exc.status in {401, 403, 404}:
            raise
        return redisplay(exc)
    return redirect_to(done)
