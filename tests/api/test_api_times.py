"""Every time in an /api/v1 answer is UTC with an offset, one format across endpoints."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from app.db import session_scope
from app.models import InboundMessage
from tests.support.campaigns import create_campaign, make_topic

_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _times(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every (json path, string) in an answer that looks like a date and time."""
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in _times(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [t for i, v in enumerate(value) for t in _times(v, f"{path}[{i}]")]
    if isinstance(value, str) and _TIME.match(value):
        return [(path, value)]
    return []


def test_every_api_time_is_utc_with_an_offset(api) -> None:
    with session_scope() as s:
        make_topic(s, "news")
        campaign = create_campaign(s, ["news"])
        campaign.send_at = datetime(2099, 5, 1, 9, 0)  # stored naive, as the database does
        s.add(InboundMessage(source="test", uid="1", from_addr="bob@example.org", subject="Hi"))
        s.flush()
        campaign_id = campaign.id
    created = api.post(
        "/api/v1/subscribers",
        json={
            "email": "ann@example.org",
            "topics": ["news"],
            "preconfirm": True,
            "consent_source": "fair",
        },
    )
    assert created.status_code == 201, created.text
    person_id = created.json()["id"]
    rules = [
        {"field": "created_at", "op": ">", "value": "2026-01-01T12:00:00+02:00"},
        {"field": "created_at", "op": "<", "value": "2099-01-01T10:00:00"},  # no offset: UTC
    ]
    segment = api.post("/api/v1/segments", json={"name": "Recent", "rules": rules})
    assert segment.status_code == 201, segment.text
    urls = [
        "/api/v1/subscribers",
        f"/api/v1/subscribers/{person_id}",
        f"/api/v1/subscribers/{person_id}/consent",
        f"/api/v1/subscribers/{person_id}/data",
        "/api/v1/campaigns",
        f"/api/v1/campaigns/{campaign_id}",
        "/api/v1/inbound",
        "/api/v1/segments",
        f"/api/v1/segments/{segment.json()['id']}",
        "/api/v1/topics",
        "/api/v1/tokens",
        "/api/v1/users",
    ]
    seen: dict[str, str] = {}
    for url in urls:
        answer = api.get(url)
        assert answer.status_code == 200, (url, answer.text)
        for path, text in _times(answer.json()):
            seen[url + path] = text
    kinds = {re.sub(r"\[\d+\]|/\d+", "", key).rsplit(".", 1)[-1] for key in seen}
    assert {"created_at", "send_at", "at"} <= kinds, kinds
    assert any(key.startswith("/api/v1/inbound") for key in seen)
    assert any(key.endswith("/consent.items[0].at") for key in seen), seen
    assert seen["/api/v1/segments.items[0].rules[0].value"] == "2026-01-01T10:00:00Z"
    assert seen["/api/v1/segments.items[0].rules[1].value"] == "2099-01-01T10:00:00Z"
    for key, text in seen.items():
        parsed = datetime.fromisoformat(text)
        assert parsed.utcoffset() == timedelta(0), (key, text)  # never naive, always UTC
        assert text.endswith("Z"), (key, text)  # one spelling everywhere
