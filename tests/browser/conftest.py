"""Browser fixtures: Debian's Chromium driven by Playwright, a real uvicorn server.

Chromium missing (or Playwright not importable) skips these tests locally and FAILS them
when CI=true. Never `playwright install`: it downloads a browser, which fails here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("OCTOMAIL_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    # Module scope, not session: Playwright's sync API keeps an asyncio loop marked as
    # running in this thread while it lives, which breaks every later asyncio.run().
    reason = None
    if not Path(CHROMIUM).exists():
        reason = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = reason or "playwright is not installed (dev dependency)"
    if reason:
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: a missing browser is a failure, not a skip)")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def live_server(settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """uvicorn serving the app on a free port, against the test database; yields its URL.

    OCTOMAIL_BASE_URL points at it, so links rendered into mail by this test lead here."""
    from app.settings import get_settings

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("OCTOMAIL_BASE_URL", base)
    get_settings.cache_clear()
    log = open(settings_env["OCTOMAIL_VAR_DIR"] + "-server.log", "wb")  # noqa: SIM115 - open while the server runs
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited early; see {log.name}")
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def screenshot_dir(request: pytest.FixtureRequest) -> Path:
    """test-artifacts/screenshots/<test name>/ (gitignored; CI keeps it as an artifact)."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("/", "_")
    path = SCREENSHOTS / name
    path.mkdir(parents=True, exist_ok=True)
    return path


DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}
MARKETER_PASSWORD = "correct horse battery"


def shoot(page, directory: Path, name: str) -> None:
    """Full-page screenshots of the page as it is, at 1280x800 and 375x812:
    NAME-desktop.png and NAME-phone.png; the page is left at its first viewport."""
    before = page.viewport_size
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=directory / f"{name}-{label}.png", full_page=True)
    if before:
        page.set_viewport_size(before)


@pytest.fixture
def marketer(browser, live_server: str):
    """A factory for signed-in marketers in Chromium:

        page = marketer()                      # an admin, at 1280x800, on /admin/
        page = marketer(Role.EDITOR, email="ed@example.org")

    Each call makes the account (password MARKETER_PASSWORD) and a session row, puts the
    session cookie in a fresh browser context and opens /admin/. `page.base` is the server's
    URL. Contexts are closed after the test."""
    from app.db import session_scope
    from app.models import Role
    from app.signin import start_session
    from app.users import create_user
    from app.web.admin.auth import SESSION_COOKIE

    contexts = []

    def make(role: Role = Role.ADMIN, email: str | None = None):
        address = email or f"{role}{len(contexts) + 1}@example.org"
        with session_scope() as db:
            user = create_user(db, email=address, password=MARKETER_PASSWORD, role=role)
            token = start_session(db, user)
        context = browser.new_context(viewport=DESKTOP)
        contexts.append(context)
        context.add_cookies(
            [{"name": SESSION_COOKIE, "value": token, "url": live_server, "httpOnly": True}]
        )
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.base = live_server
        page.goto(f"{live_server}/admin/")
        return page

    yield make
    for context in contexts:
        context.close()


# Page tests (layout, screenshots, axe) render the same HTML whatever database is behind the
# domain services, which the HTTP tests run on both; they run on SQLite, the embedded
# default a new user meets (the `one_database` marker, tests/conftest.py). The journey, which
# runs the scheduler and a worker, runs on both.
ON_BOTH_DATABASES = {"test_marketer_journey.py"}


@pytest.hookimpl(tryfirst=True)  # before tests/conftest.py's hook reads the markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if item.path.parent == here and item.path.name not in ON_BOTH_DATABASES:
            item.add_marker(pytest.mark.one_database)
