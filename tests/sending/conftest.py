"""SMTP test servers for the sending tests (the server itself: tests/support/smtp_sink.py).

Fixtures (`smtp_sink`, one started SmtpSink, is in tests/conftest.py for every package):
- `smtp_sink_factory`: call it for more sinks (fail-over tests); all are stopped afterwards.
- `render_settings`: a Settings object for pure render tests (no database, no env).

A test that needs its own starts one: `from tests.support.smtp_sink import SmtpSink`, then
`SmtpSink().start()` / `.stop()` (or use it as a context manager).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.settings import Settings
from tests.support.smtp_sink import SmtpSink


@pytest.fixture
def smtp_sink_factory() -> Iterator[Callable[[], SmtpSink]]:
    sinks: list[SmtpSink] = []

    def make() -> SmtpSink:
        sink = SmtpSink().start()
        sinks.append(sink)
        return sink

    try:
        yield make
    finally:
        for sink in sinks:
            sink.stop()


@pytest.fixture
def render_settings(tmp_path: Path) -> Settings:
    """Explicit settings (not the environment): render tests stay pure and parallel-safe."""
    return Settings.model_validate(
        {
            "var_dir": tmp_path / "var",
            "secret_keys": "test-secret-key-0123456789abcdef",
            "suppression_pepper": "test-pepper",
            "base_url": "https://news.example.org",
            "postal_address": "Octomail Ltd, 1 Test Street, 75001 Paris, France",
            "OCTOMAIL_FROM": "Octo News <news@example.org>",
            "unsubscribe_mailto": "info@example.org",
            "org_name": "Octomail",
        }
    )
