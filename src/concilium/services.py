"""The services of this installation, in order: the one list the process assembly reads.

Adding a service is one line here and a package holding its descriptor
(:class:`concilium.platform.services.ServiceDescriptor`).
"""

from __future__ import annotations

from pathlib import Path

from concilium.platform.db import Schema, migrate
from concilium.platform.policy import Action, token_scopes
from concilium.platform.services import ServiceDescriptor, resolve

PLATFORM_LOCALE = Path(__file__).parent / "platform" / "locale"
"""Catalogues of the trust layer: its errors' titles, its e-mail messages."""
TOOLKIT_LOCALE = Path(__file__).parent / "web" / "locale"
"""Catalogues of the shared layout, macros and error pages (``concilium.web``)."""

REGISTRY: tuple[str, ...] = (
    "concilium.portal.descriptor:SERVICE",
    "concilium.imaging.descriptor:SERVICE",
    "concilium.live.descriptor:SERVICE",
    "concilium.reading.descriptor:SERVICE",
    "concilium.boards.descriptor:SERVICE",
    "concilium.telesurgery.descriptor:SERVICE",
)
"""Where each service's descriptor is; the platform's pages come first, then the services
(their routers match in this order, their start-up follows it, their stop reverses it)."""

SERVICES: tuple[ServiceDescriptor, ...] = tuple(
    resolve(reference, ServiceDescriptor) for reference in REGISTRY
)
"""The descriptor of every service."""
ACTIONS: tuple[Action, ...] = tuple(action for s in SERVICES for action in s.actions)
"""Every action of the policy, the platform's and each service's."""
TOKEN_SCOPES = token_scopes(ACTIONS)
"""Every scope an API token can carry."""
SCHEMA = Schema(
    table_modules=tuple(s.tables for s in SERVICES if s.tables),
    version_locations=tuple(s.migrations for s in SERVICES if s.migrations),
)
"""The whole database: every service's tables and migrations."""


LOCALE_FOLDERS: tuple[Path, ...] = (
    PLATFORM_LOCALE,
    TOOLKIT_LOCALE,
    *(s.locale for s in SERVICES if s.locale is not None),
)
"""Every translation catalogue folder: the shared pages' and each service's."""


def migrate_database(url: str, revision: str = "head") -> None:
    """Create or upgrade the database at ``url`` to ``revision`` (every service's tables)."""
    migrate(url, SCHEMA, revision)
