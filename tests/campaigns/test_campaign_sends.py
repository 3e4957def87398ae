"""Who a campaign did not reach and why: a real SMTP server (aiosmtpd) refuses some
recipients with a reply text; the API, the CSV export and the CLI show them with it."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.campaigns.cli import campaign_app
from app.campaigns.sends import explain
from tests.support.campaigns import send_news
from tests.support.smtp_sink import SmtpSink

UNKNOWN = "550 5.1.1 <{}>: mailbox unknown"
POLICY = "554 5.7.1 <policy@example.org>: message refused by local policy"


def run_campaign(api: TestClient, sink: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> int:
    ghosts = ("ghost1@example.org", "ghost2@example.org")
    refused = {g: UNKNOWN.format(g) for g in ghosts} | {"policy@example.org": POLICY}
    people = ("ada", "bob", "cy", "ghost1", "ghost2", "policy", "quiet")
    return send_news(
        api, sink, monkeypatch, people, refused=refused, suppressed=["quiet@example.org"]
    )


def test_the_refused_recipients_are_listed_with_the_servers_reply(
    api: TestClient,
    viewer_headers: dict[str, str],
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = datetime.now(UTC) - timedelta(seconds=5)
    campaign_id = run_campaign(api, smtp_sink, monkeypatch)
    url = f"/api/v1/campaigns/{campaign_id}/sends"

    # A viewer may read it; the default is everyone who was not delivered, in send order.
    answer = api.get(url, headers=viewer_headers)
    assert answer.status_code == 200, answer.text
    items = {i["email"]: i for i in answer.json()["items"]}
    assert set(items) == {
        "ghost1@example.org",
        "ghost2@example.org",
        "policy@example.org",
        "quiet@example.org",
    }
    assert answer.json()["next_cursor"] is None
    ghost = items["ghost1@example.org"]
    assert ghost["status"] == "bounced"
    assert ghost["smtp_reply"] == "550 5.1.1 <ghost1@example.org>: mailbox unknown"
    assert "address rejected" in ghost["reason"]
    assert ghost["attempts"] == 1
    assert isinstance(ghost["subscriber_id"], int)
    policy = items["policy@example.org"]
    assert (policy["status"], policy["smtp_reply"]) == ("failed", POLICY)
    assert "policy" in policy["reason"]
    quiet = items["quiet@example.org"]
    assert (quiet["status"], quiet["reason"], quiet["smtp_reply"]) == (
        "skipped",
        "suppressed",
        None,
    )
    for item in items.values():
        assert item["updated_at"].endswith("Z")
        when = datetime.fromisoformat(item["updated_at"])
        assert started <= when <= datetime.now(UTC) + timedelta(seconds=1)

    # One status, several, or the delivered ones.
    bounced = api.get(url, params={"status": "bounced"}).json()["items"]
    assert sorted(i["email"] for i in bounced) == ["ghost1@example.org", "ghost2@example.org"]
    both = api.get(url, params=[("status", "failed"), ("status", "skipped")]).json()["items"]
    assert sorted(i["email"] for i in both) == ["policy@example.org", "quiet@example.org"]
    sent = api.get(url, params={"status": "sent"}).json()["items"]
    assert sorted(i["email"] for i in sent) == [
        "ada@example.org",
        "bob@example.org",
        "cy@example.org",
    ]
    assert {(i["reason"], i["smtp_reply"][:3]) for i in sent} == {("accepted", "250")}


def test_pages_follow_the_cursor_and_a_bad_cursor_is_a_400(
    api: TestClient, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign_id = run_campaign(api, smtp_sink, monkeypatch)
    url = f"/api/v1/campaigns/{campaign_id}/sends"
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = api.get(url, params=params).json()
        pages += 1
        seen += [i["email"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 2
    assert len(seen) == len(set(seen)) == 4

    for bad in ("nonsense", "W10", "WyJ4Il0", "Wzk5OTk5OTk5OTk5XQ"):  # garbage, [], ["x"], huge
        refused = api.get(url, params={"cursor": bad})
        assert refused.status_code == 400, bad
        assert "invalid cursor" in refused.json()["detail"]
    assert api.get(url, params={"status": "queued"}).status_code == 422
    assert api.get("/api/v1/campaigns/999999/sends").status_code == 404
    assert api.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_csv_export_and_cli_show_who_and_why(
    api: TestClient,
    settings_env: dict[str, str],
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    campaign_id = run_campaign(api, smtp_sink, monkeypatch)
    answer = api.get(f"/api/v1/campaigns/{campaign_id}/sends.csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    by_email = {r["email"]: r for r in rows}
    assert set(by_email) == {
        "ghost1@example.org",
        "ghost2@example.org",
        "policy@example.org",
        "quiet@example.org",
    }
    assert by_email["ghost2@example.org"]["smtp_reply"] == UNKNOWN.format("ghost2@example.org")
    assert by_email["quiet@example.org"]["reason"] == "suppressed"
    assert api.get("/api/v1/campaigns/999999/sends.csv").status_code == 404

    runner = CliRunner()
    shown = runner.invoke(campaign_app, ["progress", str(campaign_id), "--no-watch"])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    top = lines.index("Top failure reasons:")
    # The two unknown mailboxes are one reason (the address in the reply differs).
    assert "2  bounced" in lines[top + 1]
    assert "550 5.1.1" in lines[top + 1]
    assert any("failed" in line and "554 5.7.1" in line for line in lines[top + 2 :])
    assert any("skipped" in line and "suppressed" in line for line in lines[top + 2 :])

    exported = runner.invoke(campaign_app, ["failures", str(campaign_id), "--status", "bounced"])
    assert exported.exit_code == 0, exported.output
    assert len(list(csv.DictReader(io.StringIO(exported.output)))) == 2


@pytest.mark.parametrize(
    ("status", "stored", "expected"),
    [
        ("skipped", "skipped: no longer subscribed", ("no longer subscribed", None)),
        ("failed", "not rendered: boom", ("could not be rendered: boom", None)),
        (
            "failed",
            "gave up after 12 temporary failures over 3 days; last reply: 451 4.7.1 Later",
            ("gave up after 12 temporary failures over 3 days", "451 4.7.1 Later"),
        ),
        ("failed", "552 5.2.2 Mailbox full", ("mailbox full", "552 5.2.2 Mailbox full")),
        ("failed", "554 no thanks", ("refused by the server", "554 no thanks")),
        ("failed", "invalid address 'x'", ("invalid address 'x'", None)),
    ],
)
def test_explain_splits_the_reason_from_the_reply(
    status: str, stored: str, expected: tuple[str, str | None]
) -> None:
    assert explain(status, stored) == expected
