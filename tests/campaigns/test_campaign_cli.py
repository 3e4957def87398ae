"""`octomail campaign ...`: create, list, show, schedule, send, pause, resume, cancel, progress."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from app.campaigns.cli import campaign_app
from app.db import session_scope
from app.models import SubscriptionStatus
from tests.support.campaigns import add_subscriber, make_topic

app = typer.Typer()
app.add_typer(campaign_app, name="campaign")
runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, ["campaign", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_campaign_commands(settings_env: dict[str, str], tmp_path: Path) -> None:
    with session_scope() as s:
        topic = make_topic(s, "news")
        add_subscriber(s, "a@example.org", {topic.id: SubscriptionStatus.SUBSCRIBED})
    body = tmp_path / "body.md"
    body.write_text("# Hello {{ name }}\n")
    campaign_id = run(
        "create",
        "--name",
        "CLI",
        "--subject",
        "Hi",
        "--topic",
        "news",
        "--body-file",
        str(body),
        "--filter",
        "country=FR",
    ).strip()
    shown = json.loads(run("show", campaign_id))
    assert shown["status"] == "draft"
    assert shown["attribute_filter"] == {"country": "FR"}
    assert "CLI" in run("list")
    assert "scheduled" in run(
        "schedule", campaign_id, "--at", "2099-05-01T09:00", "--timezone", "Europe/Paris"
    )
    assert json.loads(run("show", campaign_id))["send_at"] == "2099-05-01T07:00:00Z"
    assert "is running" in run("send", campaign_id)
    assert "is paused" in run("pause", campaign_id)
    refused = runner.invoke(app, ["campaign", "pause", campaign_id])
    assert refused.exit_code == 1
    assert "cannot pause" in refused.output
    assert "is running" in run("resume", campaign_id)
    assert "queued 0" in run("progress", campaign_id, "--no-watch")  # filter matches nobody
    assert "is cancelled" in run("cancel", campaign_id)
    missing = runner.invoke(app, ["campaign", "show", "999"])
    assert missing.exit_code == 1
    assert "not found" in missing.output


def test_create_refuses_what_the_api_refuses(settings_env: dict[str, str], tmp_path: Path) -> None:
    with session_scope() as s:
        make_topic(s, "news")
    body = tmp_path / "body.md"
    body.write_text("Dear {{ frist_name }},\n")
    typo = runner.invoke(
        app,
        [
            "campaign",
            "create",
            "--name",
            "CLI",
            "--subject",
            "Hi",
            "--topic",
            "news",
            "--body-file",
            str(body),
        ],
    )
    assert typo.exit_code == 1
    assert "unknown template variable frist_name" in typo.output
    body.write_text("{{ (3 ** 12000000) % 7 }}\n")
    bomb = runner.invoke(
        app,
        [
            "campaign",
            "create",
            "--name",
            "CLI",
            "--subject",
            "Hi",
            "--topic",
            "news",
            "--body-file",
            str(body),
            "--layout",
            "nope",
        ],
    )
    assert bomb.exit_code == 1
    assert "unknown email layout: 'nope'" in bomb.output
    assert "CLI" not in run("list")


def test_progress_fits_a_narrow_terminal(settings_env: dict[str, str], tmp_path: Path) -> None:
    with session_scope() as s:
        make_topic(s, "news")
    body = tmp_path / "body.md"
    body.write_text("Hello\n")
    name = "The autumn newsletter for everyone who came to the fair in Lyon"
    args = ["create", "--name", name, "--subject", "Hi", "--topic", "news"]
    campaign_id = run(*args, "--body-file", str(body)).strip()
    shown = runner.invoke(
        app, ["campaign", "progress", campaign_id, "--no-watch"], env={"COLUMNS": "80"}
    )
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert max(len(line) for line in lines) == 80
    text = " ".join(lines)
    assert "…" not in text
    assert name in text.replace("  ", " ")
    assert "remaining 0" in text
    assert "msg/s" in text
