"""Who a campaign reaches (marketing vs transactional, attribute filters, suppression) and
the queue underneath: claims are disjoint, expired leases come back, nothing is lost."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from app.campaigns import service
from app.compose import sending_hooks
from app.db import get_engine, session_scope
from app.mail.addresses import email_hmac
from app.models import (
    Channel,
    Scope,
    Send,
    SubscriberStatus,
    SubscriptionStatus,
    utcnow,
)
from app.sending.store import SendStore, recover_expired
from app.settings import get_settings
from app.subscribers.consent import suppress
from app.subscribers.optout import unsubscribe
from tests.support.campaigns import (
    add_subscriber,
    bulk_subscribers,
    create_campaign,
    make_topic,
    send_counts,
)

SUB, UNSUB, UNCONF = (
    SubscriptionStatus.SUBSCRIBED,
    SubscriptionStatus.UNSUBSCRIBED,
    SubscriptionStatus.UNCONFIRMED,
)


@pytest.fixture
def people(settings_env: dict[str, str]) -> dict[str, int]:
    """One person per case, all on topic `news` (plus `offers` for some)."""
    with session_scope() as s:
        news, offers = make_topic(s, "news").id, make_topic(s, "offers").id
        cases = {
            "active": ({news: SUB}, SubscriberStatus.ACTIVE, {"country": "FR", "vip": True}),
            "both": ({news: SUB, offers: SUB}, SubscriberStatus.ACTIVE, {"country": "DE"}),
            "topic_optout": ({news: UNSUB}, SubscriberStatus.ACTIVE, {"country": "FR"}),
            "unconfirmed": ({news: UNCONF}, SubscriberStatus.ACTIVE, {}),
            "bounced": ({news: SUB}, SubscriberStatus.BOUNCED, {}),
            "complained": ({news: SUB}, SubscriberStatus.COMPLAINED, {}),
            "blocklisted": ({news: SUB}, SubscriberStatus.BLOCKLISTED, {}),
            "offers_only": ({offers: SUB}, SubscriberStatus.ACTIVE, {"country": "FR"}),
            "all_optout": ({news: SUB}, SubscriberStatus.ACTIVE, {"country": "FR"}),
            "erased": ({news: SUB}, SubscriberStatus.ACTIVE, {}),
            "never_confirmed_optout": ({news: UNCONF}, SubscriberStatus.ACTIVE, {}),
        }
        ids = {}
        for name, (topics, status, attrs) in cases.items():
            ids[name] = add_subscriber(
                s, f"{name}@example.org", topics, status=status, attributes=attrs
            ).id
        # The person's own opt-out from everything: unsubscribed + suppressed ("link").
        unsubscribe(s, subscriber=ids["all_optout"], scope=Scope.ALL, channel=Channel.LINK)
    with session_scope() as s:
        from app.models import Subscriber
        from app.subscribers.rights import erase

        erase(s, s.get(Subscriber, ids["erased"]), channel=Channel.ADMIN)  # type: ignore[arg-type]
    return ids


def claim_all(campaign_id: int) -> set[str]:
    """Start the campaign, claim everything, return the addresses a worker would send to."""
    settings = get_settings()
    store = SendStore(get_engine(), settings, "test-worker", sending_hooks())
    info = store.campaign_info(campaign_id)
    jobs, _ = store.claim(info, 1000)  # type: ignore[arg-type]
    return {j.email.split("@")[0] for j in jobs}


def start(topics: list[str], **fields: object) -> int:
    """Send now, then write the audience (what a worker does next, in the background)."""
    with session_scope() as s:
        campaign = create_campaign(s, topics, **fields)
        service.send_now(s, campaign.id)  # type: ignore[arg-type]
        campaign_id: int = campaign.id  # type: ignore[assignment]
    assert service.prepare(get_settings(), campaign_id) is not None
    return campaign_id


def test_marketing_reaches_only_active_confirmed_subscribers(people: dict[str, int]) -> None:
    campaign_id = start(["news", "offers"])
    assert claim_all(campaign_id) == {"active", "both", "offers_only"}


def test_transactional_also_reaches_marketing_opt_outs_but_never_bounces_or_erased(
    people: dict[str, int],
) -> None:
    campaign_id = start(["news"], category="transactional")
    assert claim_all(campaign_id) == {"active", "both", "topic_optout", "all_optout"}


def test_a_suppression_for_bounce_blocks_even_transactional(people: dict[str, int]) -> None:
    with session_scope() as s:
        suppress(s, email_hmac("topic_optout@example.org"), reason="bounce")
    campaign_id = start(["news"], category="transactional")
    assert claim_all(campaign_id) == {"active", "both", "all_optout"}
    assert send_counts(campaign_id) == {"sending": 3, "skipped": 1}


def test_attribute_filter_is_equality_on_json_attributes(people: dict[str, int]) -> None:
    assert claim_all(start(["news", "offers"], attribute_filter={"country": "FR"})) == {
        "active",
        "offers_only",
    }
    assert claim_all(start(["news"], attribute_filter={"country": ["DE", "IT"]})) == {"both"}
    assert claim_all(start(["news"], attribute_filter={"vip": True, "country": "FR"})) == {"active"}
    assert claim_all(start(["news"], attribute_filter={"vip": "true"})) == set()


def test_one_row_per_recipient_even_when_started_twice(people: dict[str, int]) -> None:
    campaign_id = start(["news", "offers"])
    with session_scope() as s:
        campaign = service.get_campaign(s, campaign_id)
        from app.campaigns.audience import materialise

        assert (
            materialise(
                s.connection(),
                campaign_id=campaign_id,
                category="marketing",
                attribute_filter={},
                now=utcnow(),
            )
            == 0
        )
    with get_engine().connect() as conn:
        total = conn.execute(
            sa.select(sa.func.count()).where(Send.campaign_id == campaign_id)
        ).scalar_one()  # type: ignore[arg-type]
    assert total == 3
    assert campaign.status == "running"


def test_concurrent_claims_are_disjoint_and_expired_leases_return(
    settings_env: dict[str, str],
) -> None:
    with session_scope() as s:
        topic_id = make_topic(s, "news").id
    bulk_subscribers(topic_id, 400)  # type: ignore[arg-type]
    campaign_id = start(["news"])
    settings = get_settings()
    claimed: dict[str, list[int]] = {}

    def worker(name: str) -> None:
        store = SendStore(get_engine(), settings, name, sending_hooks())
        info = store.campaign_info(campaign_id)
        mine = claimed.setdefault(name, [])
        while True:
            jobs, _ = store.claim(info, 25)  # type: ignore[arg-type]
            if not jobs:
                return
            mine.extend(j.send_id for j in jobs)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    every = [sid for ids in claimed.values() for sid in ids]
    assert len(every) == len(set(every)) == 400  # nobody claimed a row twice

    # Nothing recorded: the workers "died". Their leases expire, the rows come back.
    assert recover_expired(get_engine()) == 0  # leases still valid
    with get_engine().begin() as conn:
        conn.execute(
            sa.update(Send)
            .where(Send.campaign_id == campaign_id)  # type: ignore[arg-type]
            .values(lease_until=utcnow() - settings.send_lease)
        )
    assert recover_expired(get_engine()) == 400
    store = SendStore(get_engine(), settings, "survivor", sending_hooks())
    jobs, _ = store.claim(store.campaign_info(campaign_id), 1000)  # type: ignore[arg-type]
    assert len(jobs) == 400
