"""Deliverability preflight (issue 11): each check on real inputs. Links against a local
HTTP server (200 and 404 and a server that never answers); the spam score from a real
SpamAssassin run (scripts/system-deps installs it) on a clean and a spammy message."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.campaigns import preflight
from app.campaigns.preflight import Options, run_preflight
from app.campaigns.service import create_campaign
from app.db import session_scope
from app.settings import get_settings
from tests.support.campaigns import make_topic

SPAMMY = """\
# FREE MONEY!!! ACT NOW!!!

DEAR FRIEND, you have been SELECTED to receive $1,000,000 USD in CASH!!! 100% FREE,
NO RISK, GUARANTEED. Click below to claim your prize. Viagra, cialis, cheap meds,
lose weight fast, work from home, MAKE MONEY FAST, earn $$$ per day!!! Limited time
offer, order now, act now, once in a lifetime opportunity, winner, congratulations!!!
Nigerian prince inheritance transfer, wire the processing fee to claim your funds.
"""

CLEAN = """\
# Our November update

Hello {{ first_name }}, the garden club meets on Tuesday at the library as usual.
This month Marie will talk about pruning fruit trees before winter, and we will plan
the seed exchange for March. Tea and biscuits as always.
"""


class _Handler(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        if self.path.startswith("/slow"):
            time.sleep(5)
        if self.path.startswith("/no-head"):
            self.send_response(405)
        else:
            self.send_response(404 if self.path.startswith("/gone") else 200)
        self.end_headers()

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _campaign(body: str, subject: str = "November update", **fields: object) -> int:
    with session_scope() as s:
        from sqlmodel import select

        from app.models import Topic

        if s.exec(select(Topic).where(Topic.slug == "news")).first() is None:
            make_topic(s, "news")
        campaign = create_campaign(
            s, name="c", subject=subject, body=body, topics=["news"], **fields
        )
        return int(campaign.id)


def _run(campaign_id: int, **options: object) -> dict[str, preflight.Check]:
    settings = get_settings()
    opts = Options(allow_private=True, **options)  # type: ignore[arg-type]
    with session_scope() as s:
        from app.models import Campaign

        report = asyncio.run(run_preflight(s, s.get(Campaign, campaign_id), settings, opts))
    return {c.key: c for c in report.checks}


def test_a_clean_campaign_passes(settings_env) -> None:
    checks = _run(_campaign(CLEAN), spam=False)
    failing = {k: c.detail for k, c in checks.items() if c.status == "fail"}
    assert not failing
    assert checks["unsubscribe_link"].status == "pass"
    assert "1 Test Street" in checks["postal_address"].detail
    assert checks["list_unsubscribe"].status == "pass"
    assert checks["dkim"].status == "warn"
    assert "OCTOMAIL_DKIM_SELECTOR" in checks["dkim"].fix
    assert checks["links"].status == "pass"


def test_dead_links_are_named_and_live_ones_pass(settings_env, web) -> None:
    body = (
        f"[ok]({web}/ok) [gone]({web}/gone/page) [no head]({web}/no-head) "
        f"[slow]({web}/slow) [mail](mailto:x@example.org)\n\n" + CLEAN
    )
    started = time.perf_counter()
    checks = _run(_campaign(body), spam=False, link_timeout=1.0, links_total=3.0)
    assert time.perf_counter() - started < 4
    links = checks["links"]
    assert links.status == "fail"
    assert links.field == "body"
    assert f"{web}/gone/page (answers 404)" in links.detail
    assert f"{web}/slow (no answer within 1 s)" in links.detail
    assert f"{web}/ok " not in links.detail
    assert "no-head" not in links.detail
    assert "2 of 4 links" in links.detail


def test_links_to_private_addresses_are_not_probed_by_default(settings_env, web) -> None:
    results = asyncio.run(preflight.check_links([f"{web}/gone", "http://10.1.2.3/x"]))
    assert [r.checked for r in results] == [False, False]
    check = preflight.links_check(results)
    assert check.status == "warn"
    assert "private or local address" in check.detail


def test_size_images_and_subject() -> None:
    big = "<p>" + "x" * (103 * 1024) + "</p>"
    size = preflight.check_size(big)
    assert size.status == "fail"
    assert "Gmail" in size.detail
    assert size.field == "body"
    assert preflight.check_size("<p>hi</p>").status == "pass"
    images = preflight.check_images('<img src="a.png" alt=""><img src="b.png"><img src="c.png">')
    assert images.status == "fail"
    assert "2 images" in images.detail
    assert "b.png" in images.detail
    decorative = preflight.check_images('<img src="a.png" alt="">')
    assert decorative.status == "warn"
    assert "empty alt" in decorative.detail
    assert preflight.check_images('<img src="a.png" alt="A cat">').status == "pass"
    assert preflight.check_subject("").status == "fail"
    long = preflight.check_subject("x" * 70)
    assert long.status == "warn"
    assert long.field == "subject"
    assert preflight.check_subject("x" * 200).status == "fail"


def test_no_postal_address_fails_and_the_rest_still_runs(settings_env, monkeypatch) -> None:
    campaign_id = _campaign(CLEAN + '\n\n<img src="https://example.org/cat.png">')
    monkeypatch.setenv("OCTOMAIL_POSTAL_ADDRESS", "")
    get_settings.cache_clear()
    checks = _run(campaign_id, spam=False)
    assert checks["postal_address"].status == "fail"
    assert "OCTOMAIL_POSTAL_ADDRESS" in checks["postal_address"].fix
    assert checks["images"].status == "fail"
    assert checks["subject"].status == "pass"


def test_a_broken_template_is_one_failure_linked_to_the_body(settings_env) -> None:
    """Saving refuses such a body; a layout file edited on disk since can still break."""
    from app.models import Campaign

    campaign_id = _campaign(CLEAN)
    with session_scope() as s:
        s.get(Campaign, campaign_id).body = "{{ 1/0 }}"
    checks = _run(campaign_id, spam=False)
    assert list(checks) == ["render"]
    assert checks["render"].field == "body"


@pytest.mark.skipif(shutil.which("spamassassin") is None, reason="needs spamassassin")
def test_spamassassin_scores_spammy_above_clean(settings_env) -> None:
    started = time.perf_counter()
    clean = _run(_campaign(CLEAN))["spam"]
    spammy = _run(_campaign(SPAMMY, subject="FREE MONEY!!! ACT NOW!!! $$$"))["spam"]
    print(f"\nspamassassin: two preflights in {time.perf_counter() - started:.1f} s")
    print(clean.detail, "|", spammy.detail)
    assert clean.status == "pass", clean.detail
    assert spammy.status == "fail", spammy.detail
    assert spammy.field == "body", spammy.detail
    assert "Rules hit:" in spammy.detail


def test_spamassassin_missing_says_not_installed(monkeypatch) -> None:
    monkeypatch.setattr(preflight.shutil, "which", lambda name: None)
    check = asyncio.run(preflight.spam_check(b"Subject: x\r\n\r\nhello\r\n"))
    assert check.status == "skip"
    assert "Not installed" in check.detail


def test_the_api_answers_the_checks(api, settings_env) -> None:
    campaign_id = _campaign(CLEAN)
    response = api.get(f"/api/v1/campaigns/{campaign_id}/preflight")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert {c["key"] for c in body["checks"]} >= {"size", "images", "subject", "links", "spam"}
    assert api.get("/api/v1/campaigns/999/preflight").status_code == 404
