"""The `compose` marker: tests that bring the deploy/ stack up with Docker (minutes). They
run only when asked for: `pytest -p no:xdist -m compose tests/deploy`."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "compose: brings the deploy/ compose stack up with Docker (minutes)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "compose" in (config.getoption("markexpr") or ""):
        return
    chosen = [item for item in items if item.get_closest_marker("compose") is None]
    if len(chosen) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in chosen])
        items[:] = chosen
