"""Drafts as the editor handles them: what can be chosen (topics, layouts), a copy of any
campaign as a new draft, and deleting a draft (nothing else: a campaign that went out is
the record of who was mailed)."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, col, select

from app.campaigns.service import campaign_topics, create_campaign, get_campaign
from app.errors import InvalidTransition
from app.models import Campaign, CampaignStatus, Topic
from app.sending.templating import EMAIL_TEMPLATES
from app.settings import Settings, get_settings

COPY_PREFIX = "Copy of "


def topic_choices(session: Session) -> list[Topic]:
    """Every topic, oldest first: the editor's checkboxes."""
    return list(session.exec(select(Topic).order_by(col(Topic.id))))


def layout_choices(settings: Settings | None = None) -> list[str]:
    """The layouts a campaign may name: templates/email/*.html plus the install's own
    (OCTOMAIL_EMAIL_LAYOUT_DIR), "default" first."""
    settings = settings or get_settings()
    folders = [EMAIL_TEMPLATES]
    if settings.email_layout_dir:
        folders.append(Path(settings.email_layout_dir))
    names = {p.stem for folder in folders if folder.is_dir() for p in folder.glob("*.html")}
    return sorted(names, key=lambda name: (name != "default", name))


def duplicate(session: Session, campaign_id: int, *, settings: Settings | None = None) -> Campaign:
    """A new draft with the content, topics and audience of any campaign (sent ones too:
    "send this again next month" is the usual reason)."""
    source = get_campaign(session, campaign_id)
    topics = [t.slug for t in campaign_topics(session, [campaign_id])[campaign_id]]
    return create_campaign(
        session,
        name=(COPY_PREFIX + source.name)[:200],
        subject=source.subject,
        preheader=source.preheader,
        body=source.body,
        topics=topics,
        body_format=source.body_format,
        category=source.category,
        from_addr=source.from_addr,
        reply_to=source.reply_to,
        layout=source.layout,
        attribute_filter=source.attribute_filter or None,
        segment_id=source.segment_id,
        track_opens=source.track_opens,
        track_clicks=source.track_clicks,
        settings=settings,
    )


def delete_draft(session: Session, campaign_id: int) -> str:
    """Delete a draft (its topic links go with it); anything past draft is a 409. Returns
    the deleted campaign's name, for the message."""
    campaign = get_campaign(session, campaign_id, lock=True)
    if campaign.status != CampaignStatus.DRAFT:
        raise InvalidTransition(
            f"only a draft can be deleted; this campaign is {campaign.status} "
            "(cancel it instead; its recipients stay on record)"
        )
    name = campaign.name
    session.delete(campaign)
    session.flush()
    return name
