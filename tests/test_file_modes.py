"""What Octomail writes to disk is owner-only: var/, the SQLite database and its -wal/-shm,
var/secrets.json, the catcher's Maildirs and the poller's folders (issue 9, part 8)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from app.db import _engine_for
from app.inbound.sources import MaildirSource
from app.migrate import upgrade
from app.sending.catcher import catcher_handler, inbox_path, outbox_path
from app.settings import get_settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def fresh_var(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Path:
    """The embedded defaults on a var/ that does not exist yet, with a permissive umask
    (the modes must not depend on the operator's umask)."""
    monkeypatch.delenv("OCTOMAIL_SECRET_KEYS")
    monkeypatch.delenv("OCTOMAIL_SUPPRESSION_PEPPER")
    var = Path(env["OCTOMAIL_VAR_DIR"]) / "nested"
    monkeypatch.setenv("OCTOMAIL_VAR_DIR", str(var))
    get_settings.cache_clear()
    old = os.umask(0o002)
    yield var
    os.umask(old)


def test_database_secrets_and_var_are_owner_only(fresh_var: Path) -> None:
    settings = get_settings()
    assert settings.signing_keys  # generates var/secrets.json
    url = settings.effective_database_url
    engine = _engine_for(url)
    try:
        upgrade(engine)
        with engine.connect() as conn:  # an open connection keeps -wal and -shm around
            conn.execute(text("SELECT 1"))
            db = fresh_var / "octomail.db"
            files = [db, Path(f"{db}-wal"), Path(f"{db}-shm"), fresh_var / "secrets.json"]
            assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
            assert mode(fresh_var) == mode(fresh_var.parent) == 0o700
    finally:
        engine.dispose()


def test_catcher_maildirs_and_their_messages_are_owner_only(fresh_var: Path) -> None:
    settings = get_settings()
    handler = catcher_handler(settings)
    handler.store("news@example.org", "ann@example.org", b"Subject: hi\r\n\r\nhello\r\n")
    handler.store("ann@example.org", settings.unsubscribe_mailto, b"Subject: unsubscribe\r\n\r\n")
    for box in (outbox_path(settings), inbox_path(settings)):
        dirs = [box.parent, box, *(box / sub for sub in ("tmp", "new", "cur"))]
        assert {str(d): mode(d) for d in dirs} == {str(d): 0o700 for d in dirs}
        [message] = list((box / "new").iterdir())
        assert mode(message) == 0o600

    source = MaildirSource(inbox_path(settings))
    source.open()
    [uid] = source.list_uids()
    source.move([uid], "Processed")
    folder = inbox_path(settings) / ".Processed"
    assert {mode(folder / sub) for sub in ("tmp", "new", "cur")} | {mode(folder)} == {0o700}
