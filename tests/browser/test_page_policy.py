"""The strict content policy in a real browser: the public pages keep their styles, their
forms still post, and Chromium reports no policy violation (issue 9, part 8)."""

from __future__ import annotations

from sqlmodel import Session

from app.db import get_engine
from app.models import Topic
from tests.browser.accessibility import assert_accessible


def test_signup_page_works_under_the_content_policy(browser, live_server: str) -> None:
    with Session(get_engine()) as session:
        session.add(Topic(slug="news", name="Monthly news"))
        session.commit()
    page = browser.new_page()
    page.set_default_timeout(30_000)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    response = page.goto(f"{live_server}/subscribe")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    # public.css loaded: the header is centred by its max-width rule.
    assert page.evaluate("getComputedStyle(document.querySelector('main')).maxWidth") != "none"
    assert_accessible(page, "subscribe")
    page.fill("#email", "not an address")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert_accessible(page, "subscribe with an error")
    page.fill("#email", "browser@example.org")
    page.check("input[name=consent]")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "Check your inbox" in page.content()  # form-action 'self' lets the form post
    assert_accessible(page, "subscribe pending")
    violations = [m for m in console if "Content Security Policy" in m]
    assert violations == []
    page.close()
