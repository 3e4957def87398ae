"""The language on the admin subscriber pages: shown on the person's page, set or cleared
on the edit form, left alone by a form that does not carry it."""

from __future__ import annotations

import pytest

from app.db import session_scope
from app.models import Channel, Role, Subscriber
from app.subscribers.consent import Evidence
from app.subscribers.signup import subscribe

# Pages and forms over the domain functions, which their own tests run on both
# databases (tests/conftest.py, `one_database`).
pytestmark = pytest.mark.one_database


def _person(language: str | None) -> int:
    with session_scope() as db:
        result = subscribe(
            db,
            email="lena@example.de",
            topic_slugs=[],
            channel=Channel.API,
            evidence=Evidence(details={"consent_source": "fair"}),
            by_marketer=True,
            language=language,
        )
        return int(result.subscriber.id or 0)


def _language(person: int) -> str | None:
    with session_scope() as db:
        found = db.get(Subscriber, person)
        assert found is not None
        return found.language


def test_the_page_shows_the_language_or_that_none_is_set(sign_in_as) -> None:
    person = _person("de")
    viewer = sign_in_as(Role.VIEWER)
    assert "Deutsch (de)" in viewer.client.get(f"/admin/subscribers/{person}").text
    editor = sign_in_as(Role.EDITOR)
    form = {"csrf_token": editor.csrf, "name": "Lena", "attributes": "{}"}
    saved = editor.client.post(
        f"/admin/subscribers/{person}/edit", data={**form, "language": "unset"}
    )
    assert saved.status_code == 303
    assert _language(person) is None
    page = viewer.client.get(f"/admin/subscribers/{person}").text
    assert "Not set: pages follow the browser, mail is in English" in page


def test_the_edit_form_sets_refuses_and_keeps_the_language(sign_in_as) -> None:
    person = _person(None)
    editor = sign_in_as(Role.EDITOR)
    form = editor.client.get(f"/admin/subscribers/{person}/edit")
    assert '<option value="es">Español (es)</option>' in form.text
    fields = {"csrf_token": editor.csrf, "name": "Lena", "attributes": "{}"}
    url = f"/admin/subscribers/{person}/edit"
    assert editor.client.post(url, data={**fields, "language": "es"}).status_code == 303
    assert _language(person) == "es"
    bad = editor.client.post(url, data={**fields, "language": "xx"})
    assert bad.status_code == 422
    assert "Choose a language from the list" in bad.text
    assert editor.client.post(url, data=fields).status_code == 303  # no language field
    assert _language(person) == "es"
