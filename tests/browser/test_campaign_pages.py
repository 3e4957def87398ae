"""The campaign pages in Chromium: editor (error state, preview frame at both widths, plain
text, Ctrl+S, the unsaved-changes warning), and the other campaign pages; axe-core on each,
screenshots at 1280x800 and 375x812."""

from __future__ import annotations

import re
from pathlib import Path

from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import PHONE, shoot


def _topic(slug: str = "news", name: str = "News") -> None:
    from app.db import session_scope
    from app.models import Topic

    with session_scope() as db:
        db.add(Topic(slug=slug, name=name))


def _no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_the_editor(marketer, screenshot_dir: Path) -> None:
    _topic()
    _topic("events", "Events")
    page = marketer()
    base = page.base
    page.goto(f"{base}/admin/campaigns/new")
    assert_accessible(page, "new campaign")
    shoot(page, screenshot_dir, "1-new")

    page.fill("#f-body", "Hello {{ first_name }}, our **spring** news.")
    page.click("button[data-save]")  # no subject, no topic
    assert page.title().startswith("Error: ")
    assert page.evaluate("document.activeElement.className") == "error-summary"
    assert page.input_value("#f-body") == "Hello {{ first_name }}, our **spring** news."
    assert_accessible(page, "editor with an error")
    shoot(page, screenshot_dir, "2-error")

    page.fill("#f-subject", "Spring news for {{ first_name }}")
    page.check("input[name=topics][value=news]")
    page.keyboard.press("Control+s")  # saves
    page.wait_for_url(re.compile(r".*/admin/campaigns/\d+$"))
    assert "Draft saved." in page.locator("[role=status]").inner_text()
    frame = page.frame_locator("iframe[name=preview]")
    assert "spring" in frame.locator("body").inner_text()
    assert page.locator("iframe[name=preview]").get_attribute("sandbox") == ""
    assert page.locator("iframe[name=preview]").bounding_box()["width"] == 600
    assert_accessible(page, "editor with a preview")
    shoot(page, screenshot_dir, "3-saved-preview")

    page.check("#w-375")
    assert page.locator("iframe[name=preview]").bounding_box()["width"] == 375
    page.check("input[name=format][value=text]")  # JS submits the preview form on change
    frame.locator("pre").wait_for()
    assert "Subject: Spring news for Jane" in frame.locator("pre").inner_text()
    shoot(page, screenshot_dir, "4-phone-width-plain-text")

    # Unsaved changes: leaving asks first (a beforeunload dialog), saving does not.
    page.fill("#f-subject", "Changed but not saved")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.dismiss()))
    page.locator("a", has_text="Campaigns").first.click()
    page.wait_for_timeout(300)
    assert dialogs == ["beforeunload"]
    assert "/admin/campaigns/" in page.url

    page.set_viewport_size(PHONE)
    assert _no_sideways_scroll(page)
    assert_accessible(page, "editor on a phone")
