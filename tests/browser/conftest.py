"""A real Concilium server and Debian's Chromium, for tests that use the pages as a person."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from serving import RunningServer, running_server

from .browsing import CHROMIUM_ARGS, launch_chromium

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(tmp_path) as running:
        yield running
    # Graceful: requests finish, the application shuts down, then the signal is honoured.
    assert running.returncode in (0, -15)
    assert "Application shutdown complete" in running.log_path.read_text()


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    """Chromium for one test module. Playwright's synchronous API keeps an event loop in the
    main thread while it runs, so it must be gone before asynchronous tests run."""
    yield from launch_chromium(CHROMIUM_ARGS)


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
