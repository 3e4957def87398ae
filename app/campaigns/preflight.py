"""Deliverability preflight: what to fix before a campaign goes out (issue 11).

One sample message is rendered exactly as a subscriber would get it (`render_message`), and
every check reads that message: the size Gmail clips at, images without alt text, the
subject's length, the unsubscribe link and postal address, the List-Unsubscribe and DKIM
headers, the links the marketer wrote (HEAD, concurrently, short timeouts, public addresses
only) and, when SpamAssassin is installed, its score. Each check is a pure function of the
message but the last two, which talk to the network and a subprocess and are time-limited.

A failed check blocks scheduling on the review page; a warning does not. Each names what to
fix and the editor field it concerns (`field`, the id `f-<field>` on the editor page).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import shutil
import ssl
import time
from dataclasses import asdict, dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlmodel import Session

from app.campaigns.preview import topic_names
from app.errors import ConfigurationError, InvalidInput
from app.models import Campaign, Category
from app.sending.compliance import check_rendered
from app.sending.offload import run_limited_async
from app.sending.render import SAMPLE, prepare_campaign, render_message
from app.settings import Settings

Status = Literal["pass", "warn", "fail", "skip"]

GMAIL_CLIP_BYTES = 102 * 1024
"""Gmail shows "[Message clipped]" when a message's HTML is larger than this."""
SIZE_WARN_BYTES = 90 * 1024
SUBJECT_WARN = 60
"""Characters most phones show of a subject in the inbox list."""
SUBJECT_MAX = 150
LINK_TIMEOUT = 3.0
"""Seconds one link may take to answer a HEAD."""
LINKS_TOTAL = 8.0
"""Seconds all link checks together may take (the rest are reported as not checked)."""
MAX_LINKS = 50
LINK_CONCURRENCY = 8
SPAM_TIMEOUT = 30.0
SPAM_WARN = 3.0
SPAM_FAIL = 5.0
_USER_AGENT = "Octomail-preflight/1 (+link check)"


@dataclass(frozen=True, slots=True)
class Check:
    key: str
    label: str
    status: Status
    detail: str
    fix: str = ""
    field: str = ""
    """The editor field to fix it in (subject, body, layout, category), or "" for a setting."""


@dataclass(slots=True)
class Report:
    campaign_id: int
    checks: list[Check]
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        """No check failed (warnings do not block)."""
        return not any(c.status == "fail" for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "ok": self.ok,
            "elapsed_ms": round(self.elapsed * 1000),
            "checks": [asdict(c) for c in self.checks],
        }


@dataclass(frozen=True, slots=True)
class Sample:
    """The rendered sample message and its parts."""

    data: bytes
    subject: str
    html: str
    text: str
    headers: EmailMessage
    unsubscribe_url: str


# ---------------------------------------------------------------- rendering


def parse_sample(data: bytes) -> Sample:
    """The parts of a rendered message (bytes as sent)."""
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    html = text = ""
    for part in message.walk():
        if part.get_content_type() == "text/html" and not html:
            html = str(part.get_content())
        elif part.get_content_type() == "text/plain" and not text:
            text = str(part.get_content())
    urls = re.findall(r"<(https?://[^>]+)>", str(message.get("List-Unsubscribe", "")))
    return Sample(data, str(message.get("Subject", "")), html, text, message, next(iter(urls), ""))


def _render(campaign: Campaign, topics: list[str], settings: Settings) -> bytes:
    prepared = prepare_campaign(campaign, settings=settings, topic_names=topics)
    return render_message(prepared, SAMPLE, settings=settings).data


def _lenient(campaign: Campaign, settings: Settings) -> tuple[Campaign, Settings]:
    """A copy that renders despite the problems already reported (no postal address, a
    missing footer, a broken DKIM setting), so the other checks still run."""
    shadow = campaign.model_copy(update={"category": Category.TRANSACTIONAL})
    relaxed = settings.model_copy(
        update={"dkim_selector": "", "dkim_domain": "", "dkim_private_key_file": ""}
    )
    return shadow, relaxed


