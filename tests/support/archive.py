"""Campaigns for the public archive tests: published or not, sent or not, marketing or not."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from app.db import get_engine
from app.models import (
    Campaign,
    CampaignStatus,
    CampaignTopic,
    Category,
    Subscriber,
    Topic,
    utcnow,
)

PERSONAL_BODY = (
    "# Hello {{ first_name }}\n\n"
    "Dear {{ name }} ({{ email }}), from {{ attributes.city }}: the news of the month. "
    "[Read more](https://example.org/news).\n\n"
    "[Unsubscribe]({{ unsubscribe_url }}) · [Preferences]({{ preferences_url }})\n\n"
    "{{ postal_address }}"
)


def campaign(
    session: Session,
    subject: str,
    *,
    status: CampaignStatus = CampaignStatus.DONE,
    public: bool = True,
    category: Category = Category.MARKETING,
    finished_at: datetime | None = None,
    topic_id: int | None = None,
    body: str = PERSONAL_BODY,
) -> int:
    row = Campaign(
        name=f"internal name of {subject}",
        subject=subject,
        preheader="This month, {{ first_name }}",
        body=body,
        category=category,
        status=status,
        public_archive=public,
        track_opens=True,  # tracked for those who allow it; never in the archive
        track_clicks=True,
        started_at=finished_at or utcnow() if status == CampaignStatus.DONE else None,
        finished_at=finished_at or utcnow() if status == CampaignStatus.DONE else None,
    )
    session.add(row)
    session.flush()
    if topic_id:
        session.add(CampaignTopic(campaign_id=row.id, topic_id=topic_id))
    session.flush()
    return int(row.id or 0)


def seed() -> dict[str, int]:
    """One campaign of each kind, and a real person whose data must never show."""
    with Session(get_engine()) as session:
        topic = Topic(slug="news", name="Monthly news")
        session.add(topic)
        session.flush()
        session.add(
            Subscriber(email="bob@example.com", name="Bob Secret", attributes={"city": "Lyon"})
        )
        ids = {
            "published": campaign(
                session,
                "{{ first_name }}, our November news",
                finished_at=datetime(2026, 11, 20, 9, 0),
                topic_id=topic.id,
            ),
            "escaped": campaign(
                session, "Q&A: <tips> & tricks", finished_at=datetime(2026, 10, 2, 9, 0)
            ),
            "unpublished": campaign(session, "Not for the public", public=False),
            "draft": campaign(session, "A draft", status=CampaignStatus.DRAFT),
            "running": campaign(session, "Still sending", status=CampaignStatus.RUNNING),
            "transactional": campaign(session, "Policy update", category=Category.TRANSACTIONAL),
        }
        session.commit()
        return ids
