"""The segment builder's form: rows of field / operator / value as posted, to the rules the
segments service takes (app/segments/rules.py), and a rule back to a row. Pure.

A row posts `field_N` (status, topic, source, created_at, attributes, opened, clicked),
`key_N` (the attribute's name, for attributes), `op_N` and `value_N` (for `in`, values
separated by commas). Attribute values are read as JSON scalars where they look like one
(42, 1.5, true, false) and as text otherwise; quotes force text ("42").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from app.segments.rules import MAX_RULES, OPERATORS

FIELDS = (
    ("attributes", "Attribute"),
    ("status", "Status"),
    ("topic", "Topic"),
    ("source", "Source"),
    ("created_at", "Sign-up date"),
    ("opened", "Opened (days)"),
    ("clicked", "Clicked (days)"),
)
OPERATOR_LABELS = (
    ("=", "is (=)"),
    ("!=", "is not (!=)"),
    ("in", "is one of (in)"),
    ("contains", "contains"),
    ("<", "less than / before (<)"),
    (">", "more than / after (>)"),
)
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_RULE_NUMBER = re.compile(r"^rule (\d+)")


@dataclass
class Row:
    field: str = "attributes"
    key: str = ""
    op: str = "="
    value: str = ""


@dataclass
class SegmentForm:
    name: str = ""
    match: str = "all"
    rows: list[Row] = field(default_factory=list)

    @classmethod
    def of(cls, name: str, match: str, rules: list[dict[str, Any]]) -> SegmentForm:
        return cls(name, match, [row_of(r) for r in rules] or [Row()])

    def rules(self) -> list[dict[str, Any]]:
        """The rows as rules; a row left completely empty is ignored."""
        return [rule_of(row) for row in self.rows if row.key or row.value.strip()]


def row_of(rule: dict[str, Any]) -> Row:
    name, op, value = str(rule.get("field", "")), str(rule.get("op", "=")), rule.get("value")
    key = ""
    if name.startswith("attributes."):
        name, key = "attributes", name.removeprefix("attributes.")
    items = value if isinstance(value, list) else [value]
    return Row(name, key, op, ", ".join(_shown(v, name == "attributes") for v in items))


def _shown(value: Any, typed: bool) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, str) and typed and (_NUMBER.match(value) or value in ("true", "false")):
        return json.dumps(value)  # "42": text that would read as a number
    return str(value)


def _attribute_value(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    if _NUMBER.match(text):
        return float(text) if "." in text else int(text)
    return text


def _value(row: Row) -> Any:
    parts = [p.strip() for p in row.value.split(",")] if row.op == "in" else [row.value.strip()]
    if row.field == "attributes":
        values = [p if row.op == "contains" else _attribute_value(p) for p in parts]
    elif row.field in ("opened", "clicked"):
        values = [int(p) if p.isascii() and p.isdigit() else p for p in parts]
    else:
        values = parts
    return values if row.op == "in" else values[0]


def rule_of(row: Row) -> dict[str, Any]:
    name = f"attributes.{row.key.strip()}" if row.field == "attributes" else row.field
    return {"field": name, "op": row.op, "value": _value(row)}


def parse(data: dict[str, str]) -> SegmentForm:
    """The posted fields (as a plain dict) to a form; rows are numbered 0..MAX_RULES-1."""
    rows = []
    for n in range(MAX_RULES):
        if f"field_{n}" not in data:
            continue
        op = data.get(f"op_{n}", "=")
        rows.append(
            Row(
                field=data.get(f"field_{n}", ""),
                key=data.get(f"key_{n}", "").strip(),
                op=op if op in OPERATORS else "=",
                value=data.get(f"value_{n}", ""),
            )
        )
    match = data.get("match", "all")
    return SegmentForm(data.get("name", ""), match if match in ("all", "any") else "all", rows)


def error_field(message: str, form: SegmentForm) -> str:
    """The form field a service error is about: `rule 2 (...)` -> value_N of the second
    non-empty row; anything else -> the whole form."""
    found = _RULE_NUMBER.match(message)
    if not found:
        return "name" if message.startswith("name") or "named" in message else "form"
    wanted = int(found.group(1))
    seen = 0
    for n, row in enumerate(form.rows):
        if row.key or row.value.strip():
            seen += 1
            if seen == wanted:
                if "attribute names" in message:
                    return f"key_{n}"
                return f"op_{n}" if "operator" in message else f"value_{n}"
    return "form"
