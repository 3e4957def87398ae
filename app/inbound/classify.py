"""Classify one inbound message: a verdict plus the evidence that led to it. Pure: no
database, no network; what it needs from the outside world comes in a Context.

Order: 1) delivery and feedback reports, 2) our signed unsubscribe token (subject or +token
sub-address), 3) automated mail is recognised and never read for keywords, 4) a person asking
to be removed, 5) everything else (and anything unreadable) goes to Review.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email import errors as email_errors
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr
from enum import StrEnum
from typing import Any

from app.inbound import authres, reports, senders
from app.inbound.contact_intent import may_ask as may_ask_to_update
from app.inbound.contact_intent import read_update
from app.inbound.intent import Reading, read_request
from app.inbound.mime import HeaderCachingMessage, parse_bytes
from app.inbound.phrases import (
    is_auto_reply_subject,
    is_reply_subject,
    may_ask_to_opt_out,
)
from app.inbound.text import UnreadableBody, body_text, sanitize, written_part

PROCESSED = "Processed"
REVIEW = "Review"


class Kind(StrEnum):
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    COMPLAINT = "complaint"
    REPORT = "report"
    TOKEN_OPTOUT = "token_optout"
    PERSON_OPTOUT = "person_optout"
    CONTACT_UPDATE = "contact_update"  # a change of one's own address or name (issue 15)
    AUTOMATED = "automated"
    OTHER = "other"
    UNREADABLE = "unreadable"


_REVIEW_KINDS = {Kind.OTHER, Kind.UNREADABLE}


@dataclass(frozen=True)
class Context:
    """What classification needs to know about us."""

    info_addresses: frozenset[str] = frozenset()
    # (subscriber_id, campaign_id, link tag) of a signed unsubscribe token, else None
    verify_token: Callable[[str], tuple[int, int, str] | None] = lambda _t: None
    is_own_message_id: Callable[[str], bool] = lambda _m: False
    # (campaign_id, subscriber_id) of one of our campaign Message-IDs (verified), else None
    parse_campaign_message_id: Callable[[str], tuple[int, int] | None] = lambda _m: None
    # (campaign_id, subscriber_id) of one of our signed VERP addresses, else None
    parse_bounce_address: Callable[[str], tuple[int, int] | None] = lambda _a: None
    # (campaign_id, subscriber_id, link tag) of one of our campaign Message-IDs, else None
    read_campaign_message_id: Callable[[str], tuple[int, int, str] | None] = lambda _m: None
    max_bytes: int = 25_000_000
    authserv_id: str = ""  # our MTA's Authentication-Results id (OCTOMAIL_INBOUND_AUTHSERV_ID)
    unsubscribe_address: str = ""  # the List-Unsubscribe mailto address (OCTOMAIL_...MAILTO)


@dataclass
class Verdict:
    kind: Kind
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)
    message_id: str = ""
    from_addr: str = ""
    subject: str = ""
    references: str = ""
    automated: bool = False
    recipients: list[str] = field(default_factory=list)  # bounced / complained addresses
    # what ties a report to a send of ours (signed Message-ID, VERP address); nothing acts
    # on a report without a tie or a recent send to the address (app/inbound/actions.py)
    ties: list[reports.Tie] = field(default_factory=list)
    subscriber_id: int | None = None  # from a verified mailto token
    campaign_id: int | None = None
    link_tag: str | None = None  # the token's link tag: actions check it against the row
    requested: list[str] = field(default_factory=list)  # other addresses written in the body
    sender_optout: bool = True  # a person's request is about the sender's own address
    auth: dict[str, Any] = field(default_factory=dict)  # Authentication-Results evidence
    # subscribers of our signed campaign Message-IDs this message replies to
    reply_subscribers: list[int] = field(default_factory=list)

    @property
    def folder(self) -> str:
        return REVIEW if self.kind in _REVIEW_KINDS else PROCESSED


_FATAL_DEFECTS = (
    email_errors.NoBoundaryInMultipartDefect,
    email_errors.StartBoundaryNotFoundDefect,
    email_errors.CloseBoundaryNotFoundDefect,
    email_errors.MultipartInvariantViolationDefect,
    email_errors.MissingHeaderBodySeparatorDefect,
)
_ESCAPED_MBOX_FROM = re.compile(rb">+From ")
_SUBJECT_TOKEN = re.compile(r"\bunsubscribe\s+([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-.]+)", re.IGNORECASE)
_ADDRESS = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_AUTO_SENDERS = {
    "mailer-daemon",
    "postmaster",
    "mail-daemon",
    "mailerdaemon",
    "noreply",
    "no-reply",
    "donotreply",
    "do-not-reply",
    "bounce",
    "bounces",
}
_RECIPIENT_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")


_ADDRESS_HEADERS = {
    "from",
    "to",
    "cc",
    "bcc",
    "sender",
    "reply-to",
    "delivered-to",
    "x-original-to",
    "envelope-to",
    "return-path",
    "resent-from",
    "resent-to",
}


class _PlainHeaders(policy.EmailPolicy):
    """policy.default for bodies (get_content, charsets), but headers come back as plain
    strings: the structured header objects cost more than all the rest of classification.
    Encoded words are decoded except in address headers, where a decoded display name
    ("Doe, John") would break address parsing; undeclared 8-bit bytes stay as surrogate
    escapes for sanitize()."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        value = "".join(str(value).splitlines())
        if "=?" in value and name.lower() not in _ADDRESS_HEADERS:
            # An undecodable encoded word (even "=?€utf-8?q?...?=") stays as written.
            with contextlib.suppress(
                UnicodeError, LookupError, ValueError, email_errors.MessageError
            ):
                value = str(make_header(decode_header(value)))
        return value


