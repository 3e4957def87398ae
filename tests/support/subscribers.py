"""Small builders for subscriber tests (plain functions, not fixtures)."""

from sqlmodel import Session

from app.models import Subscriber, Subscription, SubscriptionStatus, Topic


def make_topic(session: Session, slug: str) -> Topic:
    topic = Topic(slug=slug, name=slug.title())
    session.add(topic)
    session.commit()
    return topic


def make_subscriber(
    session: Session,
    email: str,
    topics: list[Topic],
    status: SubscriptionStatus = SubscriptionStatus.SUBSCRIBED,
) -> Subscriber:
    person = Subscriber(email=email, name=email.split("@")[0].title())
    session.add(person)
    session.flush()
    for topic in topics:
        session.add(Subscription(subscriber_id=person.id, topic_id=topic.id, status=status))
    session.commit()
    return person
