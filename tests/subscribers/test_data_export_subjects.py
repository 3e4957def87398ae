"""The data export (GDPR access) shows each message's subject as the person received it."""

from __future__ import annotations

from app.db import session_scope
from app.models import Send, SendStatus, utcnow
from tests.support.campaigns import add_subscriber, create_campaign, make_topic


def test_export_lists_the_rendered_subject_not_the_template(api) -> None:
    with session_scope() as s:
        topic = make_topic(s, "news")
        person = add_subscriber(s, "ann@example.org", {topic.id: "subscribed"}, name="Ann Lee")
        personal = create_campaign(
            s, ["news"], name="Spring", subject="{{ first_name }}, spring is here"
        )
        plain = create_campaign(s, ["news"], name="Plain", subject="Our {{ topics[0] }} news")
        for campaign in (personal, plain):
            s.add(
                Send(
                    campaign_id=campaign.id,
                    subscriber_id=person.id,
                    status=SendStatus.SENT,
                    sent_at=utcnow(),
                )
            )
        s.flush()
        person_id = person.id
    answer = api.get(f"/api/v1/subscribers/{person_id}/data")
    assert answer.status_code == 200, answer.text
    subjects = {m["campaign"]: m["subject"] for m in answer.json()["messages"]}
    assert subjects["Spring"] == "Ann, spring is here"
    assert subjects["Plain"] == "Our News news"
    assert "{{" not in answer.text