_POLICY = _PlainHeaders(message_factory=HeaderCachingMessage)


def parse(raw: bytes) -> Message:
    return parse_bytes(raw, _POLICY)


def _header(msg: Message, name: str, limit: int = 1000) -> str:
    try:
        value = msg.get(name)
    except Exception:  # noqa: BLE001 - a header the parser cannot model is simply unreadable
        return ""
    if value is None:
        return ""
    if "\ufffd" in str(value):
        # Undeclared 8-bit bytes: the parsed value has lost them, the raw one still has them
        # (as surrogate escapes) and sanitize() decodes them as UTF-8 or windows-1252.
        for key, raw in msg.raw_items():
            if key.lower() == name.lower():
                value = re.sub(r"\r?\n[ \t]+", " ", str(raw))
                break
    return sanitize(value, limit).strip()


def _addresses(msg: Message, name: str, containing: str = "") -> list[str]:
    """The addresses in a header; none unless its text contains `containing` (address
    parsing is the costly part and cannot add characters)."""
    values = []
    try:
        values = [sanitize(v) for v in msg.get_all(name, [])]
    except Exception:  # noqa: BLE001 - a header the parser cannot read names no address
        return []
    if containing and not any(containing in v for v in values):
        return []
    return [a for _n, a in getaddresses(values) if "@" in a]


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDR_SPEC = rf"{_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})*"
_WORD = rf'(?:{_ATEXT}|"[^"\\\r\n]*")'
_PLAIN_ADDRESS = re.compile(
    rf"[ \t]*(?:({_ADDR_SPEC})|(?:{_WORD}(?:[ \t]+{_WORD})*[ \t]*)?<({_ADDR_SPEC})>)[ \t]*"
)


def address_of(value: str) -> str:
    """parseaddr(value)[1]. The forms most mail uses (a@b.example, Name <a@b.example>,
    "Doe, Jo" <a@b.example>) are read by one regex, for which parseaddr gives the same
    address (a test compares them); anything else goes to the much slower parseaddr."""
    match = _PLAIN_ADDRESS.fullmatch(value)
    if match:
        return match.group(1) or match.group(2)
    return parseaddr(value)[1]


def _base(msg: Message) -> Verdict:
    """An empty verdict carrying the identifying headers."""
    sender = address_of(_header(msg, "From", 500)).lower()
    refs = " ".join(
        x for x in (_header(msg, "References", 4000), _header(msg, "Message-ID", 500)) if x
    )
    return Verdict(
        kind=Kind.OTHER,
        reason="",
        message_id=_header(msg, "Message-ID", 500),
        from_addr=sender,
        subject=_header(msg, "Subject", 1000),
        references=refs,
    )


