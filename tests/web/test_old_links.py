"""Old links never reach a new person (issue 9, part 1), on SQLite and PostgreSQL.

Bob signs up, gets mail, erases himself; Carol signs up after him. Every link Bob ever got
(unsubscribe page, one-click, preferences, erase, export, confirm, email-optout, the mailto
token) answers the "gone" page (410) and touches nobody: not while ids are never reused,
and not even if Carol is given Bob's very id (a restored backup, an id reused before the
upgrade): the link secret is what they check.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.db import get_engine
from app.inbound.identity import campaign_message_id, verify_campaign_message_id
from app.inbound.mailouts import email_optout_url
from app.inbound.poller import poll_once
from app.link_secrets import link_tag
from app.links import mailto_unsubscribe, preferences_url, unsubscribe_url
from app.models import (
    InboundMessage,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Topic,
)
from app.settings import get_settings
from tests.support.unsubscribe import ONE_CLICK, snapshot

BASE = "http://testserver"


@pytest.fixture
def news(settings_env: dict[str, str]) -> int:
    with Session(get_engine()) as session:
        topic = Topic(slug="news", name="News")
        session.add(topic)
        session.commit()
        return topic.id  # type: ignore[return-value]


def _two_hours_pass() -> None:
    """Move the mail allowance's records into the past (one confirmation an hour)."""
    from sqlalchemy import update

    from app.models import MailAllowance

    table = MailAllowance.__table__  # type: ignore[attr-defined]
    with get_engine().begin() as conn:
        for hashed, kind, sent_at in conn.execute(
            select(table.c.address_hmac, table.c.kind, table.c.sent_at)
        ).all():
            conn.execute(
                update(table)
                .where(table.c.address_hmac == hashed, table.c.kind == kind)
                .values(sent_at=sent_at - timedelta(hours=2))
            )


def _sign_up(client: TestClient, mailbox: list, address: str) -> str:
    """The public sign-up; returns the confirmation link mailed to `address`."""
    sent = len(mailbox)
    response = client.post(
        "/subscribe", json={"email": address, "topics": ["news"], "consent": True}
    )
    assert response.status_code == 202
    assert len(mailbox) == sent + 1
    [(rcpts, message)] = mailbox[-1:]
    assert rcpts == [address]
    body = message.get_body(("plain",)).get_content()
    [url] = re.findall(r"http://testserver(/confirm/\S+)", body)
    return url


def _person(address: str) -> Subscriber:
    with Session(get_engine()) as session:
        person = session.exec(select(Subscriber).where(Subscriber.email == address)).one()
        session.expunge(person)
        return person


def _active_and_subscribed(address: str) -> bool:
    with Session(get_engine()) as session:
        person = session.exec(select(Subscriber).where(Subscriber.email == address)).first()
        if person is None or person.status != "active":
            return False
        rows = session.exec(
            select(Subscription).where(Subscription.subscriber_id == person.id)
        ).all()
        return [r.status for r in rows] == [SubscriptionStatus.SUBSCRIBED]


def _bobs_links(bob: Subscriber, confirm: str, inbound_id: int) -> dict[str, str]:
    """Every link Bob's mail carried, as it carried them (the sending code's own builders)."""
    settings = get_settings()
    bob_id = bob.id or 0
    return {
        "unsubscribe": unsubscribe_url(bob_id, 0, secret=bob.link_secret)[len(BASE) :],
        "preferences": preferences_url(bob_id, secret=bob.link_secret)[len(BASE) :],
        "confirm": confirm,
        "email-optout": email_optout_url(settings, inbound_id, 0, link_tag(bob.link_secret))[
            len(BASE) :
        ],
    }


def _carol_takes_bobs_id(bob_id: int, carol_address: str) -> None:
    """What id reuse did before: the row Carol got carries the id Bob's links name."""
    with Session(get_engine()) as session:
        carol = session.exec(select(Subscriber).where(Subscriber.email == carol_address)).one()
        subs = session.exec(
            select(Subscription).where(Subscription.subscriber_id == carol.id)
        ).all()
        kept = [(s.topic_id, s.status) for s in subs]
        for sub in subs:
            session.delete(sub)
        session.flush()
        carol.id = bob_id
        session.add(carol)
        session.flush()
        for topic_id, status in kept:
            session.add(Subscription(subscriber_id=bob_id, topic_id=topic_id, status=status))
        session.commit()


