"""Segments, inbox, outbox and preflight pages in Chromium: the builder with htmx (add a
row, count, an error), the inbox with a waiting message, the outbox with a stored
newsletter in its locked frame, the preflight checklist; axe-core on each and screenshots
at 1280x800 and 375x812."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import PHONE, shoot


def _no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


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
    assert _no_sideways_scroll(page), f"{label}: sideways scroll on a phone: {wide}"
    assert_accessible(page, f"{label} on a phone")
    page.set_viewport_size(size)


def _people() -> None:
    from app.db import session_scope
    from tests.support.campaigns import add_subscriber, make_topic

    with session_scope() as s:
        make_topic(s, "news", "News")
        for n, city in enumerate(["Paris", "Lyon", "Paris", "Nantes"]):
            add_subscriber(
                s, f"person{n}@example.org", name=f"Person {n}", attributes={"city": city}
            )


def test_segment_pages(marketer, screenshot_dir: Path) -> None:
    _people()
    page = marketer()
    base = page.base
    page.goto(f"{base}/admin/segments")
    _check(page, screenshot_dir, "1-empty-list", "segments, empty")

    page.click("text=Build a segment")
    page.fill("#f-name", "Paris")
    page.select_option("#f-field_0", "attributes")
    page.fill("#f-key_0", "city")
    page.fill("#f-value_0", "Paris")
    page.click("button:has-text('Add a rule')")  # htmx swaps the rules only
    page.locator("#f-field_1").wait_for()
    assert page.input_value("#f-value_0") == "Paris"
    page.select_option("#f-field_1", "status")
    assert not page.locator("#f-key_1").is_visible()  # attribute name only for attributes
    page.fill("#f-value_1", "active")
    page.click("button:has-text('Count matches')")
    page.locator("#count [role=status]").wait_for()
    assert "2 subscribers match" in page.locator("#count").inner_text()
    _check(page, screenshot_dir, "2-builder-counted", "segment builder with a count")

    page.select_option("#f-field_1", "opened")
    page.select_option("#f-op_1", "<")
    page.fill("#f-value_1", "soon")
    page.click("button:has-text('Save segment') >> nth=-1")
    assert page.title().startswith("Error: ")
    assert page.get_attribute("#f-value_1", "aria-invalid") == "true"
    _check(page, screenshot_dir, "3-builder-error", "segment builder with an error")

    page.click("button:has-text('Remove rule 2')")
    page.locator("#f-field_1").wait_for(state="detached")  # no eval: the CSP forbids it
    page.click("button:has-text('Save segment') >> nth=-1")
    page.wait_for_url(f"{base}/admin/segments/*")
    assert "Segment “Paris” created." in page.locator("[role=status]").first.inner_text()
    _check(page, screenshot_dir, "4-saved", "saved segment")

    page.goto(f"{base}/admin/segments")
    _check(page, screenshot_dir, "5-list", "segments list")
    page.click("text=Delete…")
    _check(page, screenshot_dir, "6-delete", "delete a segment")


def test_inbox_pages(marketer, screenshot_dir: Path) -> None:
    from app.db import session_scope
    from app.models import InboundMessage, InboundStatus

    with session_scope() as s:
        s.add(
            InboundMessage(
                source="imap://info@example.org/INBOX",
                uid="1",
                message_id="<a1@example.net>",
                from_addr="ann@example.org",
                subject="Re: Our November update",
                verdict="other",
                status=InboundStatus.REVIEW,
                reason="negated opt-out wording (don't unsubscribe): needs a person",
                evidence={
                    "rule": "negated",
                    "written": "Please don't unsubscribe me, I love it! <b>really</b>\n\nAnn",
                },
                folder="Review",
            )
        )
    page = marketer()
    page.goto(f"{page.base}/admin/inbox")
    assert "<b>really</b>" in page.locator(".sender-text").inner_text()
    _check(page, screenshot_dir, "1-waiting", "inbox")
    page.click("text=Re: Our November update")
    _check(page, screenshot_dir, "2-message", "inbox message")
    page.click("button:has-text('Dismiss')")
    page.wait_for_url(f"{page.base}/admin/inbox")
    assert "Message dismissed." in page.locator("[role=status]").first.inner_text()
    _check(page, screenshot_dir, "3-empty", "inbox, nothing waiting")


@pytest.fixture
def embedded(settings_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from app.settings import get_settings

    monkeypatch.setenv("OCTOMAIL_SMTP_URLS", "")
    get_settings.cache_clear()


def test_outbox_pages(embedded, marketer, screenshot_dir: Path) -> None:
    from app.campaigns.service import create_campaign
    from app.db import session_scope
    from app.models import Campaign
    from app.sending.catcher import MaildirHandler, outbox_path
    from app.sending.render import SAMPLE, prepare_campaign, render_message
    from app.settings import get_settings
    from tests.support.campaigns import make_topic

    settings = get_settings()
    with session_scope() as s:
        make_topic(s, "news", "News")
        campaign = create_campaign(
            s,
            name="November",
            subject="Our November update",
            body="# November\n\nHello {{ first_name }}, the garden club meets on **Tuesday**.",
            topics=["news"],
        )
        campaign = s.get(Campaign, campaign.id)
        data = render_message(
            prepare_campaign(campaign, settings=settings), SAMPLE, settings=settings
        )
    catcher = MaildirHandler(outbox_path(settings))
    catcher.store(data.envelope_from, data.rcpt, data.data)
    page = marketer()
    page.goto(f"{page.base}/admin/outbox")
    _check(page, screenshot_dir, "1-list", "outbox")
    page.click("text=Our November update")
    frame = page.frame_locator("iframe[title='The message’s HTML']")
    assert "garden club" in frame.locator("body").inner_text()
    _check(page, screenshot_dir, "2-message", "outbox message")


def test_preflight_page(marketer, screenshot_dir: Path) -> None:
    from app.campaigns.service import create_campaign
    from app.db import session_scope
    from tests.support.campaigns import make_topic

    with session_scope() as s:
        make_topic(s, "news", "News")
        campaign = create_campaign(
            s,
            name="November",
            subject="Our November update: everything the garden club plans before the winter",
            body='Hello! <img src="https://example.org/cat.png">',
            topics=["news"],
        )
    page = marketer()
    page.goto(f"{page.base}/admin/campaigns/{campaign.id}/preflight")
    assert "to fix before sending" in page.locator("#preflight").inner_text()
    _check(page, screenshot_dir, "1-checklist", "preflight")