def classify(raw: bytes, ctx: Context) -> Verdict:
    """The verdict for one raw message."""
    if len(raw) > ctx.max_bytes:
        return oversized(raw[:65536], len(raw), ctx)
    if raw[:1] == b">" and _ESCAPED_MBOX_FROM.match(raw):
        # An mbox separator escaped as ">From ..." (a plain "From " line the parser takes as
        # the envelope): not a header, so every header would be read as body.
        raw = raw.partition(b"\n")[2]
    try:
        msg = parse(raw)
        verdict = _base(msg)
    except Exception as exc:  # noqa: BLE001 - any parser failure: Review, never a lost mail
        return Verdict(kind=Kind.UNREADABLE, reason=f"cannot parse: {sanitize(exc, 300)}")
    defects = [d for part in msg.walk() for d in part.defects if isinstance(d, _FATAL_DEFECTS)]
    try:
        if defects:
            return _lenient(msg, verdict, ctx, sorted({type(d).__name__ for d in defects}))
        return _classify(msg, verdict, ctx)
    except UnreadableBody as exc:
        verdict.kind, verdict.reason = Kind.UNREADABLE, f"unreadable body: {exc}"
    except Exception as exc:  # noqa: BLE001 - never lose a message to a classifier bug
        verdict.kind = Kind.UNREADABLE
        verdict.reason = f"classification failed: {type(exc).__name__}: {sanitize(exc, 300)}"
    return verdict


_MACHINE_REPORTS = {Kind.HARD_BOUNCE, Kind.SOFT_BOUNCE, Kind.COMPLAINT, Kind.REPORT}


def _lenient(msg: Message, verdict: Verdict, ctx: Context, defects: list[str]) -> Verdict:
    """Malformed MIME: the parser has recovered what it could (a returned message cut to
    "Message removed", a missing close boundary, a part without its blank line). Delivery
    and feedback reports are machine-written fields, still readable from that recovery and
    only acted on when tied to our mail, so they are taken; anything a person wrote stays
    for a person, as its text may be mangled."""
    try:
        lenient: Verdict | None = _classify(msg, verdict, ctx)
    except UnreadableBody:  # a person's text, mangled: the same answer as below
        lenient = None
    if lenient is not None and lenient.kind in _MACHINE_REPORTS:
        lenient.evidence["malformed_mime"] = defects
        lenient.reason += " (read leniently: malformed MIME)"
        return lenient
    verdict = _base(msg)
    verdict.kind = Kind.UNREADABLE
    verdict.reason = "malformed MIME: " + ", ".join(defects)
    return verdict


def oversized(head: bytes, size: int, ctx: Context) -> Verdict:
    """A message over the size limit: read its headers only, leave it for a person."""
    end = head.find(b"\r\n\r\n")
    end = head.find(b"\n\n") if end < 0 else end
    try:
        verdict = _base(parse(head[: end if end >= 0 else len(head)]))
    except Exception:  # noqa: BLE001 - unreadable headers still make an "oversized" verdict
        verdict = Verdict(kind=Kind.OTHER, reason="")
    verdict.kind = Kind.UNREADABLE
    verdict.reason = f"too large: {size} bytes (limit {ctx.max_bytes})"
    verdict.evidence = {"size": size}
    return verdict


def _classify(msg: Message, verdict: Verdict, ctx: Context) -> Verdict:
    signals = automated_signals(msg, verdict, ctx)
    verdict.automated = bool(signals)
    if _report(msg, verdict, ctx):
        return verdict
    client = _from_mail_client(msg, verdict, ctx, signals)
    if _token(msg, verdict, ctx):
        verdict.evidence["automated"] = signals
        if client:  # the person clicked "unsubscribe" in their mail app: no reply expected
            verdict.automated = verdict.evidence["mail_client"] = True
        return _authenticate(msg, verdict, ctx)
    if client:
        return _authenticate(msg, _list_unsubscribe(verdict, signals), ctx)
    if signals:
        verdict.kind, verdict.reason = Kind.AUTOMATED, "automated: " + ", ".join(signals)
        verdict.evidence = {"rule": "automated", "signals": signals}
        return verdict
    if _person(msg, verdict, ctx):
        return _authenticate(msg, verdict, ctx) if verdict.kind is Kind.PERSON_OPTOUT else verdict
    if _contact_update(msg, verdict, ctx):
        return _authenticate(msg, verdict, ctx)
    verdict.kind, verdict.reason = Kind.OTHER, "no rule matched: needs a person"
    verdict.evidence = {"rule": "none"}
    return verdict


