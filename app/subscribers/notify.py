"""Transactional mail a person triggers themselves: the double opt-in confirmation."""

from __future__ import annotations

import logging
from collections.abc import Callable
from email.message import EmailMessage
from functools import partial

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sqlmodel import Session

from app.i18n import N_, gettext_context, gettext_for, supported
from app.links import confirm_url
from app.mail.transactional import transactional_message
from app.models import Subscriber, Topic, saved_id
from app.settings import Settings, get_settings
from app.subscribers import allowance
from app.subscribers.allowance import Grant, MailKind, Outcome
from app.subscribers.fields import clean_name
from app.web_paths import TEMPLATE_DIR

log = logging.getLogger(__name__)

_env = Environment(
    loader=FileSystemLoader(str(TEMPLATE_DIR)),
    autoescape=select_autoescape(["html"]),
    extensions=["jinja2.ext.i18n"],
)
# The language's gettext comes with each render's context (app/i18n.py), never installed here.
_env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]  # by the extension


def confirmation_message(
    *,
    to_email: str,
    to_name: str,
    subscriber_id: int,
    link_secret: str,
    topics: list[Topic],
    settings: Settings,
    language: str | None = None,
) -> EmailMessage:
    """The double opt-in email, in `language` (English when None); its link shows a page
    (in that language) whose button (a POST) confirms."""
    lang = supported(language) or "en"
    url = confirm_url(
        subscriber_id, [t.id for t in topics if t.id is not None], settings, secret=link_secret
    )
    if lang != "en":
        url = f"{url}?lang={lang}"
    names = ", ".join(t.name for t in topics)
    context = {
        "org_name": settings.org_name,
        "url": url,
        "topics_text": names,
        "topics_html": Markup("<strong>{}</strong>").format(names),
        "hours": max(1, int(settings.confirm_max_age.total_seconds() // 3600)),
        "lang": lang,
        **gettext_context(lang),
    }
    subject = gettext_for(lang)(N_("Please confirm your subscription to %(org)s"))
    return transactional_message(
        settings,
        kind="signup",
        to_address=to_email,
        to_name=clean_name(to_name),
        subject=subject % {"org": settings.org_name},
        text=_env.get_template("transactional/confirm.txt").render(context),
        html=_env.get_template("transactional/confirm.html").render(context),
        language=lang,
    )


def send_confirmation(
    *,
    to_email: str,
    to_name: str,
    subscriber_id: int,
    link_secret: str,
    topics: list[Topic],
    settings: Settings | None = None,
    grant: Grant | None = None,
    language: str | None = None,
) -> Outcome:
    """Send it now, within the address's allowance (at most one an hour; `grant` when the
    caller claimed it already). A failure is logged (the person can simply sign up again)."""
    settings = settings or get_settings()
    message = confirmation_message(
        to_email=to_email,
        to_name=to_name,
        subscriber_id=subscriber_id,
        link_secret=link_secret,
        topics=topics,
        settings=settings,
        language=language,
    )
    try:
        return allowance.send(MailKind.CONFIRM, to_email, message, settings, grant)
    except Exception:  # SMTP errors of every kind end here
        log.exception("could not send the confirmation email for subscriber %s", subscriber_id)
        return Outcome.FAILED


def claim_confirmation(
    session: Session, subscriber: Subscriber, topic_ids: list[int]
) -> tuple[str | None, Callable[[], object] | None]:
    """After a marketer added someone unconfirmed: commit (the link in the mail must find
    the rows), then claim the address's allowance. Returns ("queued", the send to run after
    the response) or (why not, None); (None, None) when no topic awaits confirmation."""
    if not topic_ids:
        return None, None
    topics = [t for t in (session.get(Topic, t) for t in topic_ids) if t]
    session.commit()
    # Claimed after the commit: on SQLite the claim needs the write lock.
    grant = allowance.claim(MailKind.CONFIRM, subscriber.email)
    if not isinstance(grant, Grant):
        return grant.value, None
    return "queued", partial(
        send_confirmation,
        to_email=subscriber.email,
        to_name=subscriber.name,
        subscriber_id=saved_id(subscriber),
        link_secret=subscriber.link_secret,
        topics=topics,
        grant=grant,
        language=subscriber.language,
    )
