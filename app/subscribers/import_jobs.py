"""CSV imports started from the admin pages, run in a background thread so a large file
neither holds the request open nor hits a proxy's timeout; the page polls their progress.

A job is a folder under OCTOMAIL_VAR_DIR/imports/<id>/ (owner-only): the uploaded file
while it runs, `state.json` (progress, counts, the first errors; replaced atomically) and
`rejected.csv` (every rejected line: line, value, reason and the row as it was). Files,
not a table: no migration, and any process on the host can read a job's state. The upload
is deleted when the import ends; a job folder is deleted after KEEP_DAYS. The import itself
is `import_csv`, the same as the API's and the CLI's (which stay synchronous).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlmodel import Session, select

from app.db import get_engine
from app.errors import InvalidInput, OctomailError
from app.files import private_dir
from app.models import Topic
from app.settings import Settings, get_settings
from app.subscribers.directory import cell
from app.subscribers.importer import ImportReport, check_header, import_csv

log = logging.getLogger(__name__)

KEEP_DAYS = 7
STALE_SECONDS = 600
"""A running job whose state has not moved for this long died with its process."""
SHOWN_ERRORS = 1000
KEPT_ERRORS = 100_000
_ID = re.compile(r"^[a-f0-9]{16}$")
_CHUNK = 1 << 20


@dataclass
class ImportJob:
    id: str
    file_name: str
    topic: str | None
    consent_source: str
    by: str
    size: int
    lines: int
    """Lines in the file (the header included): the progress bar's end."""
    status: str = "running"
    """running, done, failed, or interrupted (the process stopped during the import)."""
    message: str = ""
    started_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    rows: int = 0
    imported: int = 0
    skipped: int = 0
    suppressed: int = 0
    error_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    """The first SHOWN_ERRORS: {line, value, reason}, by line."""

    @property
    def percent(self) -> int:
        if self.status != "running":
            return 100
        return min(99, round(100 * self.rows / max(1, self.lines - 1)))


def _root(settings: Settings) -> Path:
    return private_dir(settings.var_dir / "imports")


def job_dir(job_id: str, settings: Settings | None = None) -> Path | None:
    """The job's folder, or None for an id that is not one of ours (no path tricks)."""
    if not _ID.match(job_id):
        return None
    path = _root(settings or get_settings()) / job_id
    return path if path.is_dir() else None


def check_request(consent_source: str, topic_slug: str | None) -> dict[str, str]:
    """Field errors of an import request, before any file is read."""
    errors: dict[str, str] = {}
    if not consent_source.strip():
        errors["consent_source"] = "Say how the people in this file consented"
    if topic_slug:
        with Session(get_engine()) as session:
            if session.exec(select(Topic).where(Topic.slug == topic_slug)).first() is None:
                errors["topic"] = f"Unknown topic: {topic_slug}"
    return errors


def start(
    upload: BinaryIO,
    *,
    file_name: str,
    consent_source: str,
    topic_slug: str | None,
    by: str,
    settings: Settings | None = None,
) -> str:
    """Save the upload, check its header (InvalidInput, and nothing is kept), start the
    import in a thread; returns the job's id."""
    settings = settings or get_settings()
    _forget_old(settings)
    job_id = secrets.token_hex(8)
    folder = private_dir(_root(settings) / job_id)
    try:
        size, lines = _save(upload, folder / "upload.csv")
        with open(folder / "upload.csv", "rb") as raw:
            check_header(raw)
    except (InvalidInput, OSError):
        shutil.rmtree(folder, ignore_errors=True)
        raise
    job = ImportJob(
        job_id, file_name[:200], topic_slug, consent_source.strip()[:500], by, size, lines
    )
    _write(folder, job)
    threading.Thread(
        target=_run, args=(folder, job, settings), name=f"import-{job_id}", daemon=True
    ).start()
    return job_id


