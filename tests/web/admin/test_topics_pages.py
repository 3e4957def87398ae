"""/admin/topics: list with counts, create and edit (errors: 422, values kept, summary),
delete through a confirmation page, refused while an unfinished campaign uses the topic."""

from __future__ import annotations

import pytest

from app.db import session_scope
from app.models import Campaign, CampaignStatus, Role, Topic
from app.subscribers.topics import list_with_counts

# Pages and forms over the domain functions, which their own tests run on both
# databases (tests/conftest.py, `one_database`).
pytestmark = pytest.mark.one_database


def _topic_id(slug: str) -> int:
    with session_scope() as db:
        return next(r.topic.id for r in list_with_counts(db) if r.topic.slug == slug)


def test_create_edit_and_list_with_counts(sign_in_as) -> None:
    editor = sign_in_as(Role.EDITOR)
    page = editor.client.get("/admin/topics")
    assert "No topics yet" in page.text
    response = editor.client.post(
        "/admin/topics/new",
        data={"csrf_token": editor.csrf, "slug": "weekly", "name": "Weekly  news"},
    )
    assert response.status_code == 303
    page = editor.client.get(response.headers["location"])
    assert "Topic “Weekly news” created." in page.text
    assert "<code>weekly</code>" in page.text
    topic_id = _topic_id("weekly")
    response = editor.client.post(
        f"/admin/topics/{topic_id}",
        data={"csrf_token": editor.csrf, "name": "Weekly letter", "description": "Mondays"},
    )
    assert response.status_code == 303
    assert "Weekly letter" in editor.client.get("/admin/topics").text


def test_errors_re_render_with_422_and_keep_values(sign_in_as) -> None:
    editor = sign_in_as(Role.EDITOR)
    response = editor.client.post(
        "/admin/topics/new",
        data={"csrf_token": editor.csrf, "slug": "Bad Slug", "name": "", "description": "kept"},
    )
    assert response.status_code == 422
    assert "<title>Error: " in response.text
    assert "There is a problem" in response.text
    assert 'href="#f-slug"' in response.text
    assert 'href="#f-name"' in response.text
    assert 'value="Bad Slug"' in response.text
    assert ">kept</textarea>" in response.text
    assert 'aria-invalid="true"' in response.text
    editor.client.post(
        "/admin/topics/new", data={"csrf_token": editor.csrf, "slug": "news", "name": "News"}
    )
    taken = editor.client.post(
        "/admin/topics/new", data={"csrf_token": editor.csrf, "slug": "news", "name": "Again"}
    )
    assert taken.status_code == 422
    assert "already exists" in taken.text
    assert 'value="Again"' in taken.text
    empty_name = editor.client.post(
        f"/admin/topics/{_topic_id('news')}", data={"csrf_token": editor.csrf, "name": " "}
    )
    assert empty_name.status_code == 422
    assert "Enter a name" in empty_name.text
    assert "News" in editor.client.get("/admin/topics").text  # unchanged


def test_viewer_reads_without_forms(sign_in_as) -> None:
    with session_scope() as db:
        db.add(Topic(slug="news", name="News"))
    viewer = sign_in_as(Role.VIEWER)
    listing = viewer.client.get("/admin/topics")
    assert "News" in listing.text
    assert "New topic" not in listing.text
    detail = viewer.client.get(f"/admin/topics/{_topic_id('news')}")
    assert detail.status_code == 200
    assert '<form method="post" action="/admin/topics' not in detail.text


def test_delete_is_confirmed_and_refused_while_a_campaign_uses_it(sign_in_as) -> None:
    from app.campaigns.service import create_campaign

    editor = sign_in_as(Role.EDITOR)
    for slug in ("news", "offers"):
        editor.client.post(
            "/admin/topics/new", data={"csrf_token": editor.csrf, "slug": slug, "name": slug}
        )
    with session_scope() as db:
        campaign = create_campaign(db, name="Spring sale", subject="Hi", topics=["offers"])
        campaign_id = campaign.id
    offers = _topic_id("offers")
    confirm = editor.client.get(f"/admin/topics/{offers}/delete")
    assert "cannot be deleted yet" in confirm.text
    assert "Spring sale" in confirm.text
    refused = editor.client.post(f"/admin/topics/{offers}/delete", data={"csrf_token": editor.csrf})
    assert refused.status_code == 409
    assert "Spring sale" in refused.text
    with session_scope() as db:
        done = db.get(Campaign, campaign_id)
        done.status = CampaignStatus.DONE
        db.add(done)
    confirm = editor.client.get(f"/admin/topics/{offers}/delete")
    assert "1 finished campaign keep" in confirm.text
    assert "cannot be undone" in confirm.text
    deleted = editor.client.post(f"/admin/topics/{offers}/delete", data={"csrf_token": editor.csrf})
    assert deleted.status_code == 303
    page = editor.client.get("/admin/topics")
    assert "Topic “offers” deleted." in page.text
    assert "<code>offers</code>" not in page.text
    assert editor.client.get(f"/admin/topics/{offers}").status_code == 404


def test_the_api_refuses_deleting_a_topic_in_use(sign_in_as) -> None:
    """The API and the page share the rule."""
    from app.campaigns.service import create_campaign
    from app.errors import Conflict
    from app.subscribers import topics

    with session_scope() as db:
        topic = topics.create_topic(db, slug="news", name="News")
        create_campaign(db, name="Draft one", subject="Hi", topics=["news"])
        with pytest.raises(Conflict, match="Draft one"):
            topics.delete_topic(db, topic)