def _assert_gone(client: TestClient, links: dict[str, str], mailbox: list) -> None:
    """Every route of every link: the gone page or a refusal, no data, nothing changed."""
    before = snapshot()
    sent = len(mailbox)
    calls = [
        ("GET", links["unsubscribe"], None),
        ("HEAD", links["unsubscribe"], None),
        ("POST", links["unsubscribe"], ONE_CLICK),
        ("POST", links["unsubscribe"], {**ONE_CLICK, "page": "1"}),
        ("POST", links["unsubscribe"] + "/all", {}),
        ("POST", links["unsubscribe"] + "/undo", {"all": "1", "topics": "1"}),
        ("GET", links["preferences"], None),
        ("POST", links["preferences"], {"topics_shown": "1", "name": "Mallory"}),
        ("POST", links["preferences"] + "/unsubscribe", {}),
        ("POST", links["preferences"] + "/export", {}),
        ("POST", links["preferences"] + "/export-email", {}),
        ("GET", links["preferences"] + "/erase", None),
        ("POST", links["preferences"] + "/erase", {"confirm": "yes"}),
        ("GET", links["confirm"], None),
        ("POST", links["confirm"], {}),
        ("GET", links["email-optout"], None),
        ("POST", links["email-optout"], {}),
    ]
    for method, path, data in calls:
        response = client.request(method, path, data=data)
        assert response.status_code == 410, (method, path, response.status_code)
        assert "c***@" not in response.text
        assert "carol" not in response.text.lower()
        if method != "HEAD":
            assert "No data held" in response.text or "Nothing to unsubscribe" in response.text, (
                method,
                path,
            )
    assert snapshot() == before
    assert len(mailbox) == sent  # no data link, no confirmation mailed to anyone


def _mailto_request(token_url: str, sender: str) -> None:
    """Bob's mail client answering the List-Unsubscribe mailto, into the info mailbox."""
    subject = token_url.split("subject=", 1)[1].replace("%20", " ")
    raw = (
        f"From: {sender}\r\nTo: info@example.org\r\nSubject: {subject}\r\n"
        "Message-ID: <mailto-1@example.net>\r\n\r\nunsubscribe\r\n"
    ).encode()
    inbox = Path(get_settings().var_dir) / "mail" / "inbox"
    for sub in ("tmp", "new", "cur"):
        (inbox / sub).mkdir(parents=True, exist_ok=True)
    (inbox / "new" / "1.mailto.testhost").write_bytes(raw)


@pytest.mark.parametrize("same_id", [False, True], ids=["new-id", "bobs-id-reused"])
def test_bobs_old_links_never_reach_carol(
    client: TestClient, mailbox: list, news: int, same_id: bool
) -> None:
    confirm = _sign_up(client, mailbox, "bob@example.com")
    assert client.post(confirm).status_code == 200
    bob = _person("bob@example.com")
    mailto = mailto_unsubscribe(bob.id or 0, 0, secret=bob.link_secret)
    assert mailto is not None
    with Session(get_engine()) as session:  # someone asked us by mail to remove Bob's address
        row = InboundMessage(
            source="test",
            uidvalidity=1,
            uid="1",
            status="processed",
            folder="Processed",
            reason="test",
            action="test",
            evidence={"pending": ["bob@example.com"]},
        )
        session.add(row)
        session.commit()
        inbound_id = row.id or 0
    links = _bobs_links(bob, confirm, inbound_id)
    erased = client.post(links["preferences"] + "/erase", data={"confirm": "yes"})
    assert erased.status_code == 200
    assert "erased" in erased.text

    carol_confirm = _sign_up(client, mailbox, "carol@example.com")
    assert client.post(carol_confirm).status_code == 200
    carol = _person("carol@example.com")
    assert carol.id != bob.id  # never handed out again, on either database
    if same_id:
        _carol_takes_bobs_id(bob.id or 0, "carol@example.com")
    assert _active_and_subscribed("carol@example.com")

    _assert_gone(client, links, mailbox)
    assert _active_and_subscribed("carol@example.com")

    # The mailto token in the List-Unsubscribe subject, sent from Bob's old client.
    _mailto_request(mailto, "bob@example.com")
    summary = poll_once(get_settings())
    assert summary["seen"] == 1, summary
    assert _active_and_subscribed("carol@example.com")
    with Session(get_engine()) as session:
        row = session.exec(select(InboundMessage).where(InboundMessage.uid != "1")).one()
        # The token names nobody now: at most the sender's own address is opted out.
        assert row.action.startswith(("none: subscriber no longer exists", "suppressed sender")), (
            row.action
        )


def test_a_returning_address_is_a_new_person_for_old_links(
    client: TestClient, mailbox: list, news: int
) -> None:
    """Bob erases himself; later his address signs up again (a new owner, or Bob anew). The
    links and the email-optout confirmation Bob had act on nobody."""
    confirm = _sign_up(client, mailbox, "bob@example.com")
    client.post(confirm)
    bob = _person("bob@example.com")
    with Session(get_engine()) as session:
        row = InboundMessage(
            source="test",
            uidvalidity=1,
            uid="1",
            status="processed",
            folder="Processed",
            reason="test",
            action="test",
            evidence={"pending": ["bob@example.com"]},
        )
        session.add(row)
        session.commit()
        inbound_id = row.id or 0
    links = _bobs_links(bob, confirm, inbound_id)
    client.post(links["preferences"] + "/erase", data={"confirm": "yes"})

    _two_hours_pass()
    again = _sign_up(client, mailbox, "bob@example.com")
    assert client.post(again).status_code == 200
    assert _active_and_subscribed("bob@example.com")
    _assert_gone(client, links, mailbox)
    assert _active_and_subscribed("bob@example.com")


