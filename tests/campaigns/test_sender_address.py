"""The From address that is validated is the one that is sent (issue 9, part 7)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.campaigns.preview import topic_names
from app.campaigns.service import get_campaign
from app.db import session_scope
from app.sending.render import prepare_campaign
from app.settings import Settings, get_settings
from tests.support.campaigns import make_topic


@pytest.fixture
def topics(settings_env: dict[str, str]) -> None:
    with session_scope() as s:
        make_topic(s, "news")


def _create(api: TestClient, **fields: str):
    return api.post(
        "/api/v1/campaigns",
        json={"name": "Spring", "subject": "Hello", "body": "Hi", "topics": ["news"], **fields},
    )


@pytest.mark.parametrize("field", ["from", "reply_to"])
@pytest.mark.parametrize(
    "value",
    [
        "news@example.org\u2028<x@evil.example>",
        "News <news@example.org>\u2029",
        "News\x85 <news@example.org>",
        "news@example.org\x00",
        "News\t<news@example.org>",
    ],
)
def test_line_separators_and_controls_in_sender_fields_are_refused(
    api: TestClient, topics: None, field: str, value: str
) -> None:
    response = _create(api, **{field: value})
    assert response.status_code == 422, response.text
    assert "line-separator" in response.json()["detail"]
    created = _create(api)
    assert (
        api.patch(f"/api/v1/campaigns/{created.json()['id']}", json={field: value}).status_code
        == 422
    )


def test_an_address_that_cannot_be_sent_is_refused_when_written(
    api: TestClient, topics: None
) -> None:
    """email-validator accepts an internationalised local part; the sender cannot use it.
    Refused at create, not discovered when the send fails to start."""
    response = _create(api, **{"from": "Jöe <jöe@example.org>"})
    assert response.status_code == 422
    assert "SMTPUTF8" in response.json()["detail"]


def test_the_validated_from_is_the_sent_from(api: TestClient, topics: None) -> None:
    created = _create(
        api, **{"from": "Team  Spring <team@example.org>", "reply_to": "answers@example.org"}
    )
    assert created.status_code == 201
    with session_scope() as session:
        campaign = get_campaign(session, created.json()["id"])
        prepared = prepare_campaign(
            campaign, settings=get_settings(), topic_names=topic_names(session, campaign)
        )
    assert b"From: Team Spring <team@example.org>\r\n" in prepared.head
    assert b"Reply-To: answers@example.org\r\n" in prepared.head


def test_octomail_from_with_a_line_separator_is_refused_at_startup(
    settings_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCTOMAIL_FROM", "news@example.org\u2028bcc@evil.example")
    with pytest.raises(ValidationError, match="line-separator"):
        Settings()
    monkeypatch.setenv("OCTOMAIL_FROM", " news@example.org ")
    assert Settings().from_address == "news@example.org"
    monkeypatch.setenv("OCTOMAIL_ORG_NAME", "Acme\r\nBcc: x@evil.example")
    with pytest.raises(ValidationError, match="line-separator"):
        Settings()
