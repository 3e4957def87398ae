"""A campaign with something to report, made through the real functions: people signed up
by `subscribe`, a send row each (as the dispatcher leaves them), opt-outs through the one
opt-out function, opens and clicks recorded by tracking's own batch recorder."""

from __future__ import annotations

from datetime import timedelta

from app.db import get_engine, session_scope
from app.link_secrets import link_tag
from app.models import Channel, saved_id, utcnow
from app.subscribers.optout import OptOutRequest, unsubscribe_many
from app.subscribers.signup import subscribe
from app.tracking.record import Hit, record_hits
from tests.support.campaigns import make_topic
from tests.support.inbound import record_campaign_sent


def reported_campaign(people: int = 8, leavers: int = 6, hours: int = 0) -> int:
    """`people` signed up (the first six from "twitter", the rest from "podcast"), all
    mailed; `leavers` leave by one-click and one more complains; when `hours`, each person
    opens once an hour apart (spread over `hours`) and every other one clicks one of two
    links an hour later. Returns the campaign id."""
    with session_scope() as db:
        make_topic(db, "news")
        subscribers = [
            subscribe(
                db,
                email=f"reader{i}@example.org",
                topic_slugs=["news"],
                channel=Channel.API,
                source="twitter" if i < 6 else "podcast",
                preconfirm=True,
            ).subscriber
            for i in range(people)
        ]
        for person in subscribers:
            person.tracking_allowed = True
            db.add(person)
        campaign_id = record_campaign_sent(db, subscribers, days_ago=(hours + 2) / 24)
        requests = [
            OptOutRequest(Channel.ONE_CLICK, subscriber=p, campaign_id=campaign_id)
            for p in subscribers[:leavers]
        ]
        requests.append(
            OptOutRequest(
                Channel.COMPLAINT, subscriber=subscribers[leavers], campaign_id=campaign_id
            )
        )
        unsubscribe_many(db, requests)
        who = [(saved_id(p), link_tag(p.link_secret)) for p in subscribers]
    if hours:
        start = utcnow() - timedelta(hours=hours + 1)
        hits = []
        for n, (sid, tag) in enumerate(who):
            at = start + timedelta(hours=n % hours, minutes=5)
            hits.append(Hit("open", campaign_id, sid, tag, at))
            if n % 2 == 0:
                url = f"https://example.org/{'spring' if n % 4 == 0 else 'offers'}"
                hits.append(Hit("click", campaign_id, sid, tag, at + timedelta(hours=1), url=url))
        with get_engine().begin() as conn:
            record_hits(conn, hits, tracks_by_default=False)
    return campaign_id
