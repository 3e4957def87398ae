"""/admin/inbox: what waits for a person, why, the sender's words as text (never as HTML),
one-click resolve (unsubscribe the sender, dismiss) as POST forms; the same domain
functions as /api/v1/inbound."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.db import session_scope
from app.models import InboundMessage, InboundStatus, Role, Subscriber
from tests.support.campaigns import add_subscriber

# Pages and forms over the domain functions, which their own tests run on both
# databases (tests/conftest.py, `one_database`).
pytestmark = pytest.mark.one_database


def _waiting(subject: str, sender: str, written: str) -> int:
    with session_scope() as s:
        row = InboundMessage(
            source="imap://info@example.org/INBOX",
            uid=subject,
            message_id=f"<{subject}@example.net>",
            from_addr=sender,
            subject=subject,
            verdict="other",
            action="none",
            status=InboundStatus.REVIEW,
            reason="negated opt-out wording (do not unsubscribe): needs a person",
            evidence={"rule": "negated", "where": "body (text)", "written": written},
            folder="Review",
        )
        s.add(row)
        s.flush()
        return int(row.id)


def test_the_list_shows_why_and_the_text_escaped(sign_in_as) -> None:
    _waiting(
        "Re: news", "ann@example.org", "Please do <b>not</b> unsubscribe me <script>x()</script>"
    )
    viewer = sign_in_as(Role.VIEWER)
    page = viewer.client.get("/admin/inbox")
    assert page.status_code == 200
    assert "negated opt-out wording" in page.text
    assert "ann@example.org" in page.text
    assert "&lt;script&gt;x()&lt;/script&gt;" in page.text
    assert "<script>x()" not in page.text
    assert "Unsubscribe the sender" not in page.text  # viewers read only
    assert 'Inbox <span class="count">(1' in page.text  # the nav's count


def test_unsubscribe_the_sender_in_one_click(sign_in_as) -> None:
    with session_scope() as s:
        add_subscriber(s, "bob@example.org")
    message_id = _waiting("stop", "Bob@Example.org", "stop sending me this, but not really?")
    editor = sign_in_as(Role.EDITOR)
    page = editor.client.get("/admin/inbox")
    assert f'action="/admin/inbox/{message_id}/resolve"' in page.text
    done = editor.client.post(
        f"/admin/inbox/{message_id}/resolve",
        data={"csrf_token": editor.csrf, "action": "unsubscribe"},
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/admin/inbox"
    with session_scope() as s:
        bob = s.exec(select(Subscriber).where(Subscriber.email == "bob@example.org")).one()
        assert bob.status == "unsubscribed"
        row = s.get(InboundMessage, message_id)
        assert row.status == InboundStatus.RESOLVED
        assert row.evidence["resolved_by"] == editor.email
    after = editor.client.get("/admin/inbox")
    assert "Sender unsubscribed." in after.text
    assert "Nothing waits for you" in after.text
    again = editor.client.post(
        f"/admin/inbox/{message_id}/resolve",
        data={"csrf_token": editor.csrf, "action": "dismiss"},
    )
    assert again.status_code == 409
    assert "Already resolved" in again.text


def test_dismiss_and_the_detail_page(sign_in_as) -> None:
    message_id = _waiting("hello", "cy@example.org", "Nice newsletter!\n\nCy")
    editor = sign_in_as(Role.EDITOR)
    detail = editor.client.get(f"/admin/inbox/{message_id}")
    assert '<pre class="sender-text">Nice newsletter!\n\nCy</pre>' in detail.text
    assert "&lt;hello@example.net&gt;" in detail.text  # the Message-ID, as text
    dismissed = editor.client.post(
        f"/admin/inbox/{message_id}/resolve", data={"csrf_token": editor.csrf, "action": "dismiss"}
    )
    assert dismissed.status_code == 303
    listed = editor.client.get("/admin/inbox?status=dismissed")
    assert "hello" in listed.text
    assert "Dismissed" in listed.text
    bad = editor.client.post(
        f"/admin/inbox/{message_id}/resolve", data={"csrf_token": editor.csrf, "action": "nuke"}
    )
    assert bad.status_code == 422
    assert editor.client.get("/admin/inbox/999").status_code == 404


def test_a_change_of_contact_details_shows_its_proposal_and_applies_in_one_click(
    sign_in_as,
) -> None:
    with session_scope() as s:
        add_subscriber(s, "carla@example.org")
        row = InboundMessage(
            source="imap://info@example.org/INBOX",
            uid="update-1",
            message_id="<update-1@example.net>",
            from_addr="carla@example.org",
            subject="Re: news",
            verdict="other",
            action="none",
            status=InboundStatus.REVIEW,
            reason="change of contact details that needs a person: a question besides the change",
            evidence={
                "rule": "contact_update_unclear",
                "written": "Please change my email to carla@new.example. When is the next one?",
                "proposal": {"email": "carla@new.example", "name": "Carla Gómez"},
            },
            folder="Review",
        )
        s.add(row)
        s.flush()
        message_id = int(row.id)
    editor = sign_in_as(Role.EDITOR)
    page = editor.client.get(f"/admin/inbox/{message_id}")
    assert "New address" in page.text
    assert "carla@new.example" in page.text
    assert "Carla Gómez" in page.text
    assert 'value="apply_update"' in page.text
    done = editor.client.post(
        f"/admin/inbox/{message_id}/resolve",
        data={"csrf_token": editor.csrf, "action": "apply_update"},
    )
    assert done.status_code == 303
    with session_scope() as s:
        person = s.exec(select(Subscriber).where(Subscriber.email == "carla@new.example")).one()
        assert person.name == "Carla Gómez"
        assert s.get(InboundMessage, message_id).status == InboundStatus.RESOLVED
