"""Public sign-up and double opt-in, through the real app and a real SMTP server."""

import re

from sqlmodel import Session, select

from app.db import get_engine
from app.models import ConsentEvent, Subscriber, Subscription, Topic


def _topic(slug="news"):
    with Session(get_engine()) as s:
        s.add(Topic(slug=slug, name=slug.title()))
        s.commit()


def _form(client, **fields):
    page = client.get("/subscribe?ref=podcast&utm_source=twitter")
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    data = {
        "csrf_token": token,
        "email": "new@example.org",
        "name": "New Person",
        "topics": "news",
        "consent": "yes",
        "ref": "podcast",
        "utm_source": "twitter",
    }
    data.update(fields)
    return client.post(
        "/subscribe",
        data=data,
        headers={"user-agent": "pytest-browser", "referer": "https://blog.example/"},
    )


def _subscriptions():
    with Session(get_engine()) as s:
        return [(sub.status) for sub in s.exec(select(Subscription))]


def _confirm_link(mailbox):
    assert mailbox, "no confirmation email was sent"
    _, message = mailbox[-1]
    body = message.get_body(("plain",)).get_content()
    return re.search(r"http://testserver(/confirm/\S+)", body).group(1)


def test_double_opt_in_nothing_subscribed_until_confirmed(client, mailbox):
    _topic()
    response = _form(client)
    assert response.status_code == 200
    assert "Check your inbox" in response.text
    assert _subscriptions() == ["unconfirmed"]
    link = _confirm_link(mailbox)
    assert mailbox[-1][0] == ["new@example.org"]

    # A link scanner GETs the link: nothing changes.
    page = client.get(link)
    assert page.status_code == 200
    assert 'method="post"' in page.text
    assert _subscriptions() == ["unconfirmed"]

    done = client.post(link)
    assert done.status_code == 200
    assert "You are subscribed" in done.text
    assert _subscriptions() == ["subscribed"]

    with Session(get_engine()) as s:
        person = s.exec(select(Subscriber)).one()
        assert person.source == "twitter"
        assert person.referrer == "https://blog.example"  # the origin only
        events = s.exec(select(ConsentEvent).order_by(ConsentEvent.id)).all()
    assert [e.action for e in events] == ["subscribe", "confirm"]
    first = events[0]
    assert first.user_agent == "pytest-browser"
    assert first.policy_version
    assert "unsubscribe at any time" in first.evidence["consent_text"]
    assert first.evidence["ref"] == "podcast"
    assert first.evidence["utm_source"] == "twitter"


def test_tampered_and_expired_confirmation_links_get_a_400_page(client, mailbox, monkeypatch):
    _topic()
    _form(client)
    link = _confirm_link(mailbox)
    tampered = link[:-3] + ("aaa" if not link.endswith("aaa") else "bbb")
    for method in (client.get, client.post):
        response = method(tampered)
        assert response.status_code == 400
        assert "not valid" in response.text
        assert "<html" in response.text
    assert _subscriptions() == ["unconfirmed"]

    monkeypatch.setenv("OCTOMAIL_CONFIRM_MAX_AGE", "0s")
    from app.settings import get_settings

    get_settings.cache_clear()
    import time

    time.sleep(1.1)
    response = client.post(link)
    assert response.status_code == 400
    assert "expired" in response.text
    assert _subscriptions() == ["unconfirmed"]


def test_signing_up_again_creates_no_duplicate_and_reveals_nothing(client, mailbox):
    _topic()
    first = _form(client)
    client.post(_confirm_link(mailbox))
    again = _form(client)
    stranger = _form(client, email="someone-else@example.org")
    assert (
        first.text.replace("someone-else", "")
        == again.text
        == stranger.text.replace("someone-else", "")
    )
    with Session(get_engine()) as s:
        emails = [p.email for p in s.exec(select(Subscriber))]
    assert sorted(emails) == ["new@example.org", "someone-else@example.org"]
    assert sorted(_subscriptions()) == ["subscribed", "unconfirmed"]


def test_form_errors_are_shown_and_nothing_is_stored(client):
    _topic()
    response = _form(client, email="not-an-address")
    assert response.status_code == 422
    assert "invalid email address" in response.text
    response = _form(client, consent="")
    assert response.status_code == 422
    assert "agree" in response.text
    assert _subscriptions() == []


def test_form_without_csrf_cookie_is_refused(client):
    _topic()
    client.get("/subscribe")
    client.cookies.clear()
    response = client.post(
        "/subscribe",
        data={"csrf_token": "x" * 43, "email": "a@example.org", "topics": "news", "consent": "yes"},
    )
    assert response.status_code == 400
    assert _subscriptions() == []


def test_json_signup(client, mailbox):
    _topic()
    response = client.post(
        "/subscribe", json={"email": "api@example.org", "topics": ["news"], "consent": True}
    )
    assert response.status_code == 202
    assert response.json()["status"] == "pending_confirmation"
    assert _subscriptions() == ["unconfirmed"]
    assert client.post("/subscribe", json={"email": "x"}).status_code == 422


def test_signup_is_rate_limited_per_ip(client, monkeypatch):
    _topic()
    limits = [
        client.post(
            "/subscribe", json={"email": f"r{i}@example.org", "topics": ["news"], "consent": True}
        ).status_code
        for i in range(12)
    ]
    assert limits[:10] == [202] * 10
    assert limits[10:] == [429, 429]


def test_a_used_confirmation_link_says_already_confirmed(client, mailbox):
    _topic()
    _form(client)
    link = _confirm_link(mailbox)
    assert "Confirm your subscription" in client.get(link).text
    assert client.post(link).status_code == 200

    again = client.get(link)
    assert again.status_code == 200
    assert "already confirmed" in again.text
    assert "Confirm your subscription" not in again.text
    assert 'method="post"' not in again.text
    with Session(get_engine()) as s:
        events = s.exec(select(ConsentEvent)).all()
    assert [e.action for e in events] == ["subscribe", "confirm"]  # the GET changed nothing

    repeat = client.post(link)  # a second press is harmless: no new consent event
    assert repeat.status_code == 200
    assert _subscriptions() == ["subscribed"]
    with Session(get_engine()) as s:
        assert len(s.exec(select(ConsentEvent)).all()) == 2