async def render_sample(
    campaign: Campaign, topics: list[str], settings: Settings
) -> tuple[bytes | None, list[Check]]:
    """The sample message, and the checks its rendering already failed."""
    try:
        data = await run_limited_async(
            _render, campaign, topics, settings, timeout=settings.render_timeout
        )
        return data, []
    except ConfigurationError as exc:
        problems = [_config_check(str(exc))]
    except InvalidInput as exc:
        if "must show" not in str(exc):  # not the footer, which check_footer reports
            return None, [_template_failed(str(exc))]
        problems = []
    shadow, relaxed = _lenient(campaign, settings)
    try:
        data = await run_limited_async(
            _render, shadow, topics, relaxed, timeout=settings.render_timeout
        )
    except (ConfigurationError, InvalidInput) as exc:
        return None, [*problems, _template_failed(str(exc))]
    return data, problems


def _template_failed(message: str) -> Check:
    return Check(
        "render",
        "The message renders",
        "fail",
        message,
        "Correct the template in the body: the other checks need a message to read.",
        "body",
    )


def _config_check(message: str) -> Check:
    if "DKIM" in message:
        return Check("dkim", "DKIM signature", "fail", message, "Correct the DKIM settings.")
    return Check(
        "postal_address",
        "Postal address",
        "fail",
        "No postal address is set: marketing mail must show the sender's postal address.",
        "Set OCTOMAIL_POSTAL_ADDRESS (the sender's physical address) and restart.",
    )


# ---------------------------------------------------------------- pure checks


