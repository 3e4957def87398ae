"""GET /readyz against real services: the database, an SMTP server (aiosmtpd) for connect +
EHLO, the mailbox as a Maildir and as Dovecot IMAP; 503 naming what failed, no secret in
the body, and answers cached so a probe in a loop cannot hammer the provider."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import get_settings
from tests.conftest import IN_CI
from tests.support.dovecot import Dovecot, DovecotMissing, start_dovecot, stop_dovecot
from tests.support.net import free_port

SMTP_PASSWORD = "smtp-password-never-shown"


class _Counting:
    """aiosmtpd handler that counts EHLOs (one per readiness probe that reached it)."""

    def __init__(self) -> None:
        self.ehlos = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # aiosmtpd API
        self.ehlos += 1
        session.host_name = hostname
        return responses


@pytest.fixture
def smtp_server(monkeypatch: pytest.MonkeyPatch, settings_env: dict[str, str]):
    handler = _Counting()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("OCTOMAIL_SMTP_URLS", f"smtp://news:{SMTP_PASSWORD}@127.0.0.1:{port}")
    get_settings.cache_clear()
    yield controller, handler
    if controller._thread is not None:  # a test may have stopped it already
        controller.stop()


@pytest.fixture
def maildir(settings_env: dict[str, str]) -> Path:
    root = Path(settings_env["OCTOMAIL_VAR_DIR"]) / "mail" / "inbox"
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    # One per test: after a refused login Dovecot delays the next ones from the same address.
    base = Path(tempfile.mkdtemp(prefix="octomail-dovecot-"))
    os.chmod(base, 0o755)  # Dovecot's auth process (user dovecot) reads the users file
    try:
        server = start_dovecot(base / "d")
    except DovecotMissing as exc:
        shutil.rmtree(base, ignore_errors=True)
        if IN_CI:
            pytest.fail(f"{exc} (CI=true: a missing server is a failure)")
        pytest.skip(str(exc))
    yield server
    stop_dovecot(server)
    shutil.rmtree(base, ignore_errors=True)


def test_ready_when_database_smtp_and_maildir_answer(smtp_server, maildir: Path) -> None:
    controller, handler = smtp_server
    with TestClient(create_app()) as client:
        response = client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    checks = body["checks"]
    assert set(checks) == {"database", f"smtp 127.0.0.1:{controller.port}", "mailbox"}
    assert all(check["ok"] for check in checks.values())
    assert checks[f"smtp 127.0.0.1:{controller.port}"]["detail"] == "EHLO answered 250"
    assert handler.ehlos == 1
    assert SMTP_PASSWORD not in response.text


def test_not_ready_names_each_failure(settings_env: dict[str, str]) -> None:
    # The settings' SMTP URL points at port 9 (nothing listens); no Maildir was made.
    with TestClient(create_app()) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ok"] is True
    assert checks["smtp 127.0.0.1:9"]["ok"] is False
    assert "Connect" in checks["smtp 127.0.0.1:9"]["detail"]
    assert checks["mailbox"] == {**checks["mailbox"], "ok": False}
    assert "Maildir" in checks["mailbox"]["detail"]


def test_probes_in_a_loop_reach_the_provider_once_per_cache_period(
    smtp_server, maildir: Path
) -> None:
    controller, handler = smtp_server
    with TestClient(create_app()) as client:
        answers = [client.get("/readyz").status_code for _ in range(20)]
        assert answers == [200] * 20
        assert handler.ehlos == 1
        controller.stop()  # the provider goes away: the cached answer stands until it expires
        assert client.get("/readyz").status_code == 200


def test_the_database_down_is_503(
    smtp_server, maildir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "OCTOMAIL_DATABASE_URL", f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/x"
    )
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"]["ok"] is False


def test_imap_login_is_checked(
    dovecot: Dovecot, smtp_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCTOMAIL_IMAP_URL", dovecot.url(dovecot.add_user()))
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        good = client.get("/readyz")
    assert good.status_code == 200, good.text
    assert good.json()["checks"]["mailbox"]["detail"].startswith("IMAP login")
    wrong = dovecot.url(dovecot.add_user()).replace("@127.0.0.1", "x@127.0.0.1")
    monkeypatch.setenv("OCTOMAIL_IMAP_URL", wrong)
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        bad = client.get("/readyz")
    assert bad.status_code == 503
    assert bad.json()["checks"]["mailbox"]["ok"] is False
    password = wrong.split(":")[2].split("@")[0]
    assert password not in bad.text
