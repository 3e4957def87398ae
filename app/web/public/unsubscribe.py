"""/u/{token}: the RFC 8058 one-click endpoint (POST) and the unsubscribe page (GET/HEAD).

No cookie, session or CSRF token anywhere here, on purpose. The signed token in the URL is
the capability: it reached the person's mailbox and nothing else authenticates them. CSRF
defends ambient credentials (cookies) a browser attaches on its own; there are none, so a
forged cross-site form can only act with a token its author already holds, and that author
could POST it directly. A CSRF nonce would add nothing but a way for RFC 8058 to break.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.db import get_engine
from app.errors import TokenInvalid
from app.i18n import SUPPORTED, gettext_context
from app.links import LinkRef, preferences_url, read_unsubscribe_token
from app.mail.addresses import mask_email
from app.models import Channel
from app.settings import get_settings
from app.subscribers.batcher import GroupCommitter, committer_for_loop
from app.subscribers.consent import Evidence
from app.subscribers.link_owner import link_owner
from app.subscribers.optout import OptOutResult, unsubscribe_many
from app.subscribers.preferences import (
    LinkScope,
    ResubscribeRefused,
    SubscriberView,
    can_resubscribe,
    is_opted_out,
    link_scope,
    link_scopes,
    load_view,
    opt_out_request,
    resubscribe,
)
from app.web.deps import request_evidence
from app.web.params import form_ids
from app.web.public.self_service import PRIVATE_HEADERS, private_page
from app.web.templating import request_language, templates

router = APIRouter()

_MAX_BODY = 64 * 1024
_BAD_REQUEST = (
    "This request was not understood: a one-click unsubscribe is a POST with the "
    "body List-Unsubscribe=One-Click. Nothing was changed.\n"
)
_BAD_TOKEN = "This unsubscribe link is not valid. Nothing was changed.\n"


async def _read_form(request: Request) -> dict[str, str] | None:
    """The POST body as a flat dict: urlencoded or multipart (RFC 8058 allows both)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if int(request.headers.get("content-length") or 0) > _MAX_BODY:
        return None
    if ctype == "application/x-www-form-urlencoded":
        body = await request.body()
        if len(body) > _MAX_BODY:
            return None
        parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}
    if ctype == "multipart/form-data":
        try:
            async with request.form(max_files=0, max_fields=20) as form:
                return {k: v for k, v in form.items() if isinstance(v, str)}
        except Exception:  # noqa: BLE001 - any malformed multipart body is a bad request
            return None
    return None


# Gathering time before a batch: a short wait lets batches grow under load, which cuts the
# CPU per opt-out (docs/DESIGN.md, "Measured figures"); the added latency stays well inside
# RFC 8058 clients' patience and the 50 ms p99 target.
_BATCH_WAIT = 0.002


@dataclass(frozen=True, slots=True)
class _LinkOptOut:
    ref: LinkRef
    campaign_id: int
    channel: Channel
    evidence: Evidence
    everything: bool


def _commit_opt_outs(items: Sequence[_LinkOptOut]) -> list[tuple[LinkScope, OptOutResult]]:
    """ONE short transaction for a batch of link opt-outs (worker thread), committed before
    any of their callers answers: the campaigns' scopes in one query, the opt-outs in one
    unsubscribe_many call, which also checks each link's secret in its locked read."""
    with Session(get_engine(), expire_on_commit=False) as session:
        scopes = link_scopes(session, {i.campaign_id for i in items})
        results = unsubscribe_many(
            session,
            [
                opt_out_request(
                    subscriber_id=i.ref.subscriber_id,
                    scope=scopes[i.campaign_id],
                    everything=i.everything,
                    channel=i.channel,
                    evidence=i.evidence,
                    link_tag=i.ref.tag,
                )
                for i in items
            ],
        )
        session.commit()
    return [(scopes[i.campaign_id], r) for i, r in zip(items, results, strict=True)]


