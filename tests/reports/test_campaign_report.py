"""A campaign's report counts what really happened to it: the campaign is sent through a
real SMTP server that refuses two recipients, people leave through the one-click header,
the unsubscribe page and a mail to the info mailbox, and a complaint, a hard and a soft
bounce arrive in the mailbox and go through the poller. Every figure is checked exactly,
as JSON and as CSV, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.inbound.poller import poll_once
from app.settings import get_settings
from tests.sending.test_counters import counted, progress
from tests.support.campaigns import send_news
from tests.support.inbound import MaildirMailbox, dsn_bounce, soft_bounce
from tests.support.reports import reported_campaign
from tests.support.smtp_sink import SmtpSink

PEOPLE = ("ada", "bob", "cy", "dee", "eve", "fay", "ghost", "policy", "quiet")


def _send(api: TestClient, sink: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> int:
    refused = {
        "ghost@example.org": "550 5.1.1 <ghost@example.org>: mailbox unknown",
        "policy@example.org": "554 5.7.1 refused by local policy",
    }
    return send_news(
        api, sink, monkeypatch, PEOPLE, refused=refused, suppressed=["quiet@example.org"]
    )


def _received(sink: SmtpSink) -> dict[str, tuple[str, object]]:
    """Per recipient: the envelope sender (VERP) and the message as received."""
    return {r.rcpt[0].split("@")[0]: (r.mail_from, r.parsed) for r in sink.messages}


def _one_click_url(message) -> str:
    return re.search(r"<(http://testserver/u/[^>]+)>", str(message["List-Unsubscribe"])).group(1)


def _mailto_subject(message) -> str:
    mailto = re.search(r"<mailto:([^>]+)>", str(message["List-Unsubscribe"])).group(1)
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit("mailto:" + mailto).query)["subject"][0]


def _complaint(recipient: str, message_id: str) -> bytes:
    b = "arf-1"
    return (
        f"From: Complaints <fbl@isp.example>\r\nTo: info@example.org\r\n"
        f"Subject: Abuse report\r\nMessage-ID: <arf1@isp.example>\r\n"
        "Date: Tue, 3 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="{b}"\r\n\r\n'
        f"--{b}\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n"
        f"--{b}\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: abuse\r\nUser-Agent: ExampleFBL/1.0\r\nVersion: 1\r\n"
        f"Original-Rcpt-To: <{recipient}>\r\n\r\n"
        f"--{b}\r\nContent-Type: message/rfc822\r\n\r\n"
        f"From: Octomail <news@example.org>\r\nTo: {recipient}\r\n"
        f"Message-ID: {message_id}\r\nSubject: Hi\r\n\r\nNews.\r\n--{b}--\r\n"
    ).encode()


def _email_optout(sender: str, subject: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: info@example.org\r\nSubject: {subject}\r\n"
        "Message-ID: <optout1@example.org>\r\nDate: Tue, 3 Nov 2026 10:00:00 +0000\r\n\r\n"
        "Please take me off.\r\n"
    ).encode()


def _leave(api: TestClient, sink: SmtpSink, var_dir: str) -> None:
    got = _received(sink)
    # Bob's mail client uses the one-click header; Cy presses the page's button.
    answer = api.post(_one_click_url(got["bob"][1]), data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    assert api.post(_one_click_url(got["cy"][1]) + "/all").status_code == 200
    # Ada mails the info mailbox; Dee complains; Eve bounces hard, Fay softly, each report
    # reaching the signed VERP address the message was sent from.
    inbox = MaildirMailbox(Path(var_dir) / "mail" / "inbox")
    inbox.deliver(
        [
            _email_optout("ada@example.org", _mailto_subject(got["ada"][1])),
            _complaint("dee@example.org", str(got["dee"][1]["Message-ID"])),
            f"Delivered-To: {got['eve'][0]}\r\n".encode() + dsn_bounce("eve@example.org", 1),
            f"Delivered-To: {got['fay'][0]}\r\n".encode() + soft_bounce("fay@example.org", 2),
        ]
    )
    summary = poll_once(get_settings())
    assert summary, summary


def test_the_report_counts_exactly_what_happened(
    api: TestClient, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch, settings_env
) -> None:
    campaign_id = _send(api, smtp_sink, monkeypatch)
    _leave(api, smtp_sink, settings_env["OCTOMAIL_VAR_DIR"])

    answer = api.get(f"/api/v1/campaigns/{campaign_id}/report")
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["recipients"] == 9
    assert report["sent"] == 7  # ada..fay accepted, ghost refused as a hard bounce
    assert report["bounced"] == 2  # ghost at sending, eve's report later
    assert report["bounces"] == {"hard": 2, "soft": 1}
    assert report["delivered"] == 5
    assert report["failed"] == 1  # policy
    assert report["skipped"] == 1  # quiet, suppressed
    assert report["pending"] == 0
    assert report["complained"] == 1
    assert report["unsubscribed"] == 3
    assert report["unsubscribed_by_channel"] == {
        "link": 1,
        "one_click": 1,
        "email": 1,
        "preferences": 0,
        "bounce": 2,
        "complaint": 1,
    }
    assert report["opens"] == {"unique": 0, "total": 0, "machine": 0, "rate": 0.0}
    assert report["clicks"]["links"] == []
    assert [p["unsubscribes"] for p in report["timeline"]] == [3]
    assert report["timeline"][0]["at"].endswith(":00:00Z")
    # Eve's report in the mailbox also says what became of her message: its send is
    # bounced, with the report's reason, and the counters agree with the send rows.
    bounced = api.get(f"/api/v1/campaigns/{campaign_id}/sends", params={"status": "bounced"})
    reasons = {i["email"]: i["reason"] for i in bounced.json()["items"]}
    assert set(reasons) == {"ghost@example.org", "eve@example.org"}
    assert reasons["eve@example.org"].startswith("bounce report: ")
    assert progress(campaign_id) == counted(campaign_id)


def test_the_report_as_csv(
    api: TestClient, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch, settings_env
) -> None:
    campaign_id = _send(api, smtp_sink, monkeypatch)
    _leave(api, smtp_sink, settings_env["OCTOMAIL_VAR_DIR"])
    answer = api.get(f"/api/v1/campaigns/{campaign_id}/report.csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["section", "key", "metric", "value"]
    figures = {(r[0], r[1], r[2]): r[3] for r in rows[1:]}
    assert figures[("summary", "", "sent")] == "7"
    assert figures[("summary", "", "delivered")] == "5"
    assert figures[("summary", "", "bounced_soft")] == "1"
    assert figures[("opt_outs", "one_click", "people")] == "1"
    assert figures[("opt_outs", "complaint", "people")] == "1"
    [unsubscribes] = [v for (s, _k, m), v in figures.items() if s == "hour" and m == "unsubscribes"]
    assert unsubscribes == "3"


def test_unknown_campaign_and_no_token(api: TestClient, client: TestClient) -> None:
    assert api.get("/api/v1/campaigns/999/report").status_code == 404
    assert api.get("/api/v1/campaigns/999/report.csv").status_code == 404
    del client.headers["Authorization"]
    assert client.get("/api/v1/campaigns/1/report").status_code == 401


def test_opens_clicks_links_and_hours_from_the_tracking_recorder(api: TestClient) -> None:
    """Ten people open (hours 0-3 of the campaign, in turn); the even ones click an hour
    later, on one of two links; opens and clicks go through tracking's batch recorder."""
    campaign_id = reported_campaign(people=10, leavers=6, hours=4)
    report = api.get(f"/api/v1/campaigns/{campaign_id}/report").json()
    assert (report["sent"], report["delivered"]) == (10, 10)
    assert report["opens"] == {"unique": 10, "total": 10, "machine": 0, "rate": 1.0}
    clicks = report["clicks"]
    assert (clicks["unique"], clicks["total"], clicks["machine"]) == (5, 5, 0)
    assert (clicks["rate"], clicks["click_to_open"]) == (0.5, 0.5)
    assert clicks["links"] == [
        {"url": "https://example.org/spring", "unique": 3, "total": 3, "machine": 0},
        {"url": "https://example.org/offers", "unique": 2, "total": 2, "machine": 0},
    ]
    hours = [(p["opens"], p["clicks"], p["unsubscribes"]) for p in report["timeline"]]
    assert hours == [(3, 0, 0), (3, 3, 0), (2, 0, 0), (2, 2, 0), (0, 0, 6)]
    assert report["unsubscribed"] == 6
    assert report["complained"] == 1
