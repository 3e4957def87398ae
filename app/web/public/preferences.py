"""/preferences/{token}: the preference center behind the signed link in every footer.

Topics, name, tracking choice, unsubscribe from everything, email my data, erase my data
(with a confirmation step). Every change is a consent event. The link is in every
newsletter, so it can be forwarded: it never hands out the data export itself, it mails a
short-lived download link (/my-data/{token}) to the person's own address.

Every route first checks that the link's person still holds its secret (one primary-key
read); a link of an erased person answers the "gone" page (410) and changes nothing.

No CSRF token, on purpose: no cookie or session authenticates anyone here; the signed token
in the URL is the whole capability (see app/web/public/unsubscribe.py). GET and HEAD never
change anything; every change is a POST.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.db import get_engine
from app.i18n import N_, SUPPORTED
from app.links import LinkRef, read_export_token, read_prefs_token
from app.mail.addresses import mask_email
from app.models import Channel
from app.sending.render import subject_received
from app.subscribers.allowance import Outcome
from app.subscribers.consent import Evidence
from app.subscribers.link_owner import link_owner
from app.subscribers.preferences import (
    LinkScope,
    ResubscribeRefused,
    can_resubscribe,
    erase_for,
    export_for,
    load_view,
    opt_out,
    update_profile,
    update_topics,
)
from app.subscribers.rights import send_export_link
from app.web.deps import request_evidence
from app.web.params import form_ids
from app.web.public.self_service import (
    UNSUBSCRIBED_FROM_EVERYTHING,
    choices_context,
    data_download,
    private_page,
    read_form,
)
from app.web.templating import request_gettext

log = logging.getLogger(__name__)
router = APIRouter()


def _urls(request: Request, token: str) -> dict[str, str]:
    lang = request.query_params.get("lang")
    query = f"?lang={lang}" if lang in SUPPORTED else ""
    base = f"/preferences/{token}"
    return {
        name: f"{base}{suffix}{query}"
        for name, suffix in (
            ("action", ""),
            ("action_unsubscribe", "/unsubscribe"),
            ("action_export_email", "/export-email"),
            ("erase_url", "/erase"),
            ("action_erase", "/erase"),
        )
    }


def _gone(request: Request) -> Response:
    """The link's person is gone (erased) or it was not made for this id's holder."""
    return private_page(request, "public/preferences_gone.html", {}, status_code=410)


def _center(
    request: Request,
    token: str,
    ref: LinkRef,
    *,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    """The preference center page, from the current state of the database; `notice` and
    `error` are English msgids, translated here into the page's language."""
    with Session(get_engine()) as session:
        view = load_view(session, ref.subscriber_id) if link_owner(session, ref) else None
        if view is None:
            return _gone(request)
        subscriber = view.subscriber
        return private_page(
            request,
            "public/preferences.html",
            {
                **_urls(request, token),
                **choices_context(request, view, notice=notice, error=error),
                "masked_email": mask_email(subscriber.email),
                "can_subscribe": can_resubscribe(session, subscriber),
            },
            status_code=status_code,
            language=subscriber.language,
        )


@router.api_route("/preferences/{token}", methods=["GET", "HEAD"], include_in_schema=False)
def preference_center(token: str, request: Request) -> Response:
    return _center(request, token, read_prefs_token(token))


@router.post("/preferences/{token}", include_in_schema=False)
async def save_preferences(token: str, request: Request) -> Response:
    """Topics, name and tracking choice from one form; only real changes are logged."""
    ref = read_prefs_token(token)
    form = await read_form(request)
    # Fields absent from the body are left alone (a partial form never clears anything);
    # the page's form always carries `topics_shown`; `tracking` only once a radio is chosen.
    wanted = form_ids(form.get("topic", [])) if "topics_shown" in form else None
    name = form.get("name", [None])[0]
    tracking = form["tracking"][-1] == "1" if "tracking" in form else None
    language = form.get("language", [None])[0]
    evidence = request_evidence(request, via="preference center")
    return await run_in_threadpool(
        _save, request, token, ref, _Choices(wanted, name, tracking, language), evidence
    )


@dataclass(frozen=True)
class _Choices:
    """What the preference form asks to change (None: a field the body did not carry)."""

    topics: list[int] | None
    name: str | None
    tracking: bool | None
    language: str | None


def _save(
    request: Request, token: str, ref: LinkRef, wanted: _Choices, evidence: Evidence
) -> Response:
    subscriber_id = ref.subscriber_id
    with Session(get_engine(), expire_on_commit=False) as session:
        if link_owner(session, ref, lock=True) is None:
            return _gone(request)
        added: list[int] = []
        removed: list[int] = []
        try:
            if wanted.topics is not None:
                added, removed = update_topics(
                    session, subscriber_id=subscriber_id, wanted=wanted.topics, evidence=evidence
                )
        except ResubscribeRefused:
            session.rollback()
            return _center(
                request,
                token,
                ref,
                status_code=409,
                error=N_("This address cannot be subscribed again from a link. Please contact us."),
            )
        fields = update_profile(
            session,
            subscriber_id=subscriber_id,
            name=wanted.name,
            tracking_allowed=wanted.tracking,
            evidence=evidence,
            language=wanted.language,
        )
        session.commit()
    changed = bool(added or removed or fields)
    notice = N_("Your preferences were saved.") if changed else N_("Nothing changed.")
    return _center(request, token, ref, notice=notice)


