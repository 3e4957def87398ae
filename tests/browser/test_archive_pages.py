"""The public archive in Chromium at phone width: the list, an archived newsletter in its
frame; nothing overflows sideways, no serious accessibility issue, screenshots kept."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import Session

from app.db import get_engine
from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import shoot
from tests.support.archive import campaign, seed

PHONE = {"width": 375, "height": 812}


def test_archive_on_a_phone(browser, live_server: str, screenshot_dir: Path) -> None:
    ids = seed()
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    page.goto(f"{live_server}/archive")
    assert page.locator("h1").inner_text() == "Newsletter archive"
    assert page.locator("ol.archive li").count() == 2
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert_accessible(page)
    shoot(page, screenshot_dir, "archive")

    page.get_by_role("link", name="our November news").click()
    page.wait_for_url(f"**/archive/{ids['published']}-our-november-news")
    frame = page.frame_locator("iframe.archived-email")
    assert "Hello" in frame.locator("h1").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert_accessible(page)
    shoot(page, screenshot_dir, "issue")
    context.close()


def test_archive_pages_on_a_phone_by_keyboard(
    browser, live_server: str, screenshot_dir: Path
) -> None:
    """Past 50 issues the archive has pages: the Older and Newer links fit a phone, are
    reached with the keyboard, and lead from page to page."""
    start = datetime(2026, 1, 1, 9, 0)
    with Session(get_engine()) as session:
        for n in range(60):
            campaign(session, f"Issue {n}", finished_at=start + timedelta(days=n), body="Hi.")
        session.commit()
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    page.goto(f"{live_server}/archive")
    older = page.locator("a[rel=next]")
    assert page.locator("ol.archive li").count() == 50
    assert page.locator("a[rel=prev]").count() == 0
    older.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/archive?page=2")
    assert page.locator("ol.archive li").count() == 10
    assert page.locator("a[rel=next]").count() == 0
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert_accessible(page)
    page.locator("a[rel=prev]").scroll_into_view_if_needed()
    shoot(page, screenshot_dir, "archive-page-2")
    page.locator("a[rel=prev]").click()
    page.wait_for_url(lambda url: url.rstrip("/").endswith("/archive"))
    assert page.locator("ol.archive li").first.inner_text().startswith("Issue 59")
    context.close()
