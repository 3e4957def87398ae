"""The review page's checklist: what must hold before a campaign is scheduled or sent.

Each check names the editor field that fixes it. These are the cheap ones the send path
already enforces (as service.preflight: the postal address, a template that renders with
the unsubscribe link and the address in both parts) plus "someone will receive it"; the
deliverability preflight (size, links, images, spam score) adds its own `Check`s here."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from app.campaigns.service import campaign_topics
from app.errors import ConfigurationError, InvalidInput
from app.models import Campaign, Category, saved_id
from app.sending.offload import run_limited
from app.sending.render import prepare_campaign
from app.settings import Settings


@dataclass(frozen=True, slots=True)
class Check:
    label: str
    ok: bool
    detail: str = ""
    field: str | None = None
    """The editor field (its id is f-FIELD) that fixes a failure; None: a setting."""


def basic_checks(
    session: Session, campaign: Campaign, *, settings: Settings, recipients: int
) -> list[Check]:
    """The checks, in the order a marketer fixes them. Rendering runs in a render thread,
    time-limited (a template that never ends is a failed check, not a stalled page)."""
    checks = [_postal_address(campaign, settings)]
    campaign_id = saved_id(campaign)
    topics = [t.name for t in campaign_topics(session, [campaign_id])[campaign_id]]
    try:
        run_limited(_render, campaign, settings, topics, timeout=settings.render_timeout)
        checks.append(Check(_render_label(campaign), True))
    except ConfigurationError as exc:
        checks.append(Check(_render_label(campaign), False, str(exc)))
    except InvalidInput as exc:
        checks.append(Check(_render_label(campaign), False, str(exc), "body"))
    checks.append(
        Check(
            "Someone will receive it",
            recipients > 0,
            "" if recipients else "no subscriber matches its topics (and segment) now",
            "topics",
        )
    )
    return checks


def _render(campaign: Campaign, settings: Settings, topics: list[str]) -> None:
    """What service.preflight renders, off the request's session (the thread may outlive
    the request when it overruns)."""
    try:
        prepare_campaign(campaign, settings=settings, topic_names=topics)
    except (InvalidInput, ConfigurationError):
        raise
    except Exception as exc:  # a template error is the marketer's input
        raise InvalidInput(f"the campaign cannot be rendered: {exc}") from exc


def _marketing(campaign: Campaign) -> bool:
    return Category(campaign.category) is Category.MARKETING


def _postal_address(campaign: Campaign, settings: Settings) -> Check:
    if not _marketing(campaign):
        return Check("Postal address (not needed for transactional mail)", True)
    ok = bool(settings.postal_address.strip())
    detail = "" if ok else "set OCTOMAIL_POSTAL_ADDRESS: marketing mail must show it"
    return Check("The sender's postal address is set", ok, detail)


def _render_label(campaign: Campaign) -> str:
    if _marketing(campaign):
        return "It renders, with the unsubscribe link and the postal address in both parts"
    return "It renders"
