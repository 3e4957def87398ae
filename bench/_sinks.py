"""Shared benchmark helpers: Postfix's smtp-sink / smtp-source, a ~15 KB test message.

    with smtp_sink() as port:            # smtp-sink on 127.0.0.1:PORT, stopped afterwards
        ...
    smtp_source_rate(port, 20000, 8)     # the C client's msg/s to that sink (machine ceiling)

smtp-sink comes from Debian's postfix package (scripts/system-deps installs it);
`find_tool("smtp-sink")` raises with the install hint when it is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

INSTALL_HINT = (
    "install Postfix's tools: echo 'postfix postfix/main_mailer_type select No "
    "configuration' | debconf-set-selections && DEBIAN_FRONTEND=noninteractive "
    "apt-get install -y postfix (or run scripts/system-deps)"
)


def find_tool(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/lib/postfix/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SystemExit(f"{name} not found: {INSTALL_HINT}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@contextmanager
def smtp_sink(port: int | None = None, backlog: int = 1000) -> Iterator[int]:
    """Run `smtp-sink -c 127.0.0.1:PORT BACKLOG` (as root: `-u nobody`); yield the port."""
    port = port or free_port()
    command = [find_tool("smtp-sink")]
    if os.geteuid() == 0:
        command += ["-u", "nobody"]
    command += ["-c", f"127.0.0.1:{port}", str(backlog)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def smtp_source_rate(
    port: int, messages: int = 20000, sessions: int = 8, size: int = 15000
) -> float:
    """Postfix's C client to the sink: `smtp-source -m N -s S -l SIZE`; returns msg/s."""
    command = [
        find_tool("smtp-source"),
        "-m",
        str(messages),
        "-s",
        str(sessions),
        "-l",
        str(size),
        f"127.0.0.1:{port}",
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return messages / (time.perf_counter() - started)


def sample_message(size: int = 15000) -> bytes:
    """A pre-rendered ~`size`-byte multipart message with CRLF line endings."""
    head = (
        b"From: Octo News <news@example.org>\r\nTo: someone@example.com\r\n"
        b"Subject: Benchmark\r\nMessage-ID: <bench@example.org>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n"
    return head + line * max(1, (size - len(head)) // len(line))
