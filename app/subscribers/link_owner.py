"""Who a signed link belongs to: the subscriber it names, if they still hold its secret.

One primary-key read, in the caller's transaction. A link of an erased person (no row) or of
someone else (another secret) finds nobody, and the caller answers the "gone" page: it never
shows or changes another person's data. The one-click batch does the same check inside its
own locked read (app/subscribers/optout.py), not here.
"""

from __future__ import annotations

from sqlmodel import Session

from app.errors import LinkGone
from app.link_secrets import link_matches
from app.links import LinkRef
from app.models import Subscriber
from app.subscribers.optout import lock_subscriber

GONE = "We no longer hold any data for this address, and it will not receive our emails."


def link_owner(session: Session, ref: LinkRef, *, lock: bool = False) -> Subscriber | None:
    """The subscriber `ref` names when the link was made for them, else None."""
    subscriber = (
        lock_subscriber(session, ref.subscriber_id)
        if lock
        else session.get(Subscriber, ref.subscriber_id)
    )
    if subscriber is None or not link_matches(
        ref.tag, subscriber.link_secret, subscriber.legacy_links
    ):
        return None
    return subscriber


def require_link_owner(session: Session, ref: LinkRef, *, lock: bool = False) -> Subscriber:
    """link_owner(), or LinkGone (the 410 "gone" page)."""
    subscriber = link_owner(session, ref, lock=lock)
    if subscriber is None:
        raise LinkGone(GONE)
    return subscriber
