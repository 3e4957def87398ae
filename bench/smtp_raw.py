"""The aiosmtplib ceiling vs SmtpPool: one pre-rendered ~15 KB message to Postfix's smtp-sink.

    .venv/bin/python bench/smtp_raw.py [--messages 10000] [--connections 8] [--loop uvloop]

Prints msg/s for a raw aiosmtplib loop (N connections, `sendmail` per message: the ceiling the
issue measures against), for SmtpPool with the same connection count, and for render_message
(a ~15 KB HTML campaign, personalised) + SmtpPool.send, with their ratios to the raw loop.
bench/send.py imports `raw_aiosmtplib_rate` and `pool_rate` from here.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiosmtplib
from _sinks import sample_message, smtp_sink, smtp_source_rate

from app.models import Campaign
from app.sending.render import Recipient, prepare_campaign, render_message
from app.sending.transport import DeliveryOutcome, SmtpPool
from app.settings import Settings

SENDER, RCPT = "news@example.org", "someone@example.com"


async def _raw(port: int, message: bytes, connections: int, messages: int) -> float:
    clients = [aiosmtplib.SMTP(hostname="127.0.0.1", port=port) for _ in range(connections)]
    await asyncio.gather(*(c.connect() for c in clients))
    remaining = messages

    async def loop(client: aiosmtplib.SMTP) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await client.sendmail(SENDER, [RCPT], message)

    started = time.perf_counter()
    await asyncio.gather(*(loop(c) for c in clients))
    elapsed = time.perf_counter() - started
    await asyncio.gather(*(c.quit() for c in clients), return_exceptions=True)
    return messages / elapsed


async def _pool(
    port: int, message: bytes, connections: int, messages: int, render: bool = False
) -> float:
    remaining = messages
    failures = 0
    prepared, people, settings = _campaign(messages) if render else (None, [], None)
    async with SmtpPool([f"smtp://127.0.0.1:{port}"], connections_per_provider=connections) as pool:

        async def loop() -> None:
            nonlocal remaining, failures
            while remaining > 0:
                remaining -= 1
                if prepared is not None:  # what a worker does per recipient, minus the DB
                    rendered = render_message(prepared, people[remaining], settings=settings)
                    result = await pool.send(rendered.envelope_from, rendered.rcpt, rendered.data)
                else:
                    result = await pool.send(SENDER, RCPT, message)
                failures += result.outcome != DeliveryOutcome.SENT

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"SmtpPool: {failures} messages not accepted by the sink")
    return messages / elapsed


def _campaign(n: int) -> tuple[object, list[Recipient], Settings]:
    from render import BODY, recipients, settings  # bench/render.py

    s = settings()
    campaign = Campaign(id=1, name="Bench", subject="News for {{ first_name }}", body=BODY)
    return prepare_campaign(campaign, settings=s, topic_names=["News"]), recipients(n), s


def _run(coro: object, loop_name: str) -> float:
    if loop_name == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)  # type: ignore[arg-type]
    return asyncio.run(coro)  # type: ignore[arg-type]


def raw_aiosmtplib_rate(
    port: int,
    connections: int = 8,
    messages: int = 10000,
    message: bytes | None = None,
    loop: str = "uvloop",
) -> float:
    """msg/s of plain aiosmtplib `sendmail` over `connections` connections (the ceiling)."""
    return _run(_raw(port, message or sample_message(), connections, messages), loop)


def pool_rate(
    port: int,
    connections: int = 8,
    messages: int = 10000,
    message: bytes | None = None,
    loop: str = "uvloop",
    render: bool = False,
) -> float:
    """msg/s of SmtpPool.send with the same message and connection count (with `render`:
    render_message of a ~15 KB HTML campaign per recipient first)."""
    return _run(_pool(port, message or sample_message(), connections, messages, render), loop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--loop", choices=["uvloop", "asyncio", "both"], default="both")
    parser.add_argument(
        "--smtp-source",
        action="store_true",
        help="also measure Postfix's smtp-source (the machine's ceiling)",
    )
    args = parser.parse_args()
    message = sample_message()
    loops = ["uvloop", "asyncio"] if args.loop == "both" else [args.loop]
    print(
        f"message {len(message)} bytes, {args.messages} messages, "
        f"{args.connections} connections, smtp-sink on loopback"
    )
    with smtp_sink() as port:
        for loop in loops:
            # warm up both paths (imports, TCP, the sink's process pool)
            raw_aiosmtplib_rate(port, args.connections, 500, message, loop)
            pool_rate(port, args.connections, 500, message, loop)
            raw = raw_aiosmtplib_rate(port, args.connections, args.messages, message, loop)
            pooled = pool_rate(port, args.connections, args.messages, message, loop)
            rendered = pool_rate(port, args.connections, args.messages, message, loop, True)
            print(
                f"[{loop:7}] raw aiosmtplib sendmail: {raw:6.0f} msg/s | SmtpPool.send: "
                f"{pooled:6.0f} msg/s, ratio {pooled / raw:.2f} | render_message + "
                f"SmtpPool.send: {rendered:6.0f} msg/s, ratio {rendered / raw:.2f}"
            )
        if args.smtp_source:
            source = smtp_source_rate(port, 20000, args.connections, len(message))
            print(f"smtp-source (C, machine ceiling): {source:8.0f} msg/s")


if __name__ == "__main__":
    main()
