"""The public archive in pages of 50: newest first, "Newer" and "Older" links that lead
through every published campaign once, a 404 page past the end or for a value that is not
a page number, and the feed still the latest 50."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.db import get_engine
from app.models import CampaignStatus, Category
from tests.support.archive import campaign
from tests.web.test_public_languages import english_left

PUBLISHED = 120
NO_PAGE = "There is no such page of the archive"


@pytest.fixture
def newest_first(settings_env: dict[str, str]) -> list[int]:
    """120 published campaigns sent an hour apart, with unpublished, transactional and
    draft ones between them (never listed, so never on a page's count either)."""
    start = datetime(2026, 1, 1, 9, 0)
    published = []
    with Session(get_engine()) as session:
        for n in range(PUBLISHED):
            at = start + timedelta(hours=n)
            published.append(campaign(session, f"Issue {n}", finished_at=at, body="Hello."))
            if n % 10 == 0:
                campaign(session, f"Hidden {n}", public=False, finished_at=at)
                campaign(session, f"Policy {n}", category=Category.TRANSACTIONAL, finished_at=at)
                campaign(session, f"Draft {n}", status=CampaignStatus.DRAFT)
        session.commit()
    return published[::-1]


def _listed(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li><a href="/archive/(\d+)-issue-\d+"', html)]


def _link(html: str, rel: str) -> str | None:
    found = re.findall(rf'<a href="([^"]+)" rel="{rel}">', html)
    assert len(found) <= 1
    return found[0].replace("&amp;", "&") if found else None


def test_three_pages_lead_through_every_campaign_in_order(
    client: TestClient, newest_first: list[int]
) -> None:
    first = client.get("/archive")
    assert first.status_code == 200
    assert _listed(first.text) == newest_first[:50]
    assert _link(first.text, "prev") is None
    assert ">Older</a>" in first.text

    second = client.get(_link(first.text, "next") or "")
    assert second.status_code == 200
    assert _listed(second.text) == newest_first[50:100]
    assert ">Newer</a>" in second.text
    assert ">Older</a>" in second.text
    assert "<title>Newsletter archive, page 2" in second.text

    third = client.get(_link(second.text, "next") or "")
    assert third.status_code == 200
    assert _listed(third.text) == newest_first[100:]
    assert _link(third.text, "next") is None

    # Back the other way, by the "Newer" links.
    assert _link(third.text, "prev") == "/archive?page=2"
    assert _link(second.text, "prev") == "/archive"
    assert client.get("/archive?page=1", follow_redirects=False).headers["location"] == "/archive"

    gone = client.get("/archive?page=4")
    assert gone.status_code == 404
    assert NO_PAGE in gone.text


def test_the_feed_stays_the_latest_50(client: TestClient, newest_first: list[int]) -> None:
    root = ET.fromstring(client.get("/archive/rss.xml").content)
    guids = [g.text for g in root.iter("guid")]
    assert guids == [f"http://testserver/archive/{n}" for n in newest_first[:50]]


@pytest.mark.parametrize(
    "value", ["0", "-1", "abc", "2.5", "", "1e2", "02", "99999999999999999999", "2 ", "2\n"]
)
def test_a_bad_page_value_is_a_404_page(client: TestClient, settings_env, value: str) -> None:
    answer = client.get("/archive", params={"page": value}, follow_redirects=False)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert NO_PAGE in answer.text


def test_an_empty_archive_has_its_first_page_only(client: TestClient, settings_env) -> None:
    assert client.get("/archive").status_code == 200
    assert client.get("/archive?page=2").status_code == 404


@pytest.mark.one_database
@pytest.mark.parametrize("lang", ["fr", "de", "es"])
def test_no_english_left_on_the_pages(client: TestClient, newest_first, lang: str) -> None:
    names = {
        "Octomail",
        "Octomail Ltd, 1 Test Street, 75001 Paris, France",
        "RSS",
        *(f"Issue {n}" for n in range(PUBLISHED)),
    }
    for path in ("/archive?page=2", "/archive?page=9"):
        english = client.get(f"{path}&lang=en").text
        other = client.get(f"{path}&lang={lang}").text
        assert english_left(english, other, names, lang) == set(), path
