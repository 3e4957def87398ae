"""Every fixture mail through the real poller, against Dovecot IMAP and the local Maildir:
verdict, folder, effect on subscribers, acknowledgements; a second pass changes nothing."""

from __future__ import annotations

from sqlmodel import Session, select

from app.db import get_engine
from app.inbound.poller import poll_once
from app.models import ConsentEvent, InboundMessage
from app.settings import get_settings
from tests.support.inbound import Catcher, Mailbox, load_fixture
from tests.support.inbound_cases import CASES, NOT_ACKED, check_effects, placeholders, populate


def _deliver_all(mailbox: Mailbox) -> tuple[object, dict[str, bytes]]:
    with Session(get_engine()) as session:
        world = populate(session)
    values = placeholders(world)
    raws = {case.name: load_fixture(case.name, values) for case in CASES}
    mailbox.deliver(list(raws.values()))
    return world, raws


def test_every_case_gets_its_verdict_folder_and_effect(mailbox: Mailbox, smtp: Catcher) -> None:
    world, raws = _deliver_all(mailbox)

    summary = poll_once(get_settings())
    assert summary["seen"] == len(CASES), summary

    problems: list[str] = []
    processed, review = mailbox.folder_ids("Processed"), mailbox.folder_ids("Review")
    with Session(get_engine()) as session:
        rows = session.exec(select(InboundMessage)).all()
        by_msgid = {row.message_id: row for row in rows}
        assert len(rows) == len(CASES)
        for case in CASES:
            from tests.support.inbound import message_ids

            msgid = message_ids([raws[case.name]])[0]
            row = by_msgid.get(msgid)
            if row is None:
                problems.append(f"{case.name}: no inbound_message row")
                continue
            if row.verdict != case.kind:
                problems.append(
                    f"{case.name}: verdict {row.verdict} ({row.reason}), expected {case.kind}"
                )
            if row.folder != case.folder:
                problems.append(f"{case.name}: row folder {row.folder}, expected {case.folder}")
            actual = "Processed" if msgid in processed else "Review" if msgid in review else None
            if actual != case.folder:
                problems.append(f"{case.name}: message in {actual}, expected {case.folder}")
            if case.subject is not None and row.subject != case.subject:
                problems.append(f"{case.name}: stored subject {row.subject!r}")
            problems += [f"{case.name}: {p}" for p in check_effects(session, case, world)]
            if case.ack_to and len(smtp.to(case.ack_to)) != 1:
                problems.append(f"{case.name}: {len(smtp.to(case.ack_to))} acks to {case.ack_to}")
    for address in NOT_ACKED:
        if smtp.to(address):
            problems.append(f"mail sent to {address}, which must get none")
    assert not problems, "\n".join(problems)
    assert mailbox.folder_ids("INBOX") == []
    assert len(processed) + len(review) == len(CASES)


def test_acknowledgement_is_an_auto_reply_in_the_thread(mailbox: Mailbox, smtp: Catcher) -> None:
    _deliver_all(mailbox)
    poll_once(get_settings())
    [ack] = smtp.to("carol@example.com")
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["In-Reply-To"] == "<CAF8s2k1plain0001@mail.example.com>"
    assert "removed your address" in ack.get_content()
    # the third party gets a confirmation link, not an opt-out
    [confirm] = smtp.to("xavier@example.com")
    assert "/email-optout/" in confirm.get_content()


def test_second_pass_and_repeated_requests_change_nothing(mailbox: Mailbox, smtp: Catcher) -> None:
    _deliver_all(mailbox)
    poll_once(get_settings())
    with Session(get_engine()) as session:
        events = len(session.exec(select(ConsentEvent)).all())
    acks = len(smtp.messages)
    # The same person asks again the same day: recorded, no new event, no second ack.
    mailbox.deliver([load_fixture("plain_request_en").replace(b"plain0001", b"plain0002")])
    summary = poll_once(get_settings())
    assert summary["seen"] == 1
    assert poll_once(get_settings()).get("seen", 0) == 0
    with Session(get_engine()) as session:
        assert len(session.exec(select(ConsentEvent)).all()) == events
        assert len(session.exec(select(InboundMessage)).all()) == len(CASES) + 1
    assert len(smtp.messages) == acks
