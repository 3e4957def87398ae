"""The editor's public archive toggle: a sent marketing campaign shown and taken out, a
draft marked ahead, a transactional one refused; viewers see the state without the button."""

from __future__ import annotations

import re

import pytest
from sqlmodel import Session

from app.db import get_engine
from app.models import Campaign, Role
from tests.support.archive import seed

# Pages and forms over the domain functions, which their own tests run on both databases
# (tests/conftest.py, `one_database`).
pytestmark = [pytest.mark.usefixtures("settings_env"), pytest.mark.one_database]


def _public(campaign_id: int) -> bool:
    with Session(get_engine()) as session:
        row = session.get(Campaign, campaign_id)
        assert row is not None
        return row.public_archive


def _toggle(m, campaign_id: int, public: str) -> str:
    answer = m.client.post(
        f"/admin/campaigns/{campaign_id}/archive",
        data={"public": public, "csrf_token": m.csrf},
    )
    assert answer.status_code == 303
    page = m.client.get(answer.headers["location"])
    return re.search(r'<p class="flash">(.*?)</p>', page.text)[1]


def test_show_and_take_out(sign_in_as) -> None:
    ids = seed()
    editor = sign_in_as(Role.EDITOR)
    number = ids["unpublished"]
    page = editor.client.get(f"/admin/campaigns/{number}")
    assert "Show it in the public archive" in page.text
    assert _toggle(editor, number, "1") == "Shown in the public archive."
    assert _public(number)
    assert editor.client.get(f"/archive/{number}").status_code in (200, 301)
    page = editor.client.get(f"/admin/campaigns/{number}")
    assert f'href="/archive/{number}"' in page.text
    assert _toggle(editor, number, "0") == "Taken out of the public archive."
    assert not _public(number)


def test_a_draft_is_marked_ahead_and_transactional_is_refused(sign_in_as) -> None:
    ids = seed()
    editor = sign_in_as(Role.EDITOR)
    assert _toggle(editor, ids["draft"], "0") == "Taken out of the public archive."
    message = _toggle(editor, ids["draft"], "1")
    assert message == "It will be shown in the public archive once it has been sent."
    refused = _toggle(editor, ids["transactional"], "1")
    assert refused == "Only marketing campaigns can be shown in the public archive."


def test_viewers_see_no_button(sign_in_as) -> None:
    ids = seed()
    viewer = sign_in_as(Role.VIEWER)
    page = viewer.client.get(f"/admin/campaigns/{ids['published']}")
    assert "Public archive" in page.text
    assert "Take it out of the archive" not in page.text
