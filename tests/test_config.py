"""One configuration (issue 13): the real `octomail` command, run from other folders, reads
octomail.env or the file OCTOMAIL_CONFIG names; env overrides it; a missing database is one
line, never created; `octomail config` never shows a secret."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session

from app.db import _engine_for
from tests.support.campaigns import make_topic
from tests.support.smtp_sink import SmtpSink

ROOT = Path(__file__).resolve().parent.parent
SECRET = "sekrit-signing-key-4f1d2c3b5a69788796a5b4c3d2e1f0"
PEPPER = "pepper-never-shown-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
SMTP_PASSWORD = "smtp-pass-Zq8xY"
DB_PASSWORD = "db-pass-Kw3vR"
IMAP_PASSWORD = "imap-pass-Hj7tE"


def octomail(cwd: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """`octomail ARGS` as a user types it in `cwd`: no OCTOMAIL_* from the test run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCTOMAIL_")}
    env.update(extra_env)
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        text=True,
        capture_output=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def write_config(folder: Path, **values: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "octomail.env"
    settings = {
        "OCTOMAIL_SECRET_KEYS": SECRET,
        "OCTOMAIL_SUPPRESSION_PEPPER": PEPPER,
        "OCTOMAIL_VAR_DIR": "var",  # relative: to this file's folder
        **values,
    }
    path.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    return path


def test_the_config_file_in_the_working_directory_is_read_and_env_overrides_it(
    tmp_path: Path,
) -> None:
    home = tmp_path / "site"
    write_config(home, OCTOMAIL_ORG_NAME="From the file", OCTOMAIL_PORT="8100")
    migrated = octomail(home, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert (home / "var" / "octomail.db").exists()
    shown = octomail(home, "config", OCTOMAIL_ORG_NAME="From the env")
    assert shown.returncode == 0, shown.stderr
    lines = {line.split()[0]: line for line in shown.stdout.splitlines()[2:] if line.strip()}
    assert f"config file: {home / 'octomail.env'}" in shown.stdout
    assert "From the env" in lines["OCTOMAIL_ORG_NAME"]
    assert lines["OCTOMAIL_ORG_NAME"].rstrip().endswith("env")
    assert str(home / "var") in lines["OCTOMAIL_VAR_DIR"]
    assert "file" in lines["OCTOMAIL_VAR_DIR"]
    assert "http://127.0.0.1:8100" in lines["OCTOMAIL_BASE_URL"]
    assert lines["OCTOMAIL_SMTP_POOL_SIZE"].rstrip().endswith("default")


def test_octomail_config_names_the_file_from_any_folder(tmp_path: Path) -> None:
    home = tmp_path / "site"
    config = write_config(home)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert octomail(home, "migrate").returncode == 0
    listed = octomail(elsewhere, "user", "list", OCTOMAIL_CONFIG=str(config))
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("id")
    assert not (elsewhere / "var").exists()  # the var directory is the file's, not the cwd's


def test_a_missing_database_is_one_line_and_is_never_created(tmp_path: Path) -> None:
    home = tmp_path / "empty"
    write_config(home)
    for args in (["user", "list"], ["campaign", "list"], ["export"], ["poll", "--once"]):
        out = octomail(home, *args)
        assert out.returncode == 1, (args, out.stdout, out.stderr)
        assert out.stderr.count("\n") == 1, out.stderr
        assert f"sqlite:///{home / 'var' / 'octomail.db'}" in out.stderr
        assert "octomail migrate" in out.stderr
        assert "Traceback" not in out.stderr
    assert not (home / "var" / "octomail.db").exists()


def test_a_database_without_the_schema_says_migrate(tmp_path: Path) -> None:
    home = tmp_path / "old"
    write_config(home)
    (home / "var").mkdir()
    (home / "var" / "octomail.db").touch()  # what an earlier version left behind
    out = octomail(home, "campaign", "list")
    assert out.returncode == 1
    assert "no Octomail tables" in out.stderr
    assert "octomail migrate" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_named_config_file_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    out = octomail(tmp_path, "user", "list", OCTOMAIL_CONFIG=str(tmp_path / "nope.env"))
    assert out.returncode == 1
    assert (
        out.stderr == f"error: OCTOMAIL_CONFIG names {tmp_path / 'nope.env'}, which is not a file\n"
    )


def test_octomail_config_never_shows_a_secret(tmp_path: Path) -> None:
    home = tmp_path / "site"
    write_config(
        home,
        OCTOMAIL_SMTP_URLS=f"smtp://mailer:{SMTP_PASSWORD}@smtp.example.org:587?starttls=1",
        OCTOMAIL_DATABASE_URL=f"postgresql+psycopg://octo:{DB_PASSWORD}@db.example.org/octo",
    )
    out = octomail(
        home, "config", OCTOMAIL_IMAP_URL=f"imaps://info:{IMAP_PASSWORD}@imap.example.org/INBOX"
    )
    assert out.returncode == 0, out.stderr
    shown = out.stdout + out.stderr
    for secret in (SECRET, PEPPER, SMTP_PASSWORD, DB_PASSWORD, IMAP_PASSWORD):
        assert secret not in shown
    assert "smtp://mailer:***@smtp.example.org:587" in shown
    assert "imaps://info:***@imap.example.org/INBOX" in shown
    assert "(set, hidden)" in shown


def test_config_init_creates_a_private_file_keeping_earlier_keys(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir()
    (var / "secrets.json").write_text(
        json.dumps({"secret_key": SECRET, "suppression_pepper": PEPPER})
    )
    out = octomail(tmp_path, "config", "init")
    assert out.returncode == 0, out.stderr
    path = tmp_path / "octomail.env"
    assert str(path) in out.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert f"OCTOMAIL_SECRET_KEYS={SECRET}\n" in text  # the pepper must never change
    assert f"OCTOMAIL_SUPPRESSION_PEPPER={PEPPER}\n" in text
    assert f"OCTOMAIL_VAR_DIR={var}\n" in text
    again = octomail(tmp_path, "config", "init")
    assert again.returncode == 0
    assert path.read_text() == text
    assert "Config file" in again.stdout


def test_campaign_test_uses_the_configured_transport_and_prints_the_reply(
    tmp_path: Path,
) -> None:
    with SmtpSink() as sink:
        home = tmp_path / "site"
        write_config(
            home,
            OCTOMAIL_SMTP_URLS=sink.url,
            OCTOMAIL_PORT="8100",
            OCTOMAIL_POSTAL_ADDRESS="1 Test Street, Paris",
            OCTOMAIL_FROM="news@example.org",
        )
        assert octomail(home, "migrate").returncode == 0
        with Session(_engine_for(f"sqlite:///{home / 'var' / 'octomail.db'}")) as session:
            make_topic(session, "news")
            session.commit()
        (home / "body.md").write_text("Hello {{ first_name }}, see you soon.\n")
        created = octomail(
            home, "campaign", "create", "--name", "t", "--subject", "Hi", "--topic", "news",
            "--body-file", "body.md",
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        sent = octomail(
            elsewhere,
            "campaign",
            "test",
            created.stdout.strip(),
            "--email",
            "me@example.org",
            OCTOMAIL_CONFIG=str(home / "octomail.env"),
        )
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout == "sent to me@example.org: 250 2.0.0 Queued\n"
        sink.wait_for(1)
        body = sink.messages[0].data.decode()
    assert "http://127.0.0.1:8100/" in body
    assert "127.0.0.1:8000" not in body


def test_campaign_test_without_a_server_prints_the_reason_not_none(tmp_path: Path) -> None:
    home = tmp_path / "site"
    write_config(
        home,
        OCTOMAIL_SMTP_URLS="smtp://127.0.0.1:9?timeout=2",
        OCTOMAIL_POSTAL_ADDRESS="1 Test Street, Paris",
    )
    assert octomail(home, "migrate").returncode == 0
    with Session(_engine_for(f"sqlite:///{home / 'var' / 'octomail.db'}")) as session:
        make_topic(session, "news")
        session.commit()
    (home / "body.md").write_text("Hello.\n")
    created = octomail(
        home, "campaign", "create", "--name", "t", "--subject", "Hi", "--topic", "news",
        "--body-file", "body.md",
    )  # fmt: skip
    out = octomail(home, "campaign", "test", created.stdout.strip(), "--email", "me@example.org")
    assert out.returncode == 2
    assert "NOT sent to me@example.org: cannot connect to smtp://127.0.0.1:9" in out.stderr
    assert "None" not in out.stderr


@pytest.mark.parametrize("value", ["abc", "0"])
def test_a_bad_setting_is_one_line_naming_the_variable(tmp_path: Path, value: str) -> None:
    out = octomail(tmp_path, "user", "list", OCTOMAIL_PORT=value)
    assert out.returncode == 1
    assert out.stderr.startswith("error: invalid settings: OCTOMAIL_PORT")
    assert "Traceback" not in out.stderr
