"""A real Concilium server and Debian's Chromium, for tests that use the pages as a person."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving import RunningServer, running_server

CHROMIUM = os.environ.get("CONCILIUM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
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
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Debian's chromium is required at {CHROMIUM} (make test installs it)")
    from playwright.sync_api import sync_playwright

    # Each launch gets a fresh, temporary profile directory from Playwright.
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
