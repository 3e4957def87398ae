"""Property test over CSV import rows (hypothesis): whatever the rows hold, no exception
escapes, every bad row is reported with its line number, and every good row is imported.

Rows mix random unicode (quotes, separators, CR/LF, BOMs, NUL, line separators), empty and
overlong fields, bad addresses, unknown topics, wrong column counts and undecodable bytes.
The expected verdict of each row and its physical line number are worked out here from how
the row was generated, not by the importer's own parsing.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from app.db import get_engine
from app.models import Subscriber, Subscription, Topic
from app.subscribers.fields import ATTRIBUTES_MAX_BYTES, NAME_MAX
from app.subscribers.importer import import_csv

TOPICS = ("news", "offers")
HEADER = ["email", "name", "topics", "note"]
_examples = itertools.count()

free_text = st.text(
    st.characters(codec="utf-8")
    | st.sampled_from(['"', ",", ";", "|", "\r", "\n", "\ufeff", "\x00", "\u2028", "=", "\t", " "]),
    max_size=40,
)
separators = st.sampled_from([";", ",", "|", " ; ", " , ", "|  "])
BAD_EMAILS = [
    "not-an-address",
    "a@@example.org",
    "@example.org",
    "ann@",
    "ann@example",
    "ann@" + "d" * 250 + ".org",
    "ann smith@example.org",
    "ann@exa mple.org",
    "\ufeffann@example.org",
    "ann@example.org\x00",
]


@st.composite
def rows(draw):
    """(kind, cells or raw bytes, expected topics, expected note) for one line."""
    kind = draw(
        st.sampled_from(
            [
                "good",
                "good",
                "good",
                "bad_email",
                "unknown_topic",
                "no_topic",
                "too_many_columns",
                "overlong_note",
                "nul_note",
                "undecodable",
                "blank",
                "missing_email",
            ]
        )
    )
    name = draw(free_text | st.text(min_size=NAME_MAX, max_size=NAME_MAX + 100))
    note = draw(free_text | st.just("") | st.text("xé", min_size=100, max_size=3000))
    if kind == "nul_note":
        note = draw(free_text) + "\x00" + draw(free_text)
    elif "\x00" in note:
        note = note.replace("\x00", "")
    if kind == "overlong_note":
        note = "x" * (ATTRIBUTES_MAX_BYTES + draw(st.integers(1, 500)))
    slugs = draw(st.lists(st.sampled_from(TOPICS), min_size=1, max_size=3))
    if kind == "unknown_topic":
        slugs.insert(draw(st.integers(0, len(slugs))), "no-such-topic")
    if kind == "no_topic":
        slugs = []
    cell = draw(separators).join(slugs)
    cells = ["", name, cell, note]
    if kind == "too_many_columns":
        cells.append(draw(free_text))
    if kind == "bad_email":
        cells[0] = draw(
            st.sampled_from(BAD_EMAILS) | free_text.filter(lambda s: "@" not in s and s.strip())
        )
    if kind == "blank":
        cells = [draw(st.sampled_from(["", " ", "  "])) for _ in HEADER]
    if kind == "missing_email":
        cells[0] = draw(st.sampled_from(["", " "]))
        cells[1] = cells[1].strip() or "Someone"
    undecodable = kind == "undecodable"
    return kind, cells, {s for s in slugs if s in TOPICS}, note.strip(), undecodable


def _line_breaks(text: str) -> int:
    """Physical lines a record spans beyond its first (CR, LF and CRLF each end a line)."""
    return len(re.findall(r"\r\n|\r|\n", text))


def _is_one_line(name: str) -> bool:
    return not any(unicodedata.category(c) == "Cc" or c in "\u2028\u2029" for c in name)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(generated=st.lists(rows(), min_size=1, max_size=12), bom=st.booleans())
def test_any_rows_good_import_bad_are_reported_by_line(session, generated, bom) -> None:
    for slug in TOPICS:
        if session.exec(select(Topic).where(Topic.slug == slug)).first() is None:
            session.add(Topic(slug=slug, name=slug.title()))
    session.commit()
    domain = f"run{next(_examples)}.example.org"

    data = io.BytesIO()
    data.write(("\ufeff" if bom else "").encode() + b"email,name,topics,note\r\n")
    line = 1
    good: dict[str, tuple[set[str], str]] = {}
    bad_lines: set[int] = set()
    for index, (kind, cells, topics, note, undecodable) in enumerate(generated):
        if kind in (
            "good",
            "undecodable",
            "overlong_note",
            "nul_note",
            "unknown_topic",
            "no_topic",
            "too_many_columns",
        ):
            cells[0] = f" P{index}.{kind}@{domain.upper() if index % 2 else domain} "
        buffer = io.StringIO()
        csv.writer(buffer).writerow(cells)
        record = buffer.getvalue().encode()
        if undecodable:
            cells[1] = "UNDECODABLE"
            buffer = io.StringIO()
            csv.writer(buffer).writerow(cells)
            record = buffer.getvalue().encode().replace(b"UNDECODABLE", b"Ann \xff\xfe")
        data.write(record)
        line += 1 + _line_breaks(buffer.getvalue()[:-2])
        if kind == "blank":
            continue
        if kind == "good":
            good[f"p{index}.good@{domain}"] = (topics, note)
        else:
            bad_lines.add(line)

    report = import_csv(get_engine(), io.BytesIO(data.getvalue()), consent_source="property")

    assert {e.line for e in report.errors} == bad_lines, (report.errors, data.getvalue()[:3000])
    assert report.error_count == len(bad_lines)
    assert all(e.reason for e in report.errors)
    assert report.rows == len(good) + len(bad_lines)
    assert report.imported == len(good)
    with Session(get_engine()) as s:
        people = {
            p.email: p
            for p in s.exec(select(Subscriber).where(Subscriber.email.endswith("@" + domain)))
        }
        assert set(people) == set(good)
        slugs = {t.id: t.slug for t in s.exec(select(Topic))}
        for email, person in people.items():
            topics, note = good[email]
            subscribed = {
                slugs[sub.topic_id]
                for sub in s.exec(
                    select(Subscription).where(Subscription.subscriber_id == person.id)
                )
            }
            assert subscribed == topics
            assert person.attributes == ({"note": note} if note else {})
            assert len(person.name) <= NAME_MAX
            assert _is_one_line(person.name)
