"""A provider reports a hard bounce for a message it had accepted: the send row turns
`bounced`, and the campaign's progress counters follow it, so progress, reports and
metrics say what `count(*)` over the send rows says (they read the counters only)."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.campaigns import service
from app.db import session_scope
from app.models import Subscriber
from tests.sending.test_counters import counted, progress, start
from tests.support.campaigns import (
    BackgroundWorker,
    bulk_subscribers,
    campaign_status,
    configure_sending,
    make_topic,
)
from tests.support.smtp_sink import SmtpSink
from tests.support.wait import wait_until
from tests.support.webhooks import Mailed, mailgun_signature
from tests.webhooks.conftest import Hooks
from tests.webhooks.test_mailgun import _failed


def test_a_later_bounce_moves_the_progress_counters(
    hooks: Hooks, admin_token: str, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    with session_scope() as s:
        news = make_topic(s, "news").id
    emails = bulk_subscribers(news, 3)  # type: ignore[arg-type]
    settings = configure_sending(monkeypatch, smtp_sink.url, pool_size="1")
    api = hooks.client
    api.headers["Authorization"] = f"Bearer {admin_token}"  # the webhook itself needs none
    campaign_id = start(api)
    with BackgroundWorker(settings):
        wait_until(lambda: campaign_status(campaign_id) == "done", 60, message="campaign done")
    [received] = [m for m in smtp_sink.messages if m.rcpt == [emails[1]]]
    with session_scope() as s:
        bob = s.exec(select(Subscriber).where(Subscriber.email == emails[1])).one()
    who = Mailed(
        subscriber_id=bob.id,  # type: ignore[arg-type]
        campaign_id=campaign_id,
        email=emails[1],
        message_id=str(received.parsed["Message-ID"]),
        verp=received.mail_from,
        topic_ids=[news],  # type: ignore[list-item]
    )
    body = {"signature": mailgun_signature(), "event-data": _failed(who, "permanent", "lb-1")}
    answer = api.post("/webhooks/mailgun", json=body)
    assert answer.json()["actions"] == ["bounced"], answer.text

    assert counted(campaign_id)["bounced"] == 1
    assert progress(campaign_id) == counted(campaign_id)  # sent 2, bounced 1, total 3
    with session_scope() as s:
        assert service.progress(s, service.get_campaign(s, campaign_id)).sent == 2
