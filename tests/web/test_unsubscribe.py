"""RFC 8058 one-click and the unsubscribe page: conformance, scope, undo, tokens."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.db import get_engine
from app.links import preferences_url, unsubscribe_url
from app.models import Channel, Scope, Subscriber, SubscriberStatus
from app.settings import get_settings
from app.subscribers.optout import unsubscribe
from app.tokens import Purpose, mint
from tests.support.unsubscribe import (
    ONE_CLICK,
    Seeded,
    events,
    form_fields,
    make_campaign,
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


def path_of(url: str) -> str:
    return url.removeprefix("http://testserver")


def u_path(subscriber_id: int, campaign_id: int | None = 0) -> str:
    return path_of(unsubscribe_url(subscriber_id, campaign_id, secret=secret_of(subscriber_id)))


# --- RFC 8058 one-click -------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_post_unsubscribes_with_either_encoding(
    client: TestClient, seeded: Seeded, encoding: str
) -> None:
    campaign = make_campaign([seeded.topics["news"]])
    url = u_path(seeded.subscriber_id, campaign)
    if encoding == "urlencoded":
        response = client.post(url, data=ONE_CLICK, follow_redirects=False)
    else:
        response = client.post(
            url, files={"List-Unsubscribe": (None, "One-Click")}, follow_redirects=False
        )
        assert response.request.headers["content-type"].startswith("multipart/form-data")
    assert response.status_code == 200
    assert "You are unsubscribed" in response.text
    # Committed before the answer: a fresh connection sees it.
    assert statuses(seeded.subscriber_id) == {
        seeded.topics["news"]: "unsubscribed",
        seeded.topics["offers"]: "subscribed",
    }
    [event] = events(seeded.subscriber_id)
    assert (event.action, event.channel, event.campaign_id, event.topic_id) == (
        "unsubscribe",
        "one_click",
        campaign,
        seeded.topics["news"],
    )
    assert event.policy_version == get_settings().policy_version
    assert event.user_agent
    assert event.ip


def test_one_click_needs_no_cookie_and_sets_none(settings_env: dict[str, str]) -> None:
    from app.main import create_app

    seeded = seed()
    # A bare client: no cookie jar content, no auth, no CSRF token, no Origin or Referer.
    with TestClient(create_app(), base_url="http://testserver") as bare:
        bare.cookies.clear()
        response = bare.post(
            u_path(seeded.subscriber_id),
            data=ONE_CLICK,
            headers={"User-Agent": "Gmail one-click"},
            follow_redirects=False,
        )
    assert response.status_code == 200
    assert "cookie" not in response.request.headers
    assert "set-cookie" not in response.headers
    assert response.headers["referrer-policy"] == "no-referrer"
    assert subscriber_status(seeded.subscriber_id) == "unsubscribed"
    assert suppressed(seeded.email)


def test_one_click_is_idempotent(client: TestClient, seeded: Seeded) -> None:
    url = u_path(seeded.subscriber_id)
    first = client.post(url, data=ONE_CLICK, follow_redirects=False)
    after_first = snapshot()
    second = client.post(url, data=ONE_CLICK, follow_redirects=False)
    assert first.status_code == second.status_code == 200
    assert snapshot() == after_first
    [event] = events(seeded.subscriber_id)
    assert event.action == "unsubscribe"
    assert event.evidence["scope"] == "all"


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"data": {"List-Unsubscribe": "one-click-please"}},
        {"data": {"something": "else"}},
        {
            "content": b'{"List-Unsubscribe": "One-Click"}',
            "headers": {"content-type": "application/json"},
        },
        {"content": b"List-Unsubscribe=One-Click", "headers": {"content-type": "text/plain"}},
    ],
)
def test_post_without_the_one_click_body_is_400_and_changes_nothing(
    client: TestClient, seeded: Seeded, kwargs: dict
) -> None:
    before = snapshot()
    response = client.post(u_path(seeded.subscriber_id), follow_redirects=False, **kwargs)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert "List-Unsubscribe=One-Click" in response.text
    assert snapshot() == before


def _tampered(token: str) -> str:
    payload, _, signature = token.rpartition(".")
    flipped = "A" if signature[0] != "A" else "B"
    return f"{payload}.{flipped}{signature[1:]}"


def _bad_tokens(seeded: Seeded) -> dict[str, str]:
    good = u_path(seeded.subscriber_id).rsplit("/", 1)[1]
    return {
        "tampered": _tampered(good),
        "other subscriber in payload": mint(Purpose.PREFS, [seeded.subscriber_id]),
        "prefs token": path_of(
            preferences_url(seeded.subscriber_id, secret=secret_of(seeded.subscriber_id))
        ).rsplit("/", 1)[1],
        "confirm token": mint(Purpose.CONFIRM, [seeded.subscriber_id, []]),
        "click token": mint(Purpose.CLICK, [seeded.subscriber_id, 0]),
        "garbage": "not-a-token",
        "huge": "x" * 2000,
        "bad payload": mint(Purpose.UNSUBSCRIBE, ["jane@example.com", 0]),
        "foreign key": _foreign(seeded),
    }


def _foreign(seeded: Seeded) -> str:
    from itsdangerous import URLSafeSerializer

    return URLSafeSerializer("some-other-key", salt=Purpose.UNSUBSCRIBE.value).dumps(
        [seeded.subscriber_id, 0]
    )


def test_bad_tokens_get_400_and_change_nothing(client: TestClient, seeded: Seeded) -> None:
    before = snapshot()
    for label, token in _bad_tokens(seeded).items():
        post = client.post(f"/u/{token}", data=ONE_CLICK, follow_redirects=False)
        assert post.status_code == 400, label
        assert post.headers["content-type"].startswith("text/plain"), label
        for method in ("GET", "HEAD"):
            page = client.request(method, f"/u/{token}", follow_redirects=False)
            assert page.status_code == 400, (label, method)
        for suffix in ("all", "undo"):
            form = client.post(f"/u/{token}/{suffix}", data={"topics": "1", "all": "1"})
            assert form.status_code == 400, (label, suffix)
            assert "text/html" in form.headers["content-type"]
    assert snapshot() == before


def test_rotated_key_still_verifies_an_old_token(
    client: TestClient, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCTOMAIL_SECRET_KEYS", "old-key-0123456789")
    get_settings.cache_clear()
    old_url = u_path(seeded.subscriber_id)
    monkeypatch.setenv("OCTOMAIL_SECRET_KEYS", "new-key-0123456789,old-key-0123456789")
    get_settings.cache_clear()
    assert u_path(seeded.subscriber_id) != old_url  # the new key signs
    assert client.get(old_url).status_code == 200
    assert client.post(old_url, data=ONE_CLICK).status_code == 200
    assert subscriber_status(seeded.subscriber_id) == "unsubscribed"
    monkeypatch.setenv("OCTOMAIL_SECRET_KEYS", "new-key-0123456789")  # old key retired
    get_settings.cache_clear()
    assert client.post(old_url, data=ONE_CLICK).status_code == 400


# --- GET / HEAD: a page, never a change ------------------------------------------------------


def test_get_and_head_show_the_page_and_change_nothing(client: TestClient, seeded: Seeded) -> None:
    campaign = make_campaign([seeded.topics["news"]])
    url = u_path(seeded.subscriber_id, campaign)
    before = snapshot()
    page = client.get(url, follow_redirects=False)
    for _ in range(3):  # link scanners fetch again and again
        assert client.head(url).status_code == 200
        assert client.get(url).status_code == 200
    assert snapshot() == before
    assert page.status_code == 200
    assert 'lang="en"' in page.text
    assert "j***@example.com" in page.text
    assert "jane@example.com" not in page.text
    assert "News letter" in page.text
    assert "Offers letter" not in page.text
    assert "Test Street" in page.text  # the postal address
    assert page.headers["cache-control"] == "no-store"
    action, fields = form_fields(page.text, url)
    assert fields == {"List-Unsubscribe": "One-Click", "page": "1"}
    form_fields(page.text, "/all")  # "unsubscribe from everything" is offered


def test_page_button_unsubscribes_and_offers_undo_and_preferences(
    client: TestClient, seeded: Seeded
) -> None:
    campaign = make_campaign([seeded.topics["news"]])
    url = u_path(seeded.subscriber_id, campaign)
    action, fields = form_fields(client.get(url).text, url)
    done = client.post(action, data=fields, follow_redirects=False)
    assert done.status_code == 200
    assert "You are unsubscribed" in done.text
    assert "News letter" in done.text
    assert "/preferences/" in done.text
    [event] = events(seeded.subscriber_id)
    assert event.channel == "link"
    # A reload re-posts: nothing new is written and the page is the same.
    again = client.post(action, data=fields)
    assert again.status_code == 200
    assert len(events(seeded.subscriber_id)) == 1
    # GET after the fact shows the confirmation with undo (state, not a stale form).
    undo_action, undo_fields = form_fields(client.get(url).text, "/undo")
    assert undo_fields == {"topics": str(seeded.topics["news"]), "all": "0"}
    undone = client.post(undo_action, data=undo_fields)
    assert undone.status_code == 200
    assert "subscribed again" in undone.text
    assert statuses(seeded.subscriber_id)[seeded.topics["news"]] == "subscribed"
    last = events(seeded.subscriber_id)[-1]
    assert (last.action, last.channel, last.topic_id) == (
        "resubscribe",
        "link",
        seeded.topics["news"],
    )


def test_everything_then_undo_lifts_the_suppression(client: TestClient, seeded: Seeded) -> None:
    campaign = make_campaign([seeded.topics["news"]])
    url = u_path(seeded.subscriber_id, campaign)
    action, _ = form_fields(client.get(url).text, "/all")
    done = client.post(action)
    assert done.status_code == 200
    assert subscriber_status(seeded.subscriber_id) == "unsubscribed"
    assert suppressed(seeded.email)
    assert set(statuses(seeded.subscriber_id).values()) == {"unsubscribed"}
    undo_action, undo_fields = form_fields(done.text, "/undo")
    assert undo_fields["all"] == "1"
    assert client.post(undo_action, data=undo_fields).status_code == 200
    assert subscriber_status(seeded.subscriber_id) == "active"
    assert not suppressed(seeded.email)
    assert set(statuses(seeded.subscriber_id).values()) == {"subscribed"}
    actions = [e.action for e in events(seeded.subscriber_id)]
    assert actions.count("suppression_lifted") == 1
    assert "resubscribe" in actions


def test_undo_stays_within_the_links_scope(client: TestClient, seeded: Seeded) -> None:
    campaign = make_campaign([seeded.topics["news"]])
    with Session(get_engine()) as session:  # "offers" was dropped earlier, elsewhere
        unsubscribe(
            session,
            subscriber=seeded.subscriber_id,
            scope=Scope.TOPIC,
            topic_ids=[seeded.topics["offers"]],
            channel=Channel.EMAIL,
        )
        session.commit()
    url = u_path(seeded.subscriber_id, campaign)
    client.post(url, data=ONE_CLICK)
    forged = {"topics": f"{seeded.topics['news']},{seeded.topics['offers']}", "all": "0"}
    assert client.post(f"{url}/undo", data=forged).status_code == 200
    assert statuses(seeded.subscriber_id) == {
        seeded.topics["news"]: "subscribed",
        seeded.topics["offers"]: "unsubscribed",
    }


@pytest.mark.parametrize("status", ["complained", "bounced", "blocklisted"])
def test_no_undo_for_complained_bounced_or_blocked(
    client: TestClient, seeded: Seeded, status: str
) -> None:
    url = u_path(seeded.subscriber_id)
    client.post(url, data=ONE_CLICK)
    with Session(get_engine()) as session:
        if status == "blocklisted":
            from app.models import Subscriber

            row = session.get(Subscriber, seeded.subscriber_id)
            row.status = SubscriberStatus.BLOCKLISTED
            session.add(row)
        else:
            channel = {"complained": Channel.COMPLAINT, "bounced": Channel.BOUNCE}[status]
            unsubscribe(session, subscriber=seeded.subscriber_id, scope=Scope.ALL, channel=channel)
        session.commit()
    page = client.get(url)
    assert page.status_code == 200
    assert "/undo" not in page.text
    before = snapshot()
    refused = client.post(
        f"{url}/undo", data={"topics": ",".join(str(t) for t in seeded.topics.values()), "all": "1"}
    )
    assert refused.status_code == 409
    assert "cannot" in refused.text
    assert snapshot() == before
    assert suppressed(seeded.email)


def test_erased_address_gets_a_calm_page_and_no_undo(client: TestClient, seeded: Seeded) -> None:
    from app.subscribers.rights import erase

    url = u_path(seeded.subscriber_id)
    with Session(get_engine()) as session:
        from app.models import Subscriber

        erase(session, session.get(Subscriber, seeded.subscriber_id), channel=Channel.ADMIN)
        session.commit()
    page = client.get(url)
    assert page.status_code == 410
    assert "Nothing to unsubscribe" in page.text
    before = snapshot()
    assert client.post(url, data=ONE_CLICK).status_code == 410
    assert client.post(f"{url}/undo", data={"all": "1"}).status_code == 410
    assert snapshot() == before
    assert suppressed(seeded.email)


# --- scope -------------------------------------------------------------------------------


def test_scope_campaign_zero_and_topicless_campaign_mean_everything(
    client: TestClient, settings_env: dict[str, str]
) -> None:
    for campaign_topics in (None, []):
        person = seed(email=f"p{len(str(campaign_topics))}@example.com")
        campaign = 0 if campaign_topics is None else make_campaign(campaign_topics)
        assert (
            client.post(u_path(person.subscriber_id, campaign), data=ONE_CLICK).status_code == 200
        )
        assert subscriber_status(person.subscriber_id) == "unsubscribed"
        assert set(statuses(person.subscriber_id).values()) == {"unsubscribed"}
        assert suppressed(person.email)


def test_scope_campaign_with_two_topics(client: TestClient, seeded: Seeded) -> None:
    campaign = make_campaign([seeded.topics["news"], seeded.topics["offers"]])
    client.post(u_path(seeded.subscriber_id, campaign), data=ONE_CLICK)
    assert set(statuses(seeded.subscriber_id).values()) == {"unsubscribed"}
    assert subscriber_status(seeded.subscriber_id) == "active"  # other lists may come later
    assert not suppressed(seeded.email)
    assert sorted(e.topic_id for e in events(seeded.subscriber_id)) == sorted(
        [seeded.topics["news"], seeded.topics["offers"]]
    )


# --- language ------------------------------------------------------------------------------


def test_pages_speak_french_on_request(client: TestClient, seeded: Seeded) -> None:
    url = u_path(seeded.subscriber_id)
    page = client.get(url, headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert 'lang="fr"' in page.text
    assert "Se désabonner" in page.text
    assert "Se désabonner" in client.get(url + "?lang=fr").text
    done = client.post(url, data=ONE_CLICK, headers={"Accept-Language": "fr"})
    assert "Vous êtes désabonné" in done.text


def test_one_click_answers_in_the_stored_language_without_accept_language(
    client: TestClient, seeded: Seeded
) -> None:
    """A mail client sends no Accept-Language: the person's stored language decides, and
    it beats the header when there is one; ?lang= still beats both."""
    with Session(get_engine()) as session:
        person = session.get(Subscriber, seeded.subscriber_id)
        assert person is not None
        person.language = "de"
        session.add(person)
        session.commit()
    url = u_path(seeded.subscriber_id)
    answer = client.post(url, data=ONE_CLICK)
    assert "accept-language" not in answer.request.headers
    assert answer.status_code == 200
    assert '<html lang="de"' in answer.text
    assert "Sie sind abgemeldet" in answer.text
    assert "You are unsubscribed" not in answer.text
    again = client.post(url, data=ONE_CLICK, headers={"Accept-Language": "fr"})
    assert "Sie sind abgemeldet" in again.text
    asked = client.post(url + "?lang=es", data=ONE_CLICK, headers={"Accept-Language": "fr"})
    assert "Se ha dado de baja" in asked.text


def test_concurrent_one_clicks_write_one_event(client: TestClient, seeded: Seeded) -> None:
    """Mail providers retry and users double-click: simultaneous POSTs, one opt-out."""
    from concurrent.futures import ThreadPoolExecutor

    url = u_path(seeded.subscriber_id)
    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = list(pool.map(lambda _: client.post(url, data=ONE_CLICK).status_code, range(6)))
    assert codes == [200] * 6
    assert [e.action for e in events(seeded.subscriber_id)] == ["unsubscribe"]
    assert suppressed(seeded.email)
