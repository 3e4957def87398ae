"""The campaign list, review (schedule in the marketer's timezone, send now, a missed
campaign), progress (live block, pause, resume, cancel after its page) and the recipients'
outcomes with their CSV, over HTTP on both databases."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from app.models import Role
from tests.web.admin.test_campaign_editor import campaign_row, make_campaign, make_topic

pytestmark = pytest.mark.usefixtures("settings_env")


def add_subscribers(*emails: str, topic: str = "news") -> None:
    from sqlmodel import select

    from app.db import session_scope
    from app.models import Subscriber, Subscription, SubscriptionStatus, Topic

    with session_scope() as db:
        topic_id = db.exec(select(Topic.id).where(Topic.slug == topic)).one()
        for email in emails:
            person = Subscriber(email=email, name=email.split("@")[0].title())
            db.add(person)
            db.flush()
            db.add(
                Subscription(
                    subscriber_id=person.id,
                    topic_id=topic_id,
                    status=SubscriptionStatus.SUBSCRIBED,
                )
            )


def started_campaign(*emails: str) -> int:
    """A running campaign with one queued send row per address."""
    from app.campaigns import service
    from app.db import session_scope
    from app.settings import get_settings

    make_topic()
    add_subscribers(*emails)
    campaign_id = make_campaign()
    with session_scope() as db:
        service.send_now(db, campaign_id)
    service.prepare(get_settings(), campaign_id)  # what a worker does next
    return campaign_id


def set_outcome(campaign_id: int, email: str, status: str, reply: str | None) -> None:
    """Record an outcome the way a worker does (the send row and the progress counters)."""
    from app.compose import sending_hooks
    from app.db import get_engine, session_scope
    from app.models import Send, SendStatus, Subscriber
    from app.sending.store import Result, SendStore
    from app.settings import get_settings

    send, subscriber = Send.__table__, Subscriber.__table__  # type: ignore[attr-defined]
    with session_scope() as db:
        send_id = db.execute(
            sa.select(send.c.id)
            .join(subscriber, subscriber.c.id == send.c.subscriber_id)
            .where(send.c.campaign_id == campaign_id, subscriber.c.email == email)
        ).scalar_one()
    store = SendStore(get_engine(), get_settings(), "test:1:0", sending_hooks())
    store.record([Result(send_id, SendStatus(status), reply=reply or "", attempts=1)])


def test_the_list_has_status_tabs_keyset_pages_and_live_rows(sign_in_as, monkeypatch) -> None:
    from app.web.admin.campaigns import listing

    running = started_campaign("a@example.org", "b@example.org")
    drafts = [make_campaign(subject=f"Draft {i}") for i in range(3)]
    viewer = sign_in_as(Role.VIEWER)
    page = viewer.client.get("/admin/campaigns")
    assert page.status_code == 200
    assert 'All <span class="count">(4)</span>' in page.text
    assert 'Drafts <span class="count">(3)</span>' in page.text
    assert "New campaign" not in page.text  # viewers read only
    # The running row polls its own progress cell; drafts link to the editor.
    assert f'hx-get="/admin/campaigns/{running}/progress?part=cell"' in page.text
    assert "every 2s [document.visibilityState==='visible']" in page.text
    assert f'href="/admin/campaigns/{running}/progress"' in page.text
    assert f'href="/admin/campaigns/{drafts[0]}"' in page.text

    monkeypatch.setattr(listing, "PAGE_SIZE", 2)
    first = viewer.client.get("/admin/campaigns?status=draft")
    ids = re.findall(r'href="/admin/campaigns/(\d+)"', first.text)
    assert ids == [str(drafts[2]), str(drafts[1])]
    next_url = re.search(r'href="([^"]+)" rel="next"', first.text)[1].replace("&amp;", "&")
    assert next_url.startswith("/admin/campaigns?status=draft&cursor=")
    second = viewer.client.get(next_url)
    assert re.findall(r'href="/admin/campaigns/(\d+)"', second.text) == [str(drafts[0])]
    assert 'rel="next"' not in second.text
    assert "First page" in second.text

    cell = viewer.client.get(
        f"/admin/campaigns/{running}/progress?part=cell", headers={"HX-Request": "true"}
    )
    assert cell.text.lstrip().startswith(f'<td id="cell-{running}"')
    assert "hx-trigger" in cell.text
    assert "0 sent" in cell.text
    assert "of 2" in cell.text

    empty = viewer.client.get("/admin/campaigns?status=missed")
    assert "No missed campaign" in empty.text
    assert viewer.client.get("/admin/campaigns?cursor=nonsense").status_code == 400


def test_review_schedules_in_the_marketers_timezone(sign_in_as) -> None:
    from app.db import session_scope
    from app.models import User

    make_topic()
    add_subscribers("a@example.org", "b@example.org", "c@example.org")
    campaign_id = make_campaign()
    editor = sign_in_as(Role.EDITOR)
    with session_scope() as db:
        user = db.exec(sa.select(User).where(User.email == editor.email)).scalar_one()
        user.timezone = "Europe/Paris"
    page = editor.client.get(f"/admin/campaigns/{campaign_id}/review")
    assert page.status_code == 200
    assert "<strong>3</strong>" in page.text  # recipients now
    assert "check-fail" not in page.text
    assert page.text.count("check-ok") == 3
    assert "Date and time (Europe/Paris)" in page.text
    assert "Send to 3 recipients" in page.text

    from zoneinfo import ZoneInfo

    local = datetime.now(ZoneInfo("Europe/Paris")).replace(tzinfo=None) + timedelta(hours=3)
    response = editor.client.post(
        f"/admin/campaigns/{campaign_id}/review",
        data={"csrf_token": editor.csrf, "when": "later", "send_at": f"{local:%Y-%m-%dT%H:%M}"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/campaigns/{campaign_id}/progress"
    saved = campaign_row(campaign_id)
    assert saved.status == "scheduled"
    assert saved.timezone == "Europe/Paris"
    expected = local.replace(tzinfo=ZoneInfo("Europe/Paris")).astimezone(ZoneInfo("UTC"))
    assert saved.send_at == expected.replace(tzinfo=None, second=0, microsecond=0)
    progress = editor.client.get(f"/admin/campaigns/{campaign_id}/progress")
    flash = re.search(r'<p class="flash">(.*?)</p>', progress.text)[1]
    assert re.fullmatch(
        rf"Scheduled for {local:%a} {local:%H:%M} Europe/Paris, in (2\.9|3\.0|3) h\.", flash
    ), flash
    assert "hx-trigger" in progress.text  # a scheduled campaign is watched until it starts


@pytest.mark.parametrize(
    ("send_at", "words"),
    [("", "give a date and a time"), ("2001-01-01T09:00", "in the past"), ("tomorrow", "date")],
)
def test_a_bad_time_is_a_clear_error_and_nothing_changes(sign_in_as, send_at, words) -> None:
    make_topic()
    add_subscribers("a@example.org")
    campaign_id = make_campaign()
    editor = sign_in_as(Role.EDITOR)
    response = editor.client.post(
        f"/admin/campaigns/{campaign_id}/review",
        data={"csrf_token": editor.csrf, "when": "later", "send_at": send_at},
    )
    assert response.status_code == 422
    assert words in response.text
    assert 'href="#f-send_at"' in response.text
    assert f'value="{send_at}"' in response.text
    assert campaign_row(campaign_id).status == "draft"


def test_a_failed_check_blocks_sending_and_links_to_its_field(sign_in_as) -> None:
    make_topic()
    campaign_id = make_campaign()  # nobody subscribed
    editor = sign_in_as(Role.EDITOR)
    page = editor.client.get(f"/admin/campaigns/{campaign_id}/review")
    assert "check-fail" in page.text
    assert "no subscriber matches" in page.text
    assert f'href="/admin/campaigns/{campaign_id}#f-topics"' in page.text
    assert '<button type="submit" disabled' in page.text
    refused = editor.client.post(
        f"/admin/campaigns/{campaign_id}/review", data={"csrf_token": editor.csrf, "when": "now"}
    )
    assert refused.status_code == 422
    assert "fix the failed checks first" in refused.text.lower()
    assert campaign_row(campaign_id).status == "draft"


def test_send_now_and_a_missed_campaign_can_be_started(sign_in_as) -> None:
    from app.db import session_scope
    from app.models import Campaign

    make_topic()
    add_subscribers("a@example.org")
    campaign_id = make_campaign()
    with session_scope() as db:
        row = db.get(Campaign, campaign_id)
        row.status, row.send_at = "missed", datetime(2026, 1, 6, 8, 0)
    editor = sign_in_as(Role.EDITOR)
    page = editor.client.get(f"/admin/campaigns/{campaign_id}/review")
    assert "missed its time (Tue 06 Jan 08:00 UTC" in page.text
    response = editor.client.post(
        f"/admin/campaigns/{campaign_id}/review", data={"csrf_token": editor.csrf, "when": "now"}
    )
    assert response.status_code == 303
    assert campaign_row(campaign_id).status == "running"
    progress = editor.client.get(response.headers["location"])
    assert "Sending has started." in progress.text
    assert "0 of 1 recipients done" in progress.text


def test_progress_pause_resume_and_cancel_after_its_page(sign_in_as) -> None:
    campaign_id = started_campaign("a@example.org", "b@example.org", "c@example.org")
    set_outcome(campaign_id, "a@example.org", "sent", "250 2.0.0 OK")
    set_outcome(campaign_id, "b@example.org", "failed", "550 5.1.1 <b@example.org>: no such user")
    editor = sign_in_as(Role.EDITOR)
    page = editor.client.get(f"/admin/campaigns/{campaign_id}/progress")
    assert "2 of 3 recipients done" in page.text
    assert re.search(r"<dt>Remaining</dt><dd>1</dd>", page.text)
    assert "no such user" in page.text  # the top reasons

    live = editor.client.get(
        f"/admin/campaigns/{campaign_id}/progress?seen=running", headers={"HX-Request": "true"}
    )
    assert live.text.lstrip().startswith('<div id="live"')
    assert "hx-trigger" in live.text
    assert "hx-swap-oob" not in live.text  # no change, nothing announced

    response = editor.client.post(
        f"/admin/campaigns/{campaign_id}/pause", data={"csrf_token": editor.csrf}
    )
    assert response.status_code == 303
    assert campaign_row(campaign_id).status == "paused"
    live = editor.client.get(
        f"/admin/campaigns/{campaign_id}/progress?seen=running", headers={"HX-Request": "true"}
    )
    assert "hx-trigger" not in live.text  # polling stops
    assert 'hx-swap-oob="true">This campaign is now <strong>paused' in live.text
    again = editor.client.post(
        f"/admin/campaigns/{campaign_id}/pause", data={"csrf_token": editor.csrf}
    )
    assert again.status_code == 303  # a refused change comes back as a message
    assert (
        "cannot pause a campaign that is paused"
        in editor.client.get(again.headers["location"]).text.lower()
    )

    editor.client.post(f"/admin/campaigns/{campaign_id}/resume", data={"csrf_token": editor.csrf})
    assert campaign_row(campaign_id).status == "running"
    confirm = editor.client.get(f"/admin/campaigns/{campaign_id}/cancel")
    assert "1 of 3 recipients will not get it (1 already have)" in confirm.text
    editor.client.post(f"/admin/campaigns/{campaign_id}/cancel", data={"csrf_token": editor.csrf})
    assert campaign_row(campaign_id).status == "cancelled"
    done = editor.client.get(f"/admin/campaigns/{campaign_id}/cancel")
    assert "nothing to cancel" in done.text
    assert "Cancel the campaign" not in done.text


def test_recipients_with_reason_and_reply_filter_pages_and_csv(sign_in_as, monkeypatch) -> None:
    from app.web.admin.campaigns import outcomes

    emails = [f"p{i}@example.org" for i in range(5)]
    campaign_id = started_campaign(*emails)
    set_outcome(campaign_id, "p0@example.org", "sent", "250 2.0.0 OK")
    set_outcome(campaign_id, "p1@example.org", "failed", "550 5.1.1 <p1@example.org>: no such user")
    set_outcome(campaign_id, "p2@example.org", "bounced", "550 5.1.1 user unknown")
    set_outcome(campaign_id, "p3@example.org", "skipped", "skipped: suppressed")
    viewer = sign_in_as(Role.VIEWER)
    page = viewer.client.get(f"/admin/campaigns/{campaign_id}/sends")
    assert page.status_code == 200
    assert "550 5.1.1 &lt;p1@example.org&gt;: no such user" in page.text
    assert "address refused" in page.text
    assert "p0@example.org" not in page.text
    assert "p4@example.org" not in page.text
    assert 'Not delivered <span class="count">(3)</span>' in page.text

    failed = viewer.client.get(f"/admin/campaigns/{campaign_id}/sends?status=failed")
    assert "p1@example.org" in failed.text
    assert "p2@example.org" not in failed.text
    sent = viewer.client.get(f"/admin/campaigns/{campaign_id}/sends?status=sent")
    assert "p0@example.org" in sent.text
    assert "accepted" in sent.text
    assert (
        viewer.client.get(f"/admin/campaigns/{campaign_id}/sends?status=queued").status_code == 422
    )

    monkeypatch.setattr(outcomes, "PAGE_SIZE", 2)
    first = viewer.client.get(f"/admin/campaigns/{campaign_id}/sends")
    assert ">p1@example.org</a>" in first.text
    assert ">p3@example.org</a>" not in first.text
    next_url = re.search(r'href="([^"]+)" rel="next"', first.text)[1].replace("&amp;", "&")
    second = viewer.client.get(next_url)
    assert ">p3@example.org</a>" in second.text
    assert ">p1@example.org</a>" not in second.text

    csv = viewer.client.get(f"/admin/campaigns/{campaign_id}/sends.csv?status=failed")
    assert csv.headers["content-type"].startswith("text/csv")
    assert 'filename="campaign-' in csv.headers["content-disposition"]
    lines = csv.text.strip().splitlines()
    assert lines[0].startswith("subscriber_id,email,status,reason,smtp_reply")
    assert len(lines) == 2
    assert "p1@example.org" in lines[1]
    assert "no such user" in lines[1]
    assert viewer.client.get("/admin/campaigns/999/sends").status_code == 404
