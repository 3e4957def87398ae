"""Reading machine reports: RFC 3464 delivery status, RFC 5965 ARF complaints, the
non-standard bounces flufl.bounce knows, and the original message they return. Pure."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses
from typing import cast

from flufl.bounce import all_failures

from app.inbound.text import sanitize

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_TOKEN_IN_URL = re.compile(r"/u/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-.]+)")
_TOKEN_IN_MAILTO = re.compile(
    r"subject=unsubscribe(?:%20|\+|\s)+([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-.]+)", re.IGNORECASE
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status notification|failure|has failed)|"
    r"mail delivery (?:failed|failure|system)|failure notice|returned mail|"
    r"unzustellbar|non remis|non distribuable|no se puede entregar|delivery incomplete|"
    r"non-?delivery|could not be delivered|user unknown",
    re.IGNORECASE,
)
_DAEMONS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "mdaemon"}
_MSGID = re.compile(r"<[^<>\s]{1,300}>")
# Where MTAs write the address a message was delivered to (DSNs are also addressed To the
# envelope sender). Only these are searched for our VERP address.
_DELIVERY_HEADERS = (
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
    "X-Envelope-To",
    "X-Delivered-To",
    "X-Rcpt-To",
    "To",
    "Cc",
    "Return-Path",
)
_RECEIVED_FOR = re.compile(r"\bfor\s+<?([^\s<>;]+@[^\s<>;]+)", re.IGNORECASE)
_ACTIONS = {"failure": "failed", "fail": "failed", "delay": "delayed"}


@dataclass
class RecipientStatus:
    address: str
    action: str
    status: str
    diagnostic: str = ""

    @property
    def permanent(self) -> bool:
        # "failed" with a 5.x.x (or no) status is final; a 4.x.x "failed" is the MTA giving
        # up on a temporary problem, which we count like a delay.
        return self.action == "failed" and not self.status.startswith("4")

    @property
    def temporary(self) -> bool:
        return self.action == "delayed" or (self.action == "failed" and self.status.startswith("4"))


@dataclass
class Returned:
    """What the report tells us about the message we sent (if it came back)."""

    message_id: str = ""
    to: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    return_path: str = ""  # our envelope sender, as the receiving MTA recorded it


@dataclass(frozen=True)
class Tie:
    """Evidence that a report is about mail we sent to this (campaign, subscriber): our
    signed Message-ID in the returned headers (or the report's In-Reply-To/References), or
    the report arriving at that send's signed VERP address. Checked against the send table
    before anything acts (app/inbound/actions.py)."""

    how: str  # "message-id", "in-reply-to", "verp"
    campaign_id: int
    subscriber_id: int
    # a Message-ID's link tag (app/link_secrets.py), checked against the subscriber's secret;
    # None for VERP, whose send row is what dies with the person
    link_tag: str | None = None


def ties(
    msg: Message,
    returned: Returned,
    *,
    message_id: Callable[[str], tuple[int, int, str] | None],
    bounce_address: Callable[[str], tuple[int, int] | None],
) -> list[Tie]:
    """Every tie of a report to our mail; `message_id` and `bounce_address` verify our
    signed campaign Message-IDs ((campaign, subscriber, link tag) or None) and VERP
    addresses ((campaign, subscriber) or None)."""
    found: list[Tie] = []
    if returned.message_id and (ours := message_id(returned.message_id)) is not None:
        found.append(Tie("message-id", *ours))
    for name in ("In-Reply-To", "References"):
        for value in msg.get_all(name, []):
            for candidate in _MSGID.findall(sanitize(value, 4000))[:20]:
                if (ours := message_id(candidate)) is not None:
                    found.append(Tie("in-reply-to", *ours))
    values = [sanitize(v, 1000) for name in _DELIVERY_HEADERS for v in msg.get_all(name, [])]
    values.append(returned.return_path)
    addresses = [a for v in values if "+b-" in v.lower() for _n, a in getaddresses([v])]
    # Where no delivery header says it (some IMAP servers write none), the receiving MTA's
    # Received line does: "... for <info+b-...@example.org>; date".
    for value in msg.get_all("Received", []):
        text = sanitize(value, 2000)
        if "+b-" in text.lower():
            addresses += _RECEIVED_FOR.findall(text)
    for address in addresses:
        if (pair := bounce_address(address)) is not None:
            found.append(Tie("verp", *pair))
    return list(dict.fromkeys(found))


def _addr(value: str) -> str:
    # "rfc822; alice@example.com" -> "alice@example.com"
    value = sanitize(value).split(";", 1)[-1].strip().strip("<>").strip()
    return value.lower()


def _blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [b for b in payload if isinstance(b, Message)]
    if isinstance(payload, str):  # some MTAs label it text-ish; parse the blocks ourselves
        return [
            HeaderParser().parsestr(chunk)
            for chunk in re.split(r"\n\s*\n", payload)
            if chunk.strip()
        ]
    return []


def find_part(msg: Message, *types: str) -> Message | None:
    for part in msg.walk():
        if part.get_content_type() in types:
            return part
    return None


def delivery_statuses(msg: Message) -> list[RecipientStatus]:
    """Per-recipient blocks of a message/delivery-status part."""
    part = find_part(msg, "message/delivery-status", "message/global-delivery-status")
    if part is None:
        return []
    result = []
    for block in _blocks(part):
        recipient = block.get("Original-Recipient") or block.get("Final-Recipient")
        final = block.get("Final-Recipient")
        if not recipient and not final:
            continue
        status = _STATUS.search(str(block.get("Status", "")))
        diagnostic = sanitize(block.get("Diagnostic-Code", ""), 500)
        if status is None:
            status = _STATUS.search(diagnostic)
        # Prefer Final-Recipient: it is the address that failed; Original-Recipient is kept
        # when the MTA rewrote it (both are looked up by the poller).
        address = _addr(str(final or recipient))
        result.append(
            RecipientStatus(
                address=address,
                action=_action(str(block.get("Action", ""))),
                status=status.group(0) if status else "",
                diagnostic=diagnostic,
            )
        )
        original = block.get("Original-Recipient")
        if original and _addr(str(original)) != address:
            result.append(
                RecipientStatus(
                    address=_addr(str(original)),
                    action=result[-1].action,
                    status=result[-1].status,
                    diagnostic=diagnostic,
                )
            )
    return result


def _action(value: str) -> str:
    """The Action field's keyword: "failed (Bad destination mailbox address)" is "failed",
    and the non-standard "failure" some MTAs write means the same."""
    word = re.match(r"\s*([a-z]+)", value.lower())
    action = word.group(1) if word else ""
    return _ACTIONS.get(action, action)


def feedback_fields(msg: Message) -> dict[str, str]:
    """The first block of a message/feedback-report part (Feedback-Type, Original-Rcpt-To...)."""
    part = find_part(msg, "message/feedback-report")
    if part is None:
        return {}
    fields: dict[str, str] = {}
    for block in _blocks(part):
        for key, value in block.items():
            fields.setdefault(key.lower(), sanitize(value, 500))
    return fields


def returned_message(msg: Message) -> Returned:
    """Headers of our original message as returned inside a report (full or headers only)."""
    headers: Message | None = None
    part = find_part(msg, "message/rfc822", "text/rfc822-headers", "message/rfc822-headers")
    if part is not None:
        payload = part.get_payload()
        if isinstance(payload, list) and payload:
            headers = cast(Message, payload[0])  # a message/* part holds Message objects
        elif isinstance(payload, str):
            headers = HeaderParser().parsestr(payload)
        else:
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes) and raw:  # decode=True: bytes, or None
                headers = HeaderParser().parsestr(raw.decode("utf-8", "replace"))
    if headers is None:
        return Returned()
    tokens: list[str] = []
    for value in headers.get_all("List-Unsubscribe", []):
        text = sanitize(value)
        tokens += _TOKEN_IN_URL.findall(text) + _TOKEN_IN_MAILTO.findall(text)
    to = [
        a.lower()
        for _n, a in getaddresses([sanitize(v) for v in headers.get_all("To", [])])
        if "@" in a
    ]
    return Returned(
        message_id=sanitize(headers.get("Message-ID", ""), 500).strip(),
        to=to,
        tokens=list(dict.fromkeys(tokens)),
        return_path=sanitize(headers.get("Return-Path", ""), 500).strip(),
    )


def looks_like_bounce(msg: Message, sender: str, return_path: str | None) -> bool:
    """Worth running flufl.bounce's heuristics on (they are slow and can misfire on prose)."""
    local = sender.split("@", 1)[0]
    return (
        local in _DAEMONS
        or return_path == ""
        or (return_path or "").split("@", 1)[0].lower() in _DAEMONS
        or msg.get("X-Failed-Recipients") is not None
        or bool(_BOUNCE_SUBJECT.search(sanitize(msg.get("Subject", ""))))
    )


def flufl_failures(msg: Message) -> tuple[list[str], list[str]]:
    """(temporary, permanent) failed addresses found by flufl.bounce, lower-cased."""
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # noqa: BLE001 - a detector crash means "not recognised", not a lost mail
        return [], []

    def clean(values: frozenset[bytes]) -> list[str]:
        return sorted(
            {v.decode("ascii", "replace").strip().strip("<>").lower() for v in values if b"@" in v}
        )

    return clean(temporary), clean(permanent)
