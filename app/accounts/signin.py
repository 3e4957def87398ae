"""Subscribers signing in to their own data on /account (issue 15).

Two ways in: a link mailed to the address (signed, OCTOMAIL_ACCOUNT_LINK_MAX_AGE long, and
single-use: it carries the account's nonce, drawn anew when a link is used), or a password
the person set (argon2 and the marketers' lock-out rules, from app.users and app.signin,
counted apart under their own prefix). Sessions are rows in `subscriber_session`, never in
`admin_session` (app/sessions.py, under OCTOMAIL_ACCOUNT_SESSION_IDLE and _MAX_AGE), behind
their own cookie: nothing here can open a marketer's gate.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from sqlmodel import Session

from app import sessions
from app.db import session_scope
from app.errors import InvalidInput, LinkGone, TokenInvalid
from app.i18n import translations
from app.link_secrets import link_tag
from app.links import LinkRef
from app.mail.addresses import normalize_email
from app.mail.transactional import transactional_message
from app.models import Subscriber, SubscriberAccount, SubscriberSession, saved_id, utcnow
from app.settings import Settings, get_settings
from app.signin import (
    SUBSCRIBER_SCOPE,
    SignInRefused,
    check_lockout,
    clear_failures,
    record_failure,
)
from app.subscribers import allowance
from app.subscribers.allowance import MailKind, Outcome
from app.subscribers.link_owner import link_owner
from app.subscribers.optout import find_by_email
from app.tokens import Purpose, mint, verify
from app.users import hash_password, password_matches

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignedIn:
    session: SubscriberSession
    subscriber: Subscriber


SUBSCRIBERS = sessions.SessionTable(
    SubscriberSession,
    Subscriber,
    "subscriber_id",
    lambda settings: (settings.account_session_idle, settings.account_session_max_age),
)
"""Subscribers' sessions: `subscriber_session` rows under their own expiry settings."""


def account_of(session: Session, subscriber_id: int) -> SubscriberAccount:
    """The person's account row, made on first use (a nonce to start with)."""
    account = session.get(SubscriberAccount, subscriber_id)
    if account is None:
        account = SubscriberAccount(subscriber_id=subscriber_id, link_nonce=secrets.token_hex(8))
        session.add(account)
        session.flush()
    return account


# -- the sign-in link ----------------------------------------------------------------------


def link_url(session: Session, subscriber: Subscriber, settings: Settings) -> str:
    account = account_of(session, saved_id(subscriber))
    token = mint(
        Purpose.ACCOUNT_SIGNIN,
        [saved_id(subscriber), account.link_nonce, link_tag(subscriber.link_secret)],
        settings=settings,
    )
    return f"{settings.base_url.rstrip('/')}/account/link/{token}"


