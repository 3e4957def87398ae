"""Streamed CSV import: bad rows are reported by line number, good rows go in, re-importing
the same file changes nothing, suppressed addresses are never re-subscribed."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any, BinaryIO, cast

from sqlalchemy import Engine, select
from sqlmodel import Session

from app.errors import InvalidInput
from app.mail.addresses import keyed_hasher, normalize_email
from app.models import Topic, saved_id
from app.settings import Settings, get_settings
from app.subscribers.fields import ATTRIBUTES_MAX_BYTES, NAME_MAX, clean_name
from app.subscribers.import_writer import (
    EMAIL,
    LINE,
    BatchCounts,
    BatchWriter,
    ImportRow,
)

BATCH_SIZE = 10_000
MAX_REPORTED_ERRORS = 1000
MAX_CACHED_TOPIC_CELLS = 10_000
_TOPIC_SEPARATORS = str.maketrans({";": ",", "|": ","})
_RESERVED = {"email", "name", "topics"}


@dataclass(frozen=True, slots=True)
class RowError:
    """Why one CSV row was not imported."""

    line: int
    """The row's line number in the file (1 is the header)."""
    value: str
    """The cell at fault ("" when it is the whole row)."""
    reason: str
    """One sentence for the person who made the file; it names the value when that helps."""


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    """Rows that created a subscriber or a new subscription."""
    skipped: int = 0
    """Valid rows with nothing to do: duplicates, already subscribed, opted out, suppressed."""
    suppressed: int = 0
    error_count: int = 0
    errors: list[RowError] = field(default_factory=list)
    duplicates: list[tuple[int, int]] = field(default_factory=list)
    """(line, line of its first occurrence) of rows skipped as the same address again in the
    file (at most `max_errors` kept): the person who made the file can find them."""
    max_errors: int = MAX_REPORTED_ERRORS
    """Errors kept in `errors` (all are counted)."""

    def add_error(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < self.max_errors:
            self.errors.append(error)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "imported": self.imported,
            "skipped": self.skipped,
            "suppressed": self.suppressed,
            "error_count": self.error_count,
            "errors": [{"line": e.line, "reason": e.reason} for e in self.errors],
        }


def _text_lines(raw: Iterable[bytes] | BinaryIO) -> Iterable[str]:
    """Decode in C; bytes that are not UTF-8 become lone surrogates, caught per row."""
    if hasattr(raw, "readable"):  # a binary file, not an iterable of lines
        return io.TextIOWrapper(
            cast(BinaryIO, raw),
            encoding="utf-8-sig",
            errors="surrogateescape",
            newline="",
        )
    return (line.decode("utf-8", "surrogateescape") for line in raw)


def import_csv(
    engine: Engine,
    raw_lines: Iterable[bytes] | BinaryIO,
    *,
    consent_source: str,
    topic_slug: str | None = None,
    file_name: str | None = None,
    progress: Callable[[int], None] | None = None,
    settings: Settings | None = None,
    max_errors: int = MAX_REPORTED_ERRORS,
) -> ImportReport:
    """Import subscribers from CSV bytes (any iterable of lines: a file, an upload stream).

    Every batch commits on its own, so memory stays flat and an interrupted import can simply
    be run again. The importer attests the people consented: `consent_source` is logged with
    each new subscription. The steps: check the request, read the header, then parse the
    rows into batches, each written while the next is parsed.
    """
    settings = settings or get_settings()
    source = _required_consent_source(consent_source)
    topics = _known_topics(engine, topic_slug)
    reader = csv.reader(_text_lines(raw_lines))
    parser = _RowParser(
        _read_header(reader), topics, topics[topic_slug] if topic_slug else None, settings.pepper
    )
    report = ImportReport(max_errors=max_errors)
    writer = _WriteBehind(BatchWriter(engine, source, file_name, settings.policy_version), report)
    try:
        for rows in _valid_batches(reader, parser, report):
            writer.submit(rows)
            if progress and len(rows) >= BATCH_SIZE:
                progress(report.rows)
        writer.finish()
    finally:
        writer.close()
    if progress:
        progress(report.rows)
    report.errors.sort(key=lambda e: e.line)
    return report


