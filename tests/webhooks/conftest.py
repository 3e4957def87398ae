"""Every provider configured, with keys made here; the app's SNS certificate fetcher
replaced by one serving our own certificate."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import get_settings
from app.webhooks.sns import Certificates
from tests.support.webhooks import MAILGUN_KEY, TOPIC, SendGridSigner, SnsSigner


@dataclass
class Hooks:
    client: TestClient
    sns: SnsSigner
    sendgrid: SendGridSigner


@pytest.fixture
def hooks(settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Hooks]:
    sns, sendgrid = SnsSigner(), SendGridSigner()
    monkeypatch.setenv("OCTOMAIL_WEBHOOK_SES_TOPIC_ARNS", f"{TOPIC}, arn:aws:sns:x:1:other")
    monkeypatch.setenv("OCTOMAIL_WEBHOOK_SENDGRID_PUBLIC_KEY", sendgrid.public_key_setting())
    monkeypatch.setenv("OCTOMAIL_WEBHOOK_POSTMARK_CREDENTIALS", "postmark:s3cret-Pa55")
    monkeypatch.setenv("OCTOMAIL_WEBHOOK_MAILGUN_SIGNING_KEY", MAILGUN_KEY)
    get_settings.cache_clear()
    with TestClient(create_app(), base_url="http://testserver") as client:
        client.app.state.sns_certificates = Certificates(fetch=sns.fetch)  # type: ignore[attr-defined]
        yield Hooks(client, sns, sendgrid)
