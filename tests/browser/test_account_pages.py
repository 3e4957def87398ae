"""A subscriber in a real browser on /account (issue 15): sign in with the link read from the
real SMTP capture, set a password, sign out and back in with it, change the address with
the link mailed to the new one, leave everything; and the subscriber's session opens
neither /admin nor /api/v1. Screenshots of each page, desktop and phone."""

from __future__ import annotations

import re

from sqlmodel import Session, select

from app.db import get_engine
from app.models import Subscriber, Subscription, SubscriptionStatus, Topic
from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import DESKTOP, shoot
from tests.support.unsubscribe import subscriber_status, suppressed
from tests.support.wait import wait_until

PASSWORD = "my own long password"


def _seed() -> int:
    with Session(get_engine(), expire_on_commit=False) as session:
        topic = Topic(slug="news", name="Monthly news")
        session.add(topic)
        session.flush()
        jane = Subscriber(email="jane@example.com", name="Jane Doe")
        session.add(jane)
        session.flush()
        session.add(
            Subscription(
                subscriber_id=jane.id, topic_id=topic.id, status=SubscriptionStatus.SUBSCRIBED
            )
        )
        session.commit()
        return int(jane.id)


def _link(mailbox, address: str, seen: int) -> str:
    """The /account link of the newest mail to `address`, once more than `seen` arrived."""
    mails = wait_until(
        lambda: [m for rcpts, m in mailbox if address in rcpts][seen:],
        message=f"a mail to {address}",
    )
    text = mails[-1].get_body(("plain",)).get_content()
    return re.search(r"(http://127\.0\.0\.1:\d+/account/\S+)", text).group(1)


def test_account_sign_in_password_and_address_change(
    mailbox, browser, live_server: str, screenshot_dir
) -> None:
    # `mailbox` first: the server must start with OCTOMAIL_SMTP_URLS pointing at it.
    subscriber_id = _seed()
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(30_000)

    page.goto(f"{live_server}/account")
    shoot(page, screenshot_dir, "01-sign-in")
    assert_accessible(page, "sign-in")
    page.fill("#link-email", "jane@example.com")
    page.click("text=Email me a sign-in link")
    page.wait_for_selector("text=Check your inbox")
    shoot(page, screenshot_dir, "02-link-sent")

    page.goto(_link(mailbox, "jane@example.com", 0))
    shoot(page, screenshot_dir, "03-link-button")
    page.click("button:has-text('Sign in')")
    page.wait_for_selector("text=jane@example.com")
    assert page.url == f"{live_server}/account"
    assert page.is_checked("text=Monthly news")
    shoot(page, screenshot_dir, "04-account")
    assert_accessible(page, "account")

    # A password, then out and back in with it.
    page.fill("#password", PASSWORD)
    page.fill("#password-again", PASSWORD)
    page.click("text=Set my password")
    page.wait_for_selector("text=Your password is set.")
    page.click("button:has-text('Sign out')")
    page.wait_for_selector("text=Sign in with your password")
    page.fill("#pw-email", "jane@example.com")
    page.fill("#pw-password", "not my password")
    page.click("button:has-text('Sign in')")
    page.wait_for_selector("text=The address or the password is not right.")
    shoot(page, screenshot_dir, "05-wrong-password")
    page.fill("#pw-email", "jane@example.com")
    page.fill("#pw-password", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_selector("text=Your consent history")

    # A new address: nothing changes until the link mailed to it is used.
    page.fill("#new-email", "jane.doe@example.net")
    page.click("text=Send a confirmation link to the new address")
    page.wait_for_selector("text=We sent a link to the new address.")
    shoot(page, screenshot_dir, "06-change-asked")
    with Session(get_engine()) as session:
        assert session.get(Subscriber, subscriber_id).email == "jane@example.com"
    page.goto(_link(mailbox, "jane.doe@example.net", 0))
    shoot(page, screenshot_dir, "07-change-confirm")
    page.click("button:has-text('Confirm')")
    page.wait_for_selector("text=Your address is changed.")
    shoot(page, screenshot_dir, "08-changed")
    page.goto(f"{live_server}/account")
    page.wait_for_selector("text=jane.doe@example.net")
    with Session(get_engine()) as session:
        assert session.get(Subscriber, subscriber_id).email == "jane.doe@example.net"
        kept = session.exec(select(Subscription).where(Subscription.subscriber_id == subscriber_id))
        assert [s.status for s in kept] == [SubscriptionStatus.SUBSCRIBED]

    # Leaving everything: one button, the same act as the preference centre's.
    page.click("button:has-text('Unsubscribe from all emails')")
    page.wait_for_selector("text=You are unsubscribed from everything.")
    assert not page.is_checked("text=Monthly news")
    shoot(page, screenshot_dir, "09-left-everything")
    assert_accessible(page, "left everything")
    assert subscriber_status(subscriber_id) == "unsubscribed"
    assert suppressed("jane.doe@example.net")

    # The subscriber's session is no key to the marketers' app or the API, even when its
    # cookie is sent to every path.
    token = next(c["value"] for c in context.cookies() if c["name"] == "octomail_account")
    context.add_cookies(
        [
            {"name": name, "value": token, "url": f"{live_server}/", "httpOnly": True}
            for name in ("octomail_account", "octomail_session")
        ]
    )
    page.goto(f"{live_server}/admin/")
    assert "/admin/login" in page.url
    shoot(page, screenshot_dir, "10-admin-refused")
    assert page.request.get(f"{live_server}/api/v1/subscribers").status == 401
    answer = page.request.get(
        f"{live_server}/api/v1/subscribers", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status == 401
    context.close()
