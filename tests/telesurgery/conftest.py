"""Fixtures of the telesurgery tests: a loop thread and full console-to-robot rigs."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The suite runs with --import-mode=importlib, which does not put test directories on
# sys.path; the shared helpers module is made importable here, before collection.
sys.path.insert(0, str(Path(__file__).parent))

from telesurgery_rig import LoopThread, Rig

from concilium.platform import i18n


@pytest.fixture(autouse=True)
def english(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The domain's messages in English, as the test clients read them, and the commands'
    (French is tested by the translation tests, the command tests and the browser tests)."""
    monkeypatch.setenv("CONCILIUM_LANG", "en")
    with i18n.using_locale("en"):
        yield


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.stop()


@pytest.fixture
def make_rig(loop_thread: LoopThread) -> Iterator[Callable[..., Rig]]:
    rigs: list[Rig] = []

    def factory(**kwargs: Any) -> Rig:
        rig = Rig(loop_thread, **kwargs)
        rigs.append(rig)
        return rig

    yield factory
    for rig in rigs:
        rig.close()