async def _opt_out_now(
    ref: LinkRef, campaign_id: int, channel: Channel, evidence: Evidence, everything: bool
) -> tuple[LinkScope, OptOutResult]:
    """Committed before the caller answers, in a transaction shared with concurrent link
    opt-outs on this event loop (group commit: one commit for many requests). A link whose
    person is gone comes back with no subscriber and changed nothing."""
    committer = committer_for_loop(
        "link-opt-outs", lambda: GroupCommitter(_commit_opt_outs, max_wait=_BATCH_WAIT)
    )
    return await committer.submit(_LinkOptOut(ref, campaign_id, channel, evidence, everything))


@lru_cache(maxsize=16)
def _one_click_page(lang: str, org_name: str, postal_address: str) -> bytes:
    """The short page a mail client gets back: rendered once per language."""
    html = (
        templates()
        .env.get_template("public/unsubscribe_oneclick.html")
        .render(
            org_name=org_name, postal_address=postal_address, lang=lang, **gettext_context(lang)
        )
    )
    return html.encode()


@router.post("/u/{token}", include_in_schema=False)
async def one_click(token: str, request: Request) -> Response:
    """RFC 8058: no cookie, no CSRF token, no auth; 200 and never a redirect; idempotent."""
    try:
        ref, campaign_id = read_unsubscribe_token(token)
    except TokenInvalid:
        return PlainTextResponse(_BAD_TOKEN, status_code=400, headers=PRIVATE_HEADERS)
    form = await _read_form(request)
    if form is None or form.get("List-Unsubscribe", "").strip() != "One-Click":
        return PlainTextResponse(_BAD_REQUEST, status_code=400, headers=PRIVATE_HEADERS)
    # Our own page's button adds page=1: a person is watching, show them the full page.
    human = form.get("page") == "1"
    channel = Channel.LINK if human else Channel.ONE_CLICK
    evidence = request_evidence(request, via="unsubscribe page" if human else "one-click")
    scope, result = await _opt_out_now(ref, campaign_id, channel, evidence, False)
    if result.subscriber_id is None:
        return _gone(request)
    if human:
        return await run_in_threadpool(_done_page, request, token, ref, scope, result)
    settings = get_settings()
    lang = request_language(request, result.language)  # ?lang=, theirs, Accept-Language
    body = _one_click_page(lang, settings.org_name, settings.postal_address)
    return HTMLResponse(body, headers=PRIVATE_HEADERS)


@router.api_route("/u/{token}", methods=["GET", "HEAD"], include_in_schema=False)
def unsubscribe_page(token: str, request: Request) -> Response:
    """Names the list and the (masked) address; changes nothing, whatever scanners do."""
    ref, campaign_id = read_unsubscribe_token(token)
    with Session(get_engine()) as session:
        if link_owner(session, ref) is None:
            return _gone(request)
        scope = link_scope(session, campaign_id)
        view = load_view(session, ref.subscriber_id)
        if view is None:
            return _gone(request)
        if is_opted_out(view, scope):
            return _render_done(request, session, token, view, scope, result=None)
        return private_page(
            request,
            "public/unsubscribe.html",
            {
                **_common(request, token, view, scope),
            },
            language=view.subscriber.language,
        )


@router.post("/u/{token}/all", include_in_schema=False)
async def unsubscribe_everything(token: str, request: Request) -> Response:
    """The page's second button: every topic and the address itself."""
    ref, campaign_id = read_unsubscribe_token(token)
    evidence = request_evidence(request, via="unsubscribe page")
    scope, result = await _opt_out_now(ref, campaign_id, Channel.LINK, evidence, True)
    if result.subscriber_id is None:
        return _gone(request)
    return await run_in_threadpool(
        _done_page, request, token, ref, LinkScope(campaign_id=scope.campaign_id), result
    )


@router.post("/u/{token}/undo", include_in_schema=False)
async def undo(token: str, request: Request) -> Response:
    """Resubscribe to what this link just dropped (logged as `resubscribe`)."""
    ref, campaign_id = read_unsubscribe_token(token)
    form = await _read_form(request) or {}
    topic_ids = form_ids(form.get("topics", "").split(","))
    everything = form.get("all") == "1"
    evidence = request_evidence(request, via="unsubscribe page")
    return await run_in_threadpool(
        _undo_now, request, token, ref, campaign_id, topic_ids, everything, evidence
    )


