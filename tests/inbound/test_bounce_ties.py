"""Reports from outside act only on mail we sent: a bounce or complaint changes a subscriber
only when it carries our signed Message-ID for them, arrives at the signed VERP address of a
send to them, or names an address we mailed in the last 30 days. Anything else (a forged DSN
or ARF report naming any subscriber) goes to Review and changes nobody. Real poller, Dovecot
IMAP and Maildir, SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from app.db import get_engine
from app.inbound.identity import campaign_message_id
from app.inbound.poller import poll_once
from app.mail.addresses import email_hmac
from app.models import ConsentEvent, InboundMessage, Send, Subscriber, SubscriberStatus, utcnow
from app.settings import get_settings
from app.subscribers.consent import is_suppressed
from app.verp import verp_address
from tests.support.inbound import Mailbox, record_campaign_sent


def dsn(
    recipient: str,
    n: int,
    *,
    returned_id: str = "<orig-1@elsewhere.example>",
    to: str = "info@example.org",
    in_reply_to: str = "",
    action: str = "failed",
    status: str = "5.1.1",
) -> bytes:
    """A Postfix-style DSN. Real DSNs are addressed To the envelope sender, and the
    delivering MTA adds Delivered-To with the same address."""
    b = f"dsn-boundary-{n}"
    reply = f"In-Reply-To: {in_reply_to}\r\n" if in_reply_to else ""
    returned = f"Message-ID: {returned_id}\r\n" if returned_id else ""
    return (
        f"Return-Path: <>\r\nDelivered-To: {to}\r\n"
        f"From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\nTo: {to}\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\n{reply}"
        f"Message-ID: <dsn{n}@mx.example.net>\r\nDate: Tue, 3 Nov 2026 10:00:00 +0000\r\n"
        "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report;"
        f' report-type=delivery-status; boundary="{b}"\r\n\r\n'
        f"--{b}\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        f"--{b}\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} no such user\r\n\r\n"
        f"--{b}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: Octomail <news@example.org>\r\nTo: {recipient}\r\n{returned}"
        f"Subject: November news\r\n\r\n--{b}--\r\n"
    ).encode()


def arf(
    recipient: str,
    n: int,
    *,
    returned_id: str = "<orig-2@elsewhere.example>",
    return_path: str = "",
) -> bytes:
    """An RFC 5965 abuse report from a feedback loop, with the original message."""
    b = f"arf-boundary-{n}"
    original_rp = f"Return-Path: <{return_path}>\r\n" if return_path else ""
    return (
        f"From: Complaints <fbl@isp.example>\r\nTo: info@example.org\r\n"
        f"Subject: Abuse report\r\nMessage-ID: <arf{n}@isp.example>\r\n"
        "Date: Tue, 3 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="{b}"\r\n\r\n'
        f"--{b}\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n"
        f"--{b}\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: abuse\r\nUser-Agent: ExampleFBL/1.0\r\nVersion: 1\r\n"
        f"Original-Rcpt-To: <{recipient}>\r\n\r\n"
        f"--{b}\r\nContent-Type: message/rfc822\r\n\r\n{original_rp}"
        f"From: Octomail <news@example.org>\r\nTo: {recipient}\r\n"
        f"Message-ID: {returned_id}\r\nSubject: November news\r\n\r\nNews.\r\n"
        f"--{b}--\r\n"
    ).encode()


def people(*addresses: str) -> dict[str, Subscriber]:
    with Session(get_engine(), expire_on_commit=False) as session:
        subs = [Subscriber(email=a) for a in addresses]
        session.add_all(subs)
        session.commit()
    return {s.email: s for s in subs}


def mailed(subs: list[Subscriber], days_ago: float) -> int:
    with Session(get_engine(), expire_on_commit=False) as session:
        return record_campaign_sent(session, subs, days_ago=days_ago)


def outcome(mailbox: Mailbox) -> dict[str, tuple[str, str, str]]:
    """Per report Message-ID: (row folder, action, folder the message was filed in)."""
    assert poll_once(get_settings())["seen"] >= 1
    review = set(mailbox.folder_ids("Review"))
    with Session(get_engine()) as session:
        rows = session.exec(select(InboundMessage)).all()
    return {
        row.message_id or "": (
            row.folder,
            row.action,
            "Review" if row.message_id in review else "Processed",
        )
        for row in rows
    }


def state(address: str) -> tuple[str, int, bool]:
    """(status, consent events, on the suppression list): what a person would notice."""
    with Session(get_engine()) as session:
        sub = session.exec(select(Subscriber).where(Subscriber.email == address)).one()
        events = session.exec(
            select(ConsentEvent).where(ConsentEvent.email_hmac == email_hmac(address))
        ).all()
        return str(sub.status), len(events), is_suppressed(session, address)


UNTOUCHED = ("active", 0, False)


def test_forged_reports_naming_subscribers_go_to_review(mailbox: Mailbox) -> None:
    subs = people("ann@example.com", "bob@example.com", "cy@example.com", "eve@example.com")
    campaign = mailed([subs["eve@example.com"]], days_ago=90)
    settings = get_settings()
    eve, cy = subs["eve@example.com"], subs["cy@example.com"]
    eve_id = campaign_message_id(settings, campaign, eve.id, eve.link_secret)
    real = campaign_message_id(settings, campaign, cy.id, cy.link_secret)
    forged_id = re.sub(r"\.[0-9a-f]{12}@", ".0123456789ab@", real)
    assert forged_id != real
    mailbox.deliver(
        [
            dsn("ann@example.com", 1),  # no tie at all
            arf("bob@example.com", 2),  # no tie at all
            dsn("cy@example.com", 3, returned_id=forged_id),  # our format, wrong signature
            # Eve holds a real Message-ID of ours (her own): it ties the report to Eve only.
            arf("cy@example.com", 4, returned_id=eve_id),
        ]
    )
    result = outcome(mailbox)

    for msgid in ("<dsn1@mx.example.net>", "<arf2@isp.example>", "<dsn3@mx.example.net>"):
        assert result[msgid] == ("Review", "none: not tied to our mail", "Review"), msgid
    for address in ("ann@example.com", "bob@example.com", "cy@example.com"):
        assert state(address) == UNTOUCHED, address
    assert result["<arf4@isp.example>"][1] == "complaint: unsubscribed"
    assert state("eve@example.com") == ("complained", 1, True)
    with Session(get_engine()) as session:
        row = session.exec(
            select(InboundMessage).where(InboundMessage.message_id == "<dsn1@mx.example.net>")
        ).one()
    assert "not tied to our mail" in row.reason
    assert row.status == "review"


def test_our_signed_message_id_in_the_report_ties_it(mailbox: Mailbox) -> None:
    subs = people("ann@example.com", "bob@example.com", "cy@example.com")
    campaign = mailed(list(subs.values()), days_ago=90)  # too old for the recent-send rule
    settings = get_settings()
    own = {a: campaign_message_id(settings, campaign, s.id, s.link_secret) for a, s in subs.items()}
    mailbox.deliver(
        [
            dsn("ann@example.com", 1, returned_id=own["ann@example.com"]),
            arf("bob@example.com", 2, returned_id=own["bob@example.com"]),
            # the returned headers are gone, the report answers our message (In-Reply-To)
            dsn("cy@example.com", 3, returned_id="", in_reply_to=own["cy@example.com"]),
        ]
    )
    result = outcome(mailbox)

    assert result["<dsn1@mx.example.net>"] == ("Processed", "bounced", "Processed")
    assert result["<arf2@isp.example>"] == ("Processed", "complaint: unsubscribed", "Processed")
    assert result["<dsn3@mx.example.net>"] == ("Processed", "bounced", "Processed")
    assert state("ann@example.com") == ("bounced", 1, True)
    assert state("bob@example.com") == ("complained", 1, True)
    assert state("cy@example.com") == ("bounced", 1, True)
    with Session(get_engine()) as session:
        event = session.exec(
            select(ConsentEvent).where(ConsentEvent.email_hmac == email_hmac("ann@example.com"))
        ).one()
    assert event.evidence["tie"] == f"message-id of campaign {campaign}"


def test_bounce_to_our_verp_address_acts_a_tampered_one_does_not(mailbox: Mailbox) -> None:
    subs = people("ann@example.com", "bob@example.com", "cy@example.com", "dan@example.com")
    campaign = mailed(list(subs.values()), days_ago=90)
    settings = get_settings()
    verp = {a: verp_address(settings, campaign, s.id) for a, s in subs.items()}
    tag = verp["bob@example.com"].split("@")[0].rsplit("-", 1)[1]
    tampered = verp["bob@example.com"].replace(tag, tag[::-1])
    # A real signature, but for a campaign that never went to Cy.
    unsent = verp_address(settings, campaign + 1000, subs["cy@example.com"].id)
    # A VERP address of someone else does not tie a report naming Dan to Dan.
    mailbox.deliver(
        [
            dsn("ann@example.com", 1, to=verp["ann@example.com"]),
            dsn("bob@example.com", 2, to=tampered),
            dsn("cy@example.com", 3, to=unsent),
            dsn("dan@example.com", 4, to=verp["ann@example.com"]),
            # a complaint whose returned original carries the Return-Path we sent it from
            arf("dan@example.com", 5, return_path=verp["dan@example.com"]),
        ]
    )
    result = outcome(mailbox)

    assert result["<dsn1@mx.example.net>"] == ("Processed", "bounced", "Processed")
    for msgid in ("<dsn2@mx.example.net>", "<dsn3@mx.example.net>"):
        assert result[msgid] == ("Review", "none: not tied to our mail", "Review"), msgid
    assert state("ann@example.com") == ("bounced", 1, True)
    assert state("bob@example.com") == UNTOUCHED
    assert state("cy@example.com") == UNTOUCHED
    # dsn4 acts on Ann (already bounced), never on Dan; arf5 is tied to Dan by his VERP.
    assert result["<arf5@isp.example>"][1] == "complaint: unsubscribed"
    assert state("dan@example.com") == ("complained", 1, True)


def test_a_recent_send_ties_an_unsigned_report_for_30_days(mailbox: Mailbox) -> None:
    subs = people("ann@example.com", "bob@example.com", "cy@example.com")
    mailed([subs["ann@example.com"], subs["cy@example.com"]], days_ago=29)
    mailed([subs["bob@example.com"]], days_ago=31)
    mailbox.deliver(
        [dsn("ann@example.com", 1), dsn("bob@example.com", 2), arf("cy@example.com", 3)]
    )
    result = outcome(mailbox)

    assert result["<dsn1@mx.example.net>"] == ("Processed", "bounced", "Processed")
    assert result["<dsn2@mx.example.net>"] == ("Review", "none: not tied to our mail", "Review")
    assert result["<arf3@isp.example>"] == ("Processed", "complaint: unsubscribed", "Processed")
    assert state("ann@example.com") == ("bounced", 1, True)
    assert state("bob@example.com") == UNTOUCHED
    assert state("cy@example.com") == ("complained", 1, True)


def test_campaign_mail_is_sent_from_its_verp_address_and_its_bounce_acts(
    mailbox: Mailbox, monkeypatch
) -> None:
    """End to end: the envelope sender the SMTP server sees is the signed VERP address of
    that send, and a bounce delivered to it (no Message-ID left, the send long past) acts."""
    from app.campaigns import service
    from app.db import session_scope
    from app.models import Subscription, SubscriptionStatus, Topic
    from app.verp import parse_verp
    from tests.support.campaigns import BackgroundWorker, campaign_status, configure_sending
    from tests.support.smtp_sink import SmtpSink
    from tests.support.wait import wait_until

    sink = SmtpSink().start()
    try:
        settings = configure_sending(monkeypatch, sink.url)
        with session_scope() as session:
            topic = Topic(slug="news", name="News")
            reader = Subscriber(email="reader@example.com", name="Reader")
            session.add_all([topic, reader])
            session.flush()
            session.add(
                Subscription(
                    subscriber_id=reader.id, topic_id=topic.id, status=SubscriptionStatus.SUBSCRIBED
                )
            )
            session.flush()
            campaign = service.create_campaign(
                session, name="News", subject="News", body="Hello {{ name }}", topics=["news"]
            )
            campaign_id, reader_id = int(campaign.id), int(reader.id)
            session.commit()
            service.send_now(session, campaign_id, settings=settings)
        with BackgroundWorker(settings):
            wait_until(lambda: campaign_status(campaign_id) == "done", message="campaign done")
        [received] = sink.messages
    finally:
        sink.stop()
    assert received.rcpt == ["reader@example.com"]
    assert received.mail_from == verp_address(settings, campaign_id, reader_id)
    assert received.mail_from.startswith("info+b-")
    assert parse_verp(settings, received.mail_from) == (campaign_id, reader_id)

    with get_engine().begin() as conn:  # long ago: only the VERP address ties the bounce
        table = Send.__table__  # type: ignore[attr-defined]
        conn.execute(sa.update(table).values(sent_at=utcnow().replace(year=2000)))
    mailbox.deliver([dsn("reader@example.com", 1, returned_id="", to=received.mail_from)])
    result = outcome(mailbox)
    assert result["<dsn1@mx.example.net>"] == ("Processed", "bounced", "Processed")
    with Session(get_engine()) as session:
        assert session.get(Subscriber, reader_id).status == SubscriberStatus.BOUNCED


VERP_HEADERS = {
    "Delivered-To": "Delivered-To: {a}\r\n",  # Postfix local/virtual, Dovecot LDA, Gmail
    "X-Original-To": "X-Original-To: {a}\r\n",  # Postfix
    "Envelope-To": "Envelope-to: {a}\r\n",  # Exim
    "X-Envelope-To": "X-Envelope-To: <{a}>\r\n",
    "To": "To: {a}\r\n",  # a DSN is addressed to the envelope sender
    "Received": "Received: from mx.example.net by mail.example.org (Postfix)\r\n"
    " with ESMTP id 4F2; for <{a}>; Tue, 3 Nov 2026 10:00:01 +0000\r\n",
}


@pytest.mark.parametrize("where", list(VERP_HEADERS))
def test_verp_address_is_found_where_mtas_write_it(env: dict[str, str], where: str) -> None:
    from app.inbound.classify import Kind, classify
    from app.inbound.identity import build_context

    settings = get_settings()
    address = verp_address(settings, 12, 34)
    plain = (
        dsn("ann@example.com", 1, to="info@example.org")
        .replace(b"Delivered-To: info@example.org\r\n", b"")
        .replace(b"To: info@example.org\r\n", b"To: postmaster@example.org\r\n")
    )
    raw = (
        VERP_HEADERS[where].format(a=address.upper() if where == "To" else address).encode() + plain
    )
    verdict = classify(raw, build_context(settings))
    assert verdict.kind is Kind.HARD_BOUNCE
    assert [(t.how, t.campaign_id, t.subscriber_id) for t in verdict.ties] == [("verp", 12, 34)]
    assert classify(plain, build_context(settings)).ties == []


def test_verp_return_path_of_the_returned_original_ties_a_complaint(env: dict[str, str]) -> None:
    from app.inbound.classify import Kind, classify
    from app.inbound.identity import build_context

    settings = get_settings()
    raw = arf("ann@example.com", 1, return_path=verp_address(settings, 5, 6))
    verdict = classify(raw, build_context(settings))
    assert verdict.kind is Kind.COMPLAINT
    assert [(t.how, t.campaign_id, t.subscriber_id) for t in verdict.ties] == [("verp", 5, 6)]


def test_a_person_can_apply_an_untied_report_from_review(api, mailbox: Mailbox) -> None:
    """Review is where a person decides: "apply" gives the bounce its effect on the address
    it names (recorded as theirs); "unsubscribe" would only ever reach the MAILER-DAEMON."""
    people("ann@example.com", "bob@example.com")
    mailbox.deliver(
        [dsn("ann@example.com", 1), dsn("bob@example.com", 2, action="delayed", status="4.4.1")]
    )
    outcome(mailbox)
    items = api.get("/api/v1/inbound", params={"status": "review"}).json()["items"]
    by_id = {i["message_id"]: i for i in items}
    hard, soft = by_id["<dsn1@mx.example.net>"], by_id["<dsn2@mx.example.net>"]
    assert "not tied to our mail (ann@example.com)" in hard["reason"]

    assert (
        api.post(f"/api/v1/inbound/{soft['id']}/resolve", json={"action": "apply"}).status_code
        == 409
    )  # a delay proves nothing
    answer = api.post(f"/api/v1/inbound/{hard['id']}/resolve", json={"action": "apply"})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["action"]) == (
        "resolved",
        "bounced (by a person)",
    )
    assert state("ann@example.com") == ("bounced", 1, True)
    assert state("bob@example.com") == UNTOUCHED
    with Session(get_engine()) as session:
        event = session.exec(
            select(ConsentEvent).where(ConsentEvent.email_hmac == email_hmac("ann@example.com"))
        ).one()
    assert (event.channel, event.evidence["tie"], event.evidence["by"]) == (
        "bounce",
        "a person",
        "admin@example.org",
    )
    assert (
        api.post(f"/api/v1/inbound/{hard['id']}/resolve", json={"action": "apply"}).status_code
        == 409
    )


def _legacy_message_id(campaign_id: int, subscriber_id: int) -> str:
    """A Message-ID as sent before migration 0004 (no link tag)."""
    import hashlib
    import hmac

    key = hashlib.sha256(b"octomail-message-id\0" + get_settings().signing_keys[0].encode())
    local = f"c{campaign_id}.s{subscriber_id}"
    mac = hmac.new(key.digest(), local.encode(), hashlib.sha256).hexdigest()[:12]
    return f"<{local}.{mac}@example.org>"


def test_a_message_id_ties_only_the_person_it_was_made_for(mailbox: Mailbox) -> None:
    """Signed by us, sent to this id, but made with another link secret (the id's earlier
    holder, erased) or before link secrets for someone created after: nobody is tied."""
    subs = people("ann@example.com", "bob@example.com", "cy@example.com")
    with Session(get_engine()) as session:  # Cy existed before migration 0004
        cy = session.get(Subscriber, subs["cy@example.com"].id)
        cy.legacy_links = True
        session.add(cy)
        session.commit()
    campaign = mailed(list(subs.values()), days_ago=90)
    settings = get_settings()
    ann, bob = subs["ann@example.com"], subs["bob@example.com"]
    mailbox.deliver(
        [
            dsn(
                "ann@example.com",
                1,
                returned_id=campaign_message_id(settings, campaign, ann.id, "f" * 32),
            ),
            dsn("bob@example.com", 2, returned_id=_legacy_message_id(campaign, bob.id)),
            dsn(
                "cy@example.com",
                3,
                returned_id=_legacy_message_id(campaign, subs["cy@example.com"].id),
            ),
        ]
    )
    result = outcome(mailbox)

    for msgid in ("<dsn1@mx.example.net>", "<dsn2@mx.example.net>"):
        assert result[msgid] == ("Review", "none: not tied to our mail", "Review"), msgid
    assert state("ann@example.com") == UNTOUCHED
    assert state("bob@example.com") == UNTOUCHED
    assert result["<dsn3@mx.example.net>"] == ("Processed", "bounced", "Processed")
    assert state("cy@example.com") == ("bounced", 1, True)
