"""The campaign's own tracking switches (issue 12), in the editor and the API: default on,
each can be turned off, a form that did not show them changes nothing."""

from __future__ import annotations

import re

import pytest

from app.models import Role
from tests.web.admin.test_campaign_editor import campaign_row, form, make_topic

# Pages and forms over the domain functions, which their own tests run on both databases
# (tests/conftest.py, `one_database`).
pytestmark = [pytest.mark.usefixtures("settings_env"), pytest.mark.one_database]


def test_editor_shows_and_saves_the_switches(sign_in_as) -> None:
    make_topic()
    editor = sign_in_as(Role.EDITOR)
    page = editor.client.get("/admin/campaigns/new").text
    assert re.search(r'name="track_opens" value="1" checked', page)
    assert re.search(r'name="track_clicks" value="1" checked', page)

    created = editor.client.post(
        "/admin/campaigns/new", data=form(editor, tracking_shown="1", track_clicks="1")
    )
    campaign_id = int(re.search(r"/admin/campaigns/(\d+)$", created.headers["location"])[1])
    saved = campaign_row(campaign_id)
    assert (saved.track_opens, saved.track_clicks) == (False, True)
    page = editor.client.get(f"/admin/campaigns/{campaign_id}").text
    assert not re.search(r'name="track_opens" value="1" checked', page)

    # a post without the boxes (not from this form) leaves them as they are
    editor.client.post(f"/admin/campaigns/{campaign_id}", data=form(editor, subject="Again"))
    saved = campaign_row(campaign_id)
    assert (saved.subject, saved.track_opens, saved.track_clicks) == ("Again", False, True)


def test_api_creates_reads_and_changes_the_switches(api) -> None:
    make_topic()
    body = {"name": "N", "subject": "S", "body": "Hi", "topics": ["news"]}
    created = api.post("/api/v1/campaigns", json=body).json()
    assert (created["track_opens"], created["track_clicks"]) == (True, True)
    off = api.post("/api/v1/campaigns", json={**body, "track_opens": False}).json()
    assert (off["track_opens"], off["track_clicks"]) == (False, True)
    changed = api.patch(f"/api/v1/campaigns/{created['id']}", json={"track_clicks": False})
    assert changed.status_code == 200
    assert changed.json()["track_clicks"] is False
    refused = api.patch(f"/api/v1/campaigns/{created['id']}", json={"track_clicks": None})
    assert refused.status_code == 422
