"""Migration 0018: sends reported bounced after sending, before sends followed such reports,
become `bounced`, and the progress counters move with them; other sends, and those of people
taken off after repeated soft bounces, stay as they were.
0018 changes no schema, so the rows are written with today's models at 0017."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session

from app.models import (
    Campaign,
    CampaignStatus,
    Channel,
    ConsentAction,
    ConsentEvent,
    Send,
    SendStatus,
    Subscriber,
)
from tests.support.migrations import fresh_database, migrator


def test_0018_marks_earlier_later_bounces_and_moves_their_counters(db_url, tmp_path):
    with fresh_database(db_url, tmp_path) as engine:
        migrate = migrator(engine)
        migrate("upgrade", "0017_spare")
        with Session(engine) as s:
            eve, bob = Subscriber(email="eve@example.com"), Subscriber(email="bob@example.com")
            campaign = Campaign(name="News", subject="Hi", status=CampaignStatus.DONE)
            s.add_all([eve, bob, campaign])
            s.flush()
            for person in (eve, bob):
                s.add(Send(campaign_id=campaign.id, subscriber_id=person.id, status="sent"))
            # Eve's DSN arrived after sending: a bounce opt-out tied to the campaign. Bob
            # was taken off after repeated soft bounces: his message may still arrive.
            for person, evidence in ((eve, {"rule": "dsn"}), (bob, {"soft_bounces": 3})):
                s.add(
                    ConsentEvent(
                        subscriber_id=person.id,
                        email_hmac=str(person.id) * 64,
                        action=ConsentAction.BOUNCE,
                        channel=Channel.BOUNCE,
                        campaign_id=campaign.id,
                        evidence=evidence,
                    )
                )
            s.commit()
            ids = (campaign.id, eve.id, bob.id)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO campaign_counter (campaign_id, status, shard, n, minute,"
                    " minute_n, previous_n) VALUES (:c, 'total', 0, 2, 0, 0, 0),"
                    " (:c, 'sent', 0, 2, 0, 0, 0)"
                ),
                {"c": ids[0]},
            )
        migrate("upgrade", "0018_later_bounces")
        with engine.connect() as conn:
            sends = dict(conn.execute(text("SELECT subscriber_id, status FROM send")).all())
            counters = dict(
                conn.execute(
                    text("SELECT status, sum(n) FROM campaign_counter GROUP BY status")
                ).all()
            )
        assert sends == {ids[1]: SendStatus.BOUNCED.value, ids[2]: SendStatus.SENT.value}
        assert counters == {"bounced": 1, "sent": 1, "total": 2}
        migrate("upgrade", "head")
