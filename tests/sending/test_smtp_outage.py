"""The SMTP relay refuses connections for a while in the middle of a campaign: the campaign
backs off and resumes by itself once the relay is back, with nothing marked failed and
nobody mailed twice beyond what was on the wire when the relay went away.

The outage is scaled to the retry schedule: the worker retries after 0.5 s, 1 s, 2 s, 2 s ...
here where production waits 30 s, 1 min, 2 min, ... (OCTOMAIL_SEND_RETRY_MAX_AGE, 3 days by
default, bounds how long a relay may stay away before a recipient is given up on)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.db import get_engine, session_scope
from app.models import Send
from tests.support.campaigns import (
    BackgroundWorker,
    bulk_subscribers,
    campaign_status,
    configure_sending,
    make_topic,
    send_counts,
)
from tests.support.smtp_sink import SmtpSink
from tests.support.wait import wait_until

RECIPIENTS = 150
POOL = 2
OUTAGE = 6.0  # seconds: twelve times the first retry delay, three times the cap
RETRY = {"retry_base": timedelta(milliseconds=500), "retry_cap": timedelta(seconds=2)}


def _retried_on_refusal(campaign_id: int) -> int:
    """Sends whose last reply says the relay could not be reached."""
    with get_engine().connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    Send.campaign_id == campaign_id,
                    Send.attempts > 0,
                    Send.smtp_reply.like("%cannot connect%"),
                )
            ).scalar_one()
        )  # type: ignore[union-attr]


def test_relay_refusing_connections_is_waited_out_and_nothing_fails(
    api: TestClient, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    with session_scope() as s:
        news = make_topic(s, "news").id
    emails = bulk_subscribers(news, RECIPIENTS)  # type: ignore[arg-type]
    settings = configure_sending(
        monkeypatch, smtp_sink.url, pool_size=str(POOL), smtp_rate_per_second="60"
    )
    created = api.post(
        "/api/v1/campaigns",
        json={"name": "Outage", "subject": "Hi", "body": "Hello", "topics": ["news"]},
    )
    campaign_id = int(created.json()["id"])
    assert api.post(f"/api/v1/campaigns/{campaign_id}/send").status_code == 202

    with BackgroundWorker(settings, **RETRY):
        wait_until(lambda: len(smtp_sink.messages) >= 30, 60, message="sending under way")
        smtp_sink.stop()  # the port is closed: every connection is refused
        time.sleep(OUTAGE / 2)
        assert _retried_on_refusal(campaign_id) > 0, "the worker never met the outage"
        time.sleep(OUTAGE / 2)
        during = send_counts(campaign_id)
        smtp_sink.start()  # back on the same port
        wait_until(
            lambda: campaign_status(campaign_id) == "done",
            60,
            message="the campaign resumed and finished by itself",
        )

    assert not {"failed", "bounced"} & set(during), during
    assert send_counts(campaign_id) == {"sent": RECIPIENTS}
    delivered = smtp_sink.delivered_to()
    assert set(delivered) == set(emails), "a recipient was lost"
    duplicates = sum(n - 1 for n in delivered.values())
    assert duplicates <= POOL, f"{duplicates} sent twice: more than the {POOL} connections held"
