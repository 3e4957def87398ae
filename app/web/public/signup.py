"""Public sign-up (form and JSON on POST /subscribe) and the double opt-in confirmation.

GET never changes anything: the confirmation link shows a page whose button POSTs.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from sqlmodel import select

from app.errors import InvalidInput, RateLimited
from app.i18n import N_, gettext_for, pick_language
from app.links import read_confirm_token
from app.models import Channel, Topic, saved_id
from app.settings import get_settings
from app.subscribers.consent import Evidence
from app.subscribers.link_owner import require_link_owner
from app.subscribers.notify import send_confirmation
from app.subscribers.profile import update_profile
from app.subscribers.signup import (
    SignupResult,
    already_confirmed,
    confirm,
    referrer_origin,
    subscribe,
)
from app.web import csrf
from app.web.deps import SessionDep, client_ip, request_evidence
from app.web.ratelimit import RateLimiter, client_key
from app.web.templating import public_message, render, request_gettext

router = APIRouter(include_in_schema=False)

CONSENT_TEXT = N_(
    "I agree to receive the newsletters I selected. I can unsubscribe at any "
    "time with the link in every message."
)

# What a sign-up error without a translation says outside English (the address is what a
# person gets wrong: email-validator's reasons are English only).
_INVALID_FORM = N_("Please check the email address: it does not look valid.")


def _limiter(request: Request) -> RateLimiter:
    """One limiter per app instance (kept on app.state), so tests and apps don't share it."""
    state = request.app.state
    if not hasattr(state, "signup_limiter"):
        state.signup_limiter = RateLimiter(get_settings().signup_rate_limit, window=60)
    return state.signup_limiter


class SignupJson(BaseModel):
    email: str = Field(max_length=320)
    name: str | None = Field(default=None, max_length=200)
    topics: list[str] = Field(default_factory=list, max_length=50)
    consent: bool = False
    consent_text: str | None = Field(default=None, max_length=1000)
    language: str | None = Field(default=None, max_length=35)
    ref: str | None = Field(default=None, max_length=200)
    utm_source: str | None = Field(default=None, max_length=200)
    referrer: str | None = Field(default=None, max_length=500)
    tracking: bool | None = Field(
        default=None,
        description="Open and click tracking: the person's yes or no; absent: not chosen.",
    )


def _tracking_choice(
    session: SessionDep, result: SignupResult, choice: bool | None, evidence: Evidence
) -> None:
    """The form's tracking answer, as the person's consent event. A yes is taken only for an
    address this sign-up created (nobody can mail it before its owner confirms); a known
    person's yes is theirs to give from their own preference link. A no always counts."""
    if choice is None or (choice and not result.created):
        return
    update_profile(
        session, result.subscriber, tracking_allowed=choice, channel=Channel.FORM, evidence=evidence
    )


def _topics(session: SessionDep) -> list[Topic]:
    return list(session.exec(select(Topic).order_by(Topic.name)))


@router.get("/subscribe")
def signup_form(request: Request, session: SessionDep) -> Response:
    query = request.query_params
    return _form_page(
        request,
        session,
        {
            "ref": query.get("ref", "")[:200],
            "utm_source": query.get("utm_source", "")[:200],
            # Where the visitor came from: our pages send no Referer (no-referrer), so the
            # form carries the one this GET arrived with (its origin only) to the POST.
            "referrer": referrer_origin(request.headers.get("referer")) or "",
            "values": {},
            "errors": [],
            "tracking_allowed": None,
        },
    )


def _form_page(
    request: Request, session: SessionDep, visitor: dict[str, Any], status_code: int = 200
) -> Response:
    """The signup form with a fresh CSRF token, the topics and the consent text, filled
    in with what the visitor brought (`visitor`: campaign tags, referrer, values typed,
    tracking choice, errors)."""
    token = csrf.token_for(request)
    context = {
        "topics": _topics(session),
        "consent_text": request_gettext(request)(CONSENT_TEXT),
        "csrf_token": token,
        "tracking_default_on": get_settings().tracking_default == "on",
        **visitor,
    }
    response = render(request, "public/subscribe.html", context, status_code=status_code)
    return csrf.set_cookie(request, response, token)


