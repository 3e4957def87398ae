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


def test_list_review_progress_and_recipients(marketer, screenshot_dir: Path) -> None:
    from tests.web.admin.test_campaign_editor import make_campaign
    from tests.web.admin.test_campaign_sending_pages import (
        add_subscribers,
        set_outcome,
        started_campaign,
    )

    running = started_campaign("a@example.org", "b@example.org", "c@example.org")
    set_outcome(running, "a@example.org", "sent", "250 2.0.0 OK")
    set_outcome(running, "b@example.org", "failed", "550 5.1.1 <b@example.org>: no such user")
    add_subscribers("d@example.org")
    draft = make_campaign(subject="A draft to review")
    page = marketer()
    base = page.base

    page.goto(f"{base}/admin/campaigns")
    assert page.locator(f"#cell-{running}[hx-trigger]").count() == 1
    assert_accessible(page, "campaign list")
    shoot(page, screenshot_dir, "1-list")
    page.set_viewport_size(PHONE)
    assert _no_sideways_scroll(page)
    page.set_viewport_size({"width": 1280, "height": 800})

    page.goto(f"{base}/admin/campaigns/{draft}/review")
    page.locator("#preflight ul.checklist").wait_for(timeout=90_000)  # htmx loads it
    assert_accessible(page, "review with its preflight")
    shoot(page, screenshot_dir, "2-review")
    page.fill("#f-send_at", "2001-01-01T09:00")
    page.click("form[action$='/review'] button[type=submit]")
    assert page.title().startswith("Error: ")
    page.locator("#preflight ul.checklist").wait_for(timeout=90_000)
    assert_accessible(page, "review with an error")
    shoot(page, screenshot_dir, "3-review-error")

    page.goto(f"{base}/admin/campaigns/{running}/progress")
    assert "2 of 3 recipients done" in page.content()
    # htmx polls the live block: the figures come back while the page stays.
    with page.expect_response(lambda r: "seen=running" in r.url):
        pass
    assert_accessible(page, "progress while running")
    shoot(page, screenshot_dir, "4-progress")
    page.click("form[action$='/pause'] button")
    assert "Paused." in page.locator(".flash").inner_text()
    assert page.locator("#live[hx-trigger]").count() == 0
    page.click("a[href$='/cancel']")
    assert_accessible(page, "cancel confirmation")
    shoot(page, screenshot_dir, "5-cancel")

    page.goto(f"{base}/admin/campaigns/{running}/sends")
    assert "550 5.1.1 <b@example.org>: no such user" in page.locator("table").inner_text()
    assert_accessible(page, "recipients not reached")
    shoot(page, screenshot_dir, "6-sends")
    page.set_viewport_size(PHONE)
    assert _no_sideways_scroll(page)
