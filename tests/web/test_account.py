"""/account (issue 15): sign-in by a mailed link (one use, the same answer for any address,
rate-limited) or a password (the marketers' lock-out), the person's data with the session
as key, a change of address confirmed from the new mailbox; and a subscriber session that
opens nothing under /admin or /api/v1. Mail is read from a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.db import get_engine
from app.mail.addresses import email_hmac
from app.models import ConsentEvent, Subscriber, Subscription, Suppression
from tests.support.unsubscribe import (
    Seeded,
    events,
    form_fields,
    seed,
    snapshot,
    statuses,
    subscriber_status,
    suppressed,
)

PASSWORD = "a long enough secret"


@pytest.fixture
def seeded(settings_env: dict[str, str], mailbox) -> Seeded:
    return seed()


def _csrf(client: TestClient, path: str = "/account") -> str:
    page = client.get(path)
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def _link_from(mailbox, address: str) -> str:
    mails = [m for rcpts, m in mailbox if address in rcpts]
    assert mails, f"no mail to {address}"
    text = mails[-1].get_body(("plain",)).get_content()
    return re.search(r"http://testserver(/account/\S+)", text).group(1)


def _ask_link(client: TestClient, address: str):
    return client.post("/account/link", data={"email": address, "csrf_token": _csrf(client)})


def _sign_in_by_link(client: TestClient, mailbox, address: str) -> None:
    assert _ask_link(client, address).status_code == 200
    link = _link_from(mailbox, address)
    page = client.get(link)
    action, fields = form_fields(page.text, "/account/link/")
    answer = client.post(action, data=fields, follow_redirects=False)
    assert answer.status_code == 303


def _signed_csrf(client: TestClient) -> str:
    return _csrf(client, "/account")


def test_the_answer_is_the_same_for_known_and_unknown_addresses(
    client: TestClient, seeded: Seeded, mailbox
) -> None:
    known = _ask_link(client, "jane@example.com")
    unknown = _ask_link(client, "nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert known.text == unknown.text
    assert [r for r, _m in mailbox] == [["jane@example.com"]]


def test_link_signs_in_once_and_get_changes_nothing(
    client: TestClient, seeded: Seeded, mailbox
) -> None:
    _ask_link(client, "jane@example.com")
    link = _link_from(mailbox, "jane@example.com")
    page = client.get(link)
    assert page.status_code == 200
    assert "octomail_account" not in client.cookies
    action, fields = form_fields(page.text, "/account/link/")
    answer = client.post(action, data=fields, follow_redirects=False)
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert "octomail_account=" in cookie
    assert "Path=/account" in cookie
    assert "HttpOnly" in cookie
    home = client.get("/account")
    assert "jane@example.com" in home.text
    assert "News letter" in home.text
    # Used: the same link is refused from now on.
    assert client.get(link).status_code == 400
    assert client.post(action, data=fields).status_code == 400


def test_tampered_and_foreign_links_answer_400(client: TestClient, seeded: Seeded, mailbox) -> None:
    _ask_link(client, "jane@example.com")
    link = _link_from(mailbox, "jane@example.com")
    assert client.get(link[:-3] + "xyz").status_code == 400
    assert client.get("/account/link/nonsense").status_code == 400
    assert client.get("/account/change/nonsense").status_code == 400


def test_link_requests_are_limited_per_address_and_per_network(
    client: TestClient, seeded: Seeded, mailbox
) -> None:
    assert _ask_link(client, "jane@example.com").status_code == 200
    assert _ask_link(client, "jane@example.com").status_code == 200
    assert len(mailbox) == 1  # one link per address within five minutes
    codes = [_ask_link(client, f"x{n}@example.com").status_code for n in range(6)]
    assert codes[-1] == 429  # OCTOMAIL_ACCOUNT_RATE_LIMIT (5 a minute) from one network


def test_password_sign_in_and_lock_out(client: TestClient, seeded: Seeded, mailbox) -> None:
    _sign_in_by_link(client, mailbox, "jane@example.com")
    token = _signed_csrf(client)
    short = client.post(
        "/account/password",
        data={"password": "short", "password_again": "short", "csrf_token": token},
    )
    assert short.status_code == 422
    done = client.post(
        "/account/password",
        data={"password": PASSWORD, "password_again": PASSWORD, "csrf_token": token},
    )
    assert done.status_code == 200
    client.post("/account/signout", data={"csrf_token": token})
    assert "Sign in with your password" in client.get("/account").text

    def attempt(password: str) -> int:
        return client.post(
            "/account/signin",
            data={"email": "jane@example.com", "password": password, "csrf_token": _csrf(client)},
            follow_redirects=False,
        ).status_code

    assert attempt(PASSWORD) == 303
    client.post("/account/signout", data={"csrf_token": _signed_csrf(client)})
    assert [attempt("wrong password!") for _ in range(5)] == [401] * 5
    assert attempt(PASSWORD) == 429  # locked: not even the right one is checked


def test_changes_need_the_session_csrf_token(client: TestClient, seeded: Seeded, mailbox) -> None:
    _sign_in_by_link(client, mailbox, "jane@example.com")
    before = len(events(seeded.subscriber_id))
    answer = client.post("/account/preferences", data={"name": "Mallory"})
    assert answer.status_code == 400
    assert len(events(seeded.subscriber_id)) == before
    saved = client.post(
        "/account/preferences",
        data={
            "name": "Janet",
            "topic": [str(seeded.topics["news"])],
            "csrf_token": _signed_csrf(client),
        },
    )
    assert saved.status_code == 200
    assert 'value="Janet"' in saved.text


def test_leaving_everything_unsubscribes_suppresses_and_logs_once(
    client: TestClient, seeded: Seeded, mailbox
) -> None:
    _sign_in_by_link(client, mailbox, "jane@example.com")
    before = snapshot()
    page = client.get("/account")
    action, fields = form_fields(page.text, "/account/unsubscribe")
    assert client.head("/account").status_code == 200
    assert client.get("/account/unsubscribe").status_code == 405
    assert client.post(action, data={}).status_code == 400  # without the session's token
    assert snapshot() == before  # none of it changed anything

    left = client.post(action, data=fields)
    assert left.status_code == 200
    assert "You are unsubscribed from everything." in left.text
    assert 'role="status"' in left.text
    assert "/account/unsubscribe" not in left.text  # nothing left to leave
    assert subscriber_status(seeded.subscriber_id) == "unsubscribed"
    assert set(statuses(seeded.subscriber_id).values()) == {"unsubscribed"}
    assert suppressed("jane@example.com")
    [event] = events(seeded.subscriber_id)
    assert (event.action, event.channel, event.topic_id) == ("unsubscribe", "preferences", None)
    assert event.evidence["scope"] == "all"
    assert event.evidence["via"] == "account"
    assert sorted(event.evidence["topics"]) == sorted(
        [seeded.topics["news"], seeded.topics["offers"]]
    )
    history = client.get("/account").text
    assert "Unsubscribed" in history
    assert "preference centre" in history

    again = client.post(action, data=fields)  # a second press logs nothing new
    assert again.status_code == 200
    assert len(events(seeded.subscriber_id)) == 1


def test_leaving_everything_needs_a_session(client: TestClient, seeded: Seeded) -> None:
    before = snapshot()
    answer = client.post("/account/unsubscribe", data={}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/account"
    assert snapshot() == before


def test_signed_out_changes_go_to_sign_in(client: TestClient, seeded: Seeded) -> None:
    answer = client.post("/account/email", data={"email": "x@example.net"}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/account"


def test_subscriber_session_opens_nothing_for_marketers(
    client: TestClient, seeded: Seeded, mailbox
) -> None:
    _sign_in_by_link(client, mailbox, "jane@example.com")
    token = client.cookies["octomail_account"]
    # Even sent by hand to other paths (a browser would not: Path=/account).
    for name in ("octomail_account", "octomail_session"):
        client.cookies.clear()
        client.cookies.set(name, token)
        admin = client.get("/admin/", follow_redirects=False)
        assert admin.status_code == 303
        assert admin.headers["location"].startswith("/admin/login")
        assert client.get("/api/v1/subscribers").status_code == 401
        assert (
            client.get(
                "/api/v1/subscribers", headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 401
        )


def test_change_of_address_is_confirmed_from_the_new_mailbox(
    client: TestClient, seeded: Seeded, mailbox
) -> None:
    _sign_in_by_link(client, mailbox, "jane@example.com")
    asked = client.post(
        "/account/email", data={"email": "Jane.New@Example.net", "csrf_token": _signed_csrf(client)}
    )
    assert asked.status_code == 200
    with Session(get_engine()) as session:
        assert session.get(Subscriber, seeded.subscriber_id).email == "jane@example.com"
    link = _link_from(mailbox, "jane.new@example.net")
    page = client.get(link)
    assert "j***@example.net" in page.text or "jane.new" not in page.text
    action, fields = form_fields(page.text, "/account/change/")
    assert client.post(action, data=fields).status_code == 200
    with Session(get_engine()) as session:
        person = session.get(Subscriber, seeded.subscriber_id)
        subscriptions = session.exec(
            select(Subscription).where(Subscription.subscriber_id == seeded.subscriber_id)
        ).all()
        change = session.exec(
            select(ConsentEvent).where(ConsentEvent.subscriber_id == seeded.subscriber_id)
        ).all()[-1]
    assert person.email == "jane.new@example.net"
    assert len(subscriptions) == 2
    assert change.action == "update"
    assert change.evidence["field"] == "email"
    assert change.evidence["previous_address_hmac"] == email_hmac("jane@example.com")
    assert change.email_hmac == email_hmac("jane.new@example.net")
    assert not suppressed("jane@example.com")
    assert client.post(action, data=fields).status_code == 400  # used


@pytest.mark.parametrize("kind", ["taken", "suppressed"])
def test_change_to_an_unavailable_address_is_refused(
    client: TestClient, seeded: Seeded, mailbox, kind: str
) -> None:
    with Session(get_engine()) as session:
        if kind == "taken":
            session.add(Subscriber(email="other@example.net"))
        else:
            session.add(Suppression(email_hmac=email_hmac("other@example.net"), reason="complaint"))
        session.commit()
    _sign_in_by_link(client, mailbox, "jane@example.com")
    answer = client.post(
        "/account/email", data={"email": "other@example.net", "csrf_token": _signed_csrf(client)}
    )
    assert answer.status_code == 409
    assert not [r for r, _m in mailbox if "other@example.net" in r]


def test_export_and_erase_with_the_session(client: TestClient, seeded: Seeded, mailbox) -> None:
    _sign_in_by_link(client, mailbox, "jane@example.com")
    data = client.post("/account/export", data={"csrf_token": _signed_csrf(client)})
    assert data.status_code == 200
    assert data.json()["subscriber"]["email"] == "jane@example.com"
    page = client.get("/account/erase")
    action, fields = form_fields(page.text, "/account/erase")
    assert client.post(action, data=fields).status_code == 422  # the box is not ticked
    erased = client.post(action, data={**fields, "confirm": "yes"})
    assert erased.status_code == 200
    with Session(get_engine()) as session:
        assert session.get(Subscriber, seeded.subscriber_id) is None
    assert "Sign in with a link" in client.get("/account").text


def test_pages_and_mail_speak_the_visitors_language(
    client: TestClient, seeded: Seeded, mailbox
) -> None:
    client.headers["Accept-Language"] = "fr-FR,fr;q=0.9"
    page = client.get("/account")
    assert "Se connecter avec un lien" in page.text
    assert _ask_link(client, "jane@example.com").status_code == 200
    mail = mailbox[-1][1]
    assert mail["Subject"].startswith("Votre lien de connexion")