def check_header(raw: BinaryIO) -> list[str]:
    """The file's header, or InvalidInput saying what is wrong with it (as the import would):
    lets a caller refuse a file before it starts the import in the background."""
    return _read_header(csv.reader(_text_lines(raw)))


def _required_consent_source(consent_source: str) -> str:
    """How these people consented, as logged (at most 500 characters); it must be said."""
    if not consent_source or not consent_source.strip():
        raise InvalidInput("a consent source is required: say how these people consented")
    return consent_source.strip()[:500]


def _known_topics(engine: Engine, topic_slug: str | None) -> dict[str, int]:
    """Every topic's id by slug; the import's own topic, if named, must be one of them."""
    with Session(engine) as session:
        topics = {t.slug: saved_id(t) for t in session.scalars(select(Topic))}
    if topic_slug and topic_slug not in topics:
        raise InvalidInput(f"unknown topic: {topic_slug}")
    return topics


def _valid_batches(
    reader: Any, parser: _RowParser, report: ImportReport
) -> Iterator[list[ImportRow]]:
    """The valid rows in batches of BATCH_SIZE distinct addresses (the last one smaller).
    Counts every row in the report and records the bad ones there; a blank line is no row.
    One loop, not a pipeline of generators: it runs once per row of a million-row file."""
    batch: dict[str, ImportRow] = {}
    parse = parser.parse
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            report.rows += 1
            report.add_error(RowError(reader.line_num, "", f"unreadable CSV: {exc}"))
            continue
        row = parse(values, reader.line_num)
        if row is None:
            continue  # a blank line
        report.rows += 1
        if isinstance(row, RowError):
            report.add_error(row)
        elif row[EMAIL] in batch:
            report.skipped += 1  # the same address again in this batch
            if len(report.duplicates) < report.max_errors:
                report.duplicates.append((row[LINE], batch[row[EMAIL]][LINE]))
        else:
            batch[row[EMAIL]] = row
            if len(batch) >= BATCH_SIZE:
                yield list(batch.values())
                batch = {}
    if batch:
        yield list(batch.values())


