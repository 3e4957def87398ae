"""Log line formats (text, JSON), the request id filter and the scrubber: standard
library only, because uvicorn applies its logging config in each worker process before
that process answers its supervisor's health check (a heavy import here got workers
killed at start-up on a loaded machine). The pepper is read when a line first holds an
address, not when logging is set up.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import sys
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

REQUEST_ID: ContextVar[str | None] = ContextVar("octomail_request_id", default=None)
"""The id of the request being answered (set by app/web/observe.py), on every log line."""

_NOT_IN_ADDRESS = r"\s<>()\[\]\"',;:@/\\"
_ADDRESS = re.compile(rf"[^{_NOT_IN_ADDRESS}]+@[^{_NOT_IN_ADDRESS}]+\.[^{_NOT_IN_ADDRESS}.]+")
_OWN_MESSAGE_ID = "octomail-"
_TOKEN = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+|octo_[A-Za-z0-9_-]{8,}")
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "taskName",
    "color_message",  # uvicorn's copy of the message with terminal colours
}
MARK = "_octomail_handler"


class Scrubber:
    """Replaces addresses by their keyed hash and tokens by a marker, in any text."""

    def __init__(self, pepper: Callable[[], bytes]) -> None:
        self._pepper = pepper
        self._key: bytes | None = None

    def hashed(self, address: str) -> str:
        if self._key is None:
            try:
                self._key = self._pepper()
            except Exception:  # noqa: BLE001 - no pepper readable: hide the address entirely
                return "addr:?"
        return "addr:" + keyed_hash(self._key, address)

    def _replace(self, match: re.Match[str]) -> str:
        found = match.group(0)
        # Our own Message-IDs (<octomail-signup.1f...@domain>) name no one and tie a line to
        # the receiving server's logs: kept.
        return found if found.startswith(_OWN_MESSAGE_ID) else self.hashed(found)

    def __call__(self, text: str) -> str:
        if "@" in text:
            text = _ADDRESS.sub(self._replace, text)
        if "earer" in text or "octo_" in text:
            text = _TOKEN.sub(lambda m: (m.group(1) or "") + "[token]", text)
        return text


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class TextFormatter(logging.Formatter):
    def __init__(self, scrub: Scrubber) -> None:
        super().__init__("%(asctime)s %(process)d %(levelname)s %(name)s%(rid)s: %(message)s")
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        record.rid = f" [{rid}]" if rid else ""
        return self.scrub(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message, request_id, process,
    the `extra` fields given to the call, and the exception's traceback as text."""

    def __init__(self, scrub: Scrubber) -> None:
        super().__init__()
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": self.scrub(record.getMessage()),
            "process": record.process,
        }
        if rid := getattr(record, "request_id", None):
            entry["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key != "rid" and not key.startswith("_"):
                entry[key] = self.scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = self.scrub(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = self.scrub(self.formatStack(record.stack_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def keyed_hash(pepper: bytes, address: str) -> str:
    """12 hex digits of the address's HMAC-SHA256 under the pepper (the suppression list's
    hash, app/mail/addresses.py, cut short): the same address, the same hash."""
    data = address.strip().lower().encode()
    return hmac.new(pepper, data, hashlib.sha256).hexdigest()[:12]


def _settings_pepper() -> bytes:
    # Imported at the first address to hash, not when uvicorn's worker sets logging up.
    from app.settings import get_settings

    return get_settings().pepper


def make_handler(
    fmt: str = "text",
    stream: TextIO | None = None,
    pepper: Callable[[], bytes] = _settings_pepper,
) -> logging.Handler:
    """A stream handler (stderr by default) with the request id filter and the scrubbing
    text or JSON formatter; `logging.config` builds it by this name in uvicorn's workers."""
    scrub = Scrubber(pepper)
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, MARK, True)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter(scrub) if fmt == "json" else TextFormatter(scrub))
    return handler
