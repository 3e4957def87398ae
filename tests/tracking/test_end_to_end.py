"""Opens and clicks end to end: a campaign sent through a real SMTP server (aiosmtpd), the
pixel and a link taken from the message as received, the redirect followed to a real HTTP
server, a tampered link refused, nothing tracked for whoever did not say yes; the summary
shows exactly those counts (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from email.message import EmailMessage
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.db import get_engine, session_scope
from app.models import Send, Subscriber, SubscriptionStatus, TrackingEvent, table_of
from app.tracking.summary import LinkCount, tracking_summary
from app.tracking.writer import writer
from tests.support.campaigns import (
    BackgroundWorker,
    add_subscriber,
    campaign_status,
    configure_sending,
    make_topic,
)
from tests.support.smtp_sink import SmtpSink
from tests.support.wait import wait_until

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFE_LINKS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) SafeLinks/1.0"


class _Landing(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:
        _Landing.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "7")
        self.end_headers()
        self.wfile.write(b"landing")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def landing():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Landing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Landing.seen = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _html(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return part.get_content()


def _text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return part.get_content()


def _path(url: str) -> str:
    return url.removeprefix("http://testserver")


def _send_campaign(client: TestClient, api: TestClient, sink: SmtpSink, landing: str, monkeypatch):
    settings = configure_sending(monkeypatch, sink.url)
    with session_scope() as s:
        news = make_topic(s, "news")
        for email, choice in (
            ("ann@example.org", True),
            ("bob@example.org", False),
            ("cat@example.org", None),
        ):
            person = add_subscriber(s, email, {news.id: SubscriptionStatus.SUBSCRIBED})
            person.tracking_allowed = choice
            s.add(person)
    body = (
        f"Hello! [Our sale]({landing}/sale?a=1&b=2) and "
        f"[the blog]({landing}/blog).\n\n[Write to us](mailto:hi@example.org)"
    )
    created = api.post(
        "/api/v1/campaigns",
        json={"name": "Sale", "subject": "Sale", "body": body, "topics": ["news"]},
    )
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    assert api.post(f"/api/v1/campaigns/{campaign_id}/send").status_code == 202
    with BackgroundWorker(settings):
        wait_until(lambda: campaign_status(campaign_id) == "done", message="campaign done")
    return campaign_id, {m.rcpt[0]: m.parsed for m in sink.messages}


def _backdate_sends(campaign_id: int, seconds: int) -> None:
    """Let time pass since delivery (a person opens later than a scanner)."""
    send = table_of(Send)
    with get_engine().begin() as conn:
        rows = conn.execute(
            sa.select(send.c.id, send.c.sent_at).where(send.c.campaign_id == campaign_id)
        ).all()
        for send_id, sent_at in rows:
            conn.execute(
                sa.update(send)
                .where(send.c.id == send_id)
                .values(sent_at=sent_at - timedelta(seconds=seconds))
            )


def test_pixel_and_link_from_the_received_message_count_once(
    client: TestClient, api: TestClient, landing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpSink() as sink:
        campaign_id, mail = _send_campaign(client, api, sink, landing, monkeypatch)
    ann = mail["ann@example.org"]
    html = _html(ann)

    # Bob said no, Cat never chose (OCTOMAIL_TRACKING_DEFAULT is off): neither pixel nor links
    for other in ("bob@example.org", "cat@example.org"):
        raw = mail[other].as_string()
        assert "/o/" not in raw
        assert "/r/" not in raw
        assert f"{landing}/sale?a=1&amp;b=2" in _html(mail[other])

    [pixel] = re.findall(r'<img src="(http://testserver/o/[^"]+)"', html)
    links = [unescape(h) for h in re.findall(r'href="(http://testserver/r/[^"]+)"', html)]
    assert len(links) == 2
    assert "mailto:hi@example.org" in html
    assert all("/r/" in u for u in re.findall(r"http://testserver/r/\S+", _text(ann)))
    sale = links[0]

    # A scanner follows the link as the mail arrives: a machine click, apart.
    scanned = client.get(_path(sale), headers={"User-Agent": SAFE_LINKS}, follow_redirects=False)
    assert scanned.status_code == 302
    _backdate_sends(campaign_id, 120)

    image = client.get(_path(pixel), headers={"User-Agent": FIREFOX})
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/gif"
    assert image.headers["cache-control"].startswith("no-store")
    for _ in range(2):
        hop = client.get(_path(sale), headers={"User-Agent": FIREFOX}, follow_redirects=False)
        assert hop.status_code == 302
        assert hop.headers["location"] == f"{landing}/sale?a=1&b=2"
    assert httpx.get(hop.headers["location"]).text == "landing"
    assert _Landing.seen == ["/sale?a=1&b=2"]

    message_token, link_token = _path(sale).removeprefix("/r/").split("/")
    tampered = f"/r/{message_token}/{link_token[:-4]}AAAA"
    refused = client.get(tampered, follow_redirects=False)
    assert refused.status_code == 400
    assert "location" not in refused.headers
    evil = "WzEsImh0dHBzOi8vZXZpbC5leGFtcGxlLyJd"  # [1, "https://evil.example/"], unsigned
    unsigned = client.get(f"/r/{message_token}/{evil}", follow_redirects=False)
    assert unsigned.status_code == 400
    broken_pixel = client.get(_path(pixel)[:-3] + "xyz")
    assert broken_pixel.status_code == 200
    assert broken_pixel.content == image.content

    assert writer().flush()
    with session_scope() as s:
        summary = tracking_summary(s, campaign_id)
        kinds = sorted(e.kind for e in s.exec(sa.select(TrackingEvent)).scalars())
    assert (summary.opens_unique, summary.opens_total, summary.opens_machine) == (1, 1, 0)
    assert (summary.clicks_unique, summary.clicks_total, summary.clicks_machine) == (1, 2, 1)
    assert summary.links == [LinkCount(f"{landing}/sale?a=1&b=2", 1, 2, 1)]
    assert sum(h.opens for h in summary.hours) == 1
    assert sum(h.machine_clicks for h in summary.hours) == 1
    assert kinds == ["click", "click", "click.machine", "open"]


def test_a_click_alone_counts_as_the_open_and_a_withdrawn_consent_stops_counting(
    client: TestClient, api: TestClient, landing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpSink() as sink:
        campaign_id, mail = _send_campaign(client, api, sink, landing, monkeypatch)
    _backdate_sends(campaign_id, 120)
    html = _html(mail["ann@example.org"])
    [blog] = [unescape(h) for h in re.findall(r'href="(http://testserver/r/[^"]+)"', html)][1:]
    assert (
        client.get(_path(blog), follow_redirects=False, headers={"User-Agent": FIREFOX}).status_code
        == 302
    )
    assert writer().flush()
    with session_scope() as s:
        summary = tracking_summary(s, campaign_id)
    assert (summary.opens_unique, summary.opens_total) == (1, 1)
    assert (summary.clicks_unique, summary.clicks_total) == (1, 1)

    with session_scope() as s:
        ann = s.exec(
            sa.select(Subscriber).where(Subscriber.email == "ann@example.org")
        ).scalar_one()
        ann.tracking_allowed = False
        s.add(ann)
    [pixel] = re.findall(r'<img src="(http://testserver/o/[^"]+)"', html)
    assert client.get(_path(pixel), headers={"User-Agent": FIREFOX}).status_code == 200
    assert client.get(_path(blog), follow_redirects=False).status_code == 302
    assert writer().flush()
    with session_scope() as s:
        after = tracking_summary(s, campaign_id)
    assert after == summary
