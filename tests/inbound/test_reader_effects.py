"""What the free-text reader's verdicts do, through the real poller (Dovecot IMAP and the
Maildir) with acknowledgements caught by a real SMTP server (aiosmtpd): authentication
evidence on every email opt-out, acknowledgements only to a From we can trust, a mail
client's automatic List-Unsubscribe mailto honoured without reply, out-of-office mail still
ignored, and requests that must not touch the sender."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from sqlmodel import Session, select

from app.db import get_engine
from app.inbound.identity import campaign_message_id
from app.inbound.poller import poll_once
from app.mail.addresses import email_hmac
from app.models import (
    Campaign,
    ConsentEvent,
    InboundMessage,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Topic,
)
from app.settings import get_settings
from app.subscribers.consent import is_suppressed
from tests.support.inbound import Catcher, Mailbox, load_fixture

OURS = "mx.example.org"  # OCTOMAIL_INBOUND_AUTHSERV_ID in tests/conftest.py


def _people(*addresses: str) -> tuple[dict[str, int], int]:
    """Subscribers on one topic, and a campaign: (ids by address, campaign id)."""
    with Session(get_engine()) as session:
        topic = Topic(slug="news", name="News")
        campaign = Campaign(name="News", subject="News")
        session.add_all([topic, campaign])
        session.flush()
        ids = {}
        for address in addresses:
            sub = Subscriber(email=address, name=address.split("@")[0].title())
            session.add(sub)
            session.flush()
            session.add(
                Subscription(
                    subscriber_id=sub.id, topic_id=topic.id, status=SubscriptionStatus.SUBSCRIBED
                )
            )
            ids[address] = sub.id
        session.commit()
        return ids, campaign.id


def _secret(subscriber_id: int) -> str:
    """The link secret our campaign Message-IDs for this subscriber are made with."""
    with Session(get_engine()) as session:
        return session.get(Subscriber, subscriber_id).link_secret  # type: ignore[union-attr]


def _mail(
    sender: str,
    body: str,
    *,
    subject: str = "Newsletter",
    to: str = "info@example.org",
    headers: str = "",
    msgid: str = "",
) -> bytes:
    msgid = msgid or f"<{abs(hash((sender, body, subject, headers)))}@mail.example.net>"
    return (
        f"Return-Path: <{sender}>\r\nDelivered-To: {to}\r\n{headers}"
        f"Received: from mail.example.net by {OURS} (Postfix) with ESMTPS id 4F2A8\r\n"
        f"\tfor <{to}>; Tue,  3 Nov 2026 09:14:02 +0100 (CET)\r\n"
        f"From: <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Date: Tue, 3 Nov 2026 09:13:58 +0100\r\nMessage-ID: {msgid}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n"
    ).encode()


def _state(address: str) -> tuple[str | None, list[ConsentEvent], bool]:
    with Session(get_engine()) as session:
        sub = session.exec(select(Subscriber).where(Subscriber.email == address)).first()
        events = session.exec(
            select(ConsentEvent).where(ConsentEvent.email_hmac == email_hmac(address))
        ).all()
        return (sub.status if sub else None), list(events), is_suppressed(session, address)


def _rows() -> dict[str, InboundMessage]:
    with Session(get_engine()) as session:
        return {row.from_addr: row for row in session.exec(select(InboundMessage)).all()}


def test_auth_evidence_is_recorded_with_every_email_optout(mailbox: Mailbox, smtp: Catcher) -> None:
    _people("carol@example.com", "dan@example.net")
    mailbox.deliver(
        [load_fixture("plain_request_en"), _mail("dan@example.net", "Please unsubscribe me.")]
    )
    poll_once(get_settings())

    status, [event], _ = _state("carol@example.com")
    assert status == "unsubscribed"
    auth = event.evidence["auth"]
    assert auth["authserv_id"] == OURS
    assert auth["authenticated"] is True
    assert auth["dmarc"] == {"result": "pass", "from": "example.com"}
    assert auth["dmarc_pass"]
    assert auth["spf"]["result"] == "pass"
    assert auth["spf"]["mailfrom"] == "carol@example.com"
    assert auth["dkim"] == [{"result": "pass", "domain": "example.com", "aligned": True}]
    # No header from our MTA: honoured at once all the same, and the record says so.
    status, [event], _ = _state("dan@example.net")
    assert status == "unsubscribed"
    assert event.evidence["auth"]["authenticated"] is False
    assert "no Authentication-Results" in event.evidence["auth"]["reason"]


def test_ack_only_to_an_authenticated_sender_or_a_reply_to_our_message_id(
    mailbox: Mailbox, smtp: Catcher
) -> None:
    people = [
        "ann@example.com",
        "ben@example.net",
        "cleo@bank.example",
        "dora@example.org",
        "eve@example.net",
        "fay@example.net",
    ]
    ids, campaign = _people(*people)
    settings = get_settings()
    ben_msgid = campaign_message_id(
        settings, campaign, ids["ben@example.net"], _secret(ids["ben@example.net"])
    )
    fay_msgid = campaign_message_id(
        settings, campaign, ids["fay@example.net"], _secret(ids["fay@example.net"])
    )
    mailbox.deliver(
        [
            # DMARC pass for the From domain, written by our MTA
            _mail(
                "ann@example.com",
                "Please remove me from your list.",
                headers=(
                    f"Authentication-Results: {OURS}; spf=pass smtp.mailfrom=ann@example.com;\r\n"
                    "\tdkim=pass header.d=example.com; dmarc=pass (p=reject) header.from=example.com\r\n"
                ),
            ),
            # no authentication at all, but a reply to the newsletter we sent Ben
            _mail(
                "ben@example.net",
                "unsubscribe",
                subject="Re: News",
                headers=f"In-Reply-To: {ben_msgid}\r\nReferences: {ben_msgid}\r\n",
            ),
            # forged From: our MTA says DMARC fail; a 'pass' from another authserv-id and a
            # forged header of our own id below ours are both ignored
            _mail(
                "cleo@bank.example",
                "Unsubscribe me please.",
                headers=(
                    f"Authentication-Results: {OURS}; spf=fail smtp.mailfrom=x@attacker.example;\r\n"
                    "\tdkim=none; dmarc=fail (p=none) header.from=bank.example\r\n"
                    "Authentication-Results: relay.attacker.example; dmarc=pass header.from=bank.example\r\n"
                    f"Authentication-Results: {OURS}; dkim=pass header.d=bank.example;\r\n"
                    "\tdmarc=pass header.from=bank.example\r\n"
                ),
            ),
            # a DKIM pass by an unrelated domain is not aligned with the From
            _mail(
                "dora@example.org",
                "Please take me off this list.",
                headers=(f"Authentication-Results: {OURS}; dkim=pass header.d=mailer.example\r\n"),
            ),
            # replying with the Message-ID of somebody else's newsletter (a forwarded copy)
            _mail(
                "eve@example.net",
                "unsubscribe",
                subject="Re: News",
                headers=f"In-Reply-To: {fay_msgid}\r\n",
            ),
        ]
    )
    poll_once(settings)

    acked = sorted({str(m["To"]).strip("<>") for m in smtp.messages})
    assert acked == ["ann@example.com", "ben@example.net"]
    for address in people[:5]:  # every opt-out honoured at once, acknowledged or not
        assert _state(address)[0] == "unsubscribed", address
    assert _state("fay@example.net")[0] == "active"
    rows = _rows()
    assert rows["ann@example.com"].evidence["ack"] == "DMARC pass"
    assert rows["ben@example.net"].evidence["ack"] == "reply to our Message-ID"
    for address in ("cleo@bank.example", "dora@example.org", "eve@example.net"):
        assert rows[address].evidence["ack"].startswith("withheld"), address
    assert rows["cleo@bank.example"].evidence["auth"]["ignored"] == {
        "other_authserv_ids": 1,
        "lower_trusted_headers": 1,
    }


def test_aligned_dkim_pass_is_enough(mailbox: Mailbox, smtp: Catcher) -> None:
    _people("gus@news.example.com")
    mailbox.deliver(
        [
            _mail(
                "gus@news.example.com",
                "Please unsubscribe me.",
                headers=(
                    f"Authentication-Results: {OURS}; dkim=pass header.d=example.com; dmarc=none\r\n"
                ),
            )
        ]
    )
    poll_once(get_settings())
    assert [str(m["To"]) for m in smtp.messages] == ["gus@news.example.com"]


AUTO_GMAIL = "This message was automatically generated by Gmail."


def test_mail_clients_list_unsubscribe_mailto_is_honoured_without_ack(
    mailbox: Mailbox, smtp: Catcher
) -> None:
    _people("hal@example.com", "ida@example.com", "jon@example.com")
    authenticated = (
        f"Authentication-Results: {OURS}; dkim=pass header.d=example.com;\r\n"
        "\tdmarc=pass header.from=example.com\r\n"
    )
    mailbox.deliver(
        [
            # a stale token (its person's links changed): the From address is what counts
            _mail(
                "hal@example.com",
                AUTO_GMAIL,
                subject="unsubscribe WzEsMl0.stale-signature",
                headers="Auto-Submitted: auto-generated\r\n" + authenticated,
            ),
            # no token at all, an empty envelope sender, sent to a +tag of the address
            _mail(
                "ida@example.com",
                "",
                subject="Unsubscribe",
                to="info+list@example.org",
                headers="Auto-Submitted: auto-generated\r\n",
            ).replace(b"Return-Path: <ida@example.com>", b"Return-Path: <>"),
            # "auto-replied", as some clients label it
            _mail(
                "jon@example.com",
                "",
                subject="unsubscribe",
                headers="Auto-Submitted: auto-replied\r\n",
            ),
        ]
    )
    poll_once(get_settings())

    for address in ("hal@example.com", "ida@example.com", "jon@example.com"):
        status, events, suppressed = _state(address)
        assert status == "unsubscribed", address
        assert suppressed, address
        assert len(events) == 1, address
        assert events[0].channel == "email"
        assert events[0].evidence["rule"] == "list_unsubscribe_mailto"
    assert smtp.messages == []  # never answered, even when authenticated: no loop possible
    assert mailbox.folder_ids("Review") == []


def test_mail_clients_mailto_with_our_token_is_never_answered(
    mailbox: Mailbox, smtp: Catcher
) -> None:
    """Gmail's mailto message carries no Auto-Submitted, only our subject with its token:
    that token (valid: its subscriber; stale: the From) is the request, and no reply goes
    back even to an authenticated sender."""
    from app.links import unsubscribe_token

    ids, campaign = _people("nia@example.com", "oto@example.com")
    authenticated = (
        f"Authentication-Results: {OURS}; dkim=pass header.d=example.com;\r\n"
        "\tdmarc=pass header.from=example.com\r\n"
    )
    valid = unsubscribe_token(
        ids["nia@example.com"], campaign, secret=_secret(ids["nia@example.com"])
    )
    mailbox.deliver(
        [
            _mail(
                "nia@example.com", AUTO_GMAIL, subject=f"unsubscribe {valid}", headers=authenticated
            ),
            _mail(
                "oto@example.com",
                AUTO_GMAIL,
                subject="unsubscribe WzksOV0.c3RhbGUtc2lnbmF0dXJl",
                headers=authenticated,
            ),
        ]
    )
    poll_once(get_settings())

    assert _state("nia@example.com")[1][0].evidence["rule"] == "token"
    assert _state("oto@example.com")[0] == "unsubscribed"
    assert smtp.messages == []


def test_mail_clients_mailto_whose_token_names_nobody_opts_out_its_sender(
    mailbox: Mailbox, smtp: Catcher
) -> None:
    """The token is ours but its person is gone (erased): the click still came from the
    From address's mail app, and that person wants out."""
    from app.links import unsubscribe_token

    ids, campaign = _people("pia@example.com")
    gone = unsubscribe_token(ids["pia@example.com"] + 1000, campaign, secret="0" * 32)
    mailbox.deliver(
        [
            _mail(
                "pia@example.com",
                AUTO_GMAIL,
                subject=f"unsubscribe {gone}",
                headers="Auto-Submitted: auto-generated\r\n",
            )
        ]
    )
    poll_once(get_settings())

    status, [event], suppressed = _state("pia@example.com")
    assert status == "unsubscribed"
    assert suppressed
    assert event.evidence["token_names_nobody"] is True
    assert _rows()["pia@example.com"].action == "unsubscribed sender"
    assert smtp.messages == []


