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

import logging
import re
import uuid
from collections.abc import Callable
from typing import Any, TextIO

from app.observability.logfmt import MARK, REQUEST_ID, keyed_hash, make_handler
from app.settings import Settings, get_settings

__all__ = ["REQUEST_ID", "accept_request_id", "hashed", "setup_logging", "who"]

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
_OWN_LOGGERS = ("app", "octomail")


def accept_request_id(value: str | None) -> str:
    """The caller's X-Request-ID when it is a plain token (no spaces, no control
    characters, at most 128 characters: it goes into headers and logs), else a new one."""
    if value and _VALID_REQUEST_ID.match(value):
        return value
    return uuid.uuid4().hex


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
    for old in [h for h in root.handlers if getattr(h, MARK, False)]:
        root.removeHandler(old)
    handler = make_handler(fmt, stream, pepper)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"OCTOMAIL_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {level!r}")
    for name in _OWN_LOGGERS:
        logging.getLogger(name).setLevel(numeric)
    logging.getLogger("uvicorn").setLevel(max(numeric, logging.INFO))
    return handler


def hashed(address: str, settings: Settings | None = None, *, kind: str = "addr") -> str:
    """`addr:` and 12 hex digits of the address's keyed hash: what logs say of a person
    (the same as the scrubber writes, so lines about one address line up)."""
    return f"{kind}:" + keyed_hash((settings or get_settings()).pepper, address)


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


def uvicorn_log_config(settings: Settings) -> dict[str, Any]:
    """`uvicorn.run(log_config=...)`: the same setup as setup_from_settings, in every web
    worker process (uvicorn applies it in each)."""
    level = settings.log_level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        # By name and with the format only: the worker builds it before it may import
        # anything heavy (app/observability/logfmt.py).
        "handlers": {
            "octomail": {
                "()": f"{make_handler.__module__}.make_handler",
                "fmt": settings.log_format,
            }
        },
        "root": {"level": "WARNING", "handlers": ["octomail"]},
        "loggers": {
            **{name: {"level": level} for name in _OWN_LOGGERS},
            "uvicorn": {"level": "INFO" if level == "DEBUG" else level, "handlers": []},
            "uvicorn.error": {"propagate": True},
            "uvicorn.access": {"level": "WARNING"},
        },
    }
