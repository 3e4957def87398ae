"""Report pages: growth and a campaign's report for any signed-in marketer, CSV of both,
the report on the campaign page, and stakeholder links: made and revoked by an editor
after a confirmation page, opened without signing in, aggregates only (no address, small
groups merged, small counts hidden), 400 when tampered with, 410 once revoked."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from app.db import session_scope
from app.models import Channel, ReportShare, Role
from app.subscribers.optout import OptOutRequest, unsubscribe_many
from app.subscribers.signup import subscribe
from tests.support.campaigns import make_topic
from tests.support.inbound import record_campaign_sent
from tests.web.test_public_languages import english_left

# Pages and forms over the domain functions, which their own tests run on both
# databases (tests/conftest.py, `one_database`).
pytestmark = pytest.mark.one_database

CLICKERS = 6
NAMES = {"Octomail", "Octomail Ltd, 1 Test Street, 75001 Paris, France"}


def _campaign() -> int:
    """A sent campaign: 8 people through the real sign-up function, 6 leave by one-click
    and 1 complains, all through the one opt-out function."""
    with session_scope() as db:
        make_topic(db, "news")
        people = [
            subscribe(
                db,
                email=f"reader{i}@example.org",
                topic_slugs=["news"],
                channel=Channel.API,
                source="twitter" if i < 6 else "podcast",
                preconfirm=True,
            ).subscriber
            for i in range(8)
        ]
        campaign_id = record_campaign_sent(db, people, days_ago=0.01)
        requests = [
            OptOutRequest(Channel.ONE_CLICK, subscriber=p, campaign_id=campaign_id)
            for p in people[:CLICKERS]
        ]
        requests.append(
            OptOutRequest(Channel.COMPLAINT, subscriber=people[6], campaign_id=campaign_id)
        )
        unsubscribe_many(db, requests)
    return campaign_id


def _shares() -> int:
    with session_scope() as db:
        return db.query(ReportShare).count()


def test_reports_pages_for_a_viewer(sign_in_as) -> None:
    campaign_id = _campaign()
    viewer = sign_in_as(Role.VIEWER).client
    index = viewer.get("/admin/reports")
    assert index.status_code == 200
    assert "Audience growth" in index.text
    assert f'href="/admin/reports/campaigns/{campaign_id}"' in index.text
    assert "<td>twitter</td><td>6</td><td>6</td>" in index.text
    assert "Share this period" not in index.text  # viewers read, editors share

    page = viewer.get(f"/admin/reports/campaigns/{campaign_id}")
    assert page.status_code == 200
    assert re.search(r"<dt>Recipients</dt><dd>8</dd>", page.text)
    assert "<td>one-click</td><td>6</td>" in page.text
    assert "<td>complaint</td><td>1</td>" in page.text
    assert viewer.get(f"/admin/reports/campaigns/{campaign_id}/report.csv").status_code == 200
    csv = viewer.get("/admin/reports/growth.csv?by=source")
    assert csv.headers["content-type"].startswith("text/csv")
    assert "twitter,6,6," in csv.text

    editor_page = viewer.get(f"/admin/campaigns/{campaign_id}")
    assert "How it did" in editor_page.text
    assert "<dt>Unsubscribed</dt><dd>6</dd>" in editor_page.text
    assert viewer.get("/admin/reports/campaigns/999").status_code == 404


def test_a_bad_period_is_a_form_error(sign_in_as) -> None:
    viewer = sign_in_as(Role.VIEWER).client
    page = viewer.get("/admin/reports?from=2026-02-01&to=2026-01-01")
    assert page.status_code == 422
    assert "There is a problem" in page.text
    assert viewer.get("/admin/reports?from=someday").status_code == 422


def test_a_shared_campaign_report_shows_aggregates_until_revoked(sign_in_as, anonymous) -> None:
    campaign_id = _campaign()
    editor = sign_in_as(Role.EDITOR)
    confirm = editor.client.get(f"/admin/reports/shares/new?campaign={campaign_id}")
    assert confirm.status_code == 200
    assert "aggregates only" in confirm.text
    assert _shares() == 0  # the GET changes nothing
    made = editor.client.post(
        "/admin/reports/shares",
        data={"csrf_token": editor.csrf, "campaign": str(campaign_id), "note": "Board"},
    )
    assert made.status_code == 303
    page = editor.client.get(made.headers["location"])
    url = re.search(r'value="(http://testserver/shared/reports/[^"]+)"', page.text).group(1)
    path = url.removeprefix("http://testserver")

    shared = anonymous.get(path)
    assert shared.status_code == 200
    assert shared.headers["cache-control"] == "no-store"
    assert "@example.org" not in shared.text
    assert "reader" not in shared.text
    assert "<td>one-click unsubscribe</td><td>6</td>" in shared.text
    assert "<td>spam complaint</td>" not in shared.text  # 1 person: merged into "other"
    assert "<td>other</td><td>fewer than 5</td>" in shared.text
    assert anonymous.head(path).status_code == 200

    for lang in ("fr", "de", "es"):  # every word translated, names and figures aside
        other = anonymous.get(f"{path}?lang={lang}").text
        assert english_left(shared.text, other, NAMES | {"Sent news"}, lang) == set()
    tampered = path[:-3] + ("aaa" if not path.endswith("aaa") else "bbb")
    assert anonymous.get(tampered).status_code == 400
    assert anonymous.get("/shared/reports/nonsense").status_code == 400

    share_id = made.headers["location"].rsplit("/", 1)[1]
    ask = editor.client.get(f"/admin/reports/shares/{share_id}/revoke")
    assert ask.status_code == 200
    assert anonymous.get(path).status_code == 200  # asking revokes nothing
    done = editor.client.post(
        f"/admin/reports/shares/{share_id}/revoke", data={"csrf_token": editor.csrf}
    )
    assert done.status_code == 303
    gone = anonymous.get(path)
    assert gone.status_code == 410
    assert "no longer shared" in gone.text
    assert "revoked" in editor.client.get("/admin/reports/shares").text


def test_a_shared_period_merges_small_sources(sign_in_as, anonymous) -> None:
    _campaign()
    today = datetime.now(UTC).date()
    editor = sign_in_as(Role.EDITOR)
    start = (today - timedelta(days=6)).isoformat()
    confirm = editor.client.get(f"/admin/reports/shares/new?from={start}&to={today}")
    assert confirm.status_code == 200
    made = editor.client.post(
        "/admin/reports/shares",
        data={"csrf_token": editor.csrf, "from": start, "to": today.isoformat()},
    )
    assert made.status_code == 303
    page = editor.client.get(made.headers["location"])
    path = re.search(r'value="http://testserver(/shared/reports/[^"]+)"', page.text).group(1)
    shared = anonymous.get(path)
    assert shared.status_code == 200
    assert "<td>twitter</td><td>6</td><td>6</td><td>6</td>" in shared.text
    assert "podcast" not in shared.text  # 2 people: merged into "other"
    for lang in ("fr", "de", "es"):
        other = anonymous.get(f"{path}?lang={lang}").text
        assert english_left(shared.text, other, NAMES | {"twitter"}, lang) == set()
    assert "<td>other</td><td>fewer than 5</td>" in shared.text
    bad = editor.client.post(
        "/admin/reports/shares",
        data={"csrf_token": editor.csrf, "from": "2026-02-01", "to": "2026-01-01"},
    )
    assert bad.status_code == 422
