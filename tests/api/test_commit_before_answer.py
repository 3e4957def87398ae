"""A change is committed before its answer is sent: a client never gets a 2xx (or an admin
page a 303) for a change that is not yet visible, or that then fails to commit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from app.db import session_scope
from app.main import create_app
from app.models import Topic


@pytest.fixture
def doomed_commits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every commit of a transaction that wrote the topic `doomed` fails, as a full disk would."""

    def mark(session: Session, _context: object, _instances: object) -> None:
        if any(isinstance(o, Topic) and o.slug == "doomed" for o in session.new):
            session.info["doomed"] = True

    real_commit = Session.commit

    def commit(self: Session) -> None:
        if self.info.pop("doomed", False):
            raise OperationalError("COMMIT", {}, Exception("database or disk is full"))
        real_commit(self)

    event.listen(Session, "before_flush", mark)
    monkeypatch.setattr(Session, "commit", commit)
    yield
    event.remove(Session, "before_flush", mark)


@pytest.mark.usefixtures("doomed_commits")
def test_a_commit_that_fails_is_an_error_not_a_201(admin_token: str) -> None:
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        response = client.post(
            "/api/v1/topics",
            json={"slug": "doomed", "name": "Doomed"},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
    assert response.status_code == 500
    with session_scope() as s:
        assert s.exec(select(Topic).where(Topic.slug == "doomed")).first() is None
