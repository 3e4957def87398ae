"""Integers from the outside world, bounded to what the database can hold.

Ids are INTEGER columns (32-bit on PostgreSQL): a larger number can name no row, and passed
to the driver it fails there (SQLite: OverflowError past 2**63, PostgreSQL: out of range) as
a 500. So every id that comes in a path, query or form is checked here first: a 422 that says
the range, never a database error.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from fastapi import Path, Query

MAX_DB_INT = 2**31 - 1

DbId = Annotated[int, Path(ge=1, le=MAX_DB_INT, description="A row id (1 to 2147483647).")]
"""An id in a path: `/subscribers/{subscriber_id}`."""

OptionalDbIdQuery = Annotated[int | None, Query(ge=1, le=MAX_DB_INT)]
"""An optional id in a query string."""


def form_ids(values: Iterable[str]) -> list[int]:
    """The ids in form values ("3", " 4 "); anything else is dropped. Only ASCII digits
    count (str.isdigit() also accepts '²', which int() refuses) and only ids a row can have."""
    ids: list[int] = []
    for value in values:
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 10:
            number = int(text)
            if 1 <= number <= MAX_DB_INT:
                ids.append(number)
    return ids
