"""The public archive in Chromium at phone width: the list, an archived newsletter in its
frame; nothing overflows sideways, no serious accessibility issue, screenshots kept."""

from __future__ import annotations

from pathlib import Path

from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import shoot
from tests.support.archive import seed

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