def read(job_id: str, settings: Settings | None = None) -> ImportJob | None:
    folder = job_dir(job_id, settings)
    if folder is None:
        return None
    try:
        job = ImportJob(**json.loads((folder / "state.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    if job.status == "running" and time.time() - job.updated_at > STALE_SECONDS:
        job.status = "interrupted"
        job.message = (
            "The import stopped (the server was restarted?). Import the same file again: "
            "rows already imported are skipped."
        )
    return job


def rejected_csv(job_id: str, settings: Settings | None = None) -> Iterator[bytes] | None:
    """The rejected lines' CSV in chunks, or None when there is none."""
    folder = job_dir(job_id, settings)
    if folder is None or not (folder / "rejected.csv").is_file():
        return None
    path = folder / "rejected.csv"

    def chunks() -> Iterator[bytes]:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                yield chunk

    return chunks()


def _save(upload: BinaryIO, path: Path) -> tuple[int, int]:
    """Copy the upload (size, line count); the body size limit was applied on the way in."""
    size = lines = 0
    last = b""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := upload.read(_CHUNK):
            out.write(chunk)
            size += len(chunk)
            lines += chunk.count(b"\n")
            last = chunk
    if size and not last.endswith(b"\n"):
        lines += 1
    return size, lines


def _write(folder: Path, job: ImportJob) -> None:
    job.updated_at = time.time()
    temporary = folder / "state.json.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(asdict(job), out)
    os.replace(temporary, folder / "state.json")


def _run(folder: Path, job: ImportJob, settings: Settings) -> None:
    def progress(rows: int) -> None:
        job.rows = rows
        _write(folder, job)

    upload = folder / "upload.csv"
    try:
        with open(upload, "rb") as raw:
            report = import_csv(
                get_engine(settings),
                raw,
                consent_source=job.consent_source,
                topic_slug=job.topic,
                file_name=job.file_name,
                progress=progress,
                settings=settings,
                max_errors=KEPT_ERRORS,
            )
        _finish(folder, job, report, upload)
    except OctomailError as exc:
        job.status, job.message = "failed", str(exc)
    except Exception:
        log.exception("import %s failed", job.id)
        job.status, job.message = "failed", "The import failed on the server; see its log."
    finally:
        upload.unlink(missing_ok=True)
        _write(folder, job)


def _finish(folder: Path, job: ImportJob, report: ImportReport, upload: Path) -> None:
    job.rows, job.imported, job.skipped = report.rows, report.imported, report.skipped
    job.suppressed, job.error_count = report.suppressed, report.error_count
    job.errors = [
        {"line": e.line, "value": e.value, "reason": e.reason} for e in report.errors[:SHOWN_ERRORS]
    ]
    if report.errors:
        _write_rejected(folder / "rejected.csv", report, upload)
    job.status = "done"


def _write_rejected(path: Path, report: ImportReport, upload: Path) -> None:
    """line, value, reason, then the rejected row's own cells under the file's header."""
    reasons = {e.line: e for e in report.errors}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with (
        os.fdopen(fd, "w", encoding="utf-8", errors="replace", newline="") as out,
        open(upload, encoding="utf-8-sig", errors="replace", newline="") as source,
    ):
        writer = csv.writer(out)
        reader = csv.reader(source)
        header = next(reader, [])
        writer.writerow(["line", "value", "reason", *header])
        for line, cells in _records(reader):
            error = reasons.pop(line, None)
            if error is not None:
                writer.writerow([line, cell(error.value), error.reason, *map(cell, cells)])
        for error in reasons.values():  # unreadable lines: no cells to give
            writer.writerow([error.line, cell(error.value), error.reason])


def _records(reader: Any) -> Iterator[tuple[int, list[str]]]:
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error:
            continue
        yield reader.line_num, cells


def _forget_old(settings: Settings) -> None:
    """Jobs older than KEEP_DAYS go: their reports name people."""
    limit = time.time() - KEEP_DAYS * 86400
    for folder in _root(settings).iterdir():
        try:
            if folder.is_dir() and folder.stat().st_mtime < limit:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue
