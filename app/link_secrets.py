"""Per-subscriber link secrets: every signed link carries its person's tag and dies with them.

`subscriber.link_secret` (32 random hex characters) never leaves the database. Each signed
link (unsubscribe, one-click, mailto subject, preferences, erase, confirm, email-optout, data
export) and each campaign Message-ID carries `link_tag(secret)` inside its signed payload;
on use the tag must match the row's. Erasure deletes the row, so all of a person's links stop
at once, and a link can never act on another person, even were an id handed out again.

Links signed before migration 0004 carry no tag (LEGACY). They keep working for the people
who existed then (`subscriber.legacy_links`, set by the migration) and for nobody created
after it: old mail in old mailboxes keeps its unsubscribe link, and cannot reach a newcomer.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

LEGACY = ""
"""The tag of a link signed before migration 0004 (it has none)."""
TAG_LENGTH = 12
_TAG = re.compile(r"[0-9a-f]{12}")


def link_tag(secret: str) -> str:
    """The short value a link carries for `secret`: 48 bits of SHA-256, hex.

    Links are signed with the server's keys, so the tag need not resist forgery by itself;
    it only has to differ between people. Deriving it keeps the stored secret out of mail."""
    return hashlib.sha256(b"octomail-link\0" + secret.encode()).hexdigest()[:TAG_LENGTH]


def link_matches(tag: str, secret: str | None, legacy_links: bool) -> bool:
    """Whether a link carrying `tag` belongs to the row holding (`secret`, `legacy_links`)."""
    if secret is None:
        return False
    if tag == LEGACY:
        return bool(legacy_links)
    return hmac.compare_digest(tag, link_tag(secret))


def read_tag(value: Any) -> str | None:
    """A tag from a verified token payload, or None when the element is not one."""
    if isinstance(value, str) and _TAG.fullmatch(value):
        return value
    return None
