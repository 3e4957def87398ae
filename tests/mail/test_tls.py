"""TLS to the SMTP relay and the IMAP mailbox, against real servers holding a certificate
made here: STARTTLS and implicit TLS, verification on (the test's CA is trusted through
SSL_CERT_FILE, as an operator's private CA would be), a certificate nobody vouches for
refused with a reason that says so, and `verify=0` for a self-signed server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from app.errors import ConfigurationError
from app.inbound.sources import ImapSource
from app.sending.transport import DeliveryOutcome, DeliveryResult, SmtpPool, run_async
from tests.support.dovecot import Dovecot, temporary_dovecot
from tests.support.net import free_port
from tests.support.tls import TlsFiles, make_tls_files

MESSAGE = b"From: news@example.org\r\nTo: a@example.com\r\nSubject: tls\r\n\r\nbody\r\n"


class _Received:
    def __init__(self) -> None:
        self.sessions: list[tuple[str, bool]] = []  # (recipient, over TLS)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for rcpt in envelope.rcpt_tos:
            self.sessions.append((rcpt, server.transport.get_extra_info("ssl_object") is not None))
        return "250 2.0.0 Queued"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def trusted(tls: TlsFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients trust the test CA, and only it, as with a private CA in production."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


@pytest.fixture
def untrusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients trust another CA: the server's certificate is one nobody vouches for."""
    other = make_tls_files(tmp_path / "other", name="Somebody else")
    monkeypatch.setenv("SSL_CERT_FILE", str(other.ca))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


@pytest.fixture(params=["starttls", "implicit"])
def relay(request: pytest.FixtureRequest, tls: TlsFiles) -> Iterator[tuple[str, _Received]]:
    """aiosmtpd that takes mail only over TLS; yields the URL scheme part and what it got."""
    handler, port = _Received(), free_port()
    if request.param == "starttls":
        controller = Controller(
            handler,
            hostname="127.0.0.1",
            port=port,
            tls_context=tls.server_context(),
            require_starttls=True,
        )
        url = f"smtp://127.0.0.1:{port}?starttls=1&timeout=5"
    else:
        controller = Controller(
            handler, hostname="127.0.0.1", port=port, ssl_context=tls.server_context()
        )
        url = f"smtps://127.0.0.1:{port}?timeout=5"
    controller.start()
    try:
        yield url, handler
    finally:
        controller.stop()


def _send(url: str) -> DeliveryResult:
    async def main() -> DeliveryResult:
        async with SmtpPool([url], connections_per_provider=1) as pool:
            return await pool.send("news@example.org", "a@example.com", MESSAGE)

    return run_async(main)


@pytest.mark.usefixtures("trusted")
def test_smtp_over_tls_with_verification(relay: tuple[str, _Received]) -> None:
    url, received = relay
    result = _send(url)
    assert result.outcome is DeliveryOutcome.SENT, result.reply
    assert received.sessions == [("a@example.com", True)]


@pytest.mark.usefixtures("untrusted")
def test_smtp_certificate_nobody_vouches_for_is_refused_with_the_reason(
    relay: tuple[str, _Received],
) -> None:
    url, received = relay
    result = _send(url)
    assert result.outcome is DeliveryOutcome.RETRY  # the relay may be fixed: never failed
    assert "certificate" in result.reply.lower(), result.reply
    assert received.sessions == []


@pytest.mark.usefixtures("untrusted")
def test_smtp_verify_0_accepts_a_self_signed_relay(relay: tuple[str, _Received]) -> None:
    url, received = relay
    result = _send(url + "&verify=0")
    assert result.outcome is DeliveryOutcome.SENT, result.reply
    assert received.sessions == [("a@example.com", True)]


# -- IMAP ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def imap_tls(tls: TlsFiles) -> Iterator[Dovecot]:
    with temporary_dovecot(tls=tls) as server:
        yield server


def _imap_urls(server: Dovecot, user: str) -> dict[str, str]:
    return {
        "starttls": f"imap://{user}:secret@127.0.0.1:{server.port}/INBOX?starttls=1",
        "implicit": f"imaps://{user}:secret@127.0.0.1:{server.tls_port}/INBOX",
    }


def _deliver(server: Dovecot, user: str) -> None:
    with server.connect(user) as box:
        box.append(MESSAGE, "INBOX")


@pytest.mark.usefixtures("trusted")
@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_imap_over_tls_with_verification(imap_tls: Dovecot, mode: str) -> None:
    user = imap_tls.add_user()
    _deliver(imap_tls, user)
    source = ImapSource(_imap_urls(imap_tls, user)[mode], timeout=10)
    source.open()
    try:
        assert len(source.list_uids()) == 1
    finally:
        source.close()


@pytest.mark.usefixtures("untrusted")
@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_imap_certificate_nobody_vouches_for_is_refused(imap_tls: Dovecot, mode: str) -> None:
    user = imap_tls.add_user()
    source = ImapSource(_imap_urls(imap_tls, user)[mode], timeout=10)
    with pytest.raises(OSError, match="(?i)certificate"):
        source.open()


@pytest.mark.usefixtures("untrusted")
@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_imap_verify_0_accepts_a_self_signed_server(imap_tls: Dovecot, mode: str) -> None:
    user = imap_tls.add_user()
    _deliver(imap_tls, user)
    source = ImapSource(
        _imap_urls(imap_tls, user)[mode] + ("&" if mode == "starttls" else "?") + "verify=0",
        timeout=10,
    )
    source.open()
    try:
        assert len(source.list_uids()) == 1
    finally:
        source.close()


def test_plain_imap_to_a_remote_host_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="imaps://"):
        ImapSource("imap://u:p@mail.example.com/INBOX")
