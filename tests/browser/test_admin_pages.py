"""An administrator signs in with a TOTP code and creates a user, on a phone and a desktop."""

from __future__ import annotations

import re

import pyotp
import pytest

from concilium.platform.demo import SITES

from .browsing import main_menu

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


def provision_admin(server) -> str:
    server.cli("site", "create", "--name", SITES[0][0], "--finess", SITES[0][1])
    out = server.cli(
        "user",
        "create",
        "--username",
        "claire",
        "--full-name",
        "Claire Martin",
        "--role",
        f"admin@{SITES[0][1]}",
        "--password",
        "first-admin-pass-1",
        "--with-totp",
    )
    return re.search(r"authenticator key: (\w+)", out).group(1)


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_admin_signs_in_with_totp_and_creates_a_user(server, browser, artifacts, viewport):
    key = provision_admin(server)
    context = browser.new_context(viewport=viewport, base_url=server.url)
    page = context.new_page()
    page.goto("/admin/users")
    assert page.url.startswith(f"{server.url}/login")

    page.get_by_label("User name").fill("claire")
    page.get_by_label("Password").fill("first-admin-pass-1")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/login/totp**")
    page.get_by_label("Code").fill(pyotp.TOTP(key).now())
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url("**/admin/users")
    assert page.get_by_role("heading", name="Users").is_visible()

    page.get_by_label("User name").fill("jdoe")
    page.get_by_label("Full name").fill("Dr Jeanne Doe")
    page.get_by_label("Profession").fill("Physician")
    page.get_by_label("Specialty").fill("Cardiology")
    page.get_by_label("RPPS number").fill("10001234567")
    page.get_by_label("Role").select_option(label="Specialist")
    page.get_by_role("button", name="Create user").click()
    assert page.get_by_role("heading", name=re.compile("Dr Jeanne Doe")).is_visible()
    # No password is chosen for the new user: they get a set-up link, shown once.
    assert page.get_by_role("heading", name="Set-up link for jdoe").is_visible()
    link = page.locator("code.secret").inner_text().strip()
    assert "/account/setup/" in link

    main_menu(page).get_by_role("link", name="Users").click()
    row = page.get_by_role("row", name=re.compile("jdoe"))
    assert "Specialist (CHR Metz-Thionville)" in row.inner_text()
    # Nothing spills sideways on a phone: the page fits its width.
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    name = "phone" if viewport is PHONE else "desktop"
    page.screenshot(path=str(artifacts / f"admin-users-{name}.png"), full_page=True)

    # The new user opens the link: chooses a password and enrols an authenticator (their
    # role needs one) in one page, and is signed in.
    other = browser.new_context(viewport=viewport, base_url=server.url).new_page()
    other.goto(link)
    assert other.get_by_role("heading", name="Set up your account").is_visible()
    other.get_by_label("New password", exact=True).fill("welcome-to-metz-1")
    other.get_by_label("New password again").fill("welcome-to-metz-1")
    assert other.locator("figure.qr svg").is_visible()
    secret = other.locator("code.secret").inner_text().strip()
    other.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    overflow = other.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    other.screenshot(path=str(artifacts / f"account-setup-{name}.png"), full_page=True)
    other.get_by_role("button", name="Save and sign in").click()
    other.wait_for_url(f"{server.url}/")
    assert other.get_by_role("heading", name="Welcome, Dr Jeanne Doe").is_visible()
    other.context.close()

    # Signing out ends the session: the pages ask to sign in again.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    page.goto("/admin/users")
    assert "/login" in page.url
    context.close()


@pytest.mark.browser
def test_keyboard_only_sign_in_and_skip_link(server, browser):
    server.cli("site", "create", "--name", SITES[1][0], "--finess", SITES[1][1])
    server.cli(
        "user",
        "create",
        "--username",
        "julie",
        "--full-name",
        "Julie Moreau",
        "--role",
        f"coordinator@{SITES[1][1]}",
        "--password",
        "coordinate-all-1",
    )
    page = browser.new_page(base_url=server.url)
    page.goto("/login")
    # The user name field has the focus: type, Tab to the password, Enter to submit.
    page.keyboard.type("julie")
    page.keyboard.press("Tab")
    page.keyboard.type("coordinate-all-1")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server.url}/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.close()