def test_out_of_office_is_still_ignored(mailbox: Mailbox, smtp: Catcher) -> None:
    _people("kim@example.com", "lea@example.com", "max@example.com")
    ack_id = "<octomail-ack.0123456789abcdef0123@example.org>"
    mailbox.deliver(
        [
            # an Exchange out-of-office answering our acknowledgement of "unsubscribe"
            _mail(
                "kim@example.com",
                "I am out of the office until Monday.",
                subject="Automatic reply: Re: unsubscribe",
                headers=f"Auto-Submitted: auto-replied\r\nX-Auto-Response-Suppress: All\r\n"
                f"In-Reply-To: {ack_id}\r\n",
            ),
            # a vacation responder that keeps the subject as it was
            _mail(
                "lea@example.com",
                "On leave. To unsubscribe from our list, reply STOP.",
                subject="unsubscribe",
                headers=f"Auto-Submitted: auto-replied (vacation)\r\nIn-Reply-To: {ack_id}\r\n",
            ),
            # sent to the unsubscribe address with the subject, but an auto-reply all the same
            _mail(
                "max@example.com",
                "Thank you for your mail.",
                subject="unsubscribe",
                headers="Auto-Submitted: auto-replied\r\nX-Autoreply: yes\r\n",
            ),
        ]
    )
    poll_once(get_settings())

    for address in ("kim@example.com", "lea@example.com", "max@example.com"):
        status, events, _ = _state(address)
        assert status == "active", address
        assert events == [], address
        assert _rows()[address].verdict == "automated"
    assert smtp.messages == []


