"""Every address (issue 13): internationalised addresses (RFC 6531/6532) are accepted on the
API, sign-up and import in one normalised form, and sent with SMTPUTF8 when the server offers
it; without it that recipient alone fails with the reason. A real aiosmtpd, the real worker."""

from __future__ import annotations

import io
import unicodedata
from email import policy
from email.parser import Parser

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from app.db import session_scope
from app.mail.addresses import email_hmac, normalize_email
from app.models import Send, Subscriber
from tests.support.campaigns import BackgroundWorker, campaign_status, configure_sending
from tests.support.smtp_sink import SmtpSink
from tests.support.wait import wait_until

CHLOE = "chloé@exämple.com"  # NFC, Unicode domain: the stored form
CHLOE_ENVELOPE = "chloé@xn--exmple-cua.com"
JO = "jo@bücher.example"  # ASCII local part, IDN domain: needs no SMTPUTF8
JO_ENVELOPE = "jo@xn--bcher-kva.example"
PLAIN = "plain@example.org"


def test_every_spelling_of_one_address_is_one_stored_form_and_one_hash(env) -> None:
    spellings = [
        CHLOE,
        unicodedata.normalize("NFD", CHLOE),
        "chloé@xn--exmple-cua.com",
        "CHLOÉ@EXÄMPLE.COM",
        " Chloé@Exämple.com ",
    ]
    assert {normalize_email(s) for s in spellings} == {CHLOE}
    assert len({email_hmac(s) for s in spellings}) == 1
    assert normalize_email("jo@xn--bcher-kva.example") == JO
    assert email_hmac("jo@xn--bcher-kva.example") == email_hmac(JO)


def _add(api: TestClient, email: str):
    return api.post(
        "/api/v1/subscribers",
        json={"email": email, "topics": ["news"], "preconfirm": True, "consent_source": "test"},
    )


def _setup(api: TestClient) -> None:
    assert api.post("/api/v1/topics", json={"slug": "news", "name": "News"}).status_code == 201
    nfd = unicodedata.normalize("NFD", "Chloé@xn--exmple-cua.com")
    created = _add(api, nfd)
    assert created.status_code == 201, created.text
    assert created.json()["email"] == CHLOE
    again = _add(api, CHLOE)  # the same person, however spelled: no second row
    assert again.status_code == 200, again.text
    assert again.json()["id"] == created.json()["id"]
    for address in (JO, PLAIN):
        assert _add(api, address).status_code == 201
    # Import: the NFC spelling is a known person, not a second row.
    upload = api.post(
        "/api/v1/subscribers/import",
        files={"file": ("x.csv", io.BytesIO(f"email\n{CHLOE}\n".encode()), "text/csv")},
        data={"topic": "news", "consent_source": "test"},
    )
    assert upload.status_code == 200, upload.text
    assert upload.json()["imported"] == 0
    with session_scope() as s:
        assert sorted(s.exec(select(Subscriber.email)).all()) == sorted([CHLOE, JO, PLAIN])


def _send(api: TestClient) -> int:
    created = api.post(
        "/api/v1/campaigns",
        json={"name": "N", "subject": "Hello", "body": "Hi {{ name }}", "topics": ["news"]},
    )
    assert created.status_code == 201, created.text
    campaign_id = int(created.json()["id"])
    assert api.post(f"/api/v1/campaigns/{campaign_id}/send").status_code == 202
    return campaign_id


def _replies(campaign_id: int) -> dict[str, tuple[str, str]]:
    with session_scope() as s:
        rows = s.exec(
            select(Subscriber.email, Send.status, Send.smtp_reply)
            .join(Send, Send.subscriber_id == Subscriber.id)
            .where(Send.campaign_id == campaign_id)
        ).all()
    return {email: (str(status), reply or "") for email, status, reply in rows}


def test_sent_with_smtputf8_when_the_server_offers_it(
    api: TestClient, settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpSink(smtputf8=True) as sink:
        settings = configure_sending(monkeypatch, sink.url)
        _setup(api)
        campaign_id = _send(api)
        with BackgroundWorker(settings):
            wait_until(lambda: campaign_status(campaign_id) == "done", message="done")
        received = {m.rcpt[0]: m for m in sink.messages}
        options = list(sink.mail_options)
    assert set(received) == {CHLOE_ENVELOPE, JO_ENVELOPE, PLAIN}, _replies(campaign_id)
    assert {status for status, _ in _replies(campaign_id).values()} == {"sent"}
    # The envelope: SMTPUTF8 only for the non-ASCII local part (RFC 6531 section 3.4).
    assert sum("SMTPUTF8" in o for o in options) == 1
    # The header: UTF-8 as written (RFC 6532), the domain as a person reads it.
    chloe = received[CHLOE_ENVELOPE]
    assert f"To: {CHLOE}\r\n".encode() in chloe.data
    parsed = Parser(policy=policy.default).parsestr(chloe.data.decode("utf-8"))
    assert parsed["To"].addresses[0].addr_spec == CHLOE
    assert b"To: jo@xn--bcher-kva.example\r\n" in received[JO_ENVELOPE].data
    assert received[JO_ENVELOPE].data.isascii()


def test_without_smtputf8_only_that_recipient_fails_with_the_reason(
    api: TestClient, settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpSink() as sink:
        settings = configure_sending(monkeypatch, sink.url)
        _setup(api)
        campaign_id = _send(api)
        with BackgroundWorker(settings):
            wait_until(lambda: campaign_status(campaign_id) == "done", message="done")
        received = {m.rcpt[0] for m in sink.messages}
        attempts = dict(sink.attempts)
    assert received == {JO_ENVELOPE, PLAIN}
    replies = _replies(campaign_id)
    status, reply = replies[CHLOE]
    assert status == "failed"  # once: not retried, the campaign finished
    assert "SMTPUTF8" in reply
    assert CHLOE_ENVELOPE not in attempts  # refused before MAIL, never offered to the server
    assert replies[PLAIN][0] == replies[JO][0] == "sent"
