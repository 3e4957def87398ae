"""The public archive (issue 12): sent marketing campaigns the marketer chose to publish,
rendered for anyone, without personal data or tracking.

The render is the campaign's own templates (app/sending/templating.py) with a neutral
person: no name, no address, no attributes, and in place of the unsubscribe and preference
links a link to /account (a reader of the archive has no link of their own). It never goes
through render_message / render_preview, the per-recipient path where links are signed and
tracking is added: no token, pixel or rewritten link can reach an archived page.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from jinja2 import TemplateError
from sqlalchemy import nulls_last, true
from sqlmodel import Session, col, select

from app.campaigns.service import campaign_topics, get_campaign
from app.errors import InvalidInput, NotFound
from app.models import Campaign, CampaignStatus, Category
from app.sending.mime import clean_text
from app.sending.sandbox import TemplateLimitError
from app.sending.templating import CompiledTemplate, campaign_context, compile_campaign
from app.settings import Settings

PAGE_SIZE = 50
"""Campaigns on one page of the archive (/archive?page=N)."""
MAX_PAGE = 100_000
"""Past any real archive: a larger page number is answered NotFound without a query."""
_SLUG_DROP = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Entry:
    id: int
    subject: str
    slug: str
    sent_at: datetime

    @property
    def path(self) -> str:
        """The permanent page: the id decides, the slug is for people (a changed one
        redirects)."""
        return f"/archive/{self.id}-{self.slug}"


@dataclass(frozen=True)
class ArchivePage:
    """One page of the archive, newest first."""

    number: int
    entries: list[Entry]
    older: bool
    """Another page follows, with older campaigns (found by reading one row more, not by
    counting the archive)."""

    @property
    def newer(self) -> bool:
        return self.number > 1


@dataclass(frozen=True)
class Issue:
    """One archived campaign as the public sees it."""

    entry: Entry
    html: str
    text: str


@dataclass(frozen=True)
class _Source:
    """Everything a neutral render depends on (hashable: renders are cached by it)."""

    campaign_id: int
    name: str
    subject: str
    preheader: str
    body: str
    body_format: str
    layout: str
    topics: tuple[str, ...]
    org_name: str
    postal_address: str
    account_url: str
    layout_dir: str


def slugify(text: str) -> str:
    """ASCII words joined by dashes, at most 60 characters ("campaign" when none is left)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _SLUG_DROP.sub("-", ascii_text.lower()).strip("-")[:60].rstrip("-")
    return slug or "campaign"


def sent_at(campaign: Campaign) -> datetime:
    return campaign.finished_at or campaign.started_at or campaign.send_at or campaign.updated_at


def listed(campaign: Campaign) -> bool:
    """Published, marketing, and sent: the only campaigns the public ever sees."""
    return (
        campaign.public_archive
        and campaign.category == Category.MARKETING
        and campaign.status == CampaignStatus.DONE
    )


def set_public(session: Session, campaign_id: int, public: bool) -> Campaign:
    """Show or hide a campaign in the archive. Marketing campaigns only; a draft may be
    marked ahead (it is listed once sent)."""
    campaign = get_campaign(session, campaign_id)
    if public and campaign.category != Category.MARKETING:
        raise InvalidInput("only marketing campaigns can be shown in the public archive")
    campaign.public_archive = public
    session.add(campaign)
    session.flush()
    return campaign


def _source(
    session: Session, campaign: Campaign, settings: Settings, topics: list[str] | None = None
) -> _Source:
    campaign_id = int(campaign.id or 0)
    if topics is None:
        topics = [t.name for t in campaign_topics(session, [campaign_id])[campaign_id]]
    return _Source(
        campaign_id=campaign_id,
        name=campaign.name,
        subject=campaign.subject,
        preheader=(campaign.preheader or "").strip(),
        body=campaign.body,
        body_format=campaign.body_format,
        layout=campaign.layout or "default",
        topics=tuple(topics),
        org_name=settings.org_name,
        postal_address=settings.postal_address,
        account_url=settings.base_url.rstrip("/") + "/account",
        layout_dir=settings.email_layout_dir,
    )


def _tidy_subject(text: str) -> str:
    """A subject written for a person, read by nobody in particular: "{{ first_name }}, our
    news" must not start with a comma."""
    return clean_text(text).strip().lstrip(",;:!-– ").strip() or clean_text(text).strip()


def _neutral(source: _Source) -> dict[str, object]:
    """The person an archived campaign is rendered for: nobody."""
    return {
        "name": "",
        "first_name": "",
        "email": "",
        "attributes": {},
        "unsubscribe_url": source.account_url,
        "preferences_url": source.account_url,
    }


