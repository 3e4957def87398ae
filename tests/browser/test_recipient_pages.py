"""A recipient in a real browser: the links of a really sent message, unsubscribe, reload,
undo, then the preference center; a screenshot of each page (desktop and phone)."""

from __future__ import annotations

import email
import email.policy
import re
import smtplib
from pathlib import Path

from sqlmodel import Session, select

from app.db import get_engine
from app.models import (
    Campaign,
    CampaignTopic,
    ConsentEvent,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Topic,
)
from tests.browser.accessibility import assert_accessible
from tests.support.net import free_port

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1024, "height": 768}


def _seed() -> tuple[int, int, dict[str, int]]:
    """Jane, subscribed to News and Offers; Events exists; a campaign on News."""
    with Session(get_engine(), expire_on_commit=False) as session:
        topics = {}
        for slug, name in (
            ("news", "Monthly news"),
            ("offers", "Special offers"),
            ("events", "Events near you"),
        ):
            topic = Topic(slug=slug, name=name, description=f"About {name.lower()}.")
            session.add(topic)
            session.flush()
            topics[slug] = topic.id
        jane = Subscriber(email="jane@example.com", name="Jane Doe")
        session.add(jane)
        session.flush()
        for slug in ("news", "offers"):
            session.add(
                Subscription(
                    subscriber_id=jane.id,
                    topic_id=topics[slug],
                    status=SubscriptionStatus.SUBSCRIBED,
                )
            )
        campaign = Campaign(
            name="November",
            subject="Our November news",
            body="# Hello {{ first_name }}\n\nThe news of the month.",
        )
        session.add(campaign)
        session.flush()
        session.add(CampaignTopic(campaign_id=campaign.id, topic_id=topics["news"]))
        session.commit()
        return jane.id, campaign.id, topics


def _send_and_receive(subscriber_id: int, campaign_id: int) -> email.message.EmailMessage:
    """Render the campaign for Jane with the sending code, deliver it over SMTP to a real
    server (aiosmtpd) and parse what arrived."""
    from aiosmtpd.controller import Controller

    from app.sending.render import Recipient, prepare_campaign, render_message
    from app.settings import get_settings

    received: list[bytes] = []

    class Inbox:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope.original_content or envelope.content)
            return "250 OK"

    settings = get_settings()
    with Session(get_engine()) as session:
        campaign = session.get(Campaign, campaign_id)
        prepared = prepare_campaign(campaign, settings=settings, topic_names=["Monthly news"])
        secret = session.get(Subscriber, subscriber_id).link_secret  # type: ignore[union-attr]
    message = render_message(
        prepared,
        Recipient(id=subscriber_id, email="jane@example.com", name="Jane Doe", link_secret=secret),
        settings=settings,
    )
    port = free_port()
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            smtp.sendmail(message.envelope_from, [message.rcpt], message.data)
    finally:
        controller.stop()
    [raw] = received
    return email.message_from_bytes(raw, policy=email.policy.default)


def _links(message: email.message.EmailMessage) -> tuple[str, str]:
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    [one_click] = re.findall(r"<(https?://[^>]+)>", str(message["List-Unsubscribe"]))
    html = message.get_body(preferencelist=("html",)).get_content()
    footer_unsubscribe = re.search(r'href="([^"]+/u/[^"]+)"', html).group(1)
    preferences = re.search(r'href="([^"]+/preferences/[^"]+)"', html).group(1)
    assert footer_unsubscribe == one_click  # the footer link and the header agree
    return one_click, preferences


def _statuses(subscriber_id: int) -> dict[int, str]:
    with Session(get_engine()) as session:
        rows = session.exec(select(Subscription).where(Subscription.subscriber_id == subscriber_id))
        return {s.topic_id: s.status for s in rows}


def _events(subscriber_id: int) -> list[tuple[str, str]]:
    with Session(get_engine()) as session:
        rows = session.exec(
            select(ConsentEvent)
            .where(ConsentEvent.subscriber_id == subscriber_id)
            .order_by(ConsentEvent.id)
        )
        return [(e.action, e.channel) for e in rows]


