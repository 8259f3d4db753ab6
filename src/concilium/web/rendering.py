"""Pages rendered on the server: one template environment holding every service's
templates, the menu each person sees, and the error page.

The application assembly builds the :class:`Pages` of a process once, from the service
descriptors, and keeps it on the application; handlers render through :func:`render_page`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, FileSystemLoader, PrefixLoader, pass_context
from jinja2.runtime import Context

from concilium.platform import i18n
from concilium.platform.services import NavEntry
from concilium.platform.tables import Site
from concilium.web.context import Ctx, may_attempt
from concilium.web.labels import DECISION_LABELS, PURPOSE_LABELS, ROLE_LABELS, SEX_LABELS

TEMPLATES_DIR = Path(__file__).with_name("templates")
"""The layout every page extends (``base.html``), its macros and the error page."""
STATIC_DIR = Path(__file__).with_name("static")
"""The style sheet and script of every page, served at ``/static``."""


@dataclass(frozen=True)
class Pages:
    """The templates and the menu of one application."""

    templates: Jinja2Templates
    """Every service's templates, named ``<service>/<file>``, over the shared layout."""
    nav: tuple[NavEntry, ...]
    """Every menu entry, in menu order."""

    @classmethod
    def build(cls, services: Iterable[tuple[str, Path]], nav: Iterable[NavEntry]) -> Pages:
        """From each service's name and templates folder, and every menu entry."""
        prefixed = PrefixLoader({name: FileSystemLoader(folder) for name, folder in services})
        loader = ChoiceLoader([FileSystemLoader(TEMPLATES_DIR), prefixed])
        templates = Jinja2Templates(directory=TEMPLATES_DIR)
        env = templates.env
        env.loader = loader
        env.add_extension("jinja2.ext.i18n")
        env.install_gettext_callables(  # type: ignore[attr-defined]
            i18n.gettext, i18n.ngettext, newstyle=True, pgettext=i18n.pgettext
        )
        env.globals["script_messages"] = i18n.script_messages
        env.filters["datetime"] = _show_datetime
        env.filters["date"] = _show_date
        env.filters["time"] = _show_time
        return cls(templates, tuple(sorted(nav, key=lambda entry: entry.order)))

    def menu(self, ctx: Ctx) -> list[tuple[str, str]]:
        """Entries the policy could ever let this person use."""
        return [(e.href, e.label) for e in self.nav if may_attempt(ctx.principal, e.action)]


@pass_context
def _show_datetime(context: Context, value: datetime | None, form: str = "short") -> str:
    return "" if value is None else i18n.show_datetime(value, context["zone"], form)


@pass_context
def _show_date(context: Context, value: date | datetime | None, form: str = "short") -> str:
    return "" if value is None else i18n.show_date(value, context["zone"], form)


@pass_context
def _show_time(context: Context, value: datetime | None) -> str:
    return "" if value is None else i18n.show_time(value, context["zone"])


def reader_zone(ctx: Ctx | None) -> ZoneInfo:
    """The zone a person reads times in: theirs, else their site's, else the default."""
    if ctx is None:
        return i18n.zone(None)
    if ctx.user.timezone:
        return i18n.zone(ctx.user.timezone)
    site_ids = sorted(m.site_id for m in ctx.user.memberships)
    site = ctx.db.get(Site, site_ids[0]) if site_ids else None
    return i18n.zone(site.timezone if site is not None else None)


def own_site_id(ctx: Ctx | None) -> int | None:
    """The reader's own hospital: the site of the first role they were given. Forms that
    register something at a site start on it (``form.get("site_id", own_site_id)``), not on
    the first hospital in alphabetical order."""
    if ctx is None or not ctx.user.memberships:
        return None
    return min(ctx.user.memberships, key=lambda m: m.id).site_id


def pages_of(request: Request) -> Pages:
    pages: Pages = request.app.state.pages
    return pages


def render_page(
    request: Request, name: str, ctx: Ctx | None, status: int = 200, **values: Any
) -> HTMLResponse:
    """Render template ``name`` for ``ctx``'s person (None on public pages)."""
    pages = pages_of(request)
    context: dict[str, Any] = {
        "ctx": ctx,
        "user": ctx.user if ctx else None,
        "csrf": ctx.csrf_token if ctx else "",
        "role_labels": ROLE_LABELS,
        "purpose_labels": PURPOSE_LABELS,
        "sex_labels": SEX_LABELS,
        "decision_labels": DECISION_LABELS,
        "nav": pages.menu(ctx) if ctx else [],
        "path": request.url.path,
        "locale": i18n.current_locale(),
        "zone": reader_zone(ctx),
        "own_site_id": own_site_id(ctx),
        **values,
    }
    return pages.templates.TemplateResponse(request, name, context, status_code=status)


def render_error(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    """The error page: what happened, for a browser."""
    return render_page(request, "error.html", None, status, title=title, detail=detail)