def _context(source: _Source) -> dict[str, object]:
    return campaign_context(
        org_name=source.org_name,
        postal_address=source.postal_address,
        topics=list(source.topics),
        category=Category.MARKETING.value,
        campaign_id=source.campaign_id,
        campaign_name=source.name,
    )


@lru_cache(maxsize=512)
def _subject(source: _Source) -> str:
    """The subject alone (the list and its slugs need no body)."""
    template = CompiledTemplate(source.subject, autoescape=False, context=_context(source))
    return _tidy_subject(template.render(_neutral(source)))


@lru_cache(maxsize=64)
def _render(source: _Source) -> tuple[str, str, str]:
    """(subject, html, text) of a campaign for nobody in particular."""
    html, text, subject, preheader = compile_campaign(
        source.body,
        source.body_format,
        source.layout,
        source.subject,
        _context(source),
        layout_dir=source.layout_dir,
        preheader=source.preheader,
    )
    values = _neutral(source)
    values["subject"] = _tidy_subject(subject.render(values))
    values["preheader"] = clean_text(preheader.render(values)) if source.preheader else ""
    return str(values["subject"]), html.render(values), text.render(values)


def render_public(session: Session, campaign: Campaign, settings: Settings) -> Issue:
    source = _source(session, campaign, settings)
    try:
        _subject_text, html, text = _render(source)
    except (TemplateError, TemplateLimitError, TypeError, ValueError, LookupError) as exc:
        raise InvalidInput(f"this campaign cannot be shown: {exc}") from exc
    return Issue(entry=_entry(campaign, source), html=html, text=text)


def _listed_campaigns(session: Session, limit: int, offset: int = 0) -> list[Campaign]:
    """Newest first. The order and the cut are read from the archive's partial index
    (migration 0019: only published campaigns are in it), then only those rows are loaded:
    the bodies of the rest are never read."""
    ids = session.exec(
        select(col(Campaign.id))
        .where(
            col(Campaign.public_archive) == true(),
            Campaign.category == Category.MARKETING,
            Campaign.status == CampaignStatus.DONE,
        )
        .order_by(nulls_last(col(Campaign.finished_at).desc()), col(Campaign.id).desc())
        .limit(limit)
        .offset(offset)
    ).all()
    if not ids:
        return []
    rows = {c.id: c for c in session.exec(select(Campaign).where(col(Campaign.id).in_(ids)))}
    return [rows[i] for i in ids if i in rows]


def _entry(campaign: Campaign, source: _Source) -> Entry:
    try:
        subject = _subject(source)
    except (TemplateError, TemplateLimitError, TypeError, ValueError, LookupError):
        subject = clean_text(campaign.name)
    return Entry(int(campaign.id or 0), subject, slugify(subject), sent_at(campaign))


def _entries(session: Session, settings: Settings, campaigns: list[Campaign]) -> list[Entry]:
    """Subjects only (each rendered for nobody)."""
    topics = campaign_topics(session, [int(c.id or 0) for c in campaigns])
    return [
        _entry(c, _source(session, c, settings, [t.name for t in topics[int(c.id or 0)]]))
        for c in campaigns
    ]


def archive_page(session: Session, settings: Settings, number: int = 1) -> ArchivePage:
    """Page `number` (from 1) of the archive. NotFound past the last page; the first page
    always exists, empty while nothing is published."""
    if not 1 <= number <= MAX_PAGE:
        raise NotFound("there is no such page of the archive")
    campaigns = _listed_campaigns(session, PAGE_SIZE + 1, offset=(number - 1) * PAGE_SIZE)
    if number > 1 and not campaigns:
        raise NotFound("there is no such page of the archive")
    return ArchivePage(
        number=number,
        entries=_entries(session, settings, campaigns[:PAGE_SIZE]),
        older=len(campaigns) > PAGE_SIZE,
    )


def published_issues(session: Session, settings: Settings, limit: int) -> list[Issue]:
    """The latest archived campaigns rendered whole (the feed)."""
    return [render_public(session, c, settings) for c in _listed_campaigns(session, limit)]


def issue(session: Session, campaign_id: int, settings: Settings) -> Issue:
    """One archived campaign; NotFound for anything not listed (a draft, a transactional
    or unpublished campaign looks exactly like one that does not exist)."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or not listed(campaign):
        raise NotFound("there is no archived campaign at this address")
    return render_public(session, campaign, settings)
