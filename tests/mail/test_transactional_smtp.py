"""Transactional mail reads OCTOMAIL_SMTP_URLS exactly as campaigns do.

A sign-up confirmation goes to a real aiosmtpd that requires STARTTLS with a self-signed
certificate made here, through `smtp://...?starttls=1&verify=0`: the URL a deployment with
such a relay uses for its campaigns, so its sign-ups must get their mail through it too.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlmodel import Session as DbSession

from app.db import get_engine
from app.models import Topic
from app.settings import get_settings


class _TlsOnly:
    """Keeps each accepted message with whether its session ran STARTTLS."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], bool, bytes]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        tls = session.ssl is not None
        self.received.append((list(envelope.rcpt_tos), tls, envelope.original_content or b""))
        return "250 2.0.0 Queued"


def _self_signed(folder: Path) -> ssl.SSLContext:
    """A throw-away certificate for 127.0.0.1 that no client trusts."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificate (apt-get install openssl)")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=smtp.test", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture
def starttls_relay(
    settings_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[_TlsOnly]:
    """aiosmtpd refusing mail before STARTTLS; OCTOMAIL_SMTP_URLS says verify=0."""
    context = _self_signed(tmp_path)
    handler = _TlsOnly()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        ready_timeout=30,
    )
    controller.start()
    monkeypatch.setenv("OCTOMAIL_SMTP_URLS", f"smtp://127.0.0.1:{port}?starttls=1&verify=0")
    get_settings.cache_clear()
    try:
        yield handler
    finally:
        controller.stop()


def test_signup_confirmation_goes_through_a_starttls_relay_with_verify_0(
    starttls_relay: _TlsOnly, client
) -> None:
    with DbSession(get_engine()) as s:
        s.add(Topic(slug="news", name="News"))
        s.commit()

    response = client.post(
        "/subscribe", json={"email": "ada@example.com", "topics": ["news"], "consent": True}
    )

    assert response.status_code == 202
    assert [(rcpt, tls) for rcpt, tls, _ in starttls_relay.received] == [
        (["ada@example.com"], True)
    ]
    assert b"/confirm/" in starttls_relay.received[0][2]
