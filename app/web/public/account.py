"""/account: a subscriber's own sign-in and their data (issue 15).

Signed out: ask for a sign-in link (always the same answer, known address or not: the
lookup and the mail happen after the answer), or sign in with a password. Signed in: the
preference centre's data with the session as the key (topics, name, tracking, consent
history, unsubscribe from everything, export, erasure; the forms and choices both pages
share are in self_service.py), a change of address confirmed from the new mailbox, a
password.

The session cookie is `octomail_account`, scoped to `/account`: the browser never sends it to
/admin or /api/v1, and the gates there read only their own cookie and table anyway. Forms
carry a CSRF token: bound to the session once signed in (as the admin pages), the public
double submit before (the sign-in forms, the link's button).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from app.accounts import signin as accounts
from app.errors import InvalidInput, RateLimited, TokenInvalid
from app.i18n import N_
from app.mail.addresses import mask_email
from app.models import Channel, Scope, Subscriber, saved_id
from app.sending.render import subject_received
from app.settings import get_settings
from app.signin import LockedOut, SignInRefused
from app.subscribers import contact
from app.subscribers.consent import Evidence
from app.subscribers.optout import unsubscribe
from app.subscribers.preferences import erase_for, export_for, load_view, update_profile
from app.subscribers.preferences import update_topics as set_topics
from app.subscribers.profile import consent_history
from app.web import csrf
from app.web.deps import SessionDep, client_ip, request_evidence
from app.web.params import form_ids
from app.web.public.self_service import (
    UNSUBSCRIBED_FROM_EVERYTHING,
    choices_context,
    data_download,
    private_page,
    read_form,
)
from app.web.ratelimit import RateLimiter, client_key
from app.web.templating import request_gettext, request_language

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

COOKIE = "octomail_account"
PATH = "/account"


class Signed:
    """The signed-in subscriber of one request, and the cookie token (for the CSRF)."""

    def __init__(self, subscriber: Subscriber, token: str) -> None:
        self.subscriber = subscriber
        self.token = token
        self.csrf_token = csrf.bound_token(token)


def _signed_in(request: Request, db: SessionDep) -> Signed | None:
    token = request.cookies.get(COOKIE)
    found = accounts.active_session(db, token)
    db.commit()
    return Signed(found.subscriber, token) if found and token else None


MaybeSigned = Annotated[Signed | None, Depends(_signed_in)]


def _limiter(request: Request) -> RateLimiter:
    state = request.app.state
    if not hasattr(state, "account_limiter"):
        state.account_limiter = RateLimiter(get_settings().account_rate_limit, window=60)
    return state.account_limiter


def _limit(request: Request, what: str) -> None:
    if not _limiter(request).allow(f"{what}:{client_key(client_ip(request) or 'unknown')}"):
        raise RateLimited("Too many attempts from your network. Please try again in a minute.")


async def _form(request: Request) -> dict[str, list[str]]:
    return await read_form(request, max_length=2000)


def _first(form: dict[str, list[str]], key: str) -> str:
    return (form.get(key) or [""])[0]


def _public_page(request: Request, name: str, context: dict[str, Any], **page: Any) -> Response:
    """A page with a form before sign-in: the double-submit CSRF cookie and field."""
    token = csrf.token_for(request)
    response = private_page(request, name, {**context, "csrf_token": token}, **page)
    return csrf.set_cookie(request, response, token)


def _require(request: Request, me: Signed | None, form: dict[str, list[str]]) -> Signed:
    """A signed-in session and its CSRF token, for every change made while signed in."""
    if me is None:  # signed out meanwhile: back to the sign-in page
        raise HTTPException(status_code=303, headers={"Location": PATH})
    if not csrf.bound_token_valid(me.token, _first(form, csrf.FIELD)):
        raise TokenInvalid("This form has expired. Please reload the page and try again.")
    return me


def _to_account() -> Response:
    return RedirectResponse(PATH, status_code=303)


def _with_cookie(request: Request, response: Response, token: str) -> Response:
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=get_settings().base_url.lower().startswith("https://"),
        path=PATH,
    )
    return response


# -- signed out ----------------------------------------------------------------------------


def _sign_in_page(
    request: Request, *, error: str | None = None, status_code: int = 200
) -> Response:
    context = {"error": error}
    return _public_page(request, "public/account_signin.html", context, status_code=status_code)


@router.api_route(PATH, methods=["GET", "HEAD"])
def account_home(request: Request, db: SessionDep, me: MaybeSigned) -> Response:
    if me is None:
        return _sign_in_page(request)
    return _home(request, db, me)


@router.post(f"{PATH}/link")
async def ask_for_link(request: Request, background: BackgroundTasks) -> Response:
    """The same answer for every address; the lookup and the mail run after it."""
    form = await _form(request)
    csrf.check(request, _first(form, csrf.FIELD))
    _limit(request, "link")
    address = _first(form, "email").strip()[:320]
    if address:
        background.add_task(accounts.send_link, address, language=request_language(request))
    return private_page(request, "public/account_sent.html", {})


@router.api_route(f"{PATH}/link/{{token}}", methods=["GET", "HEAD"])
def link_page(token: str, request: Request, db: SessionDep) -> Response:
    """A button, not a sign-in: link scanners that open the mail spend nothing."""
    accounts.read_link(db, token)
    return _public_page(request, "public/account_link.html", {"action": request.url.path})


@router.post(f"{PATH}/link/{{token}}")
async def use_link(token: str, request: Request, db: SessionDep) -> Response:
    form = await _form(request)
    csrf.check(request, _first(form, csrf.FIELD))
    _subscriber, session_token = accounts.use_link(db, token)
    db.commit()
    return _with_cookie(request, _to_account(), session_token)


@router.post(f"{PATH}/signin")
async def password_sign_in(request: Request, db: SessionDep) -> Response:
    form = await _form(request)
    csrf.check(request, _first(form, csrf.FIELD))
    gettext = request_gettext(request)
    try:
        _subscriber, session_token = accounts.sign_in(
            db,
            email=_first(form, "email")[:320],
            password=_first(form, "password")[:1000],
            client=client_key(client_ip(request) or "unknown"),
        )
    except LockedOut:
        db.commit()
        error = gettext("Too many failed sign-ins. Try again later, or ask for a sign-in link.")
        return _sign_in_page(request, error=error, status_code=429)
    except SignInRefused:
        db.commit()  # the failure is counted
        error = gettext(
            "The address or the password is not right. Forgot it? Ask for a sign-in link."
        )
        return _sign_in_page(request, error=error, status_code=401)
    db.commit()
    return _with_cookie(request, _to_account(), session_token)


# -- signed in -----------------------------------------------------------------------------


def _home(
    request: Request,
    db: Session,
    me: Signed,
    *,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    """The account page; `notice` and `error` are English msgids, translated here into the
    page's language (the person's stored one unless ?lang= says otherwise)."""
    view = load_view(db, saved_id(me.subscriber))
    if view is None:
        return private_page(request, "public/preferences_gone.html", {}, status_code=410)
    subscriber = view.subscriber
    gettext = request_gettext(request, subscriber.language)
    pending = [c for c in contact.pending_changes(db, saved_id(subscriber)) if c.field == "email"]
    return private_page(
        request,
        "public/account.html",
        {
            **choices_context(request, view, notice=notice, error=error),
            "email": subscriber.email,
            "history": _history(db, saved_id(subscriber), gettext),
            "has_password": accounts.has_password(db, saved_id(subscriber)),
            "pending_email": mask_email(pending[-1].value) if pending else None,
            "csrf_token": me.csrf_token,
        },
        status_code=status_code,
        language=subscriber.language,
    )


# What the consent history's codes say to the person (unknown codes are shown as they are).
_ACTIONS = {
    "subscribe": N_("Signed up"),
    "confirm": N_("Confirmed"),
    "unsubscribe": N_("Unsubscribed"),
    "resubscribe": N_("Subscribed again"),
    "bounce": N_("Our email could not be delivered"),
    "complaint": N_("Reported as spam"),
    "update": N_("Changed your details"),
    "erase": N_("Erased"),
    "suppress": N_("Added to our do-not-email list"),
    "suppression_lifted": N_("Removed from our do-not-email list"),
    "export": N_("Copy of your data"),
}
_CHANNELS = {
    "form": N_("sign-up form"),
    "api": N_("added by us"),
    "import": N_("imported by us"),
    "link": N_("unsubscribe link"),
    "one_click": N_("one-click unsubscribe"),
    "preferences": N_("preference centre"),
    "email": N_("email to us"),
    "bounce": N_("returned email"),
    "complaint": N_("spam report"),
    "admin": N_("by our staff"),
    "cli": N_("by our staff"),
    "send": N_("while sending"),
    "provider": N_("email provider"),
}


def _history(db: Session, subscriber_id: int, gettext: Callable[[str], str]) -> list[dict]:
    return [
        {
            "at": e.at,
            "action": gettext(_ACTIONS[e.action]) if e.action in _ACTIONS else e.action,
            "channel": gettext(_CHANNELS[e.channel]) if e.channel in _CHANNELS else e.channel,
            "topic": e.topic,
        }
        for e in consent_history(db, subscriber_id)
    ]


def _evidence(request: Request) -> Evidence:
    return request_evidence(request, via="account")


@router.post(f"{PATH}/preferences")
async def save_preferences(request: Request, db: SessionDep, me: MaybeSigned) -> Response:
    form = await _form(request)
    me = _require(request, me, form)
    subscriber_id = saved_id(me.subscriber)
    evidence = _evidence(request)
    added, removed = set_topics(
        db, subscriber_id=subscriber_id, wanted=form_ids(form.get("topic", [])), evidence=evidence
    )
    fields = update_profile(
        db,
        subscriber_id=subscriber_id,
        name=_first(form, "name")[:200] if "name" in form else None,
        tracking_allowed=form["tracking"][-1] == "1" if "tracking" in form else None,
        evidence=evidence,
        language=_first(form, "language") or None,
    )
    db.commit()
    changed = bool(added or removed or fields)
    notice = N_("Your preferences were saved.") if changed else N_("Nothing changed.")
    return _home(request, db, me, notice=notice)


@router.post(f"{PATH}/unsubscribe")
async def leave_everything(request: Request, db: SessionDep, me: MaybeSigned) -> Response:
    """Every topic and the address itself, through the one opt-out function and the
    preference centre's channel: the same act as its button, the session as the key."""
    form = await _form(request)
    me = _require(request, me, form)
    unsubscribe(
        db,
        subscriber=saved_id(me.subscriber),
        scope=Scope.ALL,
        channel=Channel.PREFERENCES,
        evidence=_evidence(request),
    )
    db.commit()
    return _home(request, db, me, notice=UNSUBSCRIBED_FROM_EVERYTHING)


