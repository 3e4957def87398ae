"""The dashboard: subscribers by status and their growth, campaigns running, coming up and
ended, the inbox waiting, and the warnings that stop mail or opt-outs."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import Session

from app.db import get_engine
from app.models import (
    Campaign,
    CampaignStatus,
    InboundMessage,
    InboundStatus,
    Lease,
    Role,
    Subscriber,
    SubscriberStatus,
    utcnow,
)
from app.subscribers.stats import growth
from app.web.admin.charts import line_chart, nice_ceiling

# Pages and forms over the domain functions, which their own tests run on both
# databases (tests/conftest.py, `one_database`).
pytestmark = pytest.mark.one_database


def _seed() -> None:
    now = utcnow()
    with Session(get_engine()) as db:
        for n, (status, days_ago) in enumerate(
            [
                (SubscriberStatus.ACTIVE, 40),
                (SubscriberStatus.ACTIVE, 3),
                (SubscriberStatus.ACTIVE, 3),
                (SubscriberStatus.UNSUBSCRIBED, 1),
                (SubscriberStatus.BOUNCED, 0),
            ]
        ):
            db.add(
                Subscriber(
                    email=f"p{n}@example.org",
                    status=status,
                    created_at=now - timedelta(days=days_ago),
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
        db.add(
            Campaign(name="Summer recap", subject="s", status=CampaignStatus.DONE, finished_at=now)
        )
        db.add(Campaign(name="Draft idea", subject="s", status=CampaignStatus.DRAFT))
        db.add(
            InboundMessage(
                source="maildir",
                uid="1",
                subject="Please remove me from this list",
                from_addr="someone@example.com",
                status=InboundStatus.REVIEW,
                reason="a request in free text the reader was not sure of",
            )
        )
        db.commit()


def test_growth_counts_people_on_file_day_by_day(session) -> None:
    _seed()
    days = growth(session, days=30)
    assert len(days) == 30
    assert days[0].total == 1  # the person from 40 days ago
    assert days[-1].day == utcnow().date()
    assert days[-1].total == 5
    assert [d.added for d in days[-4:]] == [2, 0, 1, 1]


def test_chart_axis_ends_on_a_round_number() -> None:
    assert [nice_ceiling(v) for v in (0, 1, 3, 10, 11, 240, 501, 999_999)] == [
        1,
        1,
        5,
        10,
        20,
        500,
        1000,
        1_000_000,
    ]
    chart = line_chart([0, 5, 10], ["a", "b", "c"])
    assert chart.y_ticks[-1][1] == "10"
    assert chart.line.split()[0] == f"{chart.left}.0,{chart.bottom}.0"  # zero on the axis


def test_dashboard_shows_people_campaigns_and_the_inbox(sign_in_as) -> None:
    _seed()
    viewer = sign_in_as(Role.VIEWER)
    page = viewer.client.get("/admin/").text
    assert re.search(r'<span class="stat">5</span> on file', page)
    assert re.search(r'<span class="stat">3</span> active', page)
    assert re.search(r'<span class="stat">1</span> bounced', page)
    assert 'role="img"' in page
    assert '<title id="growth-title">People on file, last 30 days</title>' in page
    assert "<summary>The numbers</summary>" in page
    sending = page.index("Sending now")
    coming = page.index("Coming up")
    ended = page.index("Recently ended")
    assert sending < page.index("Autumn sale") < coming < page.index("Winter news") < ended
    assert page.index("Summer recap") > ended
    assert "Draft idea" not in page
    assert "Inbox: 1 waiting for a person" in page
    assert "Please remove me from this list" in page
    assert "New campaign" not in page  # a viewer cannot make one
    assert "as of " in page


def test_dashboard_warns_about_what_stops_mail(sign_in_as, monkeypatch) -> None:
    from app.settings import get_settings

    admin = sign_in_as(Role.ADMIN)
    page = admin.client.get("/admin/").text
    assert "No postal address" not in page  # the test settings have one
    assert "SMTP is not configured" not in page
    assert "Nobody is reading the info mailbox" in page
    monkeypatch.delenv("OCTOMAIL_POSTAL_ADDRESS")
    monkeypatch.delenv("OCTOMAIL_SMTP_URLS")
    get_settings.cache_clear()
    with Session(get_engine()) as db:
        db.add(
            Lease(name="inbound:maildir", holder="x", expires_at=utcnow() + timedelta(seconds=20))
        )
        db.commit()
    page = admin.client.get("/admin/").text
    assert "No postal address" in page
    assert "SMTP is not configured" in page
    assert "Nobody is reading the info mailbox" not in page
