"""The batched writer: unique counts exact across batches and writers, a burst of 10,000
opens recorded in a few transactions, hits that must not count (wrong tag, no consent,
campaign switch off) counting nothing."""

from __future__ import annotations

import threading
from datetime import timedelta

import sqlalchemy as sa

from app.db import get_engine, session_scope
from app.link_secrets import link_tag
from app.models import Send, SubscriptionStatus, TrackingEvent, TrackingFirst, utcnow
from app.tracking.record import Hit, record_hits
from app.tracking.summary import tracking_summary
from app.tracking.writer import EventWriter, _record
from tests.support.campaigns import add_subscriber, create_campaign, make_topic

SUB = SubscriptionStatus.SUBSCRIBED


def _campaign_with_sends(
    people: int, **campaign_fields: object
) -> tuple[int, list[tuple[int, str]]]:
    """A campaign sent an hour ago to `people` people who allow tracking: (id, [(subscriber,
    tag)])."""
    with session_scope() as s:
        topic = make_topic(s, "news")
        campaign = create_campaign(s, ["news"], **campaign_fields)
        who = []
        for i in range(people):
            person = add_subscriber(s, f"p{i}@example.org", {topic.id: SUB})
            person.tracking_allowed = True
            s.add(
                Send(
                    campaign_id=campaign.id,
                    subscriber_id=person.id,
                    status="sent",
                    sent_at=utcnow() - timedelta(hours=1),
                )
            )
            who.append((person.id, link_tag(person.link_secret)))
    return int(campaign.id), who


def _record_now(hits: list[Hit]) -> int:
    with get_engine().begin() as conn:
        return record_hits(conn, hits, tracks_by_default=False)


def test_unique_counts_are_exact_across_batches(settings_env) -> None:
    cid, who = _campaign_with_sends(3)
    at = utcnow()
    (a, ta), (b, tb), _ = who
    url, other = "https://x.example/1", "https://x.example/2"
    assert _record_now([Hit("open", cid, a, ta, at), Hit("open", cid, a, ta, at)]) == 2
    _record_now([Hit("open", cid, a, ta, at), Hit("click", cid, a, ta, at, url=url)])
    _record_now(
        [
            Hit("click", cid, b, tb, at, url=url),
            Hit("click", cid, b, tb, at, url=other),
            Hit("click", cid, b, tb, at, url=url, machine="head"),
        ]
    )
    with session_scope() as s:
        summary = tracking_summary(s, cid)
    # a: 3 opens (1 unique), 1 click; b: no open, so its first click is its open
    assert (summary.opens_unique, summary.opens_total, summary.opens_machine) == (2, 4, 0)
    assert (summary.clicks_unique, summary.clicks_total, summary.clicks_machine) == (2, 3, 1)
    assert {(link.url, link.unique, link.total, link.machine) for link in summary.links} == {
        (url, 2, 2, 1),
        (other, 1, 1, 0),
    }


def test_hits_that_must_not_count_count_nothing(settings_env) -> None:
    cid, who = _campaign_with_sends(3, track_clicks=False)
    (a, ta), (b, tb), (c, tc) = who
    with session_scope() as s:
        from app.models import Subscriber

        s.get(Subscriber, b).tracking_allowed = False
        s.get(Subscriber, c).tracking_allowed = None  # never chose, default off
    at = utcnow()
    counted = _record_now(
        [
            Hit("open", cid, a, "0" * 12, at),  # a tag that is not a's (erased, id reused...)
            Hit("open", cid, b, tb, at),
            Hit("open", cid, c, tc, at),
            Hit("click", cid, a, ta, at, url="https://x.example/"),  # clicks off for this campaign
            Hit("open", cid + 1000, a, ta, at),  # no such send
        ]
    )
    assert counted == 0
    with get_engine().begin() as conn:
        assert record_hits(conn, [Hit("open", cid, c, tc, at)], tracks_by_default=True) == 1


def test_two_writers_at_once_still_count_one_first_open(settings_env) -> None:
    cid, [(a, ta)] = _campaign_with_sends(1)
    at = utcnow()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            barrier.wait()
            _record_now([Hit("open", cid, a, ta, at)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with session_scope() as s:
        summary = tracking_summary(s, cid)
    assert (summary.opens_unique, summary.opens_total) == (1, 2)


def test_a_burst_of_10000_opens_goes_in_a_few_transactions(settings_env) -> None:
    cid, who = _campaign_with_sends(50)
    batches: list[int] = []

    def write(hits):
        batches.append(len(hits))
        return _record(hits)

    writer = EventWriter(write, max_batch=2000)
    # All within one hour that starts well after the sends were delivered (an hour ago):
    # a fixed hour made the share counted as machine opens (within 10 s of delivery, or
    # before it) depend on the time of day the test ran.
    hour = utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    for i in range(10_000):
        sid, tag = who[i % len(who)]
        writer.submit(Hit("open", cid, sid, tag, hour + timedelta(seconds=i % 3600)))
    assert writer.flush(120)
    writer.close()
    assert sum(batches) == 10_000
    assert len(batches) <= 10
    with session_scope() as s:
        summary = tracking_summary(s, cid)
        firsts = s.exec(sa.select(sa.func.count()).select_from(TrackingFirst)).scalar_one()
        events = s.exec(sa.select(sa.func.count()).select_from(TrackingEvent)).scalar_one()
    assert (summary.opens_unique, summary.opens_total) == (50, 10_000)
    assert [h.opens for h in summary.hours] == [10_000]
    assert firsts == 50
    assert events == 10_000
