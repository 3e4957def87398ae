"""The campaign editor: write a draft (fields left, preview right), preview it as a chosen
subscriber in a sandboxed frame, test-send it, duplicate it, delete it.

Handlers parse and render; app/campaigns (service, preview, drafts) decides. The preview
is rendered by the same bounded path as the API's (app/sending/offload.py: a template that
never ends answers 422 after OCTOMAIL_RENDER_TIMEOUT, the page never stalls) and served
as its own document under a strict policy: no script, no form, no same-origin access."""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.campaigns import archive, drafts, preview, service
from app.errors import InvalidInput, InvalidTransition, OctomailError, RateLimited
from app.mail.addresses import normalize_email
from app.models import Campaign, CampaignStatus, Role, saved_id
from app.reports.campaign import REPORTABLE, campaign_report
from app.segments.service import list_segments
from app.settings import get_settings
from app.subscribers.optout import find_by_email
from app.web.admin.auth import Marketer, admin_user
from app.web.admin.campaigns.forms import (
    BODY_FORMATS,
    CATEGORIES,
    CampaignForm,
    field_of,
    parse_addresses,
)
from app.web.admin.render import redirect, render
from app.web.deps import SessionDep
from app.web.params import DbId
from app.web.ratelimit import RateLimiter
from app.web.security_headers import ADMIN_CSP

router = APIRouter(prefix="/admin/campaigns", dependencies=[Depends(admin_user(Role.VIEWER))])

MAX_TEST_ADDRESSES = 5
TEST_SENDS = RateLimiter(limit=10, window=600)
"""Test sends per marketer: 10 in 10 minutes (each to up to 5 addresses)."""
EDITOR_CSP = ADMIN_CSP + "; frame-src 'self'"
"""The editor frames its own preview URL; nothing else."""
PREVIEW_CSP = (
    "default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline' https:; "
    "font-src https: data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox"
)
"""The previewed email: its own styles and remote images, never a script or a form, and
only inside our own pages (the iframe's sandbox attribute says the same from outside)."""

Text = Annotated[str, Form(max_length=1_000_000)]
Short = Annotated[str, Form(max_length=1000)]


def _editor(
    request: Request,
    session: SessionDep,
    form: CampaignForm,
    campaign: Campaign | None = None,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    addresses: str = "",
) -> Response:
    editable = campaign is None or campaign.status == CampaignStatus.DRAFT
    title = campaign.name if campaign else "New campaign"
    sent = campaign is not None and campaign.status in REPORTABLE
    response = render(
        request,
        "admin/campaigns/editor.html",
        {
            "campaign": campaign,
            "form": form,
            "editable": editable,
            "errors": errors or {},
            "topics": drafts.topic_choices(session),
            "segments": [(str(s.id), s.name) for s in list_segments(session)],
            "layouts": drafts.layout_choices(),
            "body_formats": BODY_FORMATS,
            "categories": CATEGORIES,
            "addresses": addresses,
            "max_test": MAX_TEST_ADDRESSES,
            "page_title": title,
            "archived": campaign is not None and archive.listed(campaign),
            "report": campaign_report(session, saved_id(campaign)) if campaign and sent else None,
            "breadcrumbs": [("Campaigns", "/admin/campaigns"), (title, request.url.path)],
        },
        status_code=status_code,
    )
    response.headers["Content-Security-Policy"] = EDITOR_CSP
    return response


def _form(
    name: Short = "",
    subject: Short = "",
    body: Text = "",
    body_format: Short = "markdown",
    layout: Short = "default",
    category: Short = "marketing",
    topics: Annotated[list[str], Form(max_length=100)] = [],  # noqa: B006 - FastAPI copies it
    segment_id: Short = "",
    from_addr: Short = "",
    reply_to: Short = "",
    preheader: Short = "",
    track_opens: Short = "",
    track_clicks: Short = "",
    tracking_shown: Short = "",
) -> CampaignForm:
    return CampaignForm(
        name,
        subject,
        body,
        body_format,
        layout,
        category,
        topics,
        segment_id,
        from_addr,
        reply_to,
        preheader,
        track_opens,
        track_clicks,
        tracking_shown,
    )


