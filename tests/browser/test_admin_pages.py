"""Dashboard, Users and API tokens in Chromium: every page passes axe-core and gets a
desktop and a phone screenshot; the token secret is shown once and the revoke asks first."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import Session

from app.db import get_engine
from app.models import Campaign, CampaignStatus, Role, Subscriber, SubscriberStatus, utcnow
from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import shoot


def _seed() -> None:
    now = utcnow()
    with Session(get_engine()) as db:
        for n in range(60):
            status = SubscriberStatus.ACTIVE if n % 7 else SubscriberStatus.UNSUBSCRIBED
            db.add(
                Subscriber(
                    email=f"p{n}@example.org",
                    status=status,
                    created_at=now - timedelta(days=(n * 5) % 29, hours=n),
                )
            )
        db.add(
            Campaign(name="Autumn sale", subject="s", status=CampaignStatus.RUNNING, started_at=now)
        )
        db.add(
            Campaign(
                name="Winter news",
                subject="s",
                status=CampaignStatus.SCHEDULED,
                send_at=now + timedelta(days=2),
            )
        )
        db.commit()


def test_dashboard_users_and_tokens(marketer, screenshot_dir: Path) -> None:
    _seed()
    page = marketer(Role.ADMIN, email="boss@example.org")
    base = page.base
    assert page.locator("svg[role=img] title").text_content() == "People on file, last 30 days"
    page.click("details summary:has-text('The numbers')")
    assert_accessible(page, "dashboard")
    shoot(page, screenshot_dir, "1-dashboard")

    page.goto(f"{base}/admin/users/new")
    page.fill("#f-email", "ed@example.org")
    page.select_option("#f-role", "editor")
    page.fill("#f-password", "long enough pw")
    page.fill("#f-password_again", "not the same pw")
    page.click("form[action='/admin/users'] button[type=submit]")
    assert page.title().startswith("Error: ")
    assert_accessible(page, "new user with an error")
    shoot(page, screenshot_dir, "2-new-user-error")
    page.fill("#f-password", "long enough pw")
    page.fill("#f-password_again", "long enough pw")
    page.click("form[action='/admin/users'] button[type=submit]")
    assert "can now sign in as editor" in page.locator("[role=status]").inner_text()
    assert_accessible(page, "user page")
    shoot(page, screenshot_dir, "3-user")

    page.click("text=Disable…")
    assert_accessible(page, "disable confirmation")
    shoot(page, screenshot_dir, "4-disable-confirm")
    page.click("button:has-text('Disable ed@example.org')")
    assert "is disabled" in page.locator("[role=status]").inner_text()

    page.goto(f"{base}/admin/users")
    assert_accessible(page, "users")
    shoot(page, screenshot_dir, "5-users")

    page.goto(f"{base}/admin/tokens")
    assert_accessible(page, "tokens, empty")
    shoot(page, screenshot_dir, "6-tokens-empty")
    page.click("main >> text=New token")
    page.fill("#f-name", "CRM sync")
    page.click("form[action='/admin/tokens'] button[type=submit]")
    secret = page.input_value("#secret")
    assert secret.startswith("octo_")
    assert_accessible(page, "token created")
    shoot(page, screenshot_dir, "7-token-created")
    page.click("text=Done: back to API tokens")
    assert secret not in page.content()
    assert_accessible(page, "tokens")
    shoot(page, screenshot_dir, "8-tokens")
    page.click("text=Revoke…")
    assert_accessible(page, "revoke confirmation")
    shoot(page, screenshot_dir, "9-revoke-confirm")
    page.click("button:has-text('Revoke the token')")
    assert "is revoked" in page.locator("[role=status]").inner_text()


def test_a_viewer_meets_the_403_page(marketer, screenshot_dir: Path) -> None:
    page = marketer(Role.VIEWER)
    response = page.goto(f"{page.base}/admin/users")
    assert response.status == 403
    assert "needs the admin role" in page.content()
    assert_accessible(page, "403")
    shoot(page, screenshot_dir, "403")
