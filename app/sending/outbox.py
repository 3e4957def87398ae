"""Read what the embedded mail catcher stored (var/mail/outbox, a Maildir): newest first, by
pages, and one message by its Maildir key, for the admin Outbox page.

A key is only ever looked up in the Maildir's own table of contents (`mailbox.Maildir`
never joins a key to a path), after a shape check: the page cannot be made to read any
other file.
"""

from __future__ import annotations

import mailbox
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser

from app.errors import NotFound
from app.sending.catcher import outbox_path
from app.settings import Settings

KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._,=-]{0,254}$")
SHOWN_HEADERS = (
    "Date",
    "From",
    "To",
    "Reply-To",
    "Subject",
    "Message-ID",
    "Return-Path",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Id",
    "DKIM-Signature",
)
MAX_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Summary:
    key: str
    subject: str
    sender: str
    to: str
    date: str
    size: int
    stamp: int


@dataclass(slots=True)
class Opened:
    summary: Summary
    headers: list[tuple[str, str]] = field(default_factory=list)
    html: str = ""
    text: str = ""


def enabled(settings: Settings) -> bool:
    """The catcher runs (and the Outbox exists) when no SMTP server is configured."""
    return not settings.smtp_url_list


def _maildir(settings: Settings) -> mailbox.Maildir | None:
    path = outbox_path(settings)
    if not (path / "new").is_dir() or not (path / "cur").is_dir():
        return None
    return mailbox.Maildir(str(path), factory=None, create=False)


def _stamp(key: str) -> int:
    head = key.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


_UNIQUE = re.compile(r"M(\d+)P\d+Q(\d+)")


def _order(key: str) -> tuple[int, int, int, str]:
    """Delivery order of Python's Maildir keys (`secs.M<µs>P<pid>Q<n>.host`): the
    microseconds are not zero-padded, so the key as text misorders one second's mail."""
    head, _, rest = key.partition(".")
    unique = _UNIQUE.match(rest)
    micro, count = (int(unique[1]), int(unique[2])) if unique else (0, 0)
    return (int(head) if head.isdigit() else 0, micro, count, key)


def _header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
    except (ValueError, TypeError, IndexError):  # a header the parser cannot read
        return "(unreadable)"
    text = "" if value is None else str(value)
    return text.encode("utf-8", "replace").decode("utf-8")


def _summary(box: mailbox.Maildir, key: str) -> Summary:
    with box.get_file(key) as handle:
        head = BytesHeaderParser(policy=policy.default).parse(handle)  # type: ignore[arg-type]
        handle.seek(0, 2)
        size = handle.tell()
    assert isinstance(head, EmailMessage)
    return Summary(
        key,
        _header(head, "Subject"),
        _header(head, "From"),
        _header(head, "Delivered-To") or _header(head, "To"),
        _header(head, "Date"),
        size,
        _stamp(key),
    )


def newest(
    settings: Settings, *, limit: int = 25, after: str | None = None
) -> tuple[list[Summary], str | None]:
    """A page of messages, newest first; `after` is the last key of the previous page.
    Returns the page and the key to pass for the next one (None on the last)."""
    box = _maildir(settings)
    if box is None:
        return [], None
    keys = sorted(box.keys(), key=_order, reverse=True)
    if after is not None:
        if not KEY.match(after) or after not in keys:
            raise NotFound("that page of the outbox is gone")
        keys = keys[keys.index(after) + 1 :]
    page = keys[:limit]
    summaries = []
    for key in page:
        try:
            summaries.append(_summary(box, key))
        except (KeyError, FileNotFoundError):  # deleted meanwhile
            continue
    return summaries, (page[-1] if len(keys) > limit and page else None)


def open_message(settings: Settings, key: str) -> Opened:
    """One message by its key: the headers that matter, its HTML and text parts."""
    box = _maildir(settings)
    if box is None or not KEY.match(key):
        raise NotFound("no such message in the outbox")
    try:
        summary = _summary(box, key)
        with box.get_file(key) as handle:
            data = handle.read(MAX_BYTES)
    except (KeyError, FileNotFoundError):
        raise NotFound("no such message in the outbox") from None
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    opened = Opened(summary)
    for name in SHOWN_HEADERS:
        value = _header(message, name)
        if value:
            opened.headers.append((name, value))
    for part in message.walk():
        kind = part.get_content_type()
        if kind not in ("text/html", "text/plain") or part.is_attachment():
            continue
        try:
            content = str(part.get_content())
        except (LookupError, ValueError):
            content = part.get_payload(decode=True).decode("utf-8", "replace")  # type: ignore[union-attr]
        if kind == "text/html" and not opened.html:
            opened.html = content
        elif kind == "text/plain" and not opened.text:
            opened.text = content
    return opened
