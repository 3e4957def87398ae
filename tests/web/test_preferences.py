"""The preference center: topics, name, tracking, export, erase; every change logged."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from app.links import preferences_url, unsubscribe_url
from app.tokens import Purpose, mint
from tests.support.unsubscribe import (
    Seeded,
    events,
    form_fields,
    secret_of,
    seed,
    snapshot,
    statuses,
    subscriber_status,
    suppressed,
)


@pytest.fixture
def seeded(settings_env: dict[str, str]) -> Seeded:
    return seed()


def prefs_path(subscriber_id: int) -> str:
    return preferences_url(subscriber_id, secret=secret_of(subscriber_id)).removeprefix(
        "http://testserver"
    )


def u_path(subscriber_id: int) -> str:
    return unsubscribe_url(subscriber_id, 0, secret=secret_of(subscriber_id)).removeprefix(
        "http://testserver"
    )


def test_page_shows_topics_name_tracking_and_changes_nothing(
    client: TestClient, seeded: Seeded
) -> None:
    url = prefs_path(seeded.subscriber_id)
    before = snapshot()
    page = client.get(url)
    assert client.head(url).status_code == 200
    assert snapshot() == before
    assert page.status_code == 200
    assert "j***@example.com" in page.text
    for slug in ("news", "offers", "events"):
        assert f'for="topic-{seeded.topics[slug]}"' in page.text  # every box has a label
    checked = set(re.findall(r'name="topic" value="(\d+)"\s*checked', page.text))
    assert checked == {str(seeded.topics["news"]), str(seeded.topics["offers"])}
    assert 'value="Jane"' in page.text
    # never chose: neither answer is pre-selected (issue 12: no pre-ticked box)
    assert not re.search(r'name="tracking"[^>]*checked', page.text)
    assert page.headers["referrer-policy"] == "no-referrer"


def test_changing_topics_logs_subscribe_and_unsubscribe(client: TestClient, seeded: Seeded) -> None:
    url = prefs_path(seeded.subscriber_id)
    topics = seeded.topics
    response = client.post(
        url,
        data={
            "topics_shown": "1",
            "name": "Jane",
            "topic": [str(topics["news"]), str(topics["events"])],
        },
        headers={"User-Agent": "Firefox test"},
    )
    assert response.status_code == 200
    assert "saved" in response.text
    assert statuses(seeded.subscriber_id) == {
        topics["news"]: "subscribed",
        topics["offers"]: "unsubscribed",
        topics["events"]: "subscribed",
    }
    log = {(e.action, e.topic_id): e for e in events(seeded.subscriber_id)}
    assert set(log) == {("unsubscribe", topics["offers"]), ("subscribe", topics["events"])}
    for event in log.values():
        assert event.channel == "preferences"
        assert event.user_agent == "Firefox test"
        assert event.ip
        assert event.policy_version
    # The same form again: nothing new.
    count = len(events())
    client.post(
        url,
        data={
            "topic": [str(topics["news"]), str(topics["events"])],
            "topics_shown": "1",
            "name": "Jane",
        },
    )
    assert len(events()) == count


def test_name_and_tracking_choice_are_consent_events_without_the_name(
    client: TestClient, seeded: Seeded
) -> None:
    url = prefs_path(seeded.subscriber_id)
    topics = [str(seeded.topics["news"]), str(seeded.topics["offers"])]
    client.post(
        url, data={"topics_shown": "1", "topic": topics, "name": "Jane Doe", "tracking": "0"}
    )
    page = client.get(url).text
    assert 'value="Jane Doe"' in page
    assert re.search(r'id="tracking-no"[^>]*checked', page)
    assert not re.search(r'id="tracking-yes"[^>]*checked', page)
    updates = [e for e in events(seeded.subscriber_id) if e.action == "update"]
    assert sorted(e.evidence["field"] for e in updates) == ["name", "tracking_allowed"]
    assert all(e.channel == "preferences" for e in updates)
    assert "Jane Doe" not in json.dumps([e.evidence for e in updates])
    tracking = next(e for e in updates if e.evidence["field"] == "tracking_allowed")
    assert tracking.evidence["tracking_allowed"] is False


def test_unticking_every_box_unsubscribes_every_topic_but_a_partial_form_clears_nothing(
    client: TestClient, seeded: Seeded
) -> None:
    url = prefs_path(seeded.subscriber_id)
    before = snapshot()
    client.post(url, data={"name": "Jane"})  # no topics_shown, no tracking field
    assert snapshot() == before
    client.post(url, data={"topics_shown": "1", "name": "Jane", "tracking": ["0", "1"]})
    assert set(statuses(seeded.subscriber_id).values()) == {"unsubscribed"}
    assert subscriber_status(seeded.subscriber_id) == "active"  # topics only, not a block


def test_resubscribing_from_the_center_after_unsubscribing_everything(
    client: TestClient, seeded: Seeded
) -> None:
    url = prefs_path(seeded.subscriber_id)
    action, _ = form_fields(client.get(url).text, "/unsubscribe")
    client.post(action)
    assert subscriber_status(seeded.subscriber_id) == "unsubscribed"
    assert suppressed(seeded.email)
    assert events(seeded.subscriber_id)[-1].channel == "preferences"
    client.post(
        url,
        data={
            "topics_shown": "1",
            "topic": str(seeded.topics["events"]),
            "name": "Jane",
        },
    )
    assert subscriber_status(seeded.subscriber_id) == "active"
    assert not suppressed(seeded.email)
    assert statuses(seeded.subscriber_id)[seeded.topics["events"]] == "subscribed"
    actions = [e.action for e in events(seeded.subscriber_id)]
    assert "suppression_lifted" in actions
    assert actions[-1] == "subscribe"


def test_a_complained_address_cannot_subscribe_again(client: TestClient, seeded: Seeded) -> None:
    from sqlmodel import Session

    from app.db import get_engine
    from app.models import Channel, Scope
    from app.subscribers.optout import unsubscribe

    with Session(get_engine()) as session:
        unsubscribe(
            session, subscriber=seeded.subscriber_id, scope=Scope.ALL, channel=Channel.COMPLAINT
        )
        session.commit()
    before = snapshot()
    response = client.post(
        prefs_path(seeded.subscriber_id),
        data={"topics_shown": "1", "topic": str(seeded.topics["news"]), "name": "Jane"},
    )
    assert response.status_code == 409
    assert "cannot" in response.text
    assert snapshot() == before


def _mailed_link(
    client: TestClient, mailbox: list, subscriber_id: int, button: str = "/export-email"
) -> str:
    """Press a data button on the preference page; the download link mailed to the person."""
    page = client.get(prefs_path(subscriber_id)).text
    action = f"{prefs_path(subscriber_id)}{button}"
    assert button != "/export-email" or form_fields(page, button)[0] == action
    response = client.post(action)
    assert response.status_code == 200
    assert "emailed you a link" in response.text
    [(rcpts, message)] = mailbox[-1:]
    mailbox.clear()
    [url] = re.findall(r"http://testserver(/my-data/\S+)", message.get_content())
    return url


@pytest.mark.parametrize("button", ["/export-email", "/export"])
def test_a_forwarded_preference_link_mails_the_data_link_and_never_downloads(
    client: TestClient, seeded: Seeded, mailbox: list, button: str
) -> None:
    """The preference link is in every newsletter: whoever it is forwarded to presses the
    data button and gets no data; a link goes to the subscriber's own address."""
    before = snapshot()
    response = client.post(prefs_path(seeded.subscriber_id) + button)
    assert response.status_code == 200
    assert "emailed you a link" in response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "jane@example.com" not in response.text
    assert "consent_log" not in response.text
    assert snapshot() == before  # nothing exported yet: no export event
    [(rcpts, message)] = mailbox
    assert rcpts == ["jane@example.com"]
    assert not list(message.iter_attachments())
    assert "/my-data/" in message.get_content()


