"""Inbound fixtures: a throwaway Dovecot IMAP server, Maildir and IMAP mailboxes behind one
test interface, an SMTP catcher for acknowledgements, and the subscribers the cases expect."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.dovecot import Dovecot, DovecotMissing, temporary_dovecot
from tests.support.inbound import Catcher, ImapMailbox, Mailbox, MaildirMailbox
from tests.support.net import free_port

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    try:
        with temporary_dovecot() as server:
            yield server
    except DovecotMissing as exc:
        if IN_CI:
            pytest.fail(f"{exc} (CI=true: a missing server is a failure)")
        pytest.skip(str(exc))


@pytest.fixture(params=["imap", "maildir"])
def mailbox(
    request: pytest.FixtureRequest, settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Mailbox:
    """The info mailbox, once as Dovecot IMAP and once as the local Maildir."""
    from app.settings import get_settings

    box: Mailbox
    if request.param == "imap":
        server = request.getfixturevalue("dovecot")
        box = ImapMailbox(server, server.add_user())
    else:
        box = MaildirMailbox(Path(settings_env["OCTOMAIL_VAR_DIR"]) / "mail" / "inbox")
    for key, value in box.env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    return box


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Catcher]:
    from aiosmtpd.controller import Controller

    from app.settings import get_settings

    handler = Catcher()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    monkeypatch.setenv("OCTOMAIL_SMTP_URLS", f"smtp://127.0.0.1:{controller.port}")
    get_settings.cache_clear()
    yield handler
    controller.stop()


@pytest.fixture
def spawn(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `python -m app.inbound.cli ...` with the test's OCTOMAIL_* environment; each
    process's output goes to tmp_path/cli-N.log."""
    monkeypatch.setenv("OCTOMAIL_INBOUND_LEASE_TTL", "3s")
    monkeypatch.setenv("OCTOMAIL_ACK_OPTOUTS", "false")
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str, **env: str) -> subprocess.Popen[bytes]:
        with (tmp_path / f"cli-{len(started)}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "app.inbound.cli", *args],
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
