"""Transactional mail reaches people who opted out of marketing only if they once agreed:
confirmed their sign-up, or were added with attested consent (import, API preconfirm).
A sign-up opted out before it was ever confirmed is `unsubscribed` too, and must not be
reached, neither when the audience is materialised nor when a worker claims its row."""

from __future__ import annotations

import re

import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.compose import sending_hooks
from app.db import get_engine
from app.models import Send, Subscriber, Subscription, utcnow
from app.sending.store import SendStore
from app.settings import get_settings

SUBSCRIBERS = "/api/v1/subscribers"


def _add(api: TestClient, name: str, **fields: object) -> int:
    response = api.post(
        SUBSCRIBERS, json={"email": f"{name}@example.org", "topics": ["news"], **fields}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _people(api: TestClient, mailbox: list) -> dict[str, int]:
    """Four people on `news`, every one of them opted out of everything since."""
    assert api.post("/api/v1/topics", json={"slug": "news", "name": "News"}).status_code == 201
    ids = {"confirmed": _add(api, "confirmed")}
    _, message = mailbox[-1]
    link = re.search(
        r"http://testserver(/confirm/\S+)", message.get_body(("plain",)).get_content()
    ).group(1)
    assert "You are subscribed" in api.post(link).text
    ids["never_confirmed"] = _add(api, "never_confirmed")
    ids["attested"] = _add(api, "attested", preconfirm=True, consent_source="trade fair")
    report = api.post(
        f"{SUBSCRIBERS}/import",
        data={"topic": "news", "consent_source": "fair"},
        files={"file": ("people.csv", b"email\nimported@example.org\n")},
    )
    assert report.json()["imported"] == 1, report.text
    ids["imported"] = api.get(SUBSCRIBERS, params={"q": "imported"}).json()["items"][0]["id"]
    for subscriber_id in ids.values():
        response = api.patch(f"{SUBSCRIBERS}/{subscriber_id}", json={"status": "unsubscribed"})
        assert response.json()["subscriptions"] == [{"topic": "news", "status": "unsubscribed"}]
    return ids


def _start_transactional(api: TestClient) -> int:
    campaign = api.post(
        "/api/v1/campaigns",
        json={
            "name": "Policy",
            "subject": "Our privacy policy changes",
            "body": "Hello {{ name }}",
            "topics": ["news"],
            "category": "transactional",
        },
    ).json()
    assert api.post(f"/api/v1/campaigns/{campaign['id']}/send").status_code == 202
    return campaign["id"]


def _queued(campaign_id: int) -> set[str]:
    with get_engine().connect() as conn:
        return set(
            conn.execute(
                sa.select(Subscriber.email)
                .join(Send, Send.subscriber_id == Subscriber.id)
                .where(Send.campaign_id == campaign_id)
            ).scalars()
        )


def _claim(campaign_id: int) -> set[str]:
    store = SendStore(get_engine(), get_settings(), "test-worker", sending_hooks())
    jobs, _ = store.claim(store.campaign_info(campaign_id), 100)  # type: ignore[arg-type]
    return {j.email for j in jobs}


def test_transactional_audience_leaves_out_who_never_confirmed(
    api: TestClient, mailbox: list
) -> None:
    _people(api, mailbox)
    campaign_id = _start_transactional(api)
    agreed = {"confirmed@example.org", "attested@example.org", "imported@example.org"}
    assert _queued(campaign_id) == agreed
    assert _claim(campaign_id) == agreed


def test_claim_skips_a_queued_row_of_someone_who_never_confirmed(
    api: TestClient, mailbox: list
) -> None:
    """A queue materialised before the upgrade (or a row written any other way) is
    re-checked when claimed: the row is skipped, never sent."""
    ids = _people(api, mailbox)
    campaign_id = _start_transactional(api)
    if "never_confirmed@example.org" not in _queued(campaign_id):
        with get_engine().begin() as conn:
            conn.execute(
                sa.insert(Send.__table__).values(  # type: ignore[attr-defined]
                    campaign_id=campaign_id,
                    subscriber_id=ids["never_confirmed"],
                    status="queued",
                    attempts=0,
                    next_attempt_at=utcnow(),
                )
            )
    assert "never_confirmed@example.org" not in _claim(campaign_id)
    with get_engine().connect() as conn:
        status, reply = conn.execute(
            sa.select(Send.status, Send.smtp_reply).where(
                Send.subscriber_id == ids["never_confirmed"]
            )
        ).one()
        confirmed_at = conn.execute(
            sa.select(Subscription.confirmed_at).where(
                Subscription.subscriber_id == ids["never_confirmed"]
            )
        ).scalar_one()
    assert (status, reply) == ("skipped", "skipped: no longer subscribed")
    assert confirmed_at is None