def test_the_mailed_link_downloads_the_data_with_the_consent_log(
    client: TestClient, seeded: Seeded, mailbox: list
) -> None:
    client.post(u_path(seeded.subscriber_id), data={"List-Unsubscribe": "One-Click"})
    url = _mailed_link(client, mailbox, seeded.subscriber_id)
    before = snapshot()
    page = client.get(url)  # a link scanner opening it takes nothing and logs nothing
    assert page.status_code == 200
    assert "j***@example.com" in page.text
    assert snapshot() == before
    action, _ = form_fields(page.text, "/my-data/")
    response = client.post(action)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"].startswith("attachment;")
    data = response.json()
    assert data["subscriber"]["email"] == "jane@example.com"
    actions = [e["action"] for e in data["consent_log"]]
    assert "unsubscribe" in actions
    assert "export" in actions
    assert {s["topic"] for s in data["subscriptions"]} == {"news", "offers"}


def test_the_mailed_link_expires(
    client: TestClient, seeded: Seeded, mailbox: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time
    from datetime import timedelta

    from app.settings import Settings, get_settings

    assert Settings().export_link_max_age == timedelta(hours=24)  # the documented default
    monkeypatch.setenv("OCTOMAIL_EXPORT_LINK_MAX_AGE", "1s")
    get_settings.cache_clear()
    url = _mailed_link(client, mailbox, seeded.subscriber_id)
    time.sleep(2.1)
    before = snapshot()
    for method in ("GET", "POST"):
        expired = client.request(method, url)
        assert expired.status_code == 400
        assert "expired" in expired.text
        assert "jane" not in expired.text
    assert snapshot() == before
    monkeypatch.setenv("OCTOMAIL_EXPORT_LINK_MAX_AGE", "1h")
    get_settings.cache_clear()
    assert client.post(url).status_code == 200  # the same link, within the lifetime


def test_the_mailed_link_dies_with_the_person(
    client: TestClient, seeded: Seeded, mailbox: list
) -> None:
    url = _mailed_link(client, mailbox, seeded.subscriber_id)
    client.post(prefs_path(seeded.subscriber_id) + "/erase", data={"confirm": "yes"})
    carol = seed(email="carol@example.com")
    for method in ("GET", "POST"):
        response = client.request(method, url)
        assert response.status_code == 410
        assert "No data held" in response.text
        assert "carol" not in response.text
    assert carol.subscriber_id != seeded.subscriber_id


def test_email_export_failure_is_reported_not_a_500(client: TestClient, seeded: Seeded) -> None:
    for button in ("/export-email", "/export"):
        response = client.post(prefs_path(seeded.subscriber_id) + button)
        assert response.status_code == 503
        assert "could not send" in response.text


def test_erase_needs_confirmation_and_keeps_the_suppression(
    client: TestClient, seeded: Seeded
) -> None:
    url = prefs_path(seeded.subscriber_id)
    before = snapshot()
    confirm_page = client.get(url + "/erase")
    assert confirm_page.status_code == 200
    assert "cannot be undone" in confirm_page.text
    assert snapshot() == before
    unconfirmed = client.post(url + "/erase")
    assert unconfirmed.status_code == 422
    assert snapshot() == before
    action, _ = form_fields(confirm_page.text, "/erase")
    done = client.post(action, data={"confirm": "yes"})
    assert done.status_code == 200
    assert "erased" in done.text
    assert subscriber_status(seeded.subscriber_id) is None
    assert suppressed(seeded.email)
    assert [e.action for e in events()] == ["erase"]
    # The old links now say so calmly (410, the "gone" page), and never 500.
    gone = client.get(url)
    assert gone.status_code == 410
    assert "No data held" in gone.text
    assert client.post(url + "/export").status_code == 410


def test_bad_tokens_are_400_on_every_preference_route(client: TestClient, seeded: Seeded) -> None:
    good = prefs_path(seeded.subscriber_id).rsplit("/", 1)[1]
    payload, _, signature = good.rpartition(".")
    bad = {
        "tampered": f"{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}",
        "unsubscribe token": mint(Purpose.UNSUBSCRIBE, [seeded.subscriber_id, 0]),
        "garbage": "%00%ff..",
        "bad payload": mint(Purpose.PREFS, {"id": seeded.subscriber_id}),
    }
    before = snapshot()
    for label, token in bad.items():
        for method, suffix in (
            ("GET", ""),
            ("HEAD", ""),
            ("POST", ""),
            ("POST", "/unsubscribe"),
            ("POST", "/export"),
            ("POST", "/export-email"),
            ("GET", "/erase"),
            ("POST", "/erase"),
        ):
            response = client.request(
                method,
                f"/preferences/{token}{suffix}",
                data={"confirm": "yes"} if method == "POST" else None,
            )
            assert response.status_code == 400, (label, method, suffix)
    assert snapshot() == before


def test_french_preference_center(client: TestClient, seeded: Seeded) -> None:
    page = client.get(prefs_path(seeded.subscriber_id) + "?lang=fr")
    assert 'lang="fr"' in page.text
    assert "Vos préférences" in page.text
    action, _ = form_fields(page.text, "/export-email")
    assert action.endswith("?lang=fr")  # the language follows the forms