def automated_signals(msg: Message, verdict: Verdict, ctx: Context) -> list[str]:
    """Why this message was sent by a machine (RFC 3834 and common practice), if it was."""
    signals = []
    auto = _header(msg, "Auto-Submitted").lower()
    if auto and auto.split(";")[0].strip() != "no":
        signals.append(f"Auto-Submitted: {auto}")
    precedence = _header(msg, "Precedence").lower()
    if precedence in {"bulk", "junk", "list", "auto_reply"}:
        signals.append(f"Precedence: {precedence}")
    for name in (
        "X-Autoreply",
        "X-Autorespond",
        "X-Autogenerated",
        "X-AutoReply-From",
        "X-Mail-Autoreply",
        "List-Id",
    ):
        if msg.get(name) is not None:
            signals.append(name)
    if msg.get("Return-Path") is not None and _header(msg, "Return-Path").strip("<> ") == "":
        signals.append("empty Return-Path")
    local = verdict.from_addr.split("@", 1)[0]
    if local in _AUTO_SENDERS:
        signals.append(f"sender {local}")
    if verdict.from_addr and verdict.from_addr in ctx.info_addresses:
        signals.append("sent from our own mailbox")
    if verdict.message_id and ctx.is_own_message_id(verdict.message_id):
        signals.append("our own Message-ID")
    if verdict.subject and is_auto_reply_subject(verdict.subject):
        signals.append("auto-reply subject")
    return signals


def _report(msg: Message, verdict: Verdict, ctx: Context) -> bool:
    """Step 1: delivery reports, complaints, receipts. Their quoted text is never read."""
    ctype = msg.get_content_type()
    rtype = (
        str(msg.get_param("report-type", "") or "").lower() if ctype == "multipart/report" else ""
    )
    returned = reports.returned_message(msg) if rtype else None
    if rtype == "feedback-report":
        fields = reports.feedback_fields(msg)
        kind = fields.get("feedback-type", "abuse").lower()
        assert returned is not None
        verdict.recipients = [
            a for a in [reports._addr(fields.get("original-rcpt-to", ""))] if "@" in a
        ] or returned.to
        verdict.ties = _ties(msg, returned, ctx)
        verdict.evidence = {
            "rule": "arf",
            "feedback_type": kind,
            "user_agent": fields.get("user-agent", ""),
            "original_message_id": returned.message_id,
        }
        if kind in {"abuse", "fraud", "other"}:
            verdict.kind, verdict.reason = Kind.COMPLAINT, f"spam complaint ({kind})"
        else:
            verdict.kind, verdict.reason = Kind.REPORT, f"feedback report ({kind}): no action"
        return True
    if rtype in {"delivery-status", "global-delivery-status"}:
        assert returned is not None
        statuses = reports.delivery_statuses(msg)
        verdict.ties = _ties(msg, returned, ctx)
        verdict.evidence = {
            "rule": "dsn",
            "original_message_id": returned.message_id,
            "recipients": [vars(s) for s in statuses],
        }
        hard = [s.address for s in statuses if s.permanent]
        soft = [s.address for s in statuses if s.temporary]
        if hard:
            verdict.kind, verdict.recipients = Kind.HARD_BOUNCE, list(dict.fromkeys(hard))
            verdict.reason = "permanent delivery failure " + ", ".join(
                sorted({s.status for s in statuses if s.permanent})
            )
        elif soft:
            verdict.kind, verdict.recipients = Kind.SOFT_BOUNCE, list(dict.fromkeys(soft))
            verdict.reason = "temporary delivery failure " + ", ".join(
                sorted({s.status for s in statuses if s.temporary})
            )
        elif statuses:
            verdict.kind, verdict.reason = Kind.REPORT, "delivery report without failures"
        elif not _flufl(msg, verdict, returned, ctx):
            verdict.kind, verdict.reason = Kind.OTHER, "delivery report with no recipient found"
        return True
    return_path = _header(msg, "Return-Path").strip("<> ") if msg.get("Return-Path") else None
    if reports.looks_like_bounce(msg, verdict.from_addr, return_path) and _flufl(
        msg, verdict, returned or reports.returned_message(msg), ctx
    ):
        return True  # (also a bounce labelled as another report type)
    if rtype:
        verdict.kind, verdict.reason = Kind.REPORT, f"{rtype} report: no action"
        verdict.evidence = {"rule": "report", "report_type": rtype}
        return True
    return False


