"""Inbound test helpers: the info mailbox as IMAP or Maildir behind one interface, an SMTP
catcher, the fixture mails (fixtures live in tests/inbound/conftest.py)."""

from __future__ import annotations

import email
import itertools
import os
import time
from dataclasses import dataclass, field
from email import policy
from pathlib import Path

from tests.support.dovecot import Dovecot

FIXTURES = Path(__file__).resolve().parents[1] / "inbound" / "fixtures"


def message_ids(raws: list[bytes]) -> list[str]:
    return [
        str(email.message_from_bytes(r, policy=policy.default).get("Message-ID", "")).strip()
        for r in raws
    ]


class Mailbox:
    """The info mailbox under test, whatever its kind: deliver mail, look into folders."""

    kind: str
    env: dict[str, str]

    def deliver(self, raws: list[bytes]) -> None:
        raise NotImplementedError

    def folder(self, name: str) -> list[bytes]:
        raise NotImplementedError

    def folder_ids(self, name: str) -> list[str]:
        return message_ids(self.folder(name))


@dataclass
class ImapMailbox(Mailbox):
    server: Dovecot
    user: str
    kind: str = "imap"
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.env = {"OCTOMAIL_IMAP_URL": self.server.url(self.user)}

    def deliver(self, raws: list[bytes]) -> None:
        # One connection, as a mail client or an MDA appending into the mailbox would.
        with self.server.connect(self.user) as box:
            for raw in raws:
                box.append(raw, "INBOX")

    def folder(self, name: str) -> list[bytes]:
        with self.server.connect(self.user) as box:
            if not box.folder.exists(name):
                return []
            box.folder.set(name)
            return [m.obj.as_bytes() for m in box.fetch(mark_seen=False, bulk=True)]


@dataclass
class MaildirMailbox(Mailbox):
    root: Path
    kind: str = "maildir"
    env: dict[str, str] = field(default_factory=dict)
    _n: itertools.count = field(default_factory=lambda: itertools.count(1))

    def deliver(self, raws: list[bytes]) -> None:
        for sub in ("tmp", "new", "cur"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for raw in raws:
            # Write to tmp/ then rename into new/: how an MDA delivers (never a partial file).
            name = f"{time.time_ns()}.M{next(self._n)}P{os.getpid()}.testhost"
            (self.root / "tmp" / name).write_bytes(raw)
            os.rename(self.root / "tmp" / name, self.root / "new" / name)

    def folder(self, name: str) -> list[bytes]:
        base = self.root if name == "INBOX" else self.root / f".{name}"
        return [
            p.read_bytes()
            for sub in ("new", "cur")
            if (base / sub).exists()
            for p in sorted((base / sub).iterdir())
        ]


@dataclass
class Catcher:
    """Mail the poller sends (acknowledgements, confirmations), caught by aiosmtpd."""

    messages: list[email.message.EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]


def load_fixture(name: str, values: dict[str, str] | None = None) -> bytes:
    raw = (FIXTURES / f"{name}.eml").read_bytes()
    for key, value in (values or {}).items():
        raw = raw.replace(key.encode(), value.encode())
    return raw


def record_campaign_sent(session, subscribers: list, *, days_ago: float = 1) -> int:
    """A campaign marked done, sent to these subscribers `days_ago` (one send row each and
    the progress counters, as preparing and the dispatcher leave them); returns its id."""
    from datetime import timedelta

    from app.models import Campaign, CampaignStatus, Send, SendStatus, utcnow
    from app.sending import counters

    campaign = Campaign(name="Sent news", subject="News", status=CampaignStatus.DONE)
    session.add(campaign)
    session.flush()
    at = utcnow() - timedelta(days=days_ago)
    session.add_all(
        [
            Send(
                campaign_id=campaign.id,
                subscriber_id=sub.id,
                status=SendStatus.SENT,
                sent_at=at,
                message_id=None,
            )
            for sub in subscribers
        ]
    )
    sent = {(campaign.id, status): len(subscribers) for status in (counters.TOTAL, "sent")}
    counters.add(session.connection(), 0, sent, at)
    session.commit()
    return int(campaign.id)


def dsn_bounce(recipient: str, n: int) -> bytes:
    """A minimal Postfix-style hard bounce (5.1.1) for `recipient`, numbered `n`."""
    b = f"b{n}"
    return (
        f"From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n"
        f"To: info@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <dsn{n}@mx.example.net>\r\nDate: Tue, 3 Nov 2026 10:00:00 +0000\r\n"
        "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; "
        f'report-type=delivery-status; boundary="{b}"\r\n\r\n'
        f"--{b}\r\nContent-Type: text/plain\r\n\r\nI'm sorry...\r\n"
        f"--{b}\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\n"
        "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 unknown\r\n\r\n"
        f"--{b}--\r\n"
    ).encode()


def soft_bounce(recipient: str, n: int) -> bytes:
    """The same bounce as a delayed, temporary failure (4.4.1)."""
    return (
        dsn_bounce(recipient, n)
        .replace(b"Action: failed", b"Action: delayed")
        .replace(b"5.1.1", b"4.4.1")
    )
