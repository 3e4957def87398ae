"""GET /metrics after real actions: a campaign sent to a real SMTP server, opt-outs by the
one-click link and by mail through the poller, API requests; parsed with prometheus_client's
own parser. The access rule: a token when one is set, else loopback clients only."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session, select

from app.db import get_engine, session_scope
from app.inbound.poller import poll_once
from app.links import unsubscribe_url
from app.main import create_app
from app.models import Lease, Subscriber, utcnow
from app.observability.metrics import serve_metrics
from app.settings import get_settings
from tests.support.campaigns import BackgroundWorker, add_subscriber, campaign_status, make_topic
from tests.support.inbound import MaildirMailbox, load_fixture
from tests.support.net import free_port
from tests.support.unsubscribe import ONE_CLICK, secret_of
from tests.support.wait import wait_until

TOKEN = "metrics-token-for-tests-0123456789"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


@pytest.fixture
def metrics_env(settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCTOMAIL_METRICS_TOKEN", TOKEN)
    monkeypatch.setattr("app.web.observe.STATE_MAX_AGE", 0.0)  # each scrape reads afresh
    get_settings.cache_clear()


def _send_campaign(api: TestClient, emails: list[str]) -> int:
    with session_scope() as session:
        topic = make_topic(session, "news")
        for address in emails:
            add_subscriber(session, address, {topic.id: "subscribed"}, name="Reader")
    created = api.post(
        "/api/v1/campaigns",
        json={"name": "News", "subject": "Hi", "body": "Hello", "topics": ["news"]},
    )
    assert created.status_code == 201, created.text
    campaign_id = int(created.json()["id"])
    assert api.post(f"/api/v1/campaigns/{campaign_id}/send").status_code == 202
    with BackgroundWorker(get_settings()):
        wait_until(lambda: campaign_status(campaign_id) == "done", message="campaign done")
    return campaign_id


def test_metrics_count_a_send_opt_outs_and_requests(
    metrics_env: None, mailbox: list, api: TestClient, tmp_path: Path
) -> None:
    before = scrape(api)
    provider = get_settings().smtp_url_list[0].removeprefix("smtp://")
    emails = ["ann@example.com", "bob@example.com", "carol@example.com"]

    _send_campaign(api, emails)
    assert len(mailbox) == 3
    # One opt-out by the one-click link, one by mail (Carol's request, read by the poller).
    with Session(get_engine()) as session:
        ann = session.exec(select(Subscriber).where(Subscriber.email == emails[0])).one()
    url = unsubscribe_url(ann.id, 0, secret=secret_of(ann.id)).removeprefix("http://testserver")
    assert api.post(url, data=ONE_CLICK).status_code == 200
    inbox = MaildirMailbox(Path(get_settings().var_dir) / "mail" / "inbox")
    inbox.deliver([load_fixture("plain_request_en")])
    assert poll_once(get_settings())["seen"] == 1
    assert api.get("/api/v1/topics").status_code == 200

    after = scrape(api)
    delta = {key: after[key] - before.get(key, 0.0) for key in after}
    assert value(delta, "octomail_smtp_replies_total", provider=provider, **{"class": "2xx"}) == 3
    assert value(delta, "octomail_sends_total", status="sent") == 3
    assert value(after, "octomail_optouts_total", channel="one_click") == 1
    assert value(after, "octomail_optouts_total", channel="email") == 1
    assert value(after, "octomail_inbound_messages_total", verdict="person_optout") == 1
    assert value(after, "octomail_campaigns", status="done") == 1
    assert value(after, "octomail_database_up") == 1
    topics = {"method": "GET", "route": "/api/v1/topics", "status": "200"}
    assert value(delta, "octomail_http_requests_total", **topics) == 1
    assert (
        value(
            delta, "octomail_http_requests_total", method="POST", route="/u/{token}", status="200"
        )
        == 1
    )
    assert (
        value(
            delta,
            "octomail_http_request_duration_seconds_count",
            method="GET",
            route="/api/v1/topics",
        )
        == 1
    )
    # No label holds a raw path, a token or an address.
    token = url.rsplit("/", 1)[1]
    labels = {v for (_name, pairs) in after for _k, v in pairs}
    assert not [v for v in labels if token in v or "@" in v]


def test_queue_depth_and_poller_lag_come_from_the_database(
    metrics_env: None, api: TestClient
) -> None:
    with session_scope() as session:
        topic = make_topic(session, "news")
        for i in range(4):
            add_subscriber(session, f"r{i}@example.com", {topic.id: "subscribed"})
        session.add(
            Lease(
                name="inbound:maildir:/x",
                holder="h",
                expires_at=utcnow() + timedelta(seconds=30) - timedelta(seconds=12),
            )
        )
    created = api.post(
        "/api/v1/campaigns",
        json={"name": "News", "subject": "Hi", "body": "Hello", "topics": ["news"]},
    )
    campaign_id = created.json()["id"]
    assert api.post(f"/api/v1/campaigns/{campaign_id}/send").status_code == 202
    samples = scrape(api)
    assert value(samples, "octomail_campaign_queue_depth", campaign=str(campaign_id)) == 4
    lag = value(samples, "octomail_poller_lag_seconds")
    assert 11 <= lag < 60, lag


def test_metrics_need_the_token_when_one_is_set(metrics_env: None, client: TestClient) -> None:
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    with TestClient(create_app(), client=("127.0.0.1", 4000)) as local:
        assert local.get("/metrics").status_code == 401  # a token set is needed even locally


def test_without_a_token_only_loopback_clients_are_answered(settings_env: dict[str, str]) -> None:
    with TestClient(create_app(), client=("203.0.113.9", 4000)) as remote:
        refused = remote.get("/metrics")
    assert refused.status_code == 403
    assert "OCTOMAIL_METRICS_TOKEN" in refused.json()["detail"]
    for host in ("127.0.0.1", "::1"):
        with TestClient(create_app(), client=(host, 4000)) as local:
            assert local.get("/metrics").status_code == 200


def _get(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_side_server_of_workers_and_pollers_applies_the_same_rule() -> None:
    port = free_port()
    server = serve_metrics("127.0.0.1", port, "")
    try:
        assert _get(f"http://127.0.0.1:{port}/metrics") == 200
        assert _get(f"http://127.0.0.1:{port}/other") == 404
    finally:
        server.shutdown()
    port = free_port()
    server = serve_metrics("127.0.0.1", port, TOKEN)
    try:
        assert _get(f"http://127.0.0.1:{port}/metrics") == 403
        assert _get(f"http://127.0.0.1:{port}/metrics", TOKEN) == 200
    finally:
        server.shutdown()


def test_a_mailbox_lease_taken_from_a_silent_poller_is_counted(
    settings_env: dict[str, str],
) -> None:
    from prometheus_client import REGISTRY

    from app.inbound.lease import LeaseKeeper

    def takeovers() -> float:
        labels = {"kind": "mailbox"}
        return REGISTRY.get_sample_value("octomail_lease_takeovers_total", labels) or 0.0

    ttl = timedelta(seconds=1)
    start = takeovers()
    first = LeaseKeeper(get_engine(), "inbound:test", holder="first", ttl=ttl)
    second = LeaseKeeper(get_engine(), "inbound:test", holder="second", ttl=ttl)
    assert first.ensure()
    assert not second.ensure()
    assert takeovers() == start  # a first lease is not a takeover
    time.sleep(1.2)  # the first poller falls silent: its lease runs out
    assert second.ensure()
    assert takeovers() == start + 1
    time.sleep(1.2)
    again = LeaseKeeper(get_engine(), "inbound:test", holder="second", ttl=ttl)
    assert again.ensure()  # its own expired lease back: no takeover
    assert takeovers() == start + 1