@router.post(f"{PATH}/email")
async def change_address(
    request: Request, db: SessionDep, me: MaybeSigned, background: BackgroundTasks
) -> Response:
    """A new address waits for its owner: a link goes to it; nothing changes before."""
    form = await _form(request)
    me = _require(request, me, form)
    try:
        change = contact.propose(
            db, subscriber=me.subscriber, field=contact.EMAIL, value=_first(form, "email")
        )
    except contact.AddressUnavailable:
        error = N_("This address cannot be used for your subscription. Please write to us.")
        return _home(request, db, me, error=error, status_code=409)
    except InvalidInput:
        error = N_("Please enter a new, valid email address.")
        return _home(request, db, me, error=error, status_code=422)
    db.commit()
    db.refresh(me.subscriber)
    db.expunge(me.subscriber)
    db.expunge(change)
    background.add_task(
        contact.send_confirmation,
        change,
        me.subscriber,
        language=request_language(request, me.subscriber.language),
    )
    notice = N_(
        "We sent a link to the new address. Your address changes when you open it and confirm."
    )
    return _home(request, db, me, notice=notice)


@router.post(f"{PATH}/password")
async def set_password(request: Request, db: SessionDep, me: MaybeSigned) -> Response:
    form = await _form(request)
    me = _require(request, me, form)
    password = _first(form, "password")
    if password != _first(form, "password_again"):
        error = N_("The two passwords are not the same.")
        return _home(request, db, me, error=error, status_code=422)
    try:
        accounts.set_password(db, me.subscriber, password, keep=me.token)
    except InvalidInput:
        error = N_("The password must have 10 to 1,000 characters.")
        return _home(request, db, me, error=error, status_code=422)
    db.commit()
    return _home(request, db, me, notice=N_("Your password is set."))


