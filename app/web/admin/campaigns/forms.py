"""The campaign editor's form: parsed into the fields app/campaigns/service.py takes, and a
domain error's message pinned to the field it is about (the error summary links there)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from app.models import Campaign
from app.web.params import form_ids

BODY_FORMATS = (("markdown", "Markdown"), ("html", "HTML"))
CATEGORIES = (
    ("marketing", "Marketing (needs consent; unsubscribe link and postal address)"),
    ("transactional", "Transactional (account and policy notices)"),
)
_FIELD_WORDS = (
    ("topic", "topics"),
    ("segment", "segment_id"),
    ("layout", "layout"),
    ("preheader", "preheader"),
    ("subject", "subject"),
    ("name", "name"),
    ("from_addr", "from_addr"),
    ("reply_to", "reply_to"),
    ("body_format", "body_format"),
    ("category", "category"),
)


@dataclass
class CampaignForm:
    """What the editor posts, as strings (kept as typed when the page comes back with an
    error)."""

    name: str = ""
    subject: str = ""
    body: str = ""
    body_format: str = "markdown"
    layout: str = "default"
    category: str = "marketing"
    topics: list[str] = field(default_factory=list)
    segment_id: str = ""
    from_addr: str = ""
    reply_to: str = ""
    preheader: str = ""
    track_opens: str = "1"
    track_clicks: str = "1"
    tracking_shown: str = "1"
    """The form carried the two boxes: an unticked box is absent from a post, so only a
    post that says it showed them may turn tracking off."""

    @classmethod
    def of(cls, campaign: Campaign, topics: list[str]) -> CampaignForm:
        segment = campaign.segment_id
        return cls(
            name=campaign.name,
            subject=campaign.subject,
            body=campaign.body,
            body_format=campaign.body_format,
            layout=campaign.layout,
            category=str(campaign.category),
            topics=topics,
            segment_id=str(segment) if segment else "",
            from_addr=campaign.from_addr,
            reply_to=campaign.reply_to,
            preheader=campaign.preheader,
            track_opens="1" if campaign.track_opens else "",
            track_clicks="1" if campaign.track_clicks else "",
        )

    def fields(self) -> dict[str, Any]:
        """The service's keyword arguments. An empty name takes the subject (the name is
        only for marketers; most campaigns are known by their subject)."""
        out = asdict(self)
        out["name"] = self.name.strip() or self.subject.strip()[:200] or "Untitled"
        segment = out.pop("segment_id").strip()
        ids = form_ids([segment])
        out["segment_id"] = ids[0] if ids else (None if not segment else -1)
        shown = bool(out.pop("tracking_shown"))
        for key in ("track_opens", "track_clicks"):
            value = bool(out.pop(key))
            if shown:
                out[key] = value
        return out


def field_of(message: str) -> str:
    """The form field a service error names ("subject must not be empty" -> subject);
    template and content errors belong to the body."""
    lowered = message.lower()
    for word, name in _FIELD_WORDS:
        if re.search(rf"\b{word}", lowered[:36]):
            return name
    return "body"


def parse_addresses(text: str) -> list[str]:
    """Addresses typed one a line or separated by commas, blanks dropped, order kept."""
    parts = (p.strip() for p in re.split(r"[,;\s]+", text))
    return list(dict.fromkeys(p for p in parts if p))
