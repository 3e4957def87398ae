"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL comes from OCTOMAIL_TEST_PG_URL (default: 127.0.0.1:5432, user postgres, trust
auth, database `test`). Each run creates its own throw-away database there. Without a
reachable server the PostgreSQL half is skipped locally and FAILS when CI=true.
Set OCTOMAIL_TEST_DBS=sqlite (or postgresql) to run one half while developing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.db import _engine_for
from app.settings import get_settings
from tests.support.smtp_sink import SmtpSink

PG_ADMIN_URL = os.environ.get(
    "OCTOMAIL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
SELECTED = {s.strip() for s in os.environ.get("OCTOMAIL_TEST_DBS", "sqlite,postgresql").split(",")}
BACKENDS = [b for b in ("sqlite", "postgresql") if b in SELECTED]

TEST_SECRET = "test-secret-key-0123456789abcdef"
TEST_PEPPER = "test-pepper-0123456789abcdef"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "one_database: what it checks does not depend on the database behind the domain"
        " services (a page's text, a message's classification): when both are selected it"
        " runs on SQLite only, the embedded default",
    )


def _on_postgresql(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("db_url") == "postgresql"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the PostgreSQL half of `one_database` tests when the SQLite half runs."""
    if "sqlite" not in BACKENDS:
        return  # only PostgreSQL selected: keep them
    dropped = [i for i in items if i.get_closest_marker("one_database") and _on_postgresql(i)]
    if dropped:
        gone = set(map(id, dropped))
        items[:] = [item for item in items if id(item) not in gone]
        config.hook.pytest_deselected(items=dropped)


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing database is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session", params=BACKENDS)
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database for this test session, one per backend."""
    from app.migrate import upgrade

    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "octomail.db"
        url = f"sqlite:///{path}"
        upgrade(_engine_for(url))
        yield url
        _engine_for(url).dispose()
        return

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"octomail_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any connection failure means "no server"
        admin.dispose()
        _unavailable(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc.__class__.__name__}")
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(_engine_for(url))
    yield url
    _engine_for(url).dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_all(url: str) -> None:
    from sqlmodel import SQLModel

    import app.models  # noqa: F401

    engine = _engine_for(url)
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))
            # AUTOINCREMENT counters start again, as RESTART IDENTITY does on PostgreSQL.
            conn.execute(text("DELETE FROM sqlite_sequence"))


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """OCTOMAIL_* settings for a test (no database); get_settings() sees them."""
    values = {
        "OCTOMAIL_VAR_DIR": str(tmp_path / "var"),
        "OCTOMAIL_SECRET_KEYS": TEST_SECRET,
        "OCTOMAIL_SUPPRESSION_PEPPER": TEST_PEPPER,
        "OCTOMAIL_BASE_URL": "http://testserver",
        "OCTOMAIL_POSTAL_ADDRESS": "Octomail Ltd, 1 Test Street, 75001 Paris, France",
        "OCTOMAIL_FROM": "news@example.org",
        "OCTOMAIL_UNSUBSCRIBE_MAILTO": "info@example.org",
        "OCTOMAIL_INBOUND_AUTHSERV_ID": "mx.example.org",
        "OCTOMAIL_EMBEDDED_WORKER": "false",
        "OCTOMAIL_EMBEDDED_POLLER": "false",
        "OCTOMAIL_EMBEDDED_SCHEDULER": "false",
        "OCTOMAIL_SMTP_URLS": "smtp://127.0.0.1:9",
        # An octomail.env in the checkout (scripts/run makes one) must not reach the tests.
        "OCTOMAIL_CONFIG": os.devnull,
    }
    for key in [
        k for k in os.environ if k.startswith("OCTOMAIL_") and not k.startswith("OCTOMAIL_TEST_")
    ]:
        monkeypatch.delenv(key)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield values
    get_settings.cache_clear()


@pytest.fixture
def settings_env(
    env: dict[str, str], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Settings pointing at a clean, migrated database (SQLite and PostgreSQL)."""
    _truncate_all(db_url)
    monkeypatch.setenv("OCTOMAIL_DATABASE_URL", db_url)
    get_settings.cache_clear()
    return {**env, "OCTOMAIL_DATABASE_URL": db_url}


@pytest.fixture
def session(settings_env: dict[str, str]):
    from sqlmodel import Session

    from app.db import get_engine

    with Session(get_engine(), expire_on_commit=False) as s:
        yield s


@pytest.fixture
def client(settings_env: dict[str, str]):
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(), base_url="http://testserver") as c:
        yield c


def _user_token(role: str, email: str, name: str) -> str:
    """An API token of a new user with this role."""
    from app.db import session_scope
    from app.users import create_token, create_user

    with session_scope() as s:
        user = create_user(s, email=email, password="correct horse battery", role=role)
        return create_token(s, user=user, name=name)


@pytest.fixture
def admin_token(settings_env: dict[str, str]) -> str:
    from app.models import Role

    return _user_token(Role.ADMIN, "admin@example.org", "tests")


@pytest.fixture
def viewer_headers(settings_env: dict[str, str]) -> dict[str, str]:
    """Authorization headers of a viewer (reads, never writes)."""
    from app.models import Role

    return {"Authorization": f"Bearer {_user_token(Role.VIEWER, 'viewer@example.org', 'viewer')}"}


@pytest.fixture
def api(client, admin_token: str):
    """The TestClient with an admin bearer token on every request."""
    client.headers["Authorization"] = f"Bearer {admin_token}"
    return client


class _Collector:
    """aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd API
        import email
        from email import policy

        message = email.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((envelope.rcpt_tos, message))
        return "250 OK"


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A started SmtpSink: a real SMTP server on a free port that records every message
    and replies as the test tells it (.reject(addr, "550 ..."), .script_data(...))."""
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def mailbox(env: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    """A real SMTP server (aiosmtpd) on a free port; OCTOMAIL_SMTP_URLS points at it.
    Yields the list of (recipients, EmailMessage) it received."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    handler = _Collector()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("OCTOMAIL_SMTP_URLS", f"smtp://127.0.0.1:{port}")
    get_settings.cache_clear()
    try:
        yield handler.messages
    finally:
        controller.stop()
