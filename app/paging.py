"""Keyset paging: opaque cursors that carry the last row's sort key.

A cursor is base64url(JSON list of the sort key's values). It is opaque to clients but not
secret: it only says where the previous page ended. Anything that does not decode to the
expected shape is `InvalidCursor` (400), never a 500 and never a silently wrong page.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from app.errors import InvalidCursor

MAX_ID = 2**31 - 1
"""The database's integer range: a larger id in a cursor can only be a forged one."""


def encode(*values: int | str) -> str:
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, kinds: Sequence[type]) -> list[Any]:
    """The values of `cursor`, checked against `kinds` (int ids in range, or str)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise InvalidCursor(_MESSAGE) from exc
    if not isinstance(values, list) or len(values) != len(kinds):
        raise InvalidCursor(_MESSAGE)
    for value, kind in zip(values, kinds, strict=True):
        if kind is int and not (
            type(value) is int and 0 <= value <= MAX_ID  # bool is not an id
        ):
            raise InvalidCursor(_MESSAGE)
        if kind is str and not isinstance(value, str):
            raise InvalidCursor(_MESSAGE)
    return values


def decode_id(cursor: str) -> int:
    """A cursor holding one id (the last row of the previous page)."""
    return int(decode(cursor, (int,))[0])


_MESSAGE = "invalid cursor: pass the next_cursor of the previous page unchanged"