def link_message(
    url: str, subscriber: Subscriber, settings: Settings, language: str
) -> EmailMessage:
    _ = translations(language).gettext
    minutes = int(settings.account_link_max_age.total_seconds() // 60)
    text = "\n\n".join(
        [
            _("Someone, hopefully you, asked to sign in to your %(org)s account.")
            % {"org": settings.org_name},
            _("Open this link and press the button to sign in:"),
            url,
            _("The link works once, for %(minutes)d minutes.") % {"minutes": minutes},
            _("If you did not ask for it, ignore this email."),
        ]
    )
    return transactional_message(
        settings,
        kind="signin",
        to_address=subscriber.email,
        to_name=subscriber.name,
        subject=_("Your sign-in link for %(org)s") % {"org": settings.org_name},
        text=text + "\n",
        language=language,
    )


def send_link(
    address: str, *, language: str = "en", settings: Settings | None = None
) -> Outcome | None:
    """Mail a sign-in link to `address` when it is a subscriber's, within its allowance.
    Returns None when there is nobody to mail (the caller answers the same either way:
    this runs after the answer, so its time says nothing either)."""
    settings = settings or get_settings()
    try:
        normalized = normalize_email(address)
    except InvalidInput:
        return None
    with session_scope(settings) as session:
        subscriber = find_by_email(session, normalized)
        if subscriber is None:
            return None
        message = link_message(
            link_url(session, subscriber, settings), subscriber, settings, language
        )
    try:
        return allowance.send(MailKind.ACCOUNT_LINK, normalized, message, settings)
    except Exception:  # SMTP errors of every kind: the person can ask again
        log.exception("could not send a sign-in link")
        return Outcome.FAILED


def read_link(session: Session, token: str, settings: Settings | None = None) -> Subscriber:
    """The person a sign-in link names, if it is fresh, unused and theirs."""
    settings = settings or get_settings()
    payload = verify(
        Purpose.ACCOUNT_SIGNIN, token, max_age=settings.account_link_max_age.total_seconds()
    )
    if not (
        isinstance(payload, list)
        and len(payload) == 3
        and isinstance(payload[0], int)
        and payload[0] > 0
        and all(isinstance(p, str) for p in payload[1:])
    ):
        raise TokenInvalid("This link is not valid.")
    subscriber = link_owner(session, LinkRef(payload[0], payload[2]))
    if subscriber is None:
        raise LinkGone("We no longer hold any data for this address.")
    account = session.get(SubscriberAccount, payload[0])
    if account is None or not secrets.compare_digest(account.link_nonce, payload[1]):
        raise TokenInvalid("This sign-in link was used already. Ask for a new one.")
    return subscriber


def use_link(
    session: Session, token: str, settings: Settings | None = None
) -> tuple[Subscriber, str]:
    """Sign in with a link: it is spent (a new nonce), a session starts."""
    subscriber = read_link(session, token, settings)
    account = account_of(session, saved_id(subscriber))
    account.link_nonce = secrets.token_hex(8)
    session.add(account)
    log.info("subscriber %s signed in with a link", subscriber.id)
    return subscriber, start_session(session, subscriber)


# -- the password --------------------------------------------------------------------------


def set_password(
    session: Session, subscriber: Subscriber, password: str, *, keep: str | None = None
) -> None:
    """Set or change the password (the same length rules as marketers'); every other
    session of the person ends (`keep` is the cookie token of the one that asked)."""
    account = account_of(session, saved_id(subscriber))
    account.password_hash = hash_password(password)
    account.password_set_at = utcnow()
    session.add(account)
    sessions.end_others(session, SUBSCRIBERS, saved_id(subscriber), keep=keep)
    session.flush()


def has_password(session: Session, subscriber_id: int) -> bool:
    account = session.get(SubscriberAccount, subscriber_id)
    return bool(account and account.password_hash)


def sign_in(
    session: Session,
    *,
    email: str,
    password: str,
    client: str,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> tuple[Subscriber, str]:
    """Check the password under the lock-out; returns the person and the cookie token.
    Raises LockedOut (nothing checked) or SignInRefused (counted)."""
    settings = settings or get_settings()
    now = now or utcnow()
    scope = SUBSCRIBER_SCOPE
    check_lockout(session, email=email, client=client, settings=settings, now=now, scope=scope)
    try:
        subscriber = find_by_email(session, normalize_email(email))
    except InvalidInput:
        subscriber = None
    account = session.get(SubscriberAccount, subscriber.id) if subscriber else None
    if not password_matches(account.password_hash if account else None, password) or not subscriber:
        record_failure(session, email, client, now, scope)
        raise SignInRefused("The email address or the password is not right.")
    clear_failures(session, subscriber.email, settings=settings, now=now, scope=scope)
    log.info("subscriber %s signed in with a password", subscriber.id)
    return subscriber, start_session(session, subscriber, now=now)


# -- sessions ------------------------------------------------------------------------------


def start_session(session: Session, subscriber: Subscriber, *, now: datetime | None = None) -> str:
    """A new session for the person; returns the cookie's token (stored only hashed)."""
    return sessions.start(session, SUBSCRIBERS, saved_id(subscriber), now or utcnow())


def active_session(
    session: Session,
    token: str | None,
    *,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> SignedIn | None:
    """The session this cookie names while valid (OCTOMAIL_ACCOUNT_SESSION_IDLE and
    _MAX_AGE); an expired one is deleted on the way."""
    found = sessions.find(
        session, SUBSCRIBERS, token, settings=settings or get_settings(), now=now or utcnow()
    )
    return SignedIn(*found) if found else None


def end_session(session: Session, token: str | None) -> None:
    """Sign this browser out (nothing happens for an unknown token)."""
    sessions.end(session, SUBSCRIBERS, token)
