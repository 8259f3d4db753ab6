"""How a service plugs into Concilium: one descriptor per service, read by the assembly.

A service (imaging, live, telesurgery, and the platform's own pages) describes itself once:
its tables and migrations, its policy actions, its HTTP routers, its command group, its menu
entries, its templates and static files, and the runtime it needs in a serving process. The
process assembly (``concilium.assembly``) reads the registry of descriptors
(``concilium.services``) and wires every piece; nothing else lists the services.

Adapters (routers, commands, runtimes) are named by ``"module:attribute"`` references and
imported when the assembly needs them, so that reading the registry (for migrations, say)
does not import every web framework and protocol stack.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from concilium.platform.fhir import ResourceSupport
from concilium.platform.policy import Action

if TYPE_CHECKING:
    from concilium.platform.runtime import Runtime

T = TypeVar("T")


def resolve(reference: str, kind: type[T]) -> T:
    """The object a ``"package.module:attribute"`` reference names, checked to be a ``kind``."""
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"a reference reads 'package.module:attribute', got {reference!r}")
    found = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(found, kind):
        raise TypeError(f"{reference} is a {type(found).__name__}, not a {kind.__name__}")
    return found


@dataclass(frozen=True)
class NavEntry:
    """One entry of the menu, shown to those the policy could ever grant its action."""

    action: Action
    """What the page behind it needs."""
    href: str
    """Where it leads."""
    label: str
    """What people read (translated by the pages)."""
    order: int
    """Place in the menu, lowest first, across services."""


class ServiceRuntime(Protocol):
    """What a service holds in a running process, with one ordered life.

    ``open`` makes it ready to answer requests (recovery, files); ``serve`` runs, for the
    life of a serving process, its listeners and supervised programs (DICOM and MLLP
    listeners, the media server); ``close`` releases what ``open`` took.
    """

    def open(self) -> None: ...

    def serve(self) -> AbstractAsyncContextManager[None]: ...

    def close(self) -> None: ...


class Processes(Protocol):
    """Where adapters find the runtime of a service in their process (the assembly)."""

    def service(self, kind: type[T]) -> T: ...


RuntimeFactory = Callable[["Runtime", Processes], ServiceRuntime]
"""Builds a service's runtime from the platform's runtime (settings, database, bus, clock)
and the runtimes of the services built before it (a service reaches another's through it)."""


@dataclass(frozen=True)
class ServiceDescriptor:
    """Everything the process assembly needs to know about one service."""

    name: str
    """Short name: the package, the static files' prefix (``/static/<name>``), the menu."""
    summary: str
    """One line saying what the service does (``concilium --help``, the architecture page)."""
    actions: tuple[Action, ...] = ()
    """The policy actions the service declares."""
    tables: str = ""
    """Module whose import declares the service's tables on the shared metadata."""
    migrations: Path | None = None
    """The service's Alembic version location (one linear history across services)."""
    routers: tuple[str, ...] = ()
    """``module:attribute`` of each ``APIRouter``, in matching order."""
    documented_routers: tuple[str, ...] = ()
    """Those of ``routers`` whose JSON endpoints the OpenAPI document describes."""
    commands: str | tuple[str, ...] = ""
    """``module:attribute`` of the service's ``click`` group (or of each of its groups),
    mounted under ``concilium``."""
    nav: tuple[NavEntry, ...] = ()
    """Its entries in the menu."""
    templates: Path | None = None
    """Folder of its page templates, named ``<name>/<template>`` by the pages."""
    static: Path | None = None
    """Folder served at ``/static/<name>``."""
    locale: Path | None = None
    """Folder of its translation catalogues (``<lang>/LC_MESSAGES/messages.po``)."""
    runtime: str = ""
    """``module:attribute`` of its :data:`RuntimeFactory`, when it holds process state."""
    middleware: str = ""
    """``module:attribute`` of a function adding its HTTP middleware, given the application
    and the settings."""
    public_paths: frozenset[str] = field(default_factory=frozenset)
    """Paths it serves to anyone, signed in or not (the route audit checks them)."""
    fhir: tuple[ResourceSupport, ...] = ()
    """The FHIR resource types its routers serve under ``/fhir``, as the capability
    statement (``GET /fhir/metadata``) lists them."""

    def build_runtime(self, runtime: Runtime, built: Processes) -> ServiceRuntime | None:
        """The service's runtime for this process (None when it holds no process state),
        given the runtimes of the services registered before it."""
        if not self.runtime:
            return None
        factory = resolve(self.runtime, object)
        if not callable(factory):
            raise TypeError(f"{self.runtime} is not a runtime factory")
        made: ServiceRuntime = factory(runtime, built)
        return made

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"a service name is an identifier, got {self.name!r}")
        names = [action.value for action in self.actions]
        if len(names) != len(set(names)):
            raise ValueError(f"service {self.name} declares an action twice")
        if not set(self.documented_routers) <= set(self.routers):
            raise ValueError(f"service {self.name} documents a router it does not mount")


def public_face(package: str, module_of: Mapping[str, str]) -> Callable[[str], Any]:
    """The module ``__getattr__`` (PEP 562) of a service's public face: each name of
    ``module_of`` is imported from its module on first use, then kept on the package.

    So the installation's list of actions, which imports each service's ``actions`` for
    every command, brings no service's runtime (and the libraries it needs) along.
    """

    def load(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return load
