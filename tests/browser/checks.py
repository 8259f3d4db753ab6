"""What every page must be for the people who use it, checked the same way everywhere:
accessible (axe-core, WCAG 2.1 A and AA), free of console errors, and as wide as the screen
(no sideways scrolling at phone width). Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
"""axe-core as installed by ``npm ci`` in ``frontend/`` (pinned in its lock file)."""
WIDTHS = {"phone": 390, "desktop": 1366}
"""The screens every page is checked on: a phone held upright and a hospital desktop."""
LOCALES = {"fr": "fr-FR", "en": "en-GB"}
"""The interface languages, as a browser asks for them."""
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@contextmanager
def person_browsing(
    browser: Any, width: str, language: str, **options: Any
) -> Iterator[tuple[Any, list[str]]]:
    """A new browser context of ``width`` asking for ``language``, and its page; yields the
    page and the list its console errors and uncaught exceptions are collected in.
    ``options`` go to the context (``storage_state``: a person already signed in)."""
    height = 844 if width == "phone" else 900
    context = browser.new_context(
        viewport={"width": WIDTHS[width], "height": height},
        locale=LOCALES[language],
        is_mobile=width == "phone",
        has_touch=width == "phone",
        **options,
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page, errors
    finally:
        context.close()


def accessibility_violations(page: Any) -> list[str]:
    """axe-core's WCAG 2.1 A and AA violations on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Through the browser's debugging protocol, which the page's own policy, rightly
        # forbidding inline scripts, does not apply to.
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        "async (tags) => await window.axe.run(document, {runOnly: {type: 'tag', values: tags}})",
        WCAG,
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(json.dumps(n["target"]) for n in v["nodes"][:3])
        for v in result["violations"]
    ]


def overflow(page: Any) -> int:
    """How many pixels the page is wider than the screen (0 when it fits)."""
    return int(
        page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    )


def assert_usable(page: Any, errors: list[str], name: str, artifacts: Path) -> None:
    """The page is accessible, fits the screen and logged no error; keep its screenshot."""
    width = page.viewport_size["width"]
    language = page.evaluate("document.documentElement.lang")
    page.screenshot(path=str(artifacts / f"{name}-{language}-{width}.png"), full_page=True)
    assert errors == [], f"{name}: console errors {errors}"
    assert overflow(page) <= 0, f"{name} is {overflow(page)} px wider than a {width} px screen"
    violations = accessibility_violations(page)
    assert violations == [], f"{name} at {width} px in {language}:\n" + "\n".join(violations)