class _WriteBehind:
    """Writes one batch in a thread while the next is parsed: the database works on the
    other core while Python validates addresses. Each batch's counts go to the report."""

    def __init__(self, writer: BatchWriter, report: ImportReport) -> None:
        self.writer, self.report = writer, report
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer")
        self.pending: Future[BatchCounts] | None = None

    def submit(self, rows: list[ImportRow]) -> None:
        """Wait for the batch being written (its error, if any, stops the import), then
        start writing this one."""
        self.finish()
        self.pending = self.pool.submit(self.writer.write, rows)

    def finish(self) -> None:
        """Wait for the batch being written and count it."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            _merge(self.report, pending.result())

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _merge(report: ImportReport, counts: BatchCounts) -> None:
    report.imported += counts.imported
    report.skipped += counts.skipped
    report.suppressed += counts.suppressed


def _read_header(reader: Any) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput(
            "the file is empty: expected a header line with an 'email' column"
        ) from None
    except csv.Error as exc:
        raise InvalidInput(f"line 1: unreadable CSV header: {exc}") from exc
    if "email" not in [h.strip().lower() for h in header]:
        raise InvalidInput("line 1: the header has no 'email' column")
    if any("\x00" in h for h in header):
        raise InvalidInput("line 1: a column name contains a NUL character")
    return header


class _RowParser:
    """Turns one CSV record into an ImportRow or a RowError; None for a blank line.

    Called a million times in a large import, so the per-file work (column positions, JSON
    keys, topic cells seen before) is done once and the common case takes the short path.
    """

    def __init__(
        self, header: list[str], topics: dict[str, int], batch_topic: int | None, pepper: bytes
    ) -> None:
        columns = [h.strip().lower() for h in header]
        self.width = len(columns)
        self.email_at = columns.index("email")
        self.name_at = columns.index("name") if "name" in columns else None
        self.topics_at = columns.index("topics") if "topics" in columns else None
        self.extra = [
            (i, _json_string(header[i].strip()) + ": ")
            for i, c in enumerate(columns)
            if c not in _RESERVED and c
        ]
        self.topics = topics
        self.batch_topic = (batch_topic,) if batch_topic is not None else ()
        self.hash = keyed_hasher(pepper)
        self._topic_cells: dict[str, tuple[int, ...] | RowError] = {}

    def parse(self, values: list[str], line: int) -> ImportRow | RowError | None:
        if (
            len(values) != self.width
            or not values[self.email_at]
            or values[self.email_at].isspace()
        ):  # a line of blanks is a blank line
            if not any(v.strip() for v in values):
                return None
            if len(values) > self.width:
                return RowError(line, "", f"expected {self.width} columns, found {len(values)}")
            values = values + [""] * (self.width - len(values))
        if not "".join(values).isascii() and _has_bad_bytes(values):
            return RowError(line, "", "not valid UTF-8 text")
        try:
            email = normalize_email(values[self.email_at])
        except InvalidInput as exc:
            return RowError(line, values[self.email_at], str(exc))
        topic_ids = (
            self._topic_ids(values[self.topics_at])
            if self.topics_at is not None
            else self.batch_topic
        )
        if isinstance(topic_ids, RowError):
            return replace(topic_ids, line=line)
        name = ""
        if self.name_at is not None:
            name = values[self.name_at].strip()[:NAME_MAX]
            if not name.isprintable():  # rare: control characters or line separators
                name = clean_name(values[self.name_at])
        attributes = (
            "{"
            + ", ".join(
                [key + _json_string(value) for i, key in self.extra if (value := values[i].strip())]
            )
            + "}"
        )
        if len(attributes) > ATTRIBUTES_MAX_BYTES and _json_size(attributes) > ATTRIBUTES_MAX_BYTES:
            return RowError(
                line,
                "",
                f"the extra columns are too large: more than "
                f"{ATTRIBUTES_MAX_BYTES:,} bytes together",
            )
        if "\\u0000" in attributes and any("\x00" in values[i] for i, _key in self.extra):
            # PostgreSQL's JSONB refuses it: report the row rather than fail its batch.
            return RowError(line, "", "an extra column contains a NUL character")
        return line, email, self.hash(email), name, attributes, topic_ids

    def _topic_ids(self, cell: str) -> tuple[int, ...] | RowError:
        """Topic ids of a cell ("news;offers"), or why it is wrong (a RowError whose line the
        caller sets); cells repeat, so cached."""
        known = self._topic_cells.get(cell)
        if known is not None:
            return known
        topic_ids = list(self.batch_topic)
        result: tuple[int, ...] | RowError
        for slug in cell.translate(_TOPIC_SEPARATORS).split(","):
            slug = slug.strip()
            if not slug:
                continue
            if slug not in self.topics:
                result = RowError(0, slug, f"unknown topic: {slug}")
                break
            if self.topics[slug] not in topic_ids:
                topic_ids.append(self.topics[slug])
        else:
            result = (
                tuple(topic_ids)
                if topic_ids
                else RowError(
                    0, cell, "no topic: pass a topic for the import or fill the topics column"
                )
            )
        if len(self._topic_cells) < MAX_CACHED_TOPIC_CELLS:
            self._topic_cells[cell] = result
        return result


def _has_bad_bytes(values: list[str]) -> bool:
    try:
        "".join(values).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _json_size(attributes: str) -> int:
    """Bytes of the attributes as compact UTF-8 JSON, as check_attributes counts them."""
    return len(
        json.dumps(json.loads(attributes), ensure_ascii=False, separators=(",", ":")).encode()
    )
