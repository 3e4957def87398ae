"""Every link in the admin nav leads to a page: none to a 404 for a page not built yet."""

from __future__ import annotations

import re

import pytest

from app.models import Role

# Pages and forms over the domain functions, which their own tests run on both
# databases (tests/conftest.py, `one_database`).
pytestmark = pytest.mark.one_database


def test_every_nav_link_an_admin_sees_answers(sign_in_as) -> None:
    admin = sign_in_as(Role.ADMIN)
    home = admin.client.get("/admin/")
    nav = home.text.split("<nav", 1)[1].split("</nav>", 1)[0]
    links = sorted(set(re.findall(r'href="(/admin/[^"#?]*)"', nav)))
    assert "/admin/campaigns" in links
    for link in links:
        assert admin.client.get(link).status_code == 200, link