def test_request_about_another_address_confirms_it_and_leaves_the_sender(
    client, mailbox: Mailbox, smtp: Catcher
) -> None:
    _people("carol@example.com", "jack.old@work.example")
    mailbox.deliver(
        [
            _mail(
                "carol@example.com",
                "Hello,\n\nplease unsubscribe my old work address "
                "jack.old@work.example, I left that company.\n\nCarol",
                headers=(f"Authentication-Results: {OURS}; dmarc=pass header.from=example.com\r\n"),
            )
        ]
    )
    poll_once(get_settings())

    status, events, suppressed = _state("carol@example.com")
    assert (status, events, suppressed) == ("active", [], False)
    assert _state("jack.old@work.example")[0] == "active"  # until the link is clicked
    assert smtp.to("carol@example.com") == []  # nothing to acknowledge: nothing done to her
    [confirm] = smtp.to("jack.old@work.example")
    assert "/email-optout/" in confirm.get_content()
    assert mailbox.folder_ids("Processed")
    assert not mailbox.folder_ids("Review")

    # The owner clicks: now the address is out, and the record keeps the request's evidence.
    path = urlsplit(re.search(r"http\S+/email-optout/\S+", confirm.get_content()).group(0)).path
    assert client.post(path).status_code == 200
    status, [event], _ = _state("jack.old@work.example")
    assert status == "unsubscribed"
    assert event.evidence["confirmed_by_link"] is True
    assert event.evidence["request_auth"]["dmarc_pass"] is True
    assert _state("carol@example.com")[:2] == ("active", [])


def test_negated_request_reaches_a_person_and_changes_nothing(
    mailbox: Mailbox, smtp: Catcher
) -> None:
    _people("carol@example.com")
    raw = _mail(
        "carol@example.com",
        "Please do NOT unsubscribe me, just change my name to Carol Smith-Jones.",
        headers=(f"Authentication-Results: {OURS}; dmarc=pass header.from=example.com\r\n"),
    )
    mailbox.deliver([raw])
    poll_once(get_settings())

    assert _state("carol@example.com") == ("active", [], False)
    assert len(mailbox.folder_ids("Review")) == 1
    assert smtp.messages == []