class _Html(HTMLParser):
    """Links (a href) and images (src, alt or None) of an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.links.append((values["href"] or "").strip())
        elif tag == "img":
            self.images.append(((values.get("src") or "").strip(), values.get("alt")))


def _parse_html(html: str) -> _Html:
    parser = _Html()
    parser.feed(html)
    parser.close()
    return parser


def _kb(size: int) -> str:
    return f"{size / 1024:.1f} KB"


def check_size(html: str) -> Check:
    size = len(html.encode("utf-8"))
    label = "Message size (Gmail clips at 102 KB)"
    if size > GMAIL_CLIP_BYTES:
        return Check(
            "size",
            label,
            "fail",
            f"The HTML is {_kb(size)}: Gmail will cut it off and hide the rest, "
            "the unsubscribe link included.",
            "Shorten the body, or link to the long part on the web.",
            "body",
        )
    if size > SIZE_WARN_BYTES:
        return Check(
            "size", label, "warn", f"The HTML is {_kb(size)}, close to the limit.", "", "body"
        )
    return Check("size", label, "pass", f"The HTML is {_kb(size)}.")


def _listed(items: list[str]) -> str:
    more = f" and {len(items) - 5} more" if len(items) > 5 else ""
    return ", ".join(items[:5]) + more


def check_images(html: str) -> Check:
    """No alt attribute fails; alt="" (decorative) is only a warning: it is right for a
    spacer, wrong for a picture that carries the message."""
    images = _parse_html(html).images
    missing = [src or "(no src)" for src, alt in images if alt is None]
    empty = [src or "(no src)" for src, alt in images if alt is not None and not alt.strip()]
    label = "Images have alt text"
    if missing:
        return Check(
            "images",
            label,
            "fail",
            f"{len(missing)} image{'s' if len(missing) > 1 else ''} without alt text: "
            f"{_listed(missing)}.",
            'Add alt="what the image shows" (or alt="" for a decorative image): many '
            "people read mail with images off, and screen readers read the alt text.",
            "body",
        )
    if empty:
        return Check(
            "images",
            label,
            "warn",
            f"{len(empty)} image{'s' if len(empty) > 1 else ''} with an empty alt text "
            f"(read as decorative): {_listed(empty)}.",
            "Describe each image that carries meaning, e.g. ![A red bicycle](bike.png).",
            "body",
        )
    return Check("images", label, "pass", f"{len(images)} image(s), each with alt text.")


def check_subject(subject: str) -> Check:
    length = len(subject)
    label = "Subject length"
    if not subject.strip():
        return Check(
            "subject", label, "fail", "The subject is empty.", "Write a subject.", "subject"
        )
    if length > SUBJECT_MAX:
        return Check(
            "subject",
            label,
            "fail",
            f"The subject has {length} characters.",
            f"Keep it under {SUBJECT_MAX} (phones show about {SUBJECT_WARN}).",
            "subject",
        )
    if length > SUBJECT_WARN:
        return Check(
            "subject",
            label,
            "warn",
            f"The subject has {length} characters; phones show about the first {SUBJECT_WARN}.",
            "Put what matters first, or shorten it.",
            "subject",
        )
    return Check("subject", label, "pass", f"{length} characters.")


def check_footer(sample: Sample, campaign: Campaign, settings: Settings) -> list[Check]:
    """The visible unsubscribe link and postal address, in both parts (marketing only)."""
    if campaign.category == Category.TRANSACTIONAL:
        note = "Not needed: this is a transactional message."
        return [
            Check("unsubscribe_link", "Unsubscribe link", "skip", note),
            Check("postal_address", "Postal address", "skip", note),
        ]
    out = []
    try:
        check_rendered(
            sample.html,
            sample.text,
            unsubscribe_url=sample.unsubscribe_url,
            postal_address=settings.postal_address,
        )
    except InvalidInput as exc:
        problems = str(exc)
    else:
        problems = ""
    link_problem = "unsubscribe link" in problems
    out.append(
        Check(
            "unsubscribe_link",
            "Unsubscribe link",
            "fail" if link_problem else "pass",
            problems if link_problem else "Shown in the HTML and the text part.",
            "Use a layout with {{ unsubscribe_url }} as a visible link in both parts."
            if link_problem
            else "",
            "layout" if link_problem else "",
        )
    )
    address_problem = "postal address" in problems
    out.append(
        Check(
            "postal_address",
            "Postal address",
            "fail" if address_problem else "pass",
            problems if address_problem else f"Shown: {settings.postal_address}",
            "Use a layout with {{ postal_address }} visible in both parts."
            if address_problem
            else "",
            "layout" if address_problem else "",
        )
    )
    return out


def check_headers(sample: Sample, settings: Settings) -> list[Check]:
    """List-Unsubscribe (with one-click POST) and a DKIM signature on the message."""
    headers = sample.headers
    unsubscribe = str(headers.get("List-Unsubscribe", ""))
    one_click = str(headers.get("List-Unsubscribe-Post", "")) == "List-Unsubscribe=One-Click"
    if unsubscribe and one_click:
        how = "a one-click link" + (" and a mailto address" if "mailto:" in unsubscribe else "")
        list_check = Check(
            "list_unsubscribe", "List-Unsubscribe header", "pass", f"Present: {how}."
        )
    else:
        list_check = Check(
            "list_unsubscribe",
            "List-Unsubscribe header",
            "fail",
            "The message has no one-click List-Unsubscribe header: Gmail and Yahoo require it.",
            "Check OCTOMAIL_BASE_URL; the header is added to every campaign message.",
        )
    if headers.get("DKIM-Signature"):
        dkim = Check(
            "dkim",
            "DKIM signature",
            "pass",
            f"Signed for {settings.dkim_domain} (selector {settings.dkim_selector}).",
        )
    else:
        dkim = Check(
            "dkim",
            "DKIM signature",
            "warn",
            "Messages are not DKIM-signed: Gmail and Yahoo expect bulk senders to sign, "
            "unless your SMTP relay signs for you.",
            "Set OCTOMAIL_DKIM_SELECTOR, OCTOMAIL_DKIM_DOMAIN and "
            "OCTOMAIL_DKIM_PRIVATE_KEY_FILE, and publish the public key in DNS.",
        )
    return [list_check, dkim]


def marketer_links(html: str, base_url: str) -> list[str]:
    """The http(s) links the marketer wrote: Octomail's own (unsubscribe, preferences)
    are left out, duplicates too, at most MAX_LINKS."""
    own = base_url.rstrip("/") + "/"
    out: list[str] = []
    for href in _parse_html(html).links:
        scheme = urlsplit(href).scheme.lower()
        if scheme in ("http", "https") and not href.startswith(own) and href not in out:
            out.append(href)
    return out[:MAX_LINKS]


# ---------------------------------------------------------------- links (network)


@dataclass(slots=True)
class LinkResult:
    url: str
    status: int | None = None
    problem: str = ""
    checked: bool = True


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_global and not ip.is_multicast


async def _resolve(host: str, port: int, allow_private: bool) -> str:
    """One address to connect to; refuses names that resolve to a private, loopback or
    link-local address (any of them), unless allowed: the check must not probe the LAN."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=1)  # SOCK_STREAM
    addresses = [str(info[4][0]) for info in infos]  # an IP address (str for AF_INET/6)
    if not addresses:
        raise OSError("no address")
    if not allow_private and not all(_public(a) for a in addresses):
        raise PermissionError("a private or local address: not checked")
    return addresses[0]


