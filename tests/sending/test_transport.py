"""SmtpPool against real aiosmtpd servers: reply classes, reconnects, fail-over, rate limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from app.errors import ConfigurationError
from app.mail.smtp import parse_smtp_url
from app.sending.transport import (
    DeliveryOutcome,
    SmtpPool,
    classify_reply,
    run_async,
)
from tests.support.net import free_port
from tests.support.smtp_sink import SmtpSink

MESSAGE = (
    b"From: news@example.org\r\nTo: someone@example.com\r\nSubject: hello\r\n"
    b"Message-ID: <m1@example.org>\r\n\r\n.starts with a dot\r\n..two dots\r\nbody\r\n"
)


def run(coro_fn: Callable[[], object]) -> object:
    return run_async(coro_fn)  # type: ignore[arg-type]


def test_parse_smtp_url_and_masking() -> None:
    target = parse_smtp_url("smtp://us%40er:s3cr%3At@mail.example.org:2587?starttls=1&verify=0")
    assert (target.host, target.port, target.username, target.password) == (
        "mail.example.org",
        2587,
        "us@er",
        "s3cr:t",
    )
    assert target.starttls
    assert not target.implicit_tls
    assert not target.verify_tls
    assert "s3cr" not in repr(target)
    assert "s3cr" not in str(target)
    assert str(target) == "smtp://us@er:***@mail.example.org:2587"
    tls = parse_smtp_url("smtps://u:p@mail.example.org")
    assert tls.implicit_tls
    assert tls.port == 465
    assert not tls.starttls
    assert parse_smtp_url("smtp://localhost").port == 25
    assert parse_smtp_url("smtp://localhost?starttls=true").port == 587
    for bad in ("http://x", "smtp://", "smtp://h:port"):
        with pytest.raises(ConfigurationError):
            parse_smtp_url(bad)
    pool = SmtpPool(["smtp://u:hunter2@127.0.0.1:1"], connections_per_provider=1)
    assert "hunter2" not in repr(pool)


@pytest.mark.parametrize(
    ("code", "reply", "outcome", "hard"),
    [
        (250, "2.0.0 OK", DeliveryOutcome.SENT, False),
        (421, "4.7.0 Too many connections", DeliveryOutcome.RETRY, False),
        (450, "4.2.1 Mailbox busy", DeliveryOutcome.RETRY, False),
        (451, "4.7.1 Greylisted", DeliveryOutcome.RETRY, False),
        (452, "4.5.3 Too many recipients", DeliveryOutcome.RETRY, False),
        (454, "4.7.0 TLS not available", DeliveryOutcome.RETRY, False),
        (550, "5.1.1 No such user", DeliveryOutcome.FAILED, True),
        (550, "No such user", DeliveryOutcome.FAILED, True),
        (551, "User not local", DeliveryOutcome.FAILED, True),
        (553, "5.1.3 Bad address syntax", DeliveryOutcome.FAILED, True),
        (554, "5.1.2 Bad destination host", DeliveryOutcome.FAILED, True),
        (550, "5.7.1 Message rejected as spam", DeliveryOutcome.FAILED, False),
        (552, "5.2.2 Mailbox full", DeliveryOutcome.FAILED, False),
        (554, "5.7.1 Rejected", DeliveryOutcome.FAILED, False),
    ],
)
def test_reply_classes(code: int, reply: str, outcome: DeliveryOutcome, hard: bool) -> None:
    result = classify_reply(code, reply)
    assert (result.outcome, result.hard_bounce, result.code) == (outcome, hard, code)


def test_sends_over_reused_connections(smtp_sink: SmtpSink) -> None:
    async def main() -> list[object]:
        async with SmtpPool([smtp_sink.url], connections_per_provider=3) as pool:
            results = await asyncio.gather(
                *(pool.send("news@example.org", f"r{i}@example.com", MESSAGE) for i in range(30))
            )
            return [results, dict(pool.stats)]

    results, stats = run(main)  # type: ignore[misc]
    assert {r.outcome for r in results} == {DeliveryOutcome.SENT}
    assert all(r.code == 250 for r in results)
    received = smtp_sink.wait_for(30)
    assert sorted(smtp_sink.delivered_to()) == sorted(f"r{i}@example.com" for i in range(30))
    assert received[0].data.replace(b"\r\n", b"\n") == MESSAGE.replace(b"\r\n", b"\n")
    assert stats["reconnects"] == 0  # the 3 connections opened at start() were reused


def test_lf_only_message_is_normalised(smtp_sink: SmtpSink) -> None:
    async def main() -> object:
        async with SmtpPool([smtp_sink.url], connections_per_provider=1) as pool:
            return await pool.send(
                "a@example.org", "b@example.com", b"Subject: lf\n\n.dot line\nend"
            )

    assert run(main).outcome == DeliveryOutcome.SENT  # type: ignore[attr-defined]
    data = smtp_sink.wait_for(1)[0].data
    assert b"\r\n.dot line\r\nend" in data


def test_reply_handling_and_rset(smtp_sink: SmtpSink) -> None:
    smtp_sink.reject("gone@example.com", "550 5.1.1 No such user")
    smtp_sink.reject("busy@example.com", "451 4.7.1 Slow down", times=1)
    smtp_sink.reject("full@example.com", "552 5.2.2 Mailbox full")

    async def main() -> dict[str, object]:
        # One connection: every message after a refusal reuses the session RSET left clean.
        async with SmtpPool([smtp_sink.url], connections_per_provider=1) as pool:
            out = {}
            for rcpt in (
                "gone@example.com",
                "ok1@example.com",
                "busy@example.com",
                "busy@example.com",
                "full@example.com",
                "ok2@example.com",
            ):
                out.setdefault(rcpt, []).append(await pool.send("a@example.org", rcpt, MESSAGE))
            smtp_sink.script_data("554 5.7.1 Content rejected", "452 4.3.1 Disk full")
            out["data554"] = [await pool.send("a@example.org", "c1@example.com", MESSAGE)]
            out["data452"] = [await pool.send("a@example.org", "c2@example.com", MESSAGE)]
            out["after"] = [await pool.send("a@example.org", "c3@example.com", MESSAGE)]
            return out

    out = run(main)
    gone = out["gone@example.com"][0]  # type: ignore[index]
    assert (gone.outcome, gone.code, gone.hard_bounce) == (DeliveryOutcome.FAILED, 550, True)
    first, second = out["busy@example.com"]  # type: ignore[index]
    assert (first.outcome, first.code) == (DeliveryOutcome.RETRY, 451)
    assert second.outcome == DeliveryOutcome.SENT
    full = out["full@example.com"][0]  # type: ignore[index]
    assert (full.outcome, full.hard_bounce) == (DeliveryOutcome.FAILED, False)
    assert out["data554"][0].outcome == DeliveryOutcome.FAILED  # type: ignore[index]
    assert not out["data554"][0].hard_bounce  # type: ignore[index]
    assert out["data452"][0].outcome == DeliveryOutcome.RETRY  # type: ignore[index]
    for key in ("ok1@example.com", "ok2@example.com", "after"):
        assert out[key][0].outcome == DeliveryOutcome.SENT  # type: ignore[index]
    assert set(smtp_sink.delivered_to()) == {
        "ok1@example.com",
        "ok2@example.com",
        "busy@example.com",
        "c3@example.com",
    }


def test_421_and_dropped_connections_reconnect(smtp_sink: SmtpSink) -> None:
    smtp_sink.script_data("421 4.7.0 Closing, too many messages", "drop")

    async def main() -> list[object]:
        async with SmtpPool([smtp_sink.url], connections_per_provider=1) as pool:
            results = [
                await pool.send("a@example.org", f"d{i}@example.com", MESSAGE) for i in range(4)
            ]
            return [results, dict(pool.stats)]

    results, stats = run(main)  # type: ignore[misc]
    assert [r.outcome for r in results] == [
        DeliveryOutcome.RETRY,
        DeliveryOutcome.RETRY,
        DeliveryOutcome.SENT,
        DeliveryOutcome.SENT,
    ]
    assert results[0].code == 421
    assert results[1].code is None
    assert stats["reconnects"] >= 2
    assert set(smtp_sink.delivered_to()) == {"d2@example.com", "d3@example.com"}


def test_server_restart_is_transparent(smtp_sink: SmtpSink) -> None:
    async def main() -> list[object]:
        async with SmtpPool([smtp_sink.url], connections_per_provider=2) as pool:
            before = await pool.send("a@example.org", "before@example.com", MESSAGE)
            smtp_sink.stop()  # closes the idle pooled connections, as idle timeouts do
            smtp_sink.start()
            after = await asyncio.gather(
                *(pool.send("a@example.org", f"after{i}@example.com", MESSAGE) for i in range(4))
            )
            return [before, *after]

    results = run(main)
    assert {r.outcome for r in results} == {DeliveryOutcome.SENT}  # type: ignore[attr-defined]
    assert len(smtp_sink.wait_for(5)) == 5


def test_failover_and_round_robin(smtp_sink_factory: Callable[[], SmtpSink]) -> None:
    first, second = smtp_sink_factory(), smtp_sink_factory()
    dead = f"smtp://127.0.0.1:{free_port()}"

    async def main() -> list[object]:
        async with SmtpPool([first.url, second.url], connections_per_provider=2) as pool:
            spread = await asyncio.gather(
                *(pool.send("a@example.org", f"s{i}@example.com", MESSAGE) for i in range(20))
            )
        async with SmtpPool([dead, first.url], connections_per_provider=2) as pool:
            failover = await asyncio.gather(
                *(pool.send("a@example.org", f"f{i}@example.com", MESSAGE) for i in range(10))
            )
        async with SmtpPool([dead], connections_per_provider=1) as pool:
            nowhere = await pool.send("a@example.org", "n@example.com", MESSAGE)
        return [spread, failover, nowhere]

    spread, failover, nowhere = run(main)  # type: ignore[misc]
    assert {r.outcome for r in spread + failover} == {DeliveryOutcome.SENT}
    assert len(first.messages) > 0
    assert len(second.messages) > 0
    assert len(first.messages) + len(second.messages) == 30
    assert nowhere.outcome == DeliveryOutcome.RETRY
    assert nowhere.code is None


def test_invalid_addresses_fail_without_touching_the_server(smtp_sink: SmtpSink) -> None:
    async def main() -> list[object]:
        async with SmtpPool([smtp_sink.url], connections_per_provider=1) as pool:
            return [
                await pool.send("a@example.org", rcpt, MESSAGE)
                for rcpt in ("x@example.com>\r\nRCPT TO:<y@example.com", "no-at", "ü@x.de")
            ]

    results = run(main)
    assert {r.outcome for r in results} == {DeliveryOutcome.FAILED}  # type: ignore[attr-defined]
    assert smtp_sink.attempts == {}


def test_rate_limit_per_second(smtp_sink: SmtpSink) -> None:
    rate, count = 20, 40

    async def main() -> float:
        async with SmtpPool(
            [smtp_sink.url], connections_per_provider=4, rate_per_second=rate
        ) as pool:
            start = time.monotonic()  # the clock the pool's event loop and the sink read
            results = await asyncio.gather(
                *(pool.send("a@example.org", f"r{i}@example.com", MESSAGE) for i in range(count))
            )
        assert {r.outcome for r in results} == {DeliveryOutcome.SENT}
        return start

    start = run_async(main)
    arrivals = sorted(m.at for m in smtp_sink.messages)
    assert len(arrivals) == count
    # A burst of `rate`, then `rate` a second: the (k+1)th message never arrives before
    # (k+1-rate)/rate seconds, however fast the machine (a slow one only arrives later).
    # 10 ms slack: uvloop's clock is read once per loop turn, in whole milliseconds.
    for k, at in enumerate(arrivals):
        assert at - start >= (k + 1 - rate) / rate - 0.01, (k, at - start)


def test_rate_limit_per_hour(smtp_sink: SmtpSink) -> None:
    async def burst_sent() -> None:
        while len(smtp_sink.messages) < 6:
            await asyncio.sleep(0.02)

    async def main() -> tuple[int, float]:
        async with SmtpPool(
            [smtp_sink.url], connections_per_provider=4, rate_per_hour=360
        ) as pool:  # burst of 6 (a minute's worth), then one per 10 s
            start = time.monotonic()
            tasks = [
                asyncio.create_task(pool.send("a@example.org", f"r{i}@example.com", MESSAGE))
                for i in range(30)
            ]
            await asyncio.wait_for(burst_sent(), timeout=60)  # the burst goes out at once
            await asyncio.sleep(1.0)  # time for a seventh, were the limit not kept
            done, elapsed = len(smtp_sink.messages), time.monotonic() - start
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return done, elapsed

    done, elapsed = run_async(main)
    # The burst, and no more: a seventh token takes 10 s to earn (so a stalled machine
    # may be allowed one more, never a faster one).
    assert 6 <= done <= 6 + int(elapsed / 10), (done, elapsed)


def test_authenticates_with_url_credentials() -> None:
    with SmtpSink(auth=("mailer", "p@ss:word")) as sink:
        good = sink.url.replace("smtp://", "smtp://mailer:p%40ss%3Aword@")
        bad = sink.url.replace("smtp://", "smtp://mailer:wrong@")

        async def main() -> list[object]:
            async with SmtpPool([good], connections_per_provider=1) as pool:
                ok = await pool.send("a@example.org", "b@example.com", MESSAGE)
            async with SmtpPool([bad], connections_per_provider=1) as pool:
                refused = await pool.send("a@example.org", "c@example.com", MESSAGE)
            return [ok, refused]

        ok, refused = run(main)  # type: ignore[misc]
        assert ok.outcome == DeliveryOutcome.SENT
        assert refused.outcome == DeliveryOutcome.RETRY  # a login failure is not the recipient's
        assert set(sink.delivered_to()) == {"b@example.com"}


def test_payload_dot_stuffs_even_when_line_endings_are_trusted() -> None:
    from app.sending.transport import _payload

    data = b"Subject: x\r\n\r\n.leading dot\r\nmiddle\r\n.\r\nend"
    expected = b"Subject: x\r\n\r\n..leading dot\r\nmiddle\r\n..\r\nend\r\n.\r\n"
    assert _payload(data, crlf=True) == expected
    assert _payload(data.replace(b"\r\n", b"\n")) == expected
