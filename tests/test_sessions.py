"""Browser sessions (app/sessions.py) through each side's own functions: marketers' end by
OCTOMAIL_ADMIN_SESSION_IDLE / _MAX_AGE, subscribers' by OCTOMAIL_ACCOUNT_SESSION_IDLE /
_MAX_AGE, and neither side by the other's. Time passes by `now=`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, func, select

from app import signin as marketers
from app.accounts import signin as accounts
from app.models import AdminSession, Role, Subscriber, SubscriberSession, User, utcnow
from app.settings import Settings, describe, get_settings, parse_duration
from app.users import create_user
from tests.support.unsubscribe import seed


def _limits(**durations: timedelta) -> Settings:
    return get_settings().model_copy(update=durations)


def _rows(session: Session, table: type[AdminSession] | type[SubscriberSession]) -> int:
    return session.exec(select(func.count()).select_from(table)).one()


@pytest.fixture
def ann(session: Session) -> User:
    user = create_user(
        session, email="ann@example.org", password="a long enough secret", role=Role.EDITOR
    )
    session.commit()
    return user


@pytest.fixture
def jane(session: Session) -> Subscriber:
    subscriber = session.get(Subscriber, seed().subscriber_id)
    assert subscriber is not None
    return subscriber


@pytest.mark.parametrize(
    ("environ", "shown", "source"),
    [({}, ("30m", "1d"), "default"), ({"IDLE": "10m", "MAX_AGE": "6h"}, ("10m", "6h"), "env")],
)
def test_subscriber_session_settings_and_what_octomail_config_shows(
    env, monkeypatch, environ: dict[str, str], shown: tuple[str, str], source: str
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(f"OCTOMAIL_ACCOUNT_SESSION_{name}", value)
    get_settings.cache_clear()
    settings = get_settings()
    assert settings.account_session_idle == parse_duration(shown[0])
    assert settings.account_session_max_age == parse_duration(shown[1])
    lines = {line.variable: (line.value, line.source) for line in describe(settings)}
    assert lines["OCTOMAIL_ACCOUNT_SESSION_IDLE"] == (shown[0], source)
    assert lines["OCTOMAIL_ACCOUNT_SESSION_MAX_AGE"] == (shown[1], source)
    assert settings.admin_session_idle == timedelta(hours=2)  # the marketers' own stay


@pytest.mark.parametrize(
    ("limit", "visits", "ended"),
    [
        # 10 minutes idle: visits 9 minutes apart keep it, 11 minutes without one end it.
        ({"account_session_idle": timedelta(minutes=10)}, [9, 18, 27], 38),
        # An hour after sign-in, however active.
        ({"account_session_max_age": timedelta(hours=1)}, [10, 20, 30, 40, 50, 60], 61),
    ],
    ids=["idle", "max_age"],
)
def test_a_subscriber_session_ends_by_the_account_settings(
    session: Session, jane: Subscriber, limit: dict[str, timedelta], visits: list[int], ended: int
) -> None:
    settings = _limits(**limit)
    start = utcnow()
    token = accounts.start_session(session, jane, now=start)
    for minutes in visits:
        now = start + timedelta(minutes=minutes)
        found = accounts.active_session(session, token, settings=settings, now=now)
        assert found is not None
        assert found.subscriber.id == jane.id
    gone = start + timedelta(minutes=ended)
    assert accounts.active_session(session, token, settings=settings, now=gone) is None
    assert _rows(session, SubscriberSession) == 0  # deleted on the way
    assert accounts.active_session(session, token, settings=settings, now=start) is None


@pytest.mark.parametrize(("side", "other"), [("admin", "account"), ("account", "admin")])
def test_one_sides_settings_leave_the_other_sides_sessions_alone(
    session: Session, ann: User, jane: Subscriber, side: str, other: str
) -> None:
    """Marketers' sessions under short account limits, subscribers' under short marketer
    limits: each lives by its own side's settings (the defaults here)."""
    settings = _limits(
        **{
            f"{other}_session_idle": timedelta(minutes=1),
            f"{other}_session_max_age": timedelta(minutes=5),
        }
    )
    sides = {"admin": (marketers, ann), "account": (accounts, jane)}
    (this, owner), (that, other_owner) = sides[side], sides[other]
    start = utcnow()
    token = this.start_session(session, owner, now=start)
    other_token = that.start_session(session, other_owner, now=start)
    idle = getattr(settings, f"{side}_session_idle")
    step = idle - timedelta(minutes=1)
    for visit in range(1, 5):  # each within its own idle limit, far past the other side's
        now = start + visit * step
        assert this.active_session(session, token, settings=settings, now=now) is not None
    after_other = start + timedelta(minutes=2)
    assert that.active_session(session, other_token, settings=settings, now=after_other) is None
    # Its own idle limit still applies.
    idle_end = start + 4 * step + idle + timedelta(minutes=1)
    assert this.active_session(session, token, settings=settings, now=idle_end) is None
    assert _rows(session, AdminSession) + _rows(session, SubscriberSession) == 0


def test_a_disabled_marketer_loses_the_session_and_a_subscriber_keeps_theirs(
    session: Session, ann: User, jane: Subscriber
) -> None:
    start = utcnow()
    marketer = marketers.start_session(session, ann, client="203.0.113.9", user_agent="Firefox")
    subscriber = accounts.start_session(session, jane)
    row = session.exec(select(AdminSession)).one()
    assert (row.ip, row.user_agent) == ("203.0.113.9", "Firefox")
    ann.is_active = False
    session.add(ann)
    session.flush()
    assert marketers.active_session(session, marketer, now=start) is None
    assert accounts.active_session(session, subscriber, now=start) is not None
    assert marketers.active_session(session, "x" * 101) is None