def test_unsubscribe_reload_undo_then_preferences(
    browser, live_server: str, screenshot_dir: Path
) -> None:
    jane, campaign, topics = _seed()
    unsubscribe_url, preferences_url = _links(_send_and_receive(jane, campaign))
    assert unsubscribe_url.startswith(live_server + "/u/")

    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, locale="en-GB"
    )
    page = context.new_page()
    page.set_default_timeout(30_000)

    # The page a link scanner would also see: no change.
    page.goto(unsubscribe_url)
    page.get_by_role("heading", name="Unsubscribe", exact=True).wait_for()
    assert "j***@example.com" in page.content()
    assert "Monthly news" in page.content()
    assert _events(jane) == []
    page.screenshot(path=screenshot_dir / "1-unsubscribe-phone.png", full_page=True)
    assert_accessible(page, "1-unsubscribe-phone")

    page.get_by_role("button", name="Unsubscribe", exact=True).click()
    page.get_by_role("heading", name="You are unsubscribed").wait_for()
    page.screenshot(path=screenshot_dir / "2-unsubscribed-phone.png", full_page=True)
    assert_accessible(page, "2-unsubscribed-phone")
    assert _statuses(jane) == {topics["news"]: "unsubscribed", topics["offers"]: "subscribed"}
    assert _events(jane) == [("unsubscribe", "link")]

    page.reload()  # re-posts the form: still the confirmation, nothing new written
    page.get_by_role("heading", name="You are unsubscribed").wait_for()
    assert _events(jane) == [("unsubscribe", "link")]

    page.get_by_role("button", name="Undo: subscribe me again").click()
    page.get_by_role("heading", name="You are subscribed again").wait_for()
    page.screenshot(path=screenshot_dir / "3-undone-phone.png", full_page=True)
    assert_accessible(page, "3-undone-phone")
    assert _statuses(jane)[topics["news"]] == "subscribed"
    assert _events(jane)[-1] == ("resubscribe", "link")

    # The preference center, from the footer link, on a desktop-sized window.
    page.set_viewport_size(DESKTOP)
    page.goto(preferences_url)
    page.get_by_role("heading", name="Your email preferences").wait_for()
    page.screenshot(path=screenshot_dir / "4-preferences-desktop.png", full_page=True)
    assert_accessible(page, "4-preferences-desktop")
    page.get_by_label("Special offers").uncheck()
    page.get_by_label("Events near you").check()
    page.get_by_label("Your name").fill("Jane D.")
    page.get_by_role("button", name="Save my preferences").click()
    page.get_by_role("status").filter(has_text="saved").wait_for()
    page.screenshot(path=screenshot_dir / "5-preferences-saved-desktop.png", full_page=True)
    assert_accessible(page, "5-preferences-saved-desktop")
    assert _statuses(jane) == {
        topics["news"]: "subscribed",
        topics["offers"]: "unsubscribed",
        topics["events"]: "subscribed",
    }
    assert _events(jane)[-3:] == [
        ("unsubscribe", "preferences"),
        ("subscribe", "preferences"),
        ("update", "preferences"),
    ]
    assert page.get_by_label("Special offers").is_checked() is False
    assert page.get_by_label("Events near you").is_checked() is True

    page.set_viewport_size(PHONE)
    page.screenshot(path=screenshot_dir / "6-preferences-phone.png", full_page=True)
    assert_accessible(page, "6-preferences-phone")
    page.goto(preferences_url.replace("/preferences/", "/preferences/", 1) + "/erase")
    page.get_by_role("heading", name="Erase my data").wait_for()
    page.screenshot(path=screenshot_dir / "7-erase-confirm-phone.png", full_page=True)
    assert_accessible(page, "7-erase-confirm-phone")
    context.close()


def test_pages_in_french_and_a_broken_link(browser, live_server: str, screenshot_dir: Path) -> None:
    jane, campaign, _topics = _seed()
    unsubscribe_url, _ = _links(_send_and_receive(jane, campaign))
    context = browser.new_context(viewport=PHONE, is_mobile=True, locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(unsubscribe_url)
    page.get_by_role("heading", name="Se désabonner", exact=True).wait_for()
    assert page.locator("html").get_attribute("lang") == "fr"
    page.screenshot(path=screenshot_dir / "unsubscribe-fr-phone.png", full_page=True)
    assert_accessible(page, "unsubscribe-fr-phone")
    response = page.goto(unsubscribe_url[:-3] + "xyz")  # a mangled copy-paste
    assert response is not None
    assert response.status == 400
    page.screenshot(path=screenshot_dir / "broken-link-fr-phone.png", full_page=True)
    assert_accessible(page, "broken-link-fr-phone")
    assert _events(jane) == []
    context.close()
