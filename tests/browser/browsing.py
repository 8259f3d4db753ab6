"""Debian's Chromium driven as a person would: launched for a test module, signed in through
the sign-in page, polled until a page shows something."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

CHROMIUM = os.environ.get("CONCILIUM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
CHROMIUM_MEDIA_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
]
"""A fake camera (a moving test pattern), loopback WebRTC and autoplay allowed."""


def launch_chromium(args: list[str]) -> Iterator[Any]:
    """Chromium with ``args``, for a module-scoped fixture to yield from. Playwright's
    synchronous API keeps an event loop in the main thread while it runs, so it is imported
    here and gone before asynchronous tests run."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Debian's chromium is required at {CHROMIUM} (make test installs it)")
    from playwright.sync_api import sync_playwright

    # Each launch gets a fresh, temporary profile directory from Playwright.
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield chromium
        chromium.close()


def sign_in(
    page: Any, username: str, password: str, totp_key: str | None = None, base_url: str = ""
) -> None:
    """Sign in at ``base_url`` (default: the page context's), with the authenticator code when
    the account has ``totp_key``; returns on the home page."""
    page.goto(f"{base_url}/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    if totp_key is not None:
        page.wait_for_url("**/login/totp**")
        page.get_by_label("Code").fill(pyotp.TOTP(totp_key).now())
        page.get_by_role("button", name="Verify").click()
    page.wait_for_url(re.compile(r".*/$"))


def signed_in_state(
    browser: Any, url: str, username: str, password: str, totp_key: str | None = None
) -> dict[str, Any]:
    """Sign in once through the pages; the signed-in state (``storage_state``), for the
    browser contexts of each test to start from."""
    context = browser.new_context(locale="en-GB")
    try:
        sign_in(context.new_page(), username, password, totp_key, base_url=url)
        state: dict[str, Any] = context.storage_state()
    finally:
        context.close()
    return state


def main_menu(page: Any, name: str = "Main") -> Any:
    """The main menu's navigation, opened first on a phone, where its links sit behind the
    Menu button (as a person taps it before choosing a page)."""
    button = page.locator("header .menu-toggle")
    if button.is_visible() and button.get_attribute("aria-expanded") != "true":
        button.click()
    return page.get_by_role("navigation", name=name)


def wait_until(page: Any, expression: str, timeout: int = 10_000) -> None:
    """Poll a page expression (``wait_for_function`` evaluates strings inside the page, which
    the strict content security policy forbids, as it should)."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} ms: {expression}")
        time.sleep(0.1)


def join_with_camera(page: Any) -> str:
    """On a live session's join page, publish the fake camera; the feed id Janus gave it."""
    page.get_by_role("button", name="Join with camera").click()
    wait_until(page, "document.body.dataset.publishedFeed !== undefined", 20_000)
    return str(page.evaluate("document.body.dataset.publishedFeed"))


STAGE = "document.querySelector('[data-stage]')"
"""The live pages' stage video, as a page expression."""
_FRAME = f"""() => {{
    const v = {STAGE};
    const c = document.createElement('canvas');
    c.width = v.videoWidth; c.height = v.videoHeight;
    c.getContext('2d').drawImage(v, 0, 0);
    return c.toDataURL('image/png');
}}"""


def stage_frame(page: Any) -> str:
    """The picture the stage video shows now, as a PNG data URL."""
    return str(page.evaluate(_FRAME))


def picture_moves(page: Any) -> bool:
    """Whether the stage shows another picture 0.6 s later (live video, not a still)."""
    first = stage_frame(page)
    time.sleep(0.6)
    return stage_frame(page) != first
