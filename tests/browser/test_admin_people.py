"""Subscribers, topics and imports in Chromium: an editor signs in, creates a topic (after a
form error), imports a CSV with bad rows and reads the line errors, finds a subscriber by
search, opens their page and erases them through the confirmation page. axe-core on every
page; screenshots at desktop and phone sizes."""

from __future__ import annotations

from pathlib import Path

from app.models import Role
from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import MARKETER_PASSWORD, PHONE, shoot

CSV = (
    "email,name,city,topics\n"
    "ann@example.org,Ann Archer,Lyon,\n"
    "bob-at-example.org,Bob,Paris,\n"
    "cy@example.org,Cy,Nice,\n"
    "dee@example.org,Dee,Rome,nosuchtopic\n"
)


WIDEST = """() => {
  if (document.documentElement.scrollWidth <= window.innerWidth) return null;
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.right > window.innerWidth + 1 && !el.closest('.table-wrap'))
      out.push(el.tagName + '.' + el.className + ' ' + Math.round(r.right));
  }
  return out.slice(0, 8).join(', ') || 'scrollWidth ' + document.documentElement.scrollWidth;
}"""


def check(page, directory: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    """axe at both widths, nothing wider than a phone but table wrappers, screenshots."""
    shoot(page, directory, name)
    assert_accessible(page, name)
    before = page.viewport_size
    page.set_viewport_size(PHONE)
    overflow = page.evaluate(WIDEST)
    assert not overflow, f"{name}: wider than a phone: {overflow}"
    assert_accessible(page, name + " (phone)")
    page.set_viewport_size(before)


def test_topic_import_search_erase(browser, marketer, screenshot_dir: Path) -> None:  # type: ignore[no-untyped-def]
    first = marketer(Role.EDITOR, email="ed@example.org")
    base = first.base
    first.context.clear_cookies()
    page = first
    page.goto(f"{base}/admin/login")
    page.fill("#f-email", "ed@example.org")
    page.fill("#f-password", MARKETER_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/admin/")

    page.goto(f"{base}/admin/topics")
    assert "No topics yet" in page.content()
    check(page, screenshot_dir, "01-topics-empty")
    page.click("text=Create a topic")
    page.fill("#f-slug", "Weekly News")
    page.click("main button[type=submit]")
    assert page.title().startswith("Error: ")
    assert page.evaluate("document.activeElement.className") == "error-summary"
    assert page.input_value("#f-slug") == "Weekly News"
    check(page, screenshot_dir, "02-topic-new-error")
    page.fill("#f-slug", "weekly")
    page.fill("#f-name", "Weekly news")
    page.fill("#f-description", "Every Monday morning")
    page.click("main button[type=submit]")
    assert "Topic “Weekly news” created." in page.locator("[role=status]").first.inner_text()
    check(page, screenshot_dir, "03-topics-list")

    page.goto(f"{base}/admin/subscribers")
    assert "No subscribers yet" in page.content()
    check(page, screenshot_dir, "04-subscribers-empty")
    page.goto(f"{base}/admin/subscribers/import")
    check(page, screenshot_dir, "05-import-form")
    page.set_input_files(
        "#f-file", files=[{"name": "people.csv", "mimeType": "text/csv", "buffer": CSV.encode()}]
    )
    page.select_option("#f-topic", "weekly")
    page.fill("#f-consent_source", "sign-up sheet at the Lyon fair")
    page.click("form[action='/admin/subscribers/import'] button[type=submit]")
    assert page.title().startswith("Error: ")  # the attestation is not ticked
    assert "Confirm that everyone" in page.locator(".error-summary").inner_text()
    assert page.input_value("#f-consent_source") == "sign-up sheet at the Lyon fair"
    check(page, screenshot_dir, "06-import-error")
    page.set_input_files(
        "#f-file", files=[{"name": "people.csv", "mimeType": "text/csv", "buffer": CSV.encode()}]
    )
    page.check("#f-attest")
    page.click("form[action='/admin/subscribers/import'] button[type=submit]")
    page.wait_for_url(f"{base}/admin/imports/*")
    page.wait_for_selector("text=The import is finished.")
    errors = page.locator("table tbody tr").all_inner_texts()
    assert any("3" in row and "bob-at-example.org" in row for row in errors), errors
    assert any("5" in row and "unknown topic: nosuchtopic" in row for row in errors), errors
    check(page, screenshot_dir, "07-import-report")

    page.goto(f"{base}/admin/subscribers")
    check(page, screenshot_dir, "08-subscribers-list")
    page.fill("#f-q", "archer")
    page.click("form[role=search] button[type=submit]")
    assert "q=archer" in page.url
    assert page.locator("table tbody tr").count() == 1
    check(page, screenshot_dir, "09-subscribers-search")
    page.click("text=ann@example.org")
    assert page.locator("h1").inner_text() == "ann@example.org"
    assert "sign-up sheet at the Lyon fair" in page.content()
    check(page, screenshot_dir, "10-subscriber")
    page.click("text=Edit")
    check(page, screenshot_dir, "11-subscriber-edit")
    page.go_back()
    page.click("text=Blocklist…")
    check(page, screenshot_dir, "12-blocklist-confirm")
    page.go_back()
    page.click("text=Erase…")
    assert "cannot be undone" in page.content()
    check(page, screenshot_dir, "13-erase-confirm")
    page.click("main button.danger")
    page.wait_for_url(f"{base}/admin/subscribers")
    assert "ann@example.org is erased" in page.locator("[role=status]").first.inner_text()
    assert "ann@example.org</a>" not in page.content()

    page.goto(f"{base}/admin/subscribers/new")
    check(page, screenshot_dir, "14-subscriber-new")
    page.goto(f"{base}/admin/topics")
    page.click("text=Delete…")
    check(page, screenshot_dir, "15-topic-delete-confirm")
