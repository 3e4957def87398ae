"""bench/inbound: classify-and-file throughput of the real poller against Dovecot, with a
baseline of plain imap-tools fetch-and-move of the same messages, measured in the same run.

    .venv/bin/python bench/inbound.py [--messages 10000] [--recover 1000] [--db sqlite|postgresql]

A throwaway Dovecot is started in a temp dir; the mixed set (questions, opt-out requests
from subscribers, DSN bounces, ARF complaints, auto-replies, mailto tokens) is APPENDed
pipelined over one connection (LITERAL+). The poller run is one `poll_once` with default
settings (acknowledgements off: they are SMTP work, at most one per address per day).
Database: SQLite in the temp dir (default) or a throwaway PostgreSQL database.

Recovery: `--recover` more messages are recorded by a pass whose moves fail (a crash
between the commit and the move), then the next pass files them, finding first which ones
are already in their folder (which by then hold the whole run's mail). Its baseline is the
old way, one UID SEARCH per Message-ID, timed over the same folder.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.dovecot import PASSWORD, start_dovecot, stop_dovecot  # noqa: E402

DEADLINE = time.monotonic() + 170  # the whole run stays under 3 minutes


def _head(frm: str, subject: str, extra: str = "") -> str:
    return (
        f"From: {frm}\r\nTo: info@example.org\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@bench.example>\r\n"
        f"Date: Tue, 3 Nov 2026 10:00:00 +0000\r\n{extra}MIME-Version: 1.0\r\n"
    )


def _footer() -> str:
    return (
        "\r\n> November news\r\n> Our workshop series starts on 14 November.\r\n"
        "> Unsubscribe: https://news.example.org/u/WzE3LDQyXQ.sig\r\n" * 3
    )


def build_messages(n: int, tokens: list[str]) -> list[bytes]:
    """A realistic mix: mostly people, some bounces, complaints and machines."""
    rng = random.Random(7)
    out = []
    for i in range(n):
        user = f"user{i % 5000}@example.com"
        pick = rng.random()
        if pick < 0.35:
            text = (
                _head(
                    f"User <{user}>",
                    "Re: November news",
                    "Content-Type: text/plain; charset=utf-8\r\n",
                )
                + "\r\nGreat issue, thanks! See you at the workshop.\r\n\r\n"
                "On Mon, 2 Nov 2026 at 10:00, Octomail <news@example.org> wrote:\r\n" + _footer()
            )
        elif pick < 0.55:
            text = (
                _head(f"User <{user}>", "Newsletter", "Content-Type: text/plain; charset=utf-8\r\n")
                + "\r\nPlease unsubscribe me from this list.\r\n\r\nThanks\r\n"
            )
        elif pick < 0.70:
            status, action = ("5.1.1", "failed") if rng.random() < 0.7 else ("4.4.1", "delayed")
            b = f"b{i}"
            text = (
                _head(
                    "MAILER-DAEMON@mx.example.net (Mail Delivery System)",
                    "Undelivered Mail Returned to Sender",
                    "Auto-Submitted: auto-replied\r\nContent-Type: multipart/report; "
                    f'report-type=delivery-status; boundary="{b}"\r\n',
                )
                + f"\r\n--{b}\r\nContent-Type: text/plain\r\n\r\nI'm sorry...\r\n"
                f"--{b}\r\nContent-Type: message/delivery-status\r\n\r\n"
                "Reporting-MTA: dns; mx.example.net\r\n\r\n"
                f"Final-Recipient: rfc822; {user}\r\nAction: {action}\r\n"
                f"Status: {status}\r\nDiagnostic-Code: smtp; 550 {status} unknown\r\n\r\n"
                f"--{b}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
                f"From: news@example.org\r\nTo: {user}\r\nSubject: November news\r\n"
                f"\r\n--{b}--\r\n"
            )
        elif pick < 0.75:
            b = f"a{i}"
            text = (
                _head(
                    "FBL <fbl@mailbox.example>",
                    "Abuse report",
                    "Content-Type: multipart/report; report-type=feedback-report; "
                    f'boundary="{b}"\r\n',
                )
                + f"\r\n--{b}\r\nContent-Type: text/plain\r\n\r\nAbuse report\r\n"
                f"--{b}\r\nContent-Type: message/feedback-report\r\n\r\n"
                f"Feedback-Type: abuse\r\nVersion: 1\r\nOriginal-Rcpt-To: {user}\r\n\r\n"
                f"--{b}--\r\n"
            )
        elif pick < 0.90:
            text = (
                _head(
                    f"User <{user}>",
                    "Automatic reply: November news",
                    "Auto-Submitted: auto-replied\r\nContent-Type: text/plain; charset=utf-8\r\n",
                )
                + "\r\nI am out of the office until Monday.\r\n"
                + _footer()
            )
        else:
            text = (
                _head(
                    f"Someone <other{i}@elsewhere.example>",
                    f"unsubscribe {tokens[i % len(tokens)]}",
                    "Content-Type: text/plain; charset=utf-8\r\n",
                )
                + "\r\nThis message was automatically generated by Gmail.\r\n"
            )
        out.append(text.encode())
    return out


def append_pipelined(port: int, user: str, messages: list[bytes]) -> None:
    """APPEND over one connection without waiting per message (LITERAL+, MULTIAPPEND)."""
    sock = socket.create_connection(("127.0.0.1", port))
    reader = sock.makefile("rb")
    reader.readline()
    sock.sendall(f"L LOGIN {user} {PASSWORD}\r\n".encode())
    while not reader.readline().startswith(b"L "):
        pass
    for start in range(0, len(messages), 500):
        # MULTIAPPEND (RFC 3502): one command, one mailbox transaction per 500 messages.
        chunk = messages[start : start + 500]
        sock.sendall(
            b"A%d APPEND INBOX" % start
            + b"".join(b" {%d+}\r\n%s" % (len(m), m) for m in chunk)
            + b"\r\n"
        )
        while True:
            line = reader.readline()
            if line.startswith(b"A%d " % start):
                if b" OK" not in line:
                    raise RuntimeError(line.decode(errors="replace"))
                break
    sock.sendall(b"Z LOGOUT\r\n")
    sock.close()


def baseline(port: int, user: str) -> float:
    """Plain imap-tools: fetch every message (parsed, as imap-tools does) and move them."""
    from imap_tools import MailBoxUnencrypted

    start = time.perf_counter()
    with MailBoxUnencrypted("127.0.0.1", port).login(user, PASSWORD) as box:
        if not box.folder.exists("Done"):
            box.folder.create("Done")
        uids = [m.uid for m in box.fetch(mark_seen=False, bulk=500)]
        box.move(uids, "Done", chunks=500)
    return time.perf_counter() - start


def crash_then_recover(port: int, user: str, messages: list[bytes]) -> tuple[float, float]:
    """(seconds of the pass that files `messages` recorded before a crash, seconds of one
    UID SEARCH per Message-ID in Processed, the old way of looking for their copies)."""
    from imap_tools import MailBoxUnencrypted
    from sqlmodel import Session, select

    from app.db import get_engine
    from app.inbound.poller import poll_once
    from app.inbound.sources import ImapSource
    from app.models import InboundMessage
    from app.settings import get_settings

    append_pipelined(port, user, messages)
    real_move = ImapSource.move

    def lost(self: ImapSource, uids: object, folder: str) -> None:
        raise ConnectionError("crash before the move")

    ImapSource.move = lost  # type: ignore[method-assign]
    try:
        poll_once(get_settings())
    except ConnectionError:
        pass
    finally:
        ImapSource.move = real_move  # type: ignore[method-assign]
    start = time.perf_counter()
    summary = poll_once(get_settings())
    recover_s = time.perf_counter() - start
    assert summary["recovered"] == len(messages), summary
    ids = {m.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode() for m in messages}
    with Session(get_engine()) as session:
        by_folder: dict[str, list[str]] = {}
        for message_id, folder in session.execute(
            select(InboundMessage.message_id, InboundMessage.folder)
        ):
            if message_id in ids:
                by_folder.setdefault(folder, []).append(message_id)
    naive_s = 0.0
    with MailBoxUnencrypted("127.0.0.1", port).login(user, PASSWORD) as box:
        for folder, wanted in by_folder.items():  # what the old recover_moves did
            box.folder.set(folder, readonly=True)
            start = time.perf_counter()
            for message_id in wanted:
                box.client.uid("SEARCH", "HEADER", "Message-ID", f'"{message_id}"')
            naive_s += time.perf_counter() - start
    return recover_s, naive_s


def setup_db(kind: str, tmp: Path) -> tuple[str, callable]:  # type: ignore[valid-type]
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}", lambda: None
    from sqlalchemy import create_engine, text

    admin_url = os.environ.get(
        "OCTOMAIL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    name = f"octomail_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        from app.db import _engine_for

        _engine_for(admin_url.rsplit("/", 1)[0] + f"/{name}").dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return admin_url.rsplit("/", 1)[0] + f"/{name}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument(
        "--recover",
        type=int,
        default=1000,
        help="messages recorded before a crash, filed by the next pass",
    )
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="octomail-bench-inbound-"))
    os.chmod(tmp, 0o755)
    server = start_dovecot(tmp / "dovecot")
    db_url, drop_db = setup_db(args.db, tmp)
    try:
        poller_user, baseline_user = server.add_user(), server.add_user()
        os.environ.update(
            {
                "OCTOMAIL_VAR_DIR": str(tmp / "var"),
                "OCTOMAIL_DATABASE_URL": db_url,
                "OCTOMAIL_SECRET_KEYS": "bench-secret",
                "OCTOMAIL_SUPPRESSION_PEPPER": "bench",
                "OCTOMAIL_UNSUBSCRIBE_MAILTO": "info@example.org",
                "OCTOMAIL_FROM": "news@example.org",
                "OCTOMAIL_ACK_OPTOUTS": "false",
                "OCTOMAIL_IMAP_URL": server.url(poller_user),
            }
        )
        from datetime import timedelta

        from sqlalchemy import insert
        from sqlmodel import Session

        from app.db import get_engine
        from app.inbound.poller import poll_once
        from app.links import unsubscribe_token
        from app.migrate import upgrade
        from app.models import Campaign, Send, Subscriber, utcnow
        from app.settings import get_settings

        get_settings.cache_clear()
        settings = get_settings()
        upgrade(get_engine(settings))
        with Session(get_engine(settings)) as session:
            people = [Subscriber(email=f"user{i}@example.com") for i in range(5000)]
            session.add_all(people)
            # Yesterday's campaign went to all of them: their bounces and complaints are
            # tied to our mail (a report about an address we never mailed goes to Review).
            campaign = Campaign(name="November news", subject="News", status="done")
            session.add(campaign)
            session.flush()
            session.execute(
                insert(Send.__table__),
                [  # type: ignore[attr-defined]
                    {
                        "campaign_id": campaign.id,
                        "subscriber_id": i + 1,
                        "status": "sent",
                        "attempts": 1,
                        "sent_at": utcnow() - timedelta(days=1),
                    }
                    for i in range(5000)
                ],
            )
            session.commit()
            tokens = [
                unsubscribe_token(p.id, 0, settings, secret=p.link_secret)  # type: ignore[arg-type]
                for p in people[::7]
            ]
        messages = build_messages(args.messages, tokens)
        size = sum(map(len, messages)) / len(messages)

        t0 = time.perf_counter()
        append_pipelined(server.port, poller_user, messages)
        append_s = time.perf_counter() - t0
        start, cpu0 = time.perf_counter(), time.process_time()
        summary = poll_once(settings)
        poller_s, poller_cpu = time.perf_counter() - start, time.process_time() - cpu0
        assert summary["seen"] == args.messages, summary
        if time.monotonic() > DEADLINE:
            raise SystemExit("over the time budget before the baseline")

        append_pipelined(server.port, baseline_user, messages)
        cpu0 = time.process_time()
        base_s = baseline(server.port, baseline_user)
        base_cpu = time.process_time() - cpu0

        recover_s = naive_s = 0.0
        if args.recover:
            recover_s, naive_s = crash_then_recover(
                server.port, poller_user, build_messages(args.recover, tokens)
            )

        rate, base_rate = args.messages / poller_s, args.messages / base_s
        kinds = {k: v for k, v in summary.items() if k not in {"source", "seen", "recovered"}}
        print(
            f"messages: {args.messages} (avg {size:.0f} bytes), database: {args.db}, "
            f"Dovecot {server.port}, append {args.messages / append_s:,.0f} msg/s"
        )
        print(f"verdicts: {kinds}")
        print(f"poller (fetch, classify, record+act, file):  {rate:8,.0f} msg/s ({poller_s:.2f} s)")
        print(
            f"baseline (imap-tools fetch + move):          {base_rate:8,.0f} msg/s ({base_s:.2f} s)"
        )
        print(
            f"CPU of this process per message: poller "
            f"{poller_cpu * 1e6 / args.messages:,.0f} µs, "
            f"baseline {base_cpu * 1e6 / args.messages:,.0f} µs (Dovecot's own CPU excluded); "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        print(f"ratio poller/baseline: {rate / base_rate:.2f} (target >= 0.50)")
        if args.recover:
            print(
                f"recovery after a crash, {args.recover} recorded-but-unmoved messages: "
                f"{recover_s:.2f} s ({args.recover / recover_s:,.0f} msg/s; normal rate "
                f"{rate:,.0f} msg/s); one SEARCH per message would take {naive_s:.2f} s "
                "for the lookup alone"
            )
    finally:
        stop_dovecot(server)
        drop_db()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
