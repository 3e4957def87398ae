"""The public archive (issue 12): /archive, one permanent page per campaign, its email as a
document of its own, and /archive/rss.xml. Only sent marketing campaigns the marketer chose
to publish; everything else is a 404 indistinguishable from a campaign that never existed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import format_datetime

from babel.dates import format_date
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.campaigns import archive
from app.errors import NotFound
from app.i18n import translations
from app.settings import get_settings
from app.web.deps import SessionDep
from app.web.params import MAX_DB_INT
from app.web.security_headers import CSP
from app.web.templating import render, request_language

router = APIRouter(include_in_schema=False)

FEED_ITEMS = 50
_REF = re.compile(r"^([1-9][0-9]{0,9})(?:-([a-z0-9-]{0,80}))?$")
_CACHE = "public, max-age=300"
PAGE_CSP = CSP + "; frame-src 'self'"
"""The page frames its email (/archive/{id}/email) and nothing else."""
EMAIL_CSP = (
    "default-src 'none'; img-src https: data:; style-src 'unsafe-inline'; font-src https: data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox allow-popups "
    "allow-popups-to-escape-sandbox"
)
"""The email as sent: its inline styles and remote images, no script, no form; links open
in a new tab (the frame's `<base target="_blank">`); only our page may frame it."""
_HEAD = re.compile(r"<head\b[^>]*>", re.I)


def _campaign_id(ref: str) -> tuple[int, str | None]:
    match = _REF.match(ref)
    if match is None or int(match.group(1)) > MAX_DB_INT:
        raise NotFound("there is no archived campaign at this address")
    return int(match.group(1)), match.group(2)


def _when(value: datetime, lang: str) -> str:
    return format_date(value, format="long", locale=lang)


_PAGE = re.compile(r"[1-9][0-9]{0,5}")


@router.get("/archive")
def archive_list(request: Request, db: SessionDep, page: str | None = None) -> Response:
    """Newest first, PAGE_SIZE a page: /archive, then /archive?page=2 and on; `?page=1` is
    /archive (one address per page). A page past the end or not a page number: 404 page."""
    if page == "1":
        return RedirectResponse("/archive", status_code=301)
    try:
        if page is not None and not _PAGE.fullmatch(page):
            raise NotFound("there is no such page of the archive")
        shown = archive.archive_page(db, get_settings(), int(page or 1))
    except NotFound:
        return render(request, "public/archive_no_page.html", {}, status_code=404)
    lang = request_language(request)
    response = render(
        request,
        "public/archive.html",
        {
            "entries": [(e, _when(e.sent_at, lang)) for e in shown.entries],
            "page": shown,
            "newer_url": _page_url(shown.number - 1) if shown.newer else None,
            "older_url": _page_url(shown.number + 1) if shown.older else None,
        },
    )
    response.headers["Cache-Control"] = _CACHE
    return response


def _page_url(number: int) -> str:
    return "/archive" if number == 1 else f"/archive?page={number}"


@router.get("/archive/rss.xml")
def archive_feed(request: Request, db: SessionDep) -> Response:
    settings = get_settings()
    gettext = translations(request_language(request)).gettext
    base = settings.base_url.rstrip("/")
    issues = archive.published_issues(db, settings, FEED_ITEMS)
    ET.register_namespace("atom", "http://www.w3.org/2005/Atom")
    rss = ET.Element("rss", {"version": "2.0"})
    channel = ET.SubElement(rss, "channel")
    ET.SubElement(channel, "title").text = gettext("%(org)s newsletter archive") % {
        "org": settings.org_name
    }
    ET.SubElement(channel, "link").text = f"{base}/archive"
    ET.SubElement(channel, "description").text = gettext(
        "Newsletters %(org)s has sent, as published in its archive."
    ) % {"org": settings.org_name}
    ET.SubElement(channel, "language").text = request_language(request)
    ET.SubElement(
        channel,
        "{http://www.w3.org/2005/Atom}link",
        {"href": f"{base}/archive/rss.xml", "rel": "self", "type": "application/rss+xml"},
    )
    for issue in issues:
        entry = issue.entry
        item = ET.SubElement(channel, "item")
        ET.SubElement(item, "title").text = entry.subject
        ET.SubElement(item, "link").text = base + entry.path
        ET.SubElement(item, "guid", {"isPermaLink": "true"}).text = f"{base}/archive/{entry.id}"
        stamp = entry.sent_at.replace(tzinfo=UTC)
        ET.SubElement(item, "pubDate").text = format_datetime(stamp, usegmt=True)
        ET.SubElement(item, "description").text = _excerpt(issue.text)
    body = ET.tostring(rss, encoding="utf-8", xml_declaration=True)
    return Response(
        body,
        media_type="application/rss+xml; charset=utf-8",
        headers={"Cache-Control": _CACHE},
    )


def _excerpt(text: str, limit: int = 600) -> str:
    """The start of the text part, on one line (XML 1.0 cannot carry control characters)."""
    flat = " ".join(re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", " ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _missing(request: Request) -> Response:
    return render(request, "public/archive_missing.html", {}, status_code=404)


@router.get("/archive/{ref}")
def archive_page(request: Request, db: SessionDep, ref: str) -> Response:
    try:
        campaign_id, slug = _campaign_id(ref)
        issue = archive.issue(db, campaign_id, get_settings())
    except NotFound:
        return _missing(request)
    if slug != issue.entry.slug:  # renamed, or the bare id: the one permanent address
        return RedirectResponse(issue.entry.path, status_code=301)
    response = render(
        request,
        "public/archive_issue.html",
        {"issue": issue, "when": _when(issue.entry.sent_at, request_language(request))},
    )
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Cache-Control"] = _CACHE
    return response


@router.get("/archive/{campaign_id}/email")
def archive_email(request: Request, db: SessionDep, campaign_id: str) -> Response:
    """The email itself as a document, for the page's sandboxed frame."""
    try:
        number, slug = _campaign_id(campaign_id)
        if slug is not None:
            raise NotFound("there is no archived campaign at this address")
        html = archive.issue(db, number, get_settings()).html
    except NotFound:
        return _missing(request)
    base = '<base target="_blank">'
    html = (
        _HEAD.sub(lambda m: m.group(0) + base, html, count=1) if _HEAD.search(html) else base + html
    )
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": EMAIL_CSP,
            "X-Frame-Options": "SAMEORIGIN",
            "Cache-Control": _CACHE,
        },
    )