def _undo_now(
    request: Request,
    token: str,
    ref: LinkRef,
    campaign_id: int,
    topic_ids: list[int],
    everything: bool,
    evidence: Evidence,
) -> Response:
    subscriber_id = ref.subscriber_id
    with Session(get_engine(), expire_on_commit=False) as session:
        if link_owner(session, ref, lock=True) is None:
            return _gone(request)
        scope = link_scope(session, campaign_id)
        if not scope.everything and not everything:
            topic_ids = [t for t in topic_ids if t in scope.topic_ids]
        try:
            restored = resubscribe(
                session,
                subscriber_id=subscriber_id,
                topic_ids=topic_ids,
                everything=everything,
                channel=Channel.LINK,
                evidence=evidence,
                campaign_id=scope.campaign_id,
            )
        except ResubscribeRefused as exc:
            session.rollback()
            view = load_view(session, subscriber_id)
            return private_page(
                request,
                "public/unsubscribe_refused.html",
                {
                    "message": str(exc),
                    "masked_email": mask_email(view.subscriber.email) if view else None,
                },
                status_code=409,
                language=view.subscriber.language if view else None,
            )
        session.commit()
        view = load_view(session, subscriber_id)
        assert view is not None
        names = [t.name for t in view.topics if t.id in restored]
        return private_page(
            request,
            "public/unsubscribe_undone.html",
            {
                **_common(request, token, view, scope),
                "restored_names": names,
                "restored_all": everything,
            },
            language=view.subscriber.language,
        )


def _done_page(
    request: Request, token: str, ref: LinkRef, scope: LinkScope, result: OptOutResult
) -> Response:
    with Session(get_engine()) as session:
        view = load_view(session, ref.subscriber_id) if link_owner(session, ref) else None
        if view is None:
            return _gone(request)
        return _render_done(request, session, token, view, scope, result)


def _gone(request: Request) -> Response:
    """The link's person is gone (erased), or it was not made for whoever has this id now:
    say so, show nobody's data, change nothing."""
    return private_page(request, "public/unsubscribe_gone.html", {}, status_code=410)


def _render_done(
    request: Request,
    session: Session,
    token: str,
    view: SubscriberView,
    scope: LinkScope,
    result: OptOutResult | None,
) -> Response:
    """The confirmation: what was dropped, undo (when allowed), the preference center."""
    if result is not None and result.changed:
        undo_topics = result.topics_unsubscribed
    else:  # already opted out (reload, second click): offer to undo what is in effect
        undo_topics = view.unsubscribed(scope.topic_ids or None)
    undo_all = scope.everything
    return private_page(
        request,
        "public/unsubscribe_done.html",
        {
            **_common(request, token, view, scope),
            "can_undo": can_resubscribe(session, view.subscriber) and bool(undo_topics or undo_all),
            "undo_topics": ",".join(str(t) for t in undo_topics),
            "undo_all": undo_all,
            "still_active": view.subscriber.status == "active" and bool(view.subscribed()),
        },
        language=view.subscriber.language,
    )


@dataclass
class _Lists:
    names: list[str]
    everything: bool


def _common(request: Request, token: str, view: SubscriberView, scope: LinkScope) -> dict:
    lang = request.query_params.get("lang")
    query = f"?lang={lang}" if lang in SUPPORTED else ""
    names = [t.name for t in view.topics if t.id in scope.topic_ids]
    return {
        "masked_email": mask_email(view.subscriber.email),
        "lists": _Lists(names=names, everything=scope.everything),
        "action": f"/u/{token}{query}",
        "action_all": f"/u/{token}/all{query}",
        "action_undo": f"/u/{token}/undo{query}",
        "preferences_url": preferences_url(
            view.subscriber.id or 0, secret=view.subscriber.link_secret
        )
        + query,
    }