FormDep = Annotated[CampaignForm, Depends(_form)]


@router.get("/new")
def new_campaign(
    request: Request,
    session: SessionDep,
    me: Marketer,
    segment: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """A blank draft; `?segment=ID` (the segment page's "New campaign") preselects it."""
    return _editor(request, session, CampaignForm(segment_id=segment.strip()))


@router.post("/new")
def create(
    request: Request, session: SessionDep, me: Marketer, form: FormDep, then: Short = ""
) -> Response:
    try:
        campaign = service.create_campaign(session, **form.fields(), settings=get_settings())
    except InvalidInput as exc:
        error = {field_of(str(exc)): str(exc).capitalize()}
        return _editor(request, session, form, errors=error, status_code=422)
    return _after_save(campaign, then, "Draft saved.")


def _after_save(campaign: Campaign, then: str, message: str) -> Response:
    if then == "review":
        return redirect(f"/admin/campaigns/{campaign.id}/review", message)
    return redirect(f"/admin/campaigns/{campaign.id}", message)


def _saved_form(session: SessionDep, campaign: Campaign) -> CampaignForm:
    campaign_id = saved_id(campaign)
    topics = service.campaign_topics(session, [campaign_id])[campaign_id]
    return CampaignForm.of(campaign, [t.slug for t in topics])


@router.get("/{campaign_id}")
def edit(request: Request, session: SessionDep, me: Marketer, campaign_id: DbId) -> Response:
    campaign = service.get_campaign(session, campaign_id)
    return _editor(request, session, _saved_form(session, campaign), campaign)


@router.post("/{campaign_id}")
def save(
    request: Request,
    session: SessionDep,
    me: Marketer,
    campaign_id: DbId,
    form: FormDep,
    then: Short = "",
) -> Response:
    campaign = service.get_campaign(session, campaign_id)
    try:
        service.update_campaign(session, campaign_id, form.fields(), settings=get_settings())
    except (InvalidInput, InvalidTransition) as exc:
        error = {field_of(str(exc)): str(exc).capitalize()}
        return _editor(request, session, form, campaign, errors=error, status_code=422)
    return _after_save(campaign, then, "Draft saved.")


@router.get("/{campaign_id}/preview")
def preview_frame(
    session: SessionDep,
    me: Marketer,
    campaign_id: DbId,
    format: Annotated[str, Query(pattern="^(html|text)$")] = "html",
    subscriber: Annotated[str, Query(max_length=320)] = "",
) -> Response:
    """The email as one document for the editor's sandboxed iframe."""
    campaign = service.get_campaign(session, campaign_id)
    try:
        subscriber_id = _subscriber_id(session, subscriber)
        shown = preview.preview(
            session, campaign, settings=get_settings(), subscriber_id=subscriber_id
        )
    except OctomailError as exc:
        return _frame(f"<p><strong>No preview:</strong> {html.escape(str(exc))}</p>", 422)
    if format == "text":
        head = f"Subject: {shown['subject']}\nTo: {shown['to']}\n\n"
        text = html.escape(head + shown["text"])
        return _frame(f'<pre style="white-space:pre-wrap;overflow-wrap:anywhere">{text}</pre>')
    return _frame(shown["html"], raw=True)


def _subscriber_id(session: SessionDep, address: str) -> int | None:
    """The subscriber to preview as: none given -> a sample person; unknown -> 404."""
    if not address.strip():
        return None
    found = find_by_email(session, normalize_email(address))
    if found is None:
        raise InvalidInput(f"no subscriber has the address {address.strip()}")
    return found.id


def _frame(body: str, status_code: int = 200, *, raw: bool = False) -> Response:
    document = (
        body
        if raw
        else (
            '<!doctype html><html lang="en"><meta charset="utf-8"><title>Preview</title>'
            f'<body style="font-family:sans-serif;margin:1rem">{body}</body></html>'
        )
    )
    return HTMLResponse(
        document,
        status_code=status_code,
        headers={
            "Content-Security-Policy": PREVIEW_CSP,
            "X-Frame-Options": "SAMEORIGIN",
            "Cache-Control": "no-store",
        },
    )


@router.post("/{campaign_id}/test")
async def test_send(
    request: Request, session: SessionDep, me: Marketer, campaign_id: DbId, addresses: Short = ""
) -> Response:
    """Send "[TEST] subject" to up to 5 typed addresses; nothing is counted or recorded."""
    campaign = service.get_campaign(session, campaign_id)
    emails = parse_addresses(addresses)
    try:
        if not emails or len(emails) > MAX_TEST_ADDRESSES:
            raise InvalidInput(f"Type between 1 and {MAX_TEST_ADDRESSES} addresses")
        if not TEST_SENDS.allow(f"user:{me.user_id}"):
            raise RateLimited("Too many test sends; wait a few minutes and try again")
        report = await preview.send_test(session, campaign, emails, settings=get_settings())
    except (InvalidInput, RateLimited) as exc:
        form = _saved_form(session, campaign)
        error = {"addresses": str(exc)[:1].upper() + str(exc)[1:]}
        status_code = 429 if isinstance(exc, RateLimited) else 422
        return _editor(
            request,
            session,
            form,
            campaign,
            errors=error,
            status_code=status_code,
            addresses=addresses,
        )
    message = _test_report(report.sent, report.failed)
    return redirect(f"/admin/campaigns/{campaign_id}#test-send", message)


def _test_report(sent: list[str], failed: list[dict[str, str]]) -> str:
    parts = []
    if sent:
        parts.append(f"Test sent to {', '.join(sent)}.")
    if failed:
        refused = "; ".join(f"{f['email']} ({f['reply']})" for f in failed)
        parts.append(f"Not accepted: {refused}.")
    return " ".join(parts)


@router.post("/{campaign_id}/duplicate")
def duplicate(session: SessionDep, me: Marketer, campaign_id: DbId) -> Response:
    copy = drafts.duplicate(session, campaign_id, settings=get_settings())
    return redirect(
        f"/admin/campaigns/{copy.id}", f"This is a new draft, a copy of #{campaign_id}."
    )


@router.post("/{campaign_id}/archive")
def publish(
    session: SessionDep,
    me: Marketer,
    campaign_id: DbId,
    public: Annotated[str, Form(pattern="^[01]$")],
) -> Response:
    """Show the campaign in the public archive (listed once sent), or take it out."""
    try:
        campaign = archive.set_public(session, campaign_id, public == "1")
    except InvalidInput as exc:
        session.rollback()
        return redirect(f"/admin/campaigns/{campaign_id}", str(exc).capitalize() + ".")
    if not campaign.public_archive:
        return redirect(f"/admin/campaigns/{campaign_id}", "Taken out of the public archive.")
    if archive.listed(campaign):
        return redirect(f"/admin/campaigns/{campaign_id}", "Shown in the public archive.")
    return redirect(
        f"/admin/campaigns/{campaign_id}",
        "It will be shown in the public archive once it has been sent.",
    )


@router.get("/{campaign_id}/delete")
def confirm_delete(
    request: Request, session: SessionDep, me: Marketer, campaign_id: DbId
) -> Response:
    campaign = service.get_campaign(session, campaign_id)
    return render(
        request,
        "admin/campaigns/delete.html",
        {
            "campaign": campaign,
            "breadcrumbs": [
                ("Campaigns", "/admin/campaigns"),
                (campaign.name, f"/admin/campaigns/{campaign_id}"),
                ("Delete", request.url.path),
            ],
        },
    )


@router.post("/{campaign_id}/delete")
def delete(session: SessionDep, me: Marketer, campaign_id: DbId) -> Response:
    name = drafts.delete_draft(session, campaign_id)
    return redirect("/admin/campaigns", f"The draft “{name}” is deleted.")