@router.post(f"{PATH}/export")
async def export(request: Request, db: SessionDep, me: MaybeSigned) -> Response:
    """The data as a download: this session proves the mailbox (a mailed link) or knows
    the password, which a forwarded newsletter link does not."""
    form = await _form(request)
    me = _require(request, me, form)
    data = export_for(
        db,
        subscriber_id=saved_id(me.subscriber),
        subject_for=subject_received,
        evidence=_evidence(request).with_details(delivery="download"),
    )
    db.commit()
    return data_download(data)


@router.api_route(f"{PATH}/erase", methods=["GET", "HEAD"])
def erase_page(request: Request, me: MaybeSigned) -> Response:
    if me is None:
        return _to_account()
    return private_page(
        request,
        "public/preferences_erase.html",
        _erase_context(me),
        language=me.subscriber.language,
    )


def _erase_context(me: Signed) -> dict[str, Any]:
    return {
        "action": PATH,
        "action_erase": f"{PATH}/erase",
        "masked_email": mask_email(me.subscriber.email),
        "csrf_token": me.csrf_token,
    }


@router.post(f"{PATH}/erase")
async def erase(request: Request, db: SessionDep, me: MaybeSigned) -> Response:
    form = await _form(request)
    me = _require(request, me, form)
    language = me.subscriber.language
    if _first(form, "confirm") != "yes":
        gettext = request_gettext(request, language)
        context = {
            **_erase_context(me),
            "error": gettext("Please tick the box to confirm that you want your data erased."),
        }
        return private_page(request, "public/preferences_erase.html", context, 422, language)
    erase_for(db, subscriber_id=saved_id(me.subscriber), evidence=_evidence(request))
    db.commit()
    response = private_page(request, "public/preferences_erased.html", {}, language=language)
    response.delete_cookie(COOKIE, path=PATH)
    return response


