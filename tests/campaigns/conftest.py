"""Campaign test fixtures (helpers live in tests/support/campaigns.py)."""

from __future__ import annotations

import pytest

from app.db import session_scope
from app.models import Role
from app.users import create_token, create_user


@pytest.fixture
def viewer_headers(settings_env: dict[str, str]) -> dict[str, str]:
    """Authorization headers of a viewer (reads, never writes)."""
    with session_scope() as s:
        user = create_user(
            s, email="viewer@example.org", password="correct horse battery", role=Role.VIEWER
        )
        token = create_token(s, user=user, name="viewer")
    return {"Authorization": f"Bearer {token}"}
