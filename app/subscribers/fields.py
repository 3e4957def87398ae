"""What a stored subscriber's free fields may hold: a one-line name, bounded attributes.

Enforced here, in the domain, so every channel (API, sign-up form, CSV import, preference
center) stores the same thing. A name goes into mail headers (`To: Name <address>`): a CR/LF
or a Unicode line separator in it made the confirmation mail fail to build. Attributes are
walked by templates, filters and the JSON encoder: unbounded nesting overflowed them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from app.errors import InvalidInput

NAME_MAX = 200
ATTRIBUTES_MAX_DEPTH = 8
"""Objects and lists inside the attributes object."""
ATTRIBUTES_MAX_BYTES = 16_384
"""The attributes as compact JSON."""

# C0/C1 controls, DEL, and the Unicode line/paragraph separators: none belongs in a name.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def clean_name(name: str | None) -> str:
    """The name on one line: control characters and line separators become spaces, runs of
    blanks collapse, at most NAME_MAX characters. Cheap for the common case (imports)."""
    if not name:
        return ""
    if not name.isprintable():  # False for every character _CONTROL matches (and a few more)
        name = " ".join(_CONTROL.sub(" ", name).split())
    return name.strip()[:NAME_MAX].strip()


def check_attributes(attributes: Any) -> dict[str, Any]:
    """The attributes object, or InvalidInput saying which limit it breaks."""
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise InvalidInput("attributes must be a JSON object")
    stack: list[tuple[Any, int]] = [(attributes, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > ATTRIBUTES_MAX_DEPTH:
            raise InvalidInput(f"attributes are nested deeper than {ATTRIBUTES_MAX_DEPTH} levels")
        children = [*value, *value.values()] if isinstance(value, dict) else value
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
            elif isinstance(child, str) and "\x00" in child:
                # PostgreSQL's JSONB cannot hold it (SQLite can): refused on both alike.
                raise InvalidInput("attributes must not contain NUL characters")
    size = len(json.dumps(attributes, ensure_ascii=False, separators=(",", ":")).encode())
    if size > ATTRIBUTES_MAX_BYTES:
        raise InvalidInput(
            f"attributes are too large: {size:,} bytes as JSON, "
            f"the limit is {ATTRIBUTES_MAX_BYTES:,}"
        )
    return attributes
