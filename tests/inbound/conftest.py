"""Inbound fixtures: a throwaway Dovecot IMAP server, Maildir and IMAP mailboxes behind one
test interface, an SMTP catcher for acknowledgements, and the subscribers the cases expect."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dovecot import Dovecot, DovecotMissing, start_dovecot, stop_dovecot
from tests.support.inbound import Catcher, ImapMailbox, Mailbox, MaildirMailbox
from tests.support.net import free_port

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    # Not under pytest's tmp dir: that is 0700 and Dovecot's auth process (user dovecot)
    # must reach the users file.
    base = Path(tempfile.mkdtemp(prefix="octomail-dovecot-"))
    os.chmod(base, 0o755)
    try:
        server = start_dovecot(base / "d")
    except DovecotMissing as exc:
        shutil.rmtree(base, ignore_errors=True)
        if IN_CI:
            pytest.fail(f"{exc} (CI=true: a missing server is a failure)")
        pytest.skip(str(exc))
    yield server
    stop_dovecot(server)
    shutil.rmtree(base, ignore_errors=True)


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
