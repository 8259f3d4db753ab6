"""What the platform holds in a serving process: the checkpointer writing signed
checkpoints of the audit chain's head outside the database, and the dispatcher sending what
the mail outbox holds, for as long as it serves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from anyio import to_thread

from concilium.platform.audit_checkpoints import AuditCheckpointer
from concilium.platform.outbox import Dispatcher
from concilium.platform.runtime import Runtime
from concilium.platform.services import Processes


def audit_checkpointer(runtime: Runtime) -> AuditCheckpointer:
    """Checkpoints of the audit chain, at the pace the settings give."""
    settings = runtime.settings
    return AuditCheckpointer(
        runtime.read_sessions,
        runtime.audit_checkpoints,
        runtime.now,
        every=timedelta(seconds=settings.audit_checkpoint_seconds),
        entries=settings.audit_checkpoint_entries,
        poll=min(settings.audit_checkpoint_seconds, 5.0),
    )


class PlatformProcess:
    """The platform's part of a process's life (see ``ServiceRuntime``)."""

    def __init__(self, runtime: Runtime, built: Processes) -> None:
        self.checkpointer = audit_checkpointer(runtime)
        """Takes a checkpoint at start, when due, and at stop."""
        self.mail = Dispatcher.for_runtime(runtime)
        """Sends the outbox's messages while serving; None when e-mail is off."""

    def open(self) -> None:
        """Nothing to recover."""

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[None]:
        await to_thread.run_sync(self.checkpointer.start)
        if self.mail is not None:
            self.mail.start()
        try:
            yield
        finally:
            if self.mail is not None:
                await to_thread.run_sync(self.mail.stop)
            await to_thread.run_sync(self.checkpointer.stop)

    def close(self) -> None:
        """Nothing to release beyond what :meth:`serve` stopped."""
