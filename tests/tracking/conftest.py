"""Fixtures of the tracking tests: explicit render settings (pure tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings


@pytest.fixture
def render_settings(tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {
            "var_dir": tmp_path / "var",
            "secret_keys": "test-secret-key-0123456789abcdef",
            "suppression_pepper": "test-pepper",
            "base_url": "https://news.example.org",
            "postal_address": "Octomail Ltd, 1 Test Street, 75001 Paris, France",
            "OCTOMAIL_FROM": "Octo News <news@example.org>",
            "unsubscribe_mailto": "info@example.org",
        }
    )
