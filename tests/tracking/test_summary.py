"""tracking_summary reads the rollups: zeros for a campaign without events, sums of the
hours, links ordered by people's unique clicks."""

from __future__ import annotations

from datetime import datetime

from app.tracking.summary import HourCount, LinkCount, tracking_summary
from tests.support.campaigns import create_campaign, make_topic
from tests.support.tracking import add_link, add_rollup


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
    add_rollup(session, campaign.id, ten, opens=(2, 5, 1), clicks=(1, 2, 0))
    add_rollup(session, campaign.id, nine, opens=(3, 3, 4), clicks=(2, 3, 6))
    add_rollup(session, other.id, nine, opens=(100, 0, 0))
    add_link(session, campaign.id, "a", "https://a.example/", clicks=(1, 4, 2))
    add_link(session, campaign.id, "b", "https://b.example/", clicks=(2, 2, 0))
    add_link(session, other.id, "a", "https://c.example/")
    session.flush()
    summary = tracking_summary(session, campaign.id)
    assert (summary.opens_unique, summary.opens_total, summary.opens_machine) == (5, 8, 5)
    assert (summary.clicks_unique, summary.clicks_total, summary.clicks_machine) == (3, 5, 6)
    assert summary.hours == [HourCount(nine, 3, 3, 4, 6), HourCount(ten, 5, 2, 1, 0)]
    assert summary.links == [
        LinkCount("https://b.example/", 2, 2, 0),
        LinkCount("https://a.example/", 1, 4, 2),
    ]
