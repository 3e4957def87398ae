"""The marketer app's foundation in Chromium: first-run setup link, sign-in (and its error
state), dashboard, account, the phone menu, sign-out; axe-core on every page, screenshots
at desktop and phone sizes."""

from __future__ import annotations

import re
from pathlib import Path

from app.models import Role
from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import PHONE, shoot


def test_first_run_sign_in_and_out(browser, live_server: str, screenshot_dir: Path) -> None:
    from app.cli import first_run_hint
    from app.settings import get_settings

    link = re.search(r"(http://\S+/admin/setup/\S+)", first_run_hint(get_settings())).group(1)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(30_000)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))

    page.goto(f"{live_server}/admin/login")
    assert "No account exists yet" in page.content()
    assert_accessible(page, "login, first run")
    shoot(page, screenshot_dir, "1-login-first-run")

    page.goto(link)
    assert_accessible(page, "setup")
    page.fill("#f-email", "first@example.org")
    page.fill("#f-password", "short")
    page.fill("#f-password_again", "short")
    page.click("button[type=submit]")
    assert page.title().startswith("Error: ")
    assert page.evaluate("document.activeElement.className") == "error-summary"
    assert_accessible(page, "setup with an error")
    shoot(page, screenshot_dir, "2-setup-error")
    page.fill("#f-password", "a long enough password")
    page.fill("#f-password_again", "a long enough password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/admin/")
    assert "Your admin account is ready" in page.locator("[role=status]").inner_text()
    assert_accessible(page, "dashboard")
    shoot(page, screenshot_dir, "3-dashboard")

    page.goto(f"{live_server}/admin/account")
    assert_accessible(page, "account")
    shoot(page, screenshot_dir, "4-account")
    page.select_option("#f-timezone", "Europe/Paris")
    page.click("form[action='/admin/account/timezone'] button")
    assert "Europe/Paris" in page.locator("[role=status]").inner_text()

    # Phones: the nav is a <details> menu, and nothing overflows sideways.
    page.set_viewport_size(PHONE)
    assert not page.locator(".nav-wide").is_visible()
    page.click(".nav-menu summary")
    assert page.locator(".nav-menu a[href='/admin/account']").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert_accessible(page, "phone menu open")
    page.screenshot(path=screenshot_dir / "5-menu-open-phone.png", full_page=True)
    page.locator(".nav-menu button", has_text="Sign out").click()
    page.wait_for_url(f"{live_server}/admin/login")
    assert "You are signed out." in page.content()

    # Wrong password: the form says so and keeps the address.
    page.set_viewport_size({"width": 1280, "height": 800})
    page.fill("#f-email", "first@example.org")
    page.fill("#f-password", "wrong password")
    page.click("button[type=submit]")
    assert "not right" in page.locator(".error-summary").inner_text()
    assert page.input_value("#f-email") == "first@example.org"
    assert_accessible(page, "login error")
    shoot(page, screenshot_dir, "6-login-error")

    # Anonymous again: an admin page leads to sign-in and back.
    page.goto(f"{live_server}/admin/account")
    assert "/admin/login?next=/admin/account" in page.url
    page.fill("#f-email", "first@example.org")
    page.fill("#f-password", "a long enough password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/admin/account")
    assert [m for m in console if "Content Security Policy" in m] == []
    context.close()


def test_a_viewer_is_refused_admin_only_pages(marketer, screenshot_dir: Path) -> None:
    page = marketer(Role.VIEWER)
    assert "Admin" not in page.locator("nav[aria-label=Main]").inner_text()
    assert_accessible(page, "viewer dashboard")