async def _status(url: str, method: str, allow_private: bool) -> int:
    """The HTTP status of `method url`: connects to the address checked above (no second
    lookup), reads the status line only, follows no redirect."""
    parts = urlsplit(url)
    https = parts.scheme.lower() == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if https else 80)
    address = await _resolve(host, port, allow_private)
    context = ssl.create_default_context() if https else None
    reader, writer = await asyncio.open_connection(
        address, port, ssl=context, server_hostname=host if https else None
    )
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = host if parts.port is None else f"{host}:{parts.port}"
        writer.write(
            f"{method} {target} HTTP/1.1\r\nHost: {host_header}\r\n"
            f"User-Agent: {_USER_AGENT}\r\nAccept: */*\r\nConnection: close\r\n\r\n".encode(
                "ascii", "strict"
            )
        )
        await writer.drain()
        line = await reader.readline()
    finally:
        writer.close()
    match = re.match(rb"HTTP/\d(?:\.\d)? (\d{3})", line)
    if not match:
        raise OSError("not an HTTP answer")
    return int(match.group(1))


async def check_link(url: str, *, timeout: float, allow_private: bool) -> LinkResult:
    """HEAD, then GET when the server refuses HEAD (405/501)."""
    try:
        url.encode("ascii")
    except UnicodeEncodeError:
        return LinkResult(url, problem="not checked: non-ASCII address", checked=False)
    try:
        status = await asyncio.wait_for(_status(url, "HEAD", allow_private), timeout)
        if status in (405, 501):
            status = await asyncio.wait_for(_status(url, "GET", allow_private), timeout)
    except PermissionError as exc:
        return LinkResult(url, problem=str(exc), checked=False)
    except TimeoutError:
        return LinkResult(url, problem=f"no answer within {timeout:g} s")
    except (OSError, ValueError, ssl.SSLError) as exc:
        return LinkResult(url, problem=f"cannot connect: {exc.__class__.__name__} {exc}".strip())
    if status >= 400:
        return LinkResult(url, status, f"answers {status}")
    return LinkResult(url, status)


async def check_links(
    urls: list[str],
    *,
    timeout: float = LINK_TIMEOUT,
    total: float = LINKS_TOTAL,
    allow_private: bool = False,
) -> list[LinkResult]:
    """Every link, at most LINK_CONCURRENCY at once, all within `total` seconds."""
    gate = asyncio.Semaphore(LINK_CONCURRENCY)

    async def one(url: str) -> LinkResult:
        async with gate:
            return await check_link(url, timeout=timeout, allow_private=allow_private)

    tasks = [asyncio.create_task(one(u)) for u in urls]
    if tasks:
        await asyncio.wait(tasks, timeout=total)
    results = []
    for url, task in zip(urls, tasks, strict=True):
        if task.done():
            results.append(task.result())
        else:
            task.cancel()
            results.append(LinkResult(url, problem=f"not checked within {total:g} s"))
    return results


