"""Transactional mail to internationalised addresses (issue 13): SMTPUTF8 where the relay
offers it, an A-label domain alone needs none, and a relay without it is an error the caller
reports (the allowance gives its grant back), never mail sent half-encoded."""

from __future__ import annotations

import smtplib

import pytest

from app.mail.transactional import send_transactional, transactional_message
from app.settings import get_settings
from tests.support.smtp_sink import SmtpSink


def _send(sink: SmtpSink, address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCTOMAIL_SMTP_URLS", sink.url)
    get_settings.cache_clear()
    settings = get_settings()
    message = transactional_message(
        settings, kind="confirm", to_address=address, to_name="Chloé", subject="Hi", text="Hello"
    )
    send_transactional(message, settings)


def test_a_non_ascii_local_part_goes_with_smtputf8(env, monkeypatch: pytest.MonkeyPatch) -> None:
    with SmtpSink(smtputf8=True) as sink:
        _send(sink, "chloé@exämple.com", monkeypatch)
        sink.wait_for(1)
    [received] = sink.messages
    assert received.rcpt == ["chloé@xn--exmple-cua.com"]
    assert any("SMTPUTF8" in options for options in sink.mail_options)
    assert "chloé@xn--exmple-cua.com".encode() in received.data  # raw UTF-8 (RFC 6532)


def test_an_idn_domain_alone_needs_no_smtputf8(env, monkeypatch: pytest.MonkeyPatch) -> None:
    with SmtpSink() as sink:
        _send(sink, "jo@bücher.example", monkeypatch)
        sink.wait_for(1)
    assert sink.messages[0].rcpt == ["jo@xn--bcher-kva.example"]
    assert sink.messages[0].data.isascii()


def test_a_relay_without_smtputf8_is_an_error_not_a_mangled_mail(
    env, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpSink() as sink, pytest.raises(smtplib.SMTPNotSupportedError):
        _send(sink, "chloé@exämple.com", monkeypatch)
    assert sink.messages == []
