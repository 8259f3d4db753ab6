"""One process of Concilium, assembled once from the settings.

The assembly builds the platform's runtime (database, the one event bus, clock, keys) and
then each registered service's runtime from it, in the registry's order. Its life is one
ordered sequence whatever the process does: ``open`` (recovery, files) → ``serve`` for a
serving process (listeners, supervised media server) → ``close``, services stopping in the
reverse order of their start. Adapters receive what they need from it; nothing is created
lazily on first use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypeVar

from concilium.config import Settings
from concilium.platform import i18n
from concilium.platform.runtime import Runtime
from concilium.platform.services import ServiceDescriptor, ServiceRuntime
from concilium.services import ACTIONS, LOCALE_FOLDERS, SERVICES

T = TypeVar("T")


class Assembly:
    """The platform's runtime and every service's runtime of one process."""

    def __init__(
        self,
        runtime: Runtime,
        services: Sequence[ServiceDescriptor],
        processes: Sequence[ServiceRuntime],
    ) -> None:
        self.runtime = runtime
        """Settings, database, event bus, clock and keys, shared by every service."""
        self.services = tuple(services)
        """The descriptors of the assembled services, in start order."""
        self.processes = tuple(processes)
        """The runtime of each service that holds process state, in start order."""
        self._opened: list[ServiceRuntime] = []

    @classmethod
    def build(
        cls,
        settings: Settings,
        runtime: Runtime | None = None,
        services: Sequence[ServiceDescriptor] = SERVICES,
    ) -> Assembly:
        """Build every runtime; nothing is started yet (see :meth:`open`)."""
        i18n.load_catalogues(LOCALE_FOLDERS)
        runtime = runtime or Runtime.start(settings, ACTIONS)
        if not runtime.actions:
            runtime.actions = ACTIONS
        assembly = cls(runtime, services, [])
        for service in services:
            made = service.build_runtime(runtime, assembly)
            if made is not None:
                assembly.processes = (*assembly.processes, made)
        return assembly

    def service(self, kind: type[T]) -> T:
        """The runtime of the service whose runtime is a ``kind``."""
        for process in self.processes:
            if isinstance(process, kind):
                return process
        raise LookupError(f"no service runtime of type {kind.__name__} in this process")

    def open(self) -> None:
        """Make every service ready to answer (recovery first); in order."""
        for process in self.processes:
            process.open()
            self._opened.append(process)

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[None]:
        """Run every service's listeners and supervised programs for the life of a server;
        they stop in the reverse order."""
        async with AsyncExitStack() as stack:
            for process in self.processes:
                await stack.enter_async_context(process.serve())
            yield

    def close(self) -> None:
        """Release what :meth:`open` took, in the reverse order, then the platform's runtime."""
        while self._opened:
            self._opened.pop().close()
        self.runtime.close()
