"""What telesurgery holds in a running process: the board of the links' latest status,
fed by the event bus so that a supervision page served by any process shows every link."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from concilium.platform.runtime import Runtime
from concilium.platform.services import Processes
from concilium.telesurgery.link_status import LinkStatusBoard
from concilium.telesurgery.qualification_runs import QualificationRuns


class TelesurgeryProcess:
    """The link status board, subscribed once to the process's bus."""

    def __init__(self, runtime: Runtime, built: Processes) -> None:
        self.board = LinkStatusBoard(runtime.bus)
        """The latest status sample of each gateway's link."""
        self.runs = QualificationRuns()
        """The link qualifications started from the web."""

    def open(self) -> None:
        """Nothing to recover: the board fills from the gateways' next samples."""

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[None]:
        """No listener of its own: the gateways run as their own processes."""
        yield

    def close(self) -> None:
        """Let the qualifications under way end (they last seconds)."""
        self.runs.wait(timeout=30.0)