def test_links_of_a_living_person_still_work(client: TestClient, mailbox: list, news: int) -> None:
    """The check costs nothing to the rightful owner: the same links act for Bob."""
    client.post(_sign_up(client, mailbox, "bob@example.com"))
    bob = _person("bob@example.com")
    links = _bobs_links(bob, "/confirm/x", 0)
    assert client.get(links["preferences"]).status_code == 200
    page = client.get(links["unsubscribe"])
    assert page.status_code == 200
    assert "b***@example.com" in page.text
    assert client.post(links["unsubscribe"], data=ONE_CLICK).status_code == 200
    assert not _active_and_subscribed("bob@example.com")


def test_ids_are_never_handed_out_twice(client: TestClient, mailbox: list, news: int) -> None:
    """The highest id erased, the next sign-up and the next campaign get new ids."""
    from app.models import Campaign

    client.post(_sign_up(client, mailbox, "ann@example.com"))
    client.post(_sign_up(client, mailbox, "bob@example.com"))
    bob = _person("bob@example.com")
    client.post(
        preferences_url(bob.id or 0, secret=bob.link_secret)[len(BASE) :] + "/erase",
        data={"confirm": "yes"},
    )
    client.post(_sign_up(client, mailbox, "carol@example.com"))
    assert (_person("carol@example.com").id or 0) > (bob.id or 0)

    with Session(get_engine()) as session:
        first = Campaign(name="a", subject="a")
        session.add(first)
        session.commit()
        old_id = first.id
        session.delete(first)
        session.commit()
        second = Campaign(name="b", subject="b")
        session.add(second)
        session.commit()
        assert (second.id or 0) > (old_id or 0)


def test_campaign_message_id_dies_with_the_person(settings_env: dict[str, str]) -> None:
    """verify_campaign_message_id: ours and its person alive -> (campaign, subscriber)."""
    settings = get_settings()
    with Session(get_engine(), expire_on_commit=False) as session:
        bob = Subscriber(email="bob@example.com")
        session.add(bob)
        session.commit()
        msgid = campaign_message_id(settings, 7, bob.id or 0, bob.link_secret)
        assert verify_campaign_message_id(session, settings, msgid) == (7, bob.id)
        # Someone else's secret under Bob's id (id reuse): not his mail.
        assert (
            verify_campaign_message_id(
                session, settings, campaign_message_id(settings, 7, bob.id or 0, "f" * 32)
            )
            is None
        )
        assert verify_campaign_message_id(session, settings, "<c7.s1.abc@example.org>") is None
        from app.models import Channel
        from app.subscribers.rights import erase

        erase(session, bob, channel=Channel.ADMIN)
        session.commit()
        assert verify_campaign_message_id(session, settings, msgid) is None


def test_links_signed_before_tags_work_only_for_people_who_existed_then(
    client: TestClient, news: int
) -> None:
    """Mail sent before migration 0004 carries links without a tag: they keep working for
    the people who had them (legacy_links), and never for anyone created since."""
    from app.tokens import Purpose, mint

    with Session(get_engine(), expire_on_commit=False) as session:
        old = Subscriber(email="old@example.com", legacy_links=True)
        new = Subscriber(email="new@example.com")
        session.add_all([old, new])
        session.flush()
        for person in (old, new):
            session.add(
                Subscription(
                    subscriber_id=person.id, topic_id=news, status=SubscriptionStatus.SUBSCRIBED
                )
            )
        session.commit()
    for person, status in ((old, 200), (new, 410)):
        prefs = "/preferences/" + mint(Purpose.PREFS, [person.id])
        assert client.get(prefs).status_code == status
        one_click = "/u/" + mint(Purpose.UNSUBSCRIBE, [person.id, 0])
        assert client.post(one_click, data=ONE_CLICK).status_code == status
    assert not _active_and_subscribed("old@example.com")
    assert _active_and_subscribed("new@example.com")


def test_a_stale_one_click_in_a_burst_changes_nobody(
    settings_env: dict[str, str], news: int
) -> None:
    """The one-click batch checks each link's secret in its own locked read: in one group
    commit, the rightful holder's click counts and a stale link for the same id does not."""
    import asyncio

    import httpx

    from app.main import create_app

    with Session(get_engine(), expire_on_commit=False) as session:
        people = [Subscriber(email=f"p{i}@example.com") for i in range(4)]
        session.add_all(people)
        session.flush()
        for person in people:
            session.add(
                Subscription(
                    subscriber_id=person.id, topic_id=news, status=SubscriptionStatus.SUBSCRIBED
                )
            )
        session.commit()
    valid = [unsubscribe_url(p.id or 0, 0, secret=p.link_secret)[len(BASE) :] for p in people[:2]]
    stale = [unsubscribe_url(p.id or 0, 0, secret="0" * 32)[len(BASE) :] for p in people[2:]]

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app())
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            return await asyncio.gather(*[client.post(p, data=ONE_CLICK) for p in valid + stale])

    before = snapshot()
    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200, 200, 410, 410]
    assert [_active_and_subscribed(p.email) for p in people] == [False, False, True, True]
    after = snapshot()
    assert after["subscriptions"] != before["subscriptions"]
    assert len(after["consent"]) == len(before["consent"]) + 2  # the two real opt-outs only
