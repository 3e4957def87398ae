"""The preflight checklist page and its htmx fragment (the review page includes it)."""

from __future__ import annotations

import pytest

from app.campaigns.service import create_campaign
from app.db import session_scope
from app.models import Role
from tests.support.campaigns import make_topic

# Pages and forms over the domain functions, which their own tests run on both
# databases (tests/conftest.py, `one_database`).
pytestmark = pytest.mark.one_database


def _campaign(body: str) -> int:
    with session_scope() as s:
        make_topic(s, "news")
        return int(create_campaign(s, name="Nov", subject="Hello", body=body, topics=["news"]).id)


def test_the_checklist_names_what_to_fix_and_links_to_the_field(sign_in_as) -> None:
    campaign_id = _campaign('Hello <img src="https://example.org/cat.png">')
    viewer = sign_in_as(Role.VIEWER)
    page = viewer.client.get(f"/admin/campaigns/{campaign_id}/preflight")
    assert page.status_code == 200
    assert "<h1>Preflight: “Nov”</h1>" in page.text
    assert "1 to fix before sending" in page.text
    assert "1 image without alt text: https://example.org/cat.png" in page.text
    assert f'href="/admin/campaigns/{campaign_id}#f-body"' in page.text
    fragment = viewer.client.get(
        f"/admin/campaigns/{campaign_id}/preflight", headers={"HX-Request": "true"}
    )
    assert fragment.text.lstrip().startswith('<div id="preflight"')
    assert "<h1>" not in fragment.text


def test_unknown_campaign_is_404(sign_in_as) -> None:
    assert sign_in_as(Role.VIEWER).client.get("/admin/campaigns/99/preflight").status_code == 404
