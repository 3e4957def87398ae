"""After a crash between recording and filing, the poller finds which messages a cut-off
MOVE had already copied with a few IMAP commands, not one SEARCH per message, and files
each message exactly once. Against Dovecot, on SQLite and PostgreSQL."""

from __future__ import annotations

import imaplib
from collections import Counter

import pytest

from app.inbound.poller import poll_once
from app.inbound.sources import ImapSource
from app.settings import get_settings
from tests.support.dovecot import Dovecot
from tests.support.inbound import ImapMailbox

MESSAGES = 240


def _mail(i: int) -> bytes:
    body = "Please unsubscribe me from this list." if i % 2 else "When is the next event?"
    return (
        f"From: User {i} <user{i}@example.com>\r\nTo: info@example.org\r\n"
        f"Subject: {'Newsletter' if i % 2 else 'Question'}\r\n"
        f"Message-ID: <recover{i}.{'x' * 30}@mail.example.com>\r\n"
        f"Date: Tue, 3 Nov 2026 10:00:00 +0000\r\n\r\n{body}\r\n"
    ).encode()


def _lost_connection(self: ImapSource, uids: object, folder: str) -> None:
    raise ConnectionError("connection lost before the move")


def test_recovery_finds_copies_in_a_few_commands_and_files_each_message_once(
    settings_env: dict[str, str], dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = ImapMailbox(dovecot, dovecot.add_user())
    monkeypatch.setenv("OCTOMAIL_IMAP_URL", box.env["OCTOMAIL_IMAP_URL"])
    monkeypatch.setenv("OCTOMAIL_ACK_OPTOUTS", "false")
    get_settings.cache_clear()
    raws = [_mail(i) for i in range(MESSAGES)]
    box.deliver(raws)
    with monkeypatch.context() as patch:  # recorded, then the connection drops
        patch.setattr(ImapSource, "move", _lost_connection)
        with pytest.raises(ConnectionError):
            poll_once(get_settings())

    # A MOVE cut off half-way: the server had copied the first third, not expunged them.
    with dovecot.connect(box.user) as client:
        for folder in ("Processed", "Review"):
            client.folder.create(folder)
        client.folder.set("INBOX")
        uids = client.uids()
        copied = uids[: MESSAGES // 3]
        client.copy([u for u in copied if int(u) % 2 == 0], "Processed")  # requests
        client.copy([u for u in copied if int(u) % 2 == 1], "Review")  # questions

    commands: Counter[str] = Counter()
    real_uid = imaplib.IMAP4.uid

    def counting(self: imaplib.IMAP4, command: str, *args: str) -> tuple[str, list]:
        commands[command.upper()] += 1
        return real_uid(self, command, *args)

    monkeypatch.setattr(imaplib.IMAP4, "uid", counting)
    summary = poll_once(get_settings())
    assert summary["recovered"] == MESSAGES, summary
    # 1 listing the INBOX, then ~90 Message-IDs per SEARCH (one each was 1 + 240).
    assert commands["SEARCH"] <= 6, commands
    assert box.folder("INBOX") == []
    processed, review = box.folder_ids("Processed"), box.folder_ids("Review")
    ids = [f"<recover{i}.{'x' * 30}@mail.example.com>" for i in range(MESSAGES)]
    assert sorted(processed) == sorted(ids[1::2])  # each exactly once
    assert sorted(review) == sorted(ids[0::2])