def links_check(results: list[LinkResult]) -> Check:
    label = "Links answer"
    if not results:
        return Check("links", label, "pass", "The body has no links besides Octomail's own.")
    dead = [r for r in results if r.checked and r.problem]
    skipped = [r for r in results if not r.checked]
    if dead:
        listed = "; ".join(f"{r.url} ({r.problem})" for r in dead[:10])
        return Check(
            "links",
            label,
            "fail",
            f"{len(dead)} of {len(results)} link{'s' if len(results) > 1 else ''} "
            f"do not answer: {listed}.",
            "Correct or remove these links in the body.",
            "body",
        )
    detail = f"{len(results) - len(skipped)} link(s) answered."
    if skipped:
        listed = "; ".join(f"{r.url} ({r.problem})" for r in skipped[:10])
        return Check("links", label, "warn", f"{detail} Not checked: {listed}.", "", "body")
    return Check("links", label, "pass", detail)


# ---------------------------------------------------------------- SpamAssassin


def spam_command() -> list[str] | None:
    """SpamAssassin's command line, or None when it is not installed."""
    found = shutil.which("spamassassin")
    # -L: local tests only (no DNS blocklists: the message is not sent yet); -t: report.
    return [found, "-L", "-t", "--cf=dns_available no"] if found else None


_SCORE = re.compile(rb"^X-Spam-Status: \w+, score=(-?[\d.]+) required=([\d.]+)", re.M)
_TESTS = re.compile(rb"tests=([\w,\s]+?)\s+autolearn", re.S)


async def spam_check(data: bytes, *, timeout: float = SPAM_TIMEOUT) -> Check:
    label = "Spam score (SpamAssassin)"
    command = spam_command()
    if command is None:
        return Check("spam", label, "skip", "Not installed (Debian package spamassassin).")
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(data), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        return Check("spam", label, "skip", f"SpamAssassin did not answer within {timeout:g} s.")
    match = _SCORE.search(out)
    if not match:
        return Check("spam", label, "skip", "SpamAssassin gave no score.")
    score = float(match.group(1))
    tests = _TESTS.search(out)
    names = " ".join(tests.group(1).decode().replace(",", " ").split()) if tests else ""
    detail = f"Score {score:g} (5 or more is spam)." + (f" Rules hit: {names}." if names else "")
    if score >= SPAM_FAIL:
        return Check("spam", label, "fail", detail, _SPAM_FIX, "body")
    if score >= SPAM_WARN:
        return Check("spam", label, "warn", detail, _SPAM_FIX, "body")
    return Check("spam", label, "pass", detail)


_SPAM_FIX = (
    "Rewrite what the rules hit: fewer capitals, exclamation marks and money words, "
    "more text than images."
)


# ---------------------------------------------------------------- all together


@dataclass(slots=True)
class Options:
    link_timeout: float = LINK_TIMEOUT
    links_total: float = LINKS_TOTAL
    spam_timeout: float = SPAM_TIMEOUT
    allow_private: bool = False
    spam: bool = True


async def run_preflight(
    session: Session, campaign: Campaign, settings: Settings, options: Options | None = None
) -> Report:
    """Every check on one sample message; the slow ones (links, spam) run together."""
    options = options or Options(allow_private=settings.preflight_private_links)
    started = time.perf_counter()
    topics = topic_names(session, campaign)
    data, checks = await render_sample(campaign, topics, settings)
    if data is None:
        return Report(int(campaign.id or 0), checks, time.perf_counter() - started)
    sample = parse_sample(data)
    links, spam = await asyncio.gather(
        check_links(
            marketer_links(sample.html, settings.base_url),
            timeout=options.link_timeout,
            total=options.links_total,
            allow_private=options.allow_private,
        ),
        spam_check(data, timeout=options.spam_timeout) if options.spam else _skipped_spam(),
    )
    for check in [
        check_subject(sample.subject),
        check_size(sample.html),
        check_images(sample.html),
        *check_footer(sample, campaign, settings),
        *check_headers(sample, settings),
        links_check(links),
        spam,
    ]:
        # A check the rendering already failed (postal address, DKIM) is reported once.
        if all(check.key != c.key for c in checks):
            checks.append(check)
    return Report(int(campaign.id or 0), checks, time.perf_counter() - started)


async def _skipped_spam() -> Check:
    return Check("spam", "Spam score (SpamAssassin)", "skip", "Not run.")
