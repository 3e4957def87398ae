"""Ports for the real servers the tests start (SMTP, IMAP, uvicorn)."""

from __future__ import annotations

import socket

from tests.support.wait import wait_until


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def wait_port(port: int, timeout: float = 20.0) -> None:
    """Return once something accepts connections on 127.0.0.1:port; RuntimeError if not."""
    try:
        wait_until(lambda: _listening(port), timeout, interval=0.05, message=f"port {port}")
    except AssertionError:
        raise RuntimeError(f"nothing listens on 127.0.0.1:{port}") from None