def _ties(msg: Message, returned: reports.Returned, ctx: Context) -> list[reports.Tie]:
    """What ties this report to our mail (the returned unsubscribe token does not: a test
    send carries a real subscriber's token to a marketer's address)."""
    return reports.ties(
        msg,
        returned,
        message_id=ctx.read_campaign_message_id,
        bounce_address=ctx.parse_bounce_address,
    )


def _flufl(msg: Message, verdict: Verdict, returned: reports.Returned, ctx: Context) -> bool:
    temporary, permanent = reports.flufl_failures(msg)
    if not (temporary or permanent):
        return False
    verdict.ties = _ties(msg, returned, ctx)
    verdict.evidence = {
        "rule": "flufl.bounce",
        "permanent": permanent,
        "temporary": temporary,
        "original_message_id": returned.message_id,
    }
    if permanent:
        verdict.kind, verdict.recipients = Kind.HARD_BOUNCE, permanent
        verdict.reason = "permanent delivery failure (non-standard bounce)"
    else:
        verdict.kind, verdict.recipients = Kind.SOFT_BOUNCE, temporary
        verdict.reason = "temporary delivery failure (non-standard bounce)"
    return True


def _token(msg: Message, verdict: Verdict, ctx: Context) -> bool:
    """Step 2: our signed token proves which subscriber and scope, whoever sends it."""
    candidates: list[tuple[str, str]] = [
        ("subject", t) for t in _SUBJECT_TOKEN.findall(verdict.subject)
    ]
    for name in _RECIPIENT_HEADERS:
        for address in _addresses(msg, name, containing="+"):
            local = address.rsplit("@", 1)[0]
            if "+" in local:
                candidates.append((f"{name} sub-address", local.split("+", 1)[1]))
    for where, token in candidates:
        payload = ctx.verify_token(token)
        if payload is not None:
            verdict.kind = Kind.TOKEN_OPTOUT
            verdict.subscriber_id, verdict.campaign_id, verdict.link_tag = payload
            verdict.reason = f"signed unsubscribe token in the {where}"
            verdict.evidence = {
                "rule": "token",
                "where": where,
                "subscriber_id": payload[0],
                "campaign_id": payload[1],
            }
            return True
    return False


def _from_mail_client(msg: Message, verdict: Verdict, ctx: Context, signals: list[str]) -> bool:
    """A mail client's own List-Unsubscribe mailto message (app/inbound/senders.py)."""
    return senders.is_mail_client_request(
        subject=verdict.subject,
        from_addr=verdict.from_addr,
        is_reply=msg.get("In-Reply-To") is not None,
        signals=signals,
        recipients=lambda: [a for name in _RECIPIENT_HEADERS for a in _addresses(msg, name)],
        unsubscribe_address=ctx.unsubscribe_address,
    )


def _list_unsubscribe(verdict: Verdict, signals: list[str]) -> Verdict:
    """Step 3a: a mail client's List-Unsubscribe request whose token is no longer valid (or
    that has none): honoured for its From address, never acknowledged (it is automated, so
    no mail goes back and no loop can start)."""
    verdict.automated = True
    verdict.kind = Kind.PERSON_OPTOUT
    verdict.reason = "a mail client's automatic List-Unsubscribe request (mailto)"
    verdict.evidence = {
        "rule": "list_unsubscribe_mailto",
        "signals": signals,
        "subject": verdict.subject[:200],
    }
    return verdict


