"""The embedded mail catcher stores what SmtpPool sends into var/mail/outbox (Maildir)."""

from __future__ import annotations

import asyncio
import mailbox
from email import policy
from email.parser import BytesParser
from pathlib import Path

from app.models import Campaign
from app.sending.catcher import outbox_path, run_catcher, start_catcher
from app.sending.render import Recipient, prepare_campaign, render_message
from app.sending.transport import DeliveryOutcome, SmtpPool, run_async
from app.settings import Settings
from tests.support.net import free_port


def outbox(settings: Settings) -> list[bytes]:
    box = mailbox.Maildir(str(outbox_path(settings)), create=False)
    return [box.get_bytes(key) for key in box.iterkeys()]  # iter(box) gives messages


def test_run_catcher_stores_rendered_mail(render_settings: Settings, tmp_path: Path) -> None:
    settings = render_settings.model_copy(
        update={"mail_catcher_port": free_port(), "var_dir": tmp_path / "var"}
    )
    prepared = prepare_campaign(
        Campaign(id=1, name="n", subject="Hello {{ first_name }}", body="Body"),
        settings=settings,
        topic_names=["T"],
    )
    messages = [
        render_message(
            prepared,
            Recipient(id=i, email=f"r{i}@example.com", name=f"Person {i}"),
            settings=settings,
        )
        for i in range(5)
    ]

    async def main() -> list[object]:
        stop = asyncio.Event()
        server = asyncio.create_task(run_catcher(settings, stop))
        url = f"smtp://127.0.0.1:{settings.mail_catcher_port}"
        for _ in range(200):  # wait until it listens (no sleeps in the happy path)
            try:
                _reader, writer = await asyncio.open_connection(
                    "127.0.0.1", settings.mail_catcher_port
                )
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        async with SmtpPool([url], connections_per_provider=2) as pool:
            results = await asyncio.gather(
                *(pool.send(m.envelope_from, m.rcpt, m.data) for m in messages)
            )
        stop.set()
        await asyncio.wait_for(server, 10)
        return list(results)

    results = run_async(main)
    assert {r.outcome for r in results} == {DeliveryOutcome.SENT}
    stored = outbox(settings)
    assert len(stored) == 5
    parsed = [BytesParser(policy=policy.default).parsebytes(b) for b in stored]
    assert sorted(str(p["Delivered-To"]) for p in parsed) == [f"r{i}@example.com" for i in range(5)]
    assert {p["Message-ID"] for p in parsed} == {m.message_id for m in messages}
    assert all(p["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" for p in parsed)


def test_start_catcher_thread(render_settings: Settings, tmp_path: Path) -> None:
    settings = render_settings.model_copy(
        update={"mail_catcher_port": free_port(), "var_dir": tmp_path / "var2"}
    )
    controller = start_catcher(settings)
    try:

        async def main() -> object:
            async with SmtpPool(
                [f"smtp://127.0.0.1:{settings.mail_catcher_port}"], connections_per_provider=1
            ) as pool:
                return await pool.send(
                    "a@example.org", "b@example.com", b"Subject: hi\r\n\r\nhello\r\n"
                )

        assert run_async(main).outcome == DeliveryOutcome.SENT  # type: ignore[attr-defined]
    finally:
        controller.stop()
    (stored,) = outbox(settings)
    assert b"Subject: hi" in stored
    assert b"hello" in stored


def test_mail_to_the_info_mailbox_lands_in_the_inbox(
    render_settings: Settings, tmp_path: Path
) -> None:
    import smtplib

    from app.sending.catcher import inbox_path

    settings = render_settings.model_copy(
        update={"var_dir": tmp_path / "var", "unsubscribe_mailto": "info@example.org"}
    )
    controller = start_catcher(settings, port=free_port())
    try:
        with smtplib.SMTP("127.0.0.1", controller.port) as client:
            for rcpt in ("info@example.org", "Info+abc.def@Example.org", "someone@example.org"):
                client.sendmail("me@example.com", [rcpt], b"Subject: hi\r\n\r\nbody\r\n")
    finally:
        controller.stop()
    inbox = mailbox.Maildir(str(inbox_path(settings)), create=False)
    delivered = sorted(m["Delivered-To"] for m in inbox)
    assert delivered == ["Info+abc.def@Example.org", "info@example.org"]
    assert [m["Delivered-To"] for m in mailbox.Maildir(str(outbox_path(settings)))] == [
        "someone@example.org"
    ]


def test_bounces_to_verp_addresses_land_in_the_inbox(
    render_settings: Settings, tmp_path: Path
) -> None:
    """A bounce goes to the envelope sender, a +sub-address of the bounce mailbox: on the
    embedded defaults the catcher files it where the poller reads."""
    import smtplib

    from app.sending.catcher import inbox_path
    from app.verp import verp_address

    settings = render_settings.model_copy(
        update={
            "var_dir": tmp_path / "var",
            "unsubscribe_mailto": "info@example.org",
            "bounce_address": "bounces@mail.example.org",
        }
    )
    verp = verp_address(settings, 3, 4)
    assert verp.startswith("bounces+b-3-4-")
    controller = start_catcher(settings, port=free_port())
    try:
        with smtplib.SMTP("127.0.0.1", controller.port) as client:
            for rcpt in (
                verp,
                "info+b-1-2-0123456789abcdef@example.org",
                "bounces@example.org",
                "someone@mail.example.org",
            ):
                client.sendmail("", [rcpt], b"Subject: bounce\r\n\r\nbody\r\n")
    finally:
        controller.stop()
    inbox = mailbox.Maildir(str(inbox_path(settings)), create=False)
    assert sorted(m["Delivered-To"] for m in inbox) == sorted(
        [verp, "info+b-1-2-0123456789abcdef@example.org"]
    )
    assert sorted(m["Delivered-To"] for m in mailbox.Maildir(str(outbox_path(settings)))) == [
        "bounces@example.org",
        "someone@mail.example.org",
    ]
