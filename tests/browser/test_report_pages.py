"""Report pages in Chromium: growth with its chart, a campaign's report with its hours,
the confirmation page before sharing, the shared page a stakeholder opens without signing
in, and the page once revoked; axe-core on each, screenshots at 1280x800 and 375x812, and
no sideways scroll on a phone outside table wrappers."""

from __future__ import annotations

from pathlib import Path

from app.models import Role
from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import PHONE, shoot
from tests.support.reports import reported_campaign


def _check(page, directory: Path, name: str, label: str) -> None:
    assert_accessible(page, label)
    shoot(page, directory, name)
    size = page.viewport_size
    page.set_viewport_size(PHONE)
    wide = page.evaluate(
        """[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right
        > window.innerWidth + 1 && !e.closest('.table-wrap')).slice(0, 5)
        .map(e => e.tagName + '.' + e.className + '#' + e.id)"""
    )
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
        f"{label}: sideways scroll on a phone: {wide}"
    )
    assert_accessible(page, f"{label} on a phone")
    page.set_viewport_size(size)


def test_report_pages(marketer, browser, screenshot_dir: Path) -> None:
    campaign_id = reported_campaign(people=24, leavers=6, hours=12)
    page = marketer(Role.EDITOR)
    base = page.base
    page.click("nav.container >> text=Reports")
    assert page.url == f"{base}/admin/reports"
    page.locator("svg[role=img]").first.wait_for()
    _check(page, screenshot_dir, "1-growth", "reports: growth")

    page.fill("#f-from", "2026-02-01")
    page.fill("#f-to", "2026-01-01")
    page.click("button:has-text('Show')")
    assert page.title().startswith("Error: ")
    _check(page, screenshot_dir, "2-growth-error", "reports: a bad period")

    page.goto(f"{base}/admin/reports/campaigns/{campaign_id}")
    assert "24" in page.locator("dl.figures").first.inner_text()
    page.click("summary:has-text('The numbers per hour')")
    _check(page, screenshot_dir, "3-campaign", "a campaign's report")

    page.goto(f"{base}/admin/campaigns/{campaign_id}")
    assert page.locator("#report-title").is_visible()

    page.goto(f"{base}/admin/reports/campaigns/{campaign_id}")
    page.click("text=Share…")
    _check(page, screenshot_dir, "4-share-confirm", "share: confirmation")
    page.fill("#f-note", "Board, monthly review")
    page.click("button:has-text('Create the link')")
    link = page.input_value("#share-url")
    _check(page, screenshot_dir, "5-share-made", "share: the link")

    stakeholder = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        public = stakeholder.new_page()
        answer = public.goto(link)
        assert answer is not None
        assert answer.status == 200
        assert "@example.org" not in public.content()
        _check(public, screenshot_dir, "6-shared", "the shared report")

        page.goto(f"{base}/admin/reports/shares")
        page.click("text=Revoke…")
        _check(page, screenshot_dir, "7-revoke-confirm", "revoke: confirmation")
        page.click("button:has-text('Revoke the link')")
        assert "revoked" in page.locator(".flash-region").inner_text()
        gone = public.goto(link)
        assert gone is not None
        assert gone.status == 410
        _check(public, screenshot_dir, "8-shared-gone", "the shared report, revoked")
    finally:
        stakeholder.close()
