"""The Review queue through /api/v1/inbound, and the confirm link for a third-party address."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from sqlmodel import Session, select

from app.db import get_engine, session_scope
from app.inbound.poller import poll_once
from app.mail.addresses import email_hmac
from app.models import ConsentEvent, Role, Subscriber
from app.settings import get_settings
from app.users import create_token, create_user
from tests.support.inbound import Catcher, Mailbox, load_fixture
from tests.support.inbound_cases import populate


def _status(address: str) -> str:
    with Session(get_engine()) as session:
        return session.exec(select(Subscriber).where(Subscriber.email == address)).one().status


def _events(address: str) -> list[ConsentEvent]:
    with Session(get_engine()) as session:
        return list(
            session.exec(select(ConsentEvent).where(ConsentEvent.email_hmac == email_hmac(address)))
        )


def test_review_queue_resolve_and_refile(api, mailbox: Mailbox, smtp: Catcher) -> None:
    with Session(get_engine()) as session:
        populate(session)
    mailbox.deliver(
        [
            load_fixture("plain_question"),
            load_fixture("thunderbird_forward"),
            load_fixture("plain_request_en"),
        ]
    )
    poll_once(get_settings())

    page = api.get("/api/v1/inbound", params={"status": "review"}).json()
    assert {i["from_addr"] for i in page["items"]} == {"adam@example.com", "jack@example.com"}
    adam = next(i for i in page["items"] if i["from_addr"] == "adam@example.com")
    assert adam["reason"]
    assert adam["folder"] == "Review"
    assert adam["verdict"] == "other"
    assert (
        api.get(f"/api/v1/inbound/{adam['id']}").json()["subject"] == "Question about the workshop"
    )
    assert len(api.get("/api/v1/inbound").json()["items"]) == 3

    resolved = api.post(f"/api/v1/inbound/{adam['id']}/resolve", json={"action": "unsubscribe"})
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"
    assert _status("adam@example.com") == "unsubscribed"
    assert [e.channel for e in _events("adam@example.com")] == ["admin"]
    assert (
        api.post(f"/api/v1/inbound/{adam['id']}/resolve", json={"action": "dismiss"}).status_code
        == 409
    )

    jack = next(i for i in page["items"] if i["from_addr"] == "jack@example.com")
    assert (
        api.post(f"/api/v1/inbound/{jack['id']}/resolve", json={"action": "dismiss"}).json()[
            "status"
        ]
        == "dismissed"
    )
    assert _status("jack@example.com") == "active"
    assert (
        api.post(f"/api/v1/inbound/{jack['id']}/resolve", json={"action": "delete"}).status_code
        == 422
    )
    assert api.get("/api/v1/inbound/999999").status_code == 404
    assert api.get("/api/v1/inbound", params={"status": "review"}).json()["items"] == []

    poll_once(get_settings())  # the poller moves resolved mail out of Review
    assert mailbox.folder_ids("Review") == []
    assert len(mailbox.folder_ids("Processed")) == 3


def test_viewer_reads_but_cannot_resolve(client, settings_env: dict[str, str]) -> None:
    with session_scope() as session:
        user = create_user(
            session, email="viewer@example.org", password="correct horse battery", role=Role.VIEWER
        )
        token = create_token(session, user=user, name="t")
    client.headers["Authorization"] = f"Bearer {token}"
    assert client.get("/api/v1/inbound").status_code == 200
    assert client.post("/api/v1/inbound/1/resolve", json={"action": "dismiss"}).status_code == 403
    del client.headers["Authorization"]
    assert client.get("/api/v1/inbound").status_code == 401


def test_third_party_address_needs_its_owner_to_confirm(
    client, mailbox: Mailbox, smtp: Catcher
) -> None:
    with Session(get_engine()) as session:
        populate(session)
    mailbox.deliver([load_fixture("third_party_request")])
    poll_once(get_settings())
    assert _status("xavier@example.com") == "active"
    [mail] = smtp.to("xavier@example.com")
    url = re.search(r"http\S+/email-optout/\S+", mail.get_content()).group(0)
    path = urlsplit(url).path

    page = client.get(path)
    assert page.status_code == 200
    assert "x***@example.com" in page.text
    assert _status("xavier@example.com") == "active"  # GET changes nothing

    assert client.post(path).status_code == 200
    assert _status("xavier@example.com") == "unsubscribed"
    assert client.post(path).status_code == 200  # a second click changes nothing more
    assert [e.channel for e in _events("xavier@example.com")] == ["email"]
    assert client.get(path[:-3] + "xyz").status_code == 400
