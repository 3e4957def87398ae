"""The public archive: only sent marketing campaigns the marketer published, rendered with
no personal data, no tokens and no tracking; permanent pages; a valid RSS 2.0 feed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from email.utils import parsedate_to_datetime

import pytest
from sqlmodel import Session

from app.db import get_engine
from app.models import Campaign
from tests.support.archive import seed
from tests.web.test_public_languages import english_left

PERSONAL = ("Bob", "bob@example.com", "Lyon", "Sample", "Jane", "subscriber@example.org")


@pytest.fixture
def ids(settings_env: dict[str, str]) -> dict[str, int]:
    return seed()


def test_only_published_sent_marketing_campaigns_are_listed(client, ids) -> None:
    page = client.get("/archive")
    assert page.status_code == 200
    links = re.findall(r'href="/archive/(\d+)-([a-z0-9-]+)"', page.text)
    assert [int(i) for i, _ in links] == [ids["published"], ids["escaped"]]  # newest first
    assert "Not for the public" not in page.text
    assert "A draft" not in page.text
    assert "Policy update" not in page.text
    assert "Still sending" not in page.text
    assert "our November news" in page.text
    assert "Q&amp;A: &lt;tips&gt; &amp; tricks" in page.text


@pytest.mark.parametrize("kind", ["unpublished", "draft", "running", "transactional"])
def test_anything_else_is_not_found(client, ids, kind: str) -> None:
    assert client.get(f"/archive/{ids[kind]}", follow_redirects=False).status_code == 404
    assert client.get(f"/archive/{ids[kind]}-x").status_code == 404
    assert client.get(f"/archive/{ids[kind]}/email").status_code == 404


@pytest.mark.parametrize("ref", ["0", "abc", "99999999999", "1-Caps", "1.5", "-1", "999"])
def test_bad_references_are_404(client, ids, ref: str) -> None:
    assert client.get(f"/archive/{ref}", follow_redirects=False).status_code == 404


def test_the_permanent_page_survives_a_rename(client, ids) -> None:
    number = ids["published"]
    bare = client.get(f"/archive/{number}", follow_redirects=False)
    assert bare.status_code == 301
    canonical = bare.headers["location"]
    assert canonical == f"/archive/{number}-our-november-news"
    with Session(get_engine()) as session:
        row = session.get(Campaign, number)
        assert row is not None
        row.name = "Renamed by the marketer"
        session.add(row)
        session.commit()
    assert client.get(canonical, follow_redirects=False).status_code == 200
    old = client.get(f"/archive/{number}-an-old-slug", follow_redirects=False)
    assert old.headers["location"] == canonical


def test_no_personal_data_tokens_or_tracking_leak(client, ids) -> None:
    number = ids["published"]
    page = client.get(f"/archive/{number}-our-november-news")
    email = client.get(f"/archive/{number}/email")
    assert page.status_code == email.status_code == 200
    for text in (page.text, email.text):
        for personal in PERSONAL:
            assert personal not in text
        assert "/u/" not in text  # no unsubscribe token
        assert "/preferences/" not in text  # no preference token
        assert "/my-data/" not in text
        assert "/o/" not in text  # no open pixel (the campaign has tracking on)
        assert "/r/" not in text  # no click redirect
    # the placeholders go to /account; the marketer's own link is left as written
    hrefs = set(re.findall(r'href="([^"]+)"', email.text))
    assert hrefs == {"http://testserver/account", "https://example.org/news"}
    assert "<img" not in email.text  # no pixel (the body has no image of its own)
    assert "Hello" in email.text
    assert "Hello ," not in page.text
    assert "<h1>our November news</h1>" in page.text
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in page.text
    assert "frame-src 'self'" in page.headers["content-security-policy"]
    policy = email.headers["content-security-policy"]
    assert "sandbox" in policy
    assert "script" not in policy
    assert email.headers["x-frame-options"] == "SAMEORIGIN"


def test_the_feed_is_rss_2_with_the_published_items(client, ids) -> None:
    answer = client.get("/archive/rss.xml")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/rss+xml")
    root = ET.fromstring(answer.content)
    assert root.tag == "rss"
    assert root.get("version") == "2.0"
    channel = root.find("channel")
    assert channel is not None
    assert channel.findtext("title") == "Octomail newsletter archive"
    assert channel.findtext("link") == "http://testserver/archive"
    assert channel.findtext("description")
    items = channel.findall("item")
    assert [i.findtext("title") for i in items] == [
        "our November news",
        "Q&A: <tips> & tricks",
    ]
    first = items[0]
    assert (
        first.findtext("link") == f"http://testserver/archive/{ids['published']}-our-november-news"
    )
    guid = first.find("guid")
    assert guid is not None
    assert guid.get("isPermaLink") == "true"
    assert guid.text == f"http://testserver/archive/{ids['published']}"
    published = parsedate_to_datetime(first.findtext("pubDate") or "")
    assert published.isoformat() == "2026-11-20T09:00:00+00:00"
    assert "the news of the month" in (first.findtext("description") or "")
    for personal in PERSONAL:
        assert personal not in answer.text
    assert b"<title>Q&amp;A: &lt;tips&gt; &amp; tricks</title>" in answer.content


@pytest.mark.one_database
def test_pages_are_in_the_visitors_language(client, ids) -> None:
    page = client.get("/archive?lang=fr")
    assert "Archives de la lettre d’information" in page.text
    assert "20 novembre 2026" in page.text


def test_the_api_publishes_marketing_campaigns_only(api, ids) -> None:
    number = ids["unpublished"]
    answer = api.post(f"/api/v1/campaigns/{number}/archive", json={"public": True})
    assert answer.status_code == 200, answer.text
    assert answer.json()["public_archive"] is True
    assert api.get(f"/archive/{number}", follow_redirects=False).status_code == 301
    refused = api.post(f"/api/v1/campaigns/{ids['transactional']}/archive", json={"public": True})
    assert refused.status_code == 422
    assert "only marketing" in refused.json()["detail"]
    hidden = api.post(f"/api/v1/campaigns/{ids['published']}/archive", json={"public": False})
    assert hidden.json()["public_archive"] is False
    assert api.get(f"/archive/{ids['published']}").status_code == 404


def _without_newsletter(html: str) -> str:
    return re.sub(r'<pre class="archived-text">.*?</pre>', "", html, flags=re.S)


@pytest.mark.one_database
@pytest.mark.parametrize("lang", ["fr", "de", "es"])
def test_no_english_left_on_the_archive_pages(client, ids, lang: str) -> None:
    number = ids["published"]
    names = {
        "Octomail",
        "Octomail Ltd, 1 Test Street, 75001 Paris, France",
        "our November news",
        "Q&A: <tips> & tricks",
        "RSS",
    }
    for path in ("/archive", f"/archive/{number}-our-november-news", "/archive/999"):
        # the newsletter's own text (the marketer's words) is not ours to translate
        english = _without_newsletter(client.get(f"{path}?lang=en").text)
        other = _without_newsletter(client.get(f"{path}?lang={lang}").text)
        assert english_left(english, other, names, lang) == set(), path