def _authenticate(msg: Message, verdict: Verdict, ctx: Context) -> Verdict:
    """Attach the authentication evidence of an opt-out by email: what our trusted MTA's
    Authentication-Results header says about the From domain, and which of our signed
    campaign Message-IDs the message replies to (In-Reply-To / References)."""
    try:
        headers = [sanitize(v, 4000) for v in msg.get_all("Authentication-Results", [])]
    except Exception:  # noqa: BLE001 - an unreadable header is no evidence
        headers = []
    verdict.auth = authres.evidence(headers, ctx.authserv_id, verdict.from_addr)
    replied = " ".join(_header(msg, name, 4000) for name in ("In-Reply-To", "References"))
    verdict.reply_subscribers = senders.replied_subscribers(replied, ctx.parse_campaign_message_id)
    verdict.evidence["auth"] = verdict.auth
    if verdict.reply_subscribers:
        verdict.evidence["reply_to_subscribers"] = verdict.reply_subscribers
    return verdict


def _contact_update(msg: Message, verdict: Verdict, ctx: Context) -> bool:
    """Step 5: a request to change one's own address or name, read in what the sender wrote
    (app/inbound/contact_intent.py). Clear: CONTACT_UPDATE, acted on with the opt-outs'
    evidence rules; unclear or mixed: a person decides, with the proposal shown."""
    text, kind = body_text(msg)
    subject = "" if is_reply_subject(verdict.subject) else verdict.subject
    if not (may_ask_to_update(text) or may_ask_to_update(subject)):
        return False
    written = written_part(text)
    exclude = {verdict.from_addr, *ctx.info_addresses}
    reading = read_update(written, exclude=exclude) or read_update(subject, exclude=exclude)
    if reading is None:
        return False
    if "@" not in verdict.from_addr:
        reading.unclear = reading.unclear or "no From address"
    verdict.evidence = {
        "rule": "contact_update_unclear" if reading.unclear else "contact_update",
        "where": f"body ({kind})",
        "matched": reading.matched,
        "lang": reading.lang,
        "written": written[:500],
        "proposal": reading.proposal,
    }
    if reading.unclear:
        verdict.kind = Kind.OTHER
        verdict.reason = f"change of contact details that needs a person: {reading.unclear}"
    else:
        verdict.kind = Kind.CONTACT_UPDATE
        verdict.reason = "request to change " + " and ".join(sorted(reading.proposal))
    return True


def _person(msg: Message, verdict: Verdict, ctx: Context) -> bool:
    """Step 4: opt-out wording in the subject or in what the sender wrote, read in its
    clause: a negated request ("please do NOT unsubscribe me") goes to a person, and a
    request about another address written in the text does not opt the sender out."""
    text, kind = body_text(msg)
    subject = Reading()
    if verdict.subject and not is_reply_subject(verdict.subject):
        subject = read_request(verdict.subject)
    if subject.found is None and not subject.negated and not may_ask_to_opt_out(text):
        return False  # no wording anywhere, so none in the written part: skip the stripping
    written = written_part(text)
    reading = subject.merge(read_request(written))
    where = "subject" if subject.found or subject.negated else f"body ({kind})"
    if reading.negated:
        verdict.kind = Kind.OTHER
        verdict.reason = f"negated opt-out wording ({', '.join(reading.negated)}): needs a person"
        verdict.evidence = {
            "rule": "negated",
            "where": where,
            "negated": reading.negated,
            "written": written[:500],
        }
        return True
    found = reading.found
    if found is None:
        return False
    if "@" not in verdict.from_addr:
        verdict.kind, verdict.reason = Kind.OTHER, "opt-out request without a From address"
        verdict.evidence = {"rule": "person", "matched": found, "where": where}
        return True
    excluded = {verdict.from_addr} | set(ctx.info_addresses)
    others = [a.lower().strip(".") for a in _ADDRESS.findall(written)]
    verdict.requested = [a for a in dict.fromkeys(others) if a not in excluded][:10]
    # With another address written, the sender is asking for themselves only when the
    # request says so ("remove me", "désabonnez-moi", "mich", "darme").
    verdict.sender_optout = not verdict.requested or reading.names_sender
    verdict.kind = Kind.PERSON_OPTOUT
    verdict.reason = f"opt-out request in the {where} ({found['lang']}: {found['match']!r})"
    if not verdict.sender_optout:
        verdict.reason += ": for the address(es) written, not the sender"
    verdict.evidence = {
        "rule": "person",
        "where": where,
        "matched": found,
        "written": written[:500],
        "requested": verdict.requested,
        "sender_optout": verdict.sender_optout,
    }
    return True