async def _form_data(request: Request) -> SignupJson:
    """The sign-up form's fields (CSRF checked), as the JSON body would carry them."""
    form = await request.form()
    csrf.check(request, str(form.get(csrf.FIELD) or ""))
    return SignupJson(
        email=str(form.get("email") or "")[:320],
        name=str(form.get("name") or "")[:200],
        topics=[str(t) for t in form.getlist("topics")][:50],
        consent=form.get("consent") == "yes",
        consent_text=request_gettext(request)(CONSENT_TEXT),
        ref=str(form.get("ref") or "")[:200] or None,
        utm_source=str(form.get("utm_source") or "")[:200] or None,
        referrer=str(form.get("referrer") or "")[:500] or None,
        tracking={"1": True, "0": False}.get(str(form.get("tracking") or "")),
    )


@router.post("/subscribe")
async def signup_submit(
    request: Request, session: SessionDep, background: BackgroundTasks
) -> Response:
    """Form posts get a page, JSON posts get JSON; both answer the same whether or not the
    address was known (no account enumeration), and whether or not the confirmation mail
    was within the address's allowance (app/subscribers/allowance.py decides, later)."""
    ip = client_ip(request) or "unknown"
    is_json = request.headers.get("content-type", "").startswith("application/json")
    if not _limiter(request).allow(client_key(ip)):
        raise RateLimited(N_("Too many sign-ups from your network. Please try again in a minute."))
    if is_json:
        try:
            data = SignupJson.model_validate(await request.json())
        except (ValidationError, ValueError) as exc:
            return JSONResponse({"detail": f"invalid request: {exc}"}, status_code=422)
    else:
        data = await _form_data(request)
    # The language of the page the person signed up on (JSON: its `language`, else the
    # request's), stored for the confirmation mail and their pages.
    language = pick_language(
        request.headers.get("accept-language"), data.language or request.query_params.get("lang")
    )
    try:
        if not data.consent:
            raise InvalidInput(N_("Please tick the box to confirm that you agree."))
        if not data.topics:
            raise InvalidInput(N_("Please choose at least one newsletter."))
        evidence = request_evidence(
            request,
            consent_text=data.consent_text or gettext_for(language)(CONSENT_TEXT),
            language=language,
            ref=data.ref,
            utm_source=data.utm_source,
            form="json" if is_json else "form",
        )
        result = subscribe(
            session,
            email=data.email,
            name=data.name,
            topic_slugs=data.topics,
            channel=Channel.FORM,
            evidence=evidence,
            source=(data.utm_source or data.ref or "form"),
            referrer=data.referrer or request.headers.get("referer"),
            language=language,
        )
        _tracking_choice(session, result, data.tracking, evidence)
    except InvalidInput as exc:
        if is_json:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        message = public_message(language, str(exc), _INVALID_FORM)
        return _form_again(request, session, data, message)
    if result.pending_topic_ids:
        topics = [session.get(Topic, t) for t in result.pending_topic_ids]
        session.commit()
        background.add_task(
            send_confirmation,
            to_email=result.subscriber.email,
            to_name=result.subscriber.name,
            subscriber_id=saved_id(result.subscriber),
            link_secret=result.subscriber.link_secret,
            topics=[t for t in topics if t],
            language=language,
        )
    if is_json:
        return JSONResponse(
            {"status": "pending_confirmation", "detail": "Check your inbox to confirm."},
            status_code=202,
        )
    return render(request, "public/subscribe_pending.html", {})


def _form_again(request: Request, session: SessionDep, data: SignupJson, error: str) -> Response:
    return _form_page(
        request,
        session,
        {
            "ref": data.ref or "",
            "utm_source": data.utm_source or "",
            "referrer": referrer_origin(data.referrer) or "",
            "values": {"email": data.email, "name": data.name or "", "topics": data.topics},
            "tracking_allowed": data.tracking,
            "errors": [error],
        },
        status_code=422,
    )


@router.get("/confirm/{token}")
def confirm_page(token: str, request: Request, session: SessionDep) -> Response:
    """Shows a button; link scanners that fetch this URL confirm nothing."""
    ref, _topics = read_confirm_token(token)  # expired or tampered -> 400 page
    subscriber = require_link_owner(session, ref)  # the person erased since -> 410 "gone" page
    stored = subscriber.language
    if already_confirmed(session, subscriber, token):
        return render(request, "public/confirm_already.html", {}, stored_language=stored)
    return render(request, "public/confirm.html", {"token": token}, stored_language=stored)


@router.post("/confirm/{token}")
def confirm_submit(token: str, request: Request, session: SessionDep) -> Response:
    subscriber = confirm(session, token, evidence=request_evidence(request))
    context: dict[str, Any] = {"email": subscriber.email}
    return render(request, "public/confirm_done.html", context, stored_language=subscriber.language)