@router.post(f"{PATH}/signout")
async def sign_out(request: Request, db: SessionDep, me: MaybeSigned) -> Response:
    form = await _form(request)
    me = _require(request, me, form)
    accounts.end_session(db, me.token)
    db.commit()
    response = _to_account()
    response.delete_cookie(COOKIE, path=PATH)
    return response


# -- a change confirmed from the mail ------------------------------------------------------


@router.api_route(f"{PATH}/change/{{token}}", methods=["GET", "HEAD"])
def change_page(token: str, request: Request, db: SessionDep) -> Response:
    change, subscriber = contact.read_change(db, token)
    shown = mask_email(change.value) if change.field == contact.EMAIL else change.value
    return _public_page(
        request,
        "public/account_change.html",
        {"action": request.url.path, "field": change.field, "value": shown},
        language=subscriber.language,
    )


@router.post(f"{PATH}/change/{{token}}")
async def apply_change(token: str, request: Request, db: SessionDep) -> Response:
    form = await _form(request)
    csrf.check(request, _first(form, csrf.FIELD))
    change, subscriber = contact.read_change(db, token)
    language = subscriber.language
    channel = Channel.EMAIL if change.inbound_id is not None else Channel.PREFERENCES
    gettext = request_gettext(request, language)
    try:
        contact.apply(db, change, channel=channel, evidence=_evidence(request))
    except contact.AddressUnavailable:
        db.rollback()
        message = gettext("This address cannot be used for your subscription. Please write to us.")
        return private_page(
            request, "public/account_changed.html", {"message": message}, 409, language
        )
    db.commit()
    message = (
        gettext("Your address is changed. Our emails now go to the new address.")
        if change.field == contact.EMAIL
        else gettext("Your name is changed.")
    )
    return private_page(
        request, "public/account_changed.html", {"message": message}, language=language
    )