@router.post("/preferences/{token}/unsubscribe", include_in_schema=False)
async def unsubscribe_everything(token: str, request: Request) -> Response:
    ref = read_prefs_token(token)
    evidence = request_evidence(request, via="preference center")

    def work() -> Response:
        with Session(get_engine(), expire_on_commit=False) as session:
            result = opt_out(
                session,
                subscriber_id=ref.subscriber_id,
                scope=LinkScope(campaign_id=None),
                everything=True,
                channel=Channel.PREFERENCES,
                evidence=evidence,
                link_tag=ref.tag,
            )
            session.commit()
        if result.subscriber_id is None:
            return _gone(request)
        return _center(
            request,
            token,
            ref,
            notice=UNSUBSCRIBED_FROM_EVERYTHING,
        )

    return await run_in_threadpool(work)


@router.post("/preferences/{token}/export", include_in_schema=False)
@router.post("/preferences/{token}/export-email", include_in_schema=False)
async def email_data(token: str, request: Request) -> Response:
    """Mail a short-lived download link to the subscriber's own address (and nowhere else),
    at most once a day (app/subscribers/allowance.py).

    This link travels in every newsletter and can be forwarded: whoever holds it may see the
    masked address and the topics, never the export. `/export` (the old download button)
    does the same."""
    ref = read_prefs_token(token)

    def work() -> Response:
        with Session(get_engine(), expire_on_commit=False) as session:
            subscriber = link_owner(session, ref)
            if subscriber is None:
                return _gone(request)
            session.expunge(subscriber)
        try:
            outcome = send_export_link(subscriber)
        except Exception:  # any SMTP failure: tell the person, keep the page
            log.exception("could not email the data link of subscriber %s", ref.subscriber_id)
            outcome = Outcome.FAILED
        if outcome in (Outcome.FAILED, Outcome.CEILING):
            return _center(
                request,
                token,
                ref,
                status_code=503,
                error=N_("We could not send the email just now. Please try again later."),
            )
        # SENT_RECENTLY (one a day per address) is answered as done: the mail is there.
        return _center(
            request, token, ref, notice=N_("We have emailed you a link to download your data.")
        )

    return await run_in_threadpool(work)


@router.api_route("/my-data/{token}", methods=["GET", "HEAD"], include_in_schema=False)
def download_page(token: str, request: Request) -> Response:
    """The page behind the mailed link: a button (link scanners that open it take nothing
    and log nothing); expired, tampered or gone links answer 400 / 410."""
    ref = read_export_token(token)
    with Session(get_engine()) as session:
        subscriber = link_owner(session, ref)
        if subscriber is None:
            return _gone(request)
        return private_page(
            request,
            "public/my_data.html",
            {"masked_email": mask_email(subscriber.email), "action": request.url.path},
            language=subscriber.language,
        )


@router.post("/my-data/{token}", include_in_schema=False)
async def download_data(token: str, request: Request) -> Response:
    """The JSON export as a file download (a POST: the request itself is logged)."""
    ref = read_export_token(token)
    evidence = request_evidence(
        request, via="preference center", delivery="download", link="mailed"
    )
    data = await run_in_threadpool(_export, ref, evidence)
    if data is None:
        return _gone(request)
    return data_download(data)


def _export(ref: LinkRef, evidence: Evidence) -> dict[str, Any] | None:
    with Session(get_engine(), expire_on_commit=False) as session:
        if link_owner(session, ref) is None:
            return None
        data = export_for(
            session,
            subscriber_id=ref.subscriber_id,
            subject_for=subject_received,
            evidence=evidence,
        )
        session.commit()
    return data


@router.api_route("/preferences/{token}/erase", methods=["GET", "HEAD"], include_in_schema=False)
def erase_confirmation(token: str, request: Request) -> Response:
    """Step one: explain what erasure means; the button on this page is step two."""
    ref = read_prefs_token(token)
    with Session(get_engine()) as session:
        subscriber = link_owner(session, ref)
        if subscriber is None:
            return _gone(request)
        return private_page(
            request,
            "public/preferences_erase.html",
            {**_urls(request, token), "masked_email": mask_email(subscriber.email)},
            language=subscriber.language,
        )


@router.post("/preferences/{token}/erase", include_in_schema=False)
async def erase_data(token: str, request: Request) -> Response:
    ref = read_prefs_token(token)
    form = await read_form(request)
    evidence = request_evidence(request, via="preference center")
    if form.get("confirm", [""])[0] != "yes":

        def again() -> Response:
            with Session(get_engine()) as session:
                subscriber = link_owner(session, ref)
                masked = mask_email(subscriber.email) if subscriber else None
                language = subscriber.language if subscriber else None
            if masked is None:
                return _gone(request)
            gettext = request_gettext(request, language)
            return private_page(
                request,
                "public/preferences_erase.html",
                {
                    **_urls(request, token),
                    "masked_email": masked,
                    "error": gettext(
                        "Please tick the box to confirm that you want your data erased."
                    ),
                },
                status_code=422,
                language=language,
            )

        return await run_in_threadpool(again)

    def work() -> Response:
        with Session(get_engine(), expire_on_commit=False) as session:
            subscriber = link_owner(session, ref, lock=True)
            if subscriber is None:
                return _gone(request)
            language = subscriber.language  # the last page they see is still in it
            erase_for(session, subscriber_id=ref.subscriber_id, evidence=evidence)
            session.commit()
        return private_page(request, "public/preferences_erased.html", {}, language=language)

    return await run_in_threadpool(work)
