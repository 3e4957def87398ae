"""tracking_summary reads the rollups: zeros for a campaign without events, sums of the
hours, links ordered by people's unique clicks."""

from __future__ import annotations

from datetime import datetime

from app.models import TrackingLink, TrackingRollup
from app.tracking.summary import HourCount, LinkCount, tracking_summary
from tests.support.campaigns import create_campaign, make_topic


def test_a_campaign_without_events_has_zeros(session):
    make_topic(session, "news")
    campaign = create_campaign(session, ["news"])
    summary = tracking_summary(session, campaign.id)
    assert (summary.opens_unique, summary.opens_total, summary.opens_machine) == (0, 0, 0)
    assert (summary.clicks_unique, summary.clicks_total, summary.clicks_machine) == (0, 0, 0)
    assert summary.links == []
    assert summary.hours == []


def test_an_unknown_campaign_has_zeros_too(session):
    summary = tracking_summary(session, 999_999)
    assert summary.opens_total == 0


def test_totals_are_the_sums_of_the_hours_and_links_come_most_clicked_first(session):
    make_topic(session, "news")
    campaign = create_campaign(session, ["news"])
    other = create_campaign(session, ["news"], name="Other")
    nine, ten = datetime(2026, 11, 30, 9), datetime(2026, 11, 30, 10)
    session.add(
        TrackingRollup(
            campaign_id=campaign.id,
            hour=ten,
            opens_unique=2,
            opens_total=5,
            opens_machine=1,
            clicks_unique=1,
            clicks_total=2,
        )
    )
    session.add(
        TrackingRollup(
            campaign_id=campaign.id,
            hour=nine,
            opens_unique=3,
            opens_total=3,
            opens_machine=4,
            clicks_unique=2,
            clicks_total=3,
            clicks_machine=6,
        )
    )
    session.add(TrackingRollup(campaign_id=other.id, hour=nine, opens_unique=100))
    session.add(
        TrackingLink(
            campaign_id=campaign.id,
            url_hash="a",
            url="https://a.example/",
            clicks_unique=1,
            clicks_total=4,
            clicks_machine=2,
        )
    )
    session.add(
        TrackingLink(
            campaign_id=campaign.id,
            url_hash="b",
            url="https://b.example/",
            clicks_unique=2,
            clicks_total=2,
        )
    )
    session.add(TrackingLink(campaign_id=other.id, url_hash="a", url="https://c.example/"))
    session.flush()
    summary = tracking_summary(session, campaign.id)
    assert (summary.opens_unique, summary.opens_total, summary.opens_machine) == (5, 8, 5)
    assert (summary.clicks_unique, summary.clicks_total, summary.clicks_machine) == (3, 5, 6)
    assert summary.hours == [HourCount(nine, 3, 3, 4, 6), HourCount(ten, 5, 2, 1, 0)]
    assert summary.links == [
        LinkCount("https://b.example/", 2, 2, 0),
        LinkCount("https://a.example/", 1, 4, 2),
    ]
