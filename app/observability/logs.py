"""Logging for every process: text or JSON lines (OCTOMAIL_LOG_FORMAT), request ids, and
no personal data.

Code logs ids and keyed hashes (`hashed(address)`), never an address, a name, a token or a
key. Two nets catch what a message or an exception text carries anyway: anything shaped
like an address becomes `addr:` and 12 hex digits of its keyed hash (the same address
gives the same hash, so lines about one person still line up), and bearer or API tokens
become `[token]`. Third-party loggers stay at WARNING whatever OCTOMAIL_LOG_LEVEL says:
at DEBUG, SQLAlchemy logs statement parameters, aiosmtpd ('mail.log') the SMTP
conversation and httpx the URLs, all of which hold addresses or tokens.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from app.mail.addresses import keyed_hasher
from app.settings import Settings, get_settings

REQUEST_ID: ContextVar[str | None] = ContextVar("octomail_request_id", default=None)
"""The id of the request being answered (set by app/web/observe.py), on every log line."""

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
_NOT_IN_ADDRESS = r"\s<>()\[\]\"',;:@/\\"
_ADDRESS = re.compile(rf"[^{_NOT_IN_ADDRESS}]+@[^{_NOT_IN_ADDRESS}]+\.[^{_NOT_IN_ADDRESS}.]+")
_OWN_MESSAGE_ID = "octomail-"
_TOKEN = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+|octo_[A-Za-z0-9_-]{8,}")
_OWN_LOGGERS = ("app", "octomail")
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "taskName",
    "color_message",  # uvicorn's copy of the message with terminal colours
}
_MARK = "_octomail_handler"


def accept_request_id(value: str | None) -> str:
    """The caller's X-Request-ID when it is a plain token (no spaces, no control
    characters, at most 128 characters: it goes into headers and logs), else a new one."""
    if value and _VALID_REQUEST_ID.match(value):
        return value
    return uuid.uuid4().hex


class Scrubber:
    """Replaces addresses by their keyed hash and tokens by a marker, in any text."""

    def __init__(self, pepper: Callable[[], bytes]) -> None:
        self._pepper = pepper
        self._hash: Callable[[str], str] | None = None

    def hashed(self, address: str) -> str:
        if self._hash is None:
            try:
                self._hash = keyed_hasher(self._pepper())
            except Exception:  # noqa: BLE001 - no pepper readable: hide the address entirely
                return "addr:?"
        return "addr:" + self._hash(address.strip().lower())[:12]

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


class _RequestId(logging.Filter):
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


def setup_logging(
    *,
    level: str = "INFO",
    fmt: str = "text",
    pepper: Callable[[], bytes],
    stream: TextIO | None = None,
) -> logging.Handler:
    """Configure the root logger for this process (again: the previous handler goes).
    `level` applies to Octomail's own loggers; third-party ones stay at WARNING."""
    if fmt not in ("text", "json"):
        raise ValueError(f"OCTOMAIL_LOG_FORMAT must be text or json, not {fmt!r}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
    scrub = Scrubber(pepper)
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, _MARK, True)
    handler.addFilter(_RequestId())
    handler.setFormatter(JsonFormatter(scrub) if fmt == "json" else TextFormatter(scrub))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"OCTOMAIL_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {level!r}")
    for name in _OWN_LOGGERS:
        logging.getLogger(name).setLevel(numeric)
    logging.getLogger("uvicorn").setLevel(max(numeric, logging.INFO))
    return handler


def configured() -> bool:
    return any(getattr(h, _MARK, False) for h in logging.getLogger().handlers)


def hashed(address: str, settings: Settings | None = None, *, kind: str = "addr") -> str:
    """`addr:` and 12 hex digits of the address's keyed hash: what logs say of a person
    (the same as the scrubber writes, so lines about one address line up)."""
    pepper = (settings or get_settings()).pepper
    return f"{kind}:" + keyed_hasher(pepper)(address.strip().lower())[:12]


def who(actor: str) -> str:
    """Who did something, for a log line: an address hashed, `cli` (or any word) as is."""
    return hashed(actor) if "@" in actor else actor


def setup_from_settings(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """setup_logging with OCTOMAIL_LOG_FORMAT and OCTOMAIL_LOG_LEVEL."""
    return setup_logging(
        level=settings.log_level,
        fmt=settings.log_format,
        pepper=lambda: settings.pepper,
        stream=stream,
    )


def settings_handler() -> logging.Handler:
    """The handler setup_from_settings installs, for logging.config (uvicorn's log_config,
    which each of its worker processes applies again)."""
    settings = get_settings()
    handler = logging.StreamHandler(sys.stderr)
    scrub = Scrubber(lambda: settings.pepper)
    setattr(handler, _MARK, True)
    handler.addFilter(_RequestId())
    handler.setFormatter(
        JsonFormatter(scrub) if settings.log_format == "json" else TextFormatter(scrub)
    )
    return handler


def uvicorn_log_config(settings: Settings) -> dict[str, Any]:
    """`uvicorn.run(log_config=...)`: the same setup as setup_from_settings, in every web
    worker process (uvicorn applies it in each)."""
    level = settings.log_level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"octomail": {"()": f"{__name__}.settings_handler"}},
        "root": {"level": "WARNING", "handlers": ["octomail"]},
        "loggers": {
            **{name: {"level": level} for name in _OWN_LOGGERS},
            "uvicorn": {"level": "INFO" if level == "DEBUG" else level, "handlers": []},
            "uvicorn.error": {"propagate": True},
            "uvicorn.access": {"level": "WARNING"},
        },
    }
