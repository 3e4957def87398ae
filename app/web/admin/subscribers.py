"""/admin/subscribers: the filtered list (status tabs, search, topic, source, attribute) with
keyset pages and a CSV export of the same filter; a person's page (data, topics, the full
consent log, messages and their outcome); add, edit, and unsubscribe / blocklist / erase,
each after a confirmation page. Editors change, viewers read."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlmodel import select

from app.campaigns import sends
from app.db import get_engine
from app.errors import InvalidInput, Suppressed
from app.i18n import NAMES as LANGUAGE_NAMES
from app.i18n import SUPPORTED
from app.models import Channel, Role, Subscriber, SubscriberStatus, Topic, saved_id
from app.segments.service import list_segments
from app.subscribers import profile
from app.subscribers.consent import Evidence
from app.subscribers.directory import (
    COUNT_CAP,
    SubscriberFilter,
    export_csv,
    get_subscriber,
    list_subscribers,
    status_counts,
    subscriptions_of,
)
from app.subscribers.notify import claim_confirmation
from app.subscribers.rights import erase
from app.subscribers.signup import subscribe
from app.web.admin.auth import Editor, Marketer, admin_user
from app.web.admin.render import redirect, render
from app.web.deps import SessionDep, request_evidence
from app.web.params import DbId

router = APIRouter(prefix="/admin/subscribers", dependencies=[Depends(admin_user(Role.VIEWER))])
FormText = Annotated[str, Form(max_length=20_000)]
# The edit form's "no language" choice (an empty form value would read as "absent").
NOT_SET = "unset"
QueryText = Annotated[str, Query(max_length=200)]
LIST = ("Subscribers", "/admin/subscribers")
PAGE_SIZE = 50
STATUSES = [s.value for s in SubscriberStatus]


def _filters(
    status: str, q: str, topic: str, source: str, attribute: str, segment: str
) -> SubscriberFilter:
    """The list's filters from the query string; InvalidInput for a malformed one."""
    pairs: tuple[tuple[str, str], ...] = ()
    if attribute.strip():
        key, sep, value = attribute.partition("=")
        if not sep or not key.strip():
            raise InvalidInput("write the attribute filter as name=value, e.g. city=Lyon")
        pairs = ((key.strip(), value.strip()),)
    segment_id = None
    if segment:
        if not segment.isascii() or not segment.isdigit() or len(segment) > 9:
            raise InvalidInput(f"unknown segment: {segment}")
        segment_id = int(segment)
    return SubscriberFilter(
        status=status if status in STATUSES else None,
        q=q.strip() or None,
        topic=topic or None,
        source=source.strip() or None,
        attributes=pairs,
        segment_id=segment_id,
    )


@router.get("")
def subscribers(
    request: Request,
    db: SessionDep,
    me: Marketer,
    status: QueryText = "",
    q: QueryText = "",
    topic: QueryText = "",
    source: QueryText = "",
    attribute: QueryText = "",
    segment: QueryText = "",
    cursor: QueryText = "",
) -> Response:
    query = {
        "status": status,
        "q": q,
        "topic": topic,
        "source": source,
        "attribute": attribute,
        "segment": segment,
    }
    kept = {k: v for k, v in query.items() if v}
    errors: dict[str, str] = {}
    page = None
    counts: dict[str, int] = {}
    try:
        filters = _filters(status, q, topic, source, attribute, segment)
        page = list_subscribers(db, filters, cursor=cursor or None, limit=PAGE_SIZE)
        counts = status_counts(db, filters, cap=COUNT_CAP)
    except InvalidInput as exc:
        message = str(exc)
        field = next((f for f in ("attribute", "topic", "segment") if f in message), "form")
        errors[field] = message.capitalize()
    people = page.items if page else []
    subs = subscriptions_of(db, [saved_id(p) for p in people])
    return render(
        request,
        "admin/subscribers/list.html",
        {
            "people": people,
            "subscriptions": subs,
            "counts": _tab_counts(counts),
            "topics": list(db.exec(select(Topic).order_by(Topic.name))),
            "segments": list_segments(db),
            "statuses": STATUSES,
            "values": query,
            "filtered": bool(kept.keys() - {"status"}),
            "errors": errors,
            "tab_url": lambda s: "/admin/subscribers?" + urlencode({**kept, "status": s}),
            "export_url": "/admin/subscribers/export?" + urlencode(kept),
            "next_url": "/admin/subscribers?" + urlencode({**kept, "cursor": page.next_cursor})
            if page and page.next_cursor
            else None,
            "first_url": "/admin/subscribers?" + urlencode(kept) if cursor else None,
            "breadcrumbs": [LIST],
        },
        status_code=422 if errors else 200,
    )


@router.get("/export")
def export(
    db: SessionDep,
    me: Marketer,
    status: QueryText = "",
    q: QueryText = "",
    topic: QueryText = "",
    source: QueryText = "",
    attribute: QueryText = "",
    segment: QueryText = "",
) -> StreamingResponse:
    """The filtered list as CSV, streamed (the same columns as the API's export)."""
    filters = _filters(status, q, topic, source, attribute, segment)
    list_subscribers(db, filters, limit=1)  # a bad filter is refused before the headers go out
    db.commit()  # the stream reads in short transactions of its own (SQLite's write lock)
    return StreamingResponse(
        export_csv(get_engine(), filters=filters),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="subscribers.csv"'},
    )


def _tab_counts(counts: dict[str, int]) -> dict[str, str]:
    """The tabs' labels: a status past the cap reads "10,000+", and so does the total."""
    capped = any(n > COUNT_CAP for n in counts.values())
    shown = {k: f"{COUNT_CAP:,}+" if n > COUNT_CAP else f"{n:,}" for k, n in counts.items()}
    total = sum(min(n, COUNT_CAP) for n in counts.values())
    return {"all": f"{total:,}+" if capped else f"{total:,}", **shown}


def _topic_options(db: SessionDep) -> list[Topic]:
    return list(db.exec(select(Topic).order_by(Topic.name)))


def _new_form(
    request: Request, db: SessionDep, values: dict[str, Any], errors: dict[str, str] | None = None
) -> Response:
    return render(
        request,
        "admin/subscribers/new.html",
        {
            "values": values,
            "errors": errors or {},
            "topics": _topic_options(db),
            "breadcrumbs": [LIST, ("Add a subscriber", "")],
        },
        status_code=422 if errors else 200,
    )


@router.get("/new")
def new_subscriber(request: Request, db: SessionDep, me: Editor) -> Response:
    return _new_form(request, db, {"topics": []})


@router.post("/new")
def create_subscriber(
    request: Request,
    db: SessionDep,
    me: Editor,
    background: BackgroundTasks,
    email: FormText = "",
    name: FormText = "",
    topics: Annotated[list[str] | None, Form()] = None,
    preconfirm: FormText = "",
    consent_source: FormText = "",
) -> Response:
    """Unconfirmed by default (a confirmation mail goes out); `preconfirm` needs the
    marketer to say how the person consented, as the API does."""
    values = {
        "email": email,
        "name": name,
        "topics": topics or [],
        "preconfirm": preconfirm,
        "consent_source": consent_source,
    }
    errors: dict[str, str] = {}
    if not email.strip():
        errors["email"] = "Enter an email address"
    if not topics:
        errors["topics"] = "Choose at least one topic"
    if preconfirm and not consent_source.strip():
        errors["consent_source"] = "Say how this person consented (you attest it)"
    if errors:
        return _new_form(request, db, values, errors)
    try:
        result = subscribe(
            db,
            email=email,
            topic_slugs=topics or [],
            channel=Channel.ADMIN,
            evidence=request_evidence(request, by=me.user.email, consent_source=consent_source),
            name=name,
            source="admin",
            preconfirm=bool(preconfirm),
            by_marketer=True,
        )
    except Suppressed as exc:
        db.rollback()
        return _new_form(request, db, values, {"email": str(exc).capitalize()})
    except InvalidInput as exc:
        db.rollback()
        field = "topics" if "topic" in str(exc) else "email"
        return _new_form(request, db, values, {field: str(exc).capitalize()})
    person = result.subscriber
    confirmation, send = claim_confirmation(db, person, result.pending_topic_ids)
    if send is not None:
        background.add_task(send)
    note = {
        "queued": " A confirmation email is on its way.",
        None: "",
    }.get(confirmation, f" No confirmation email now ({confirmation}).")
    verb = "added" if result.created else "was already known; topics updated"
    return redirect(f"/admin/subscribers/{person.id}", f"{person.email} {verb}.{note}")


def _crumbs(person: Subscriber, last: str | None = None) -> list[tuple[str, str]]:
    crumbs = [LIST, (person.email, f"/admin/subscribers/{person.id}")]
    return [*crumbs, (last, "")] if last else crumbs


@router.get("/{subscriber_id}")
def subscriber(request: Request, db: SessionDep, me: Marketer, subscriber_id: DbId) -> Response:
    person = get_subscriber(db, subscriber_id)
    return render(
        request,
        "admin/subscribers/detail.html",
        {
            "person": person,
            "subscriptions": subscriptions_of(db, [subscriber_id])[subscriber_id],
            "topic_names": {t.slug: t.name for t in _topic_options(db)},
            "language_names": LANGUAGE_NAMES,
            "history": profile.consent_history(db, subscriber_id),
            "messages": sends.messages_to(db, subscriber_id),
            "messages_max": sends.MESSAGES_SHOWN,
            "breadcrumbs": _crumbs(person),
        },
    )


def _edit_form(
    request: Request, person: Subscriber, values: dict[str, str], errors: dict[str, str]
) -> Response:
    return render(
        request,
        "admin/subscribers/edit.html",
        {
            "person": person,
            "values": values,
            "errors": errors,
            "language_options": [(NOT_SET, "Not set (follow the browser; mail in English)")]
            + [(code, f"{name} ({code})") for code, name in LANGUAGE_NAMES.items()],
            "breadcrumbs": _crumbs(person, "Edit"),
        },
        status_code=422 if errors else 200,
    )


_CHOICE_OF: dict[bool | None, str] = {True: "yes", False: "no"}


@router.get("/{subscriber_id}/edit")
def edit(request: Request, db: SessionDep, me: Editor, subscriber_id: DbId) -> Response:
    person = get_subscriber(db, subscriber_id)
    values = {
        "name": person.name,
        "attributes": json.dumps(person.attributes, ensure_ascii=False, indent=2),
        "tracking_allowed": _CHOICE_OF.get(person.tracking_allowed, ""),
        "language": person.language or NOT_SET,
    }
    return _edit_form(request, person, values, {})


@router.post("/{subscriber_id}/edit")
def update(
    request: Request,
    db: SessionDep,
    me: Editor,
    subscriber_id: DbId,
    name: FormText = "",
    attributes: FormText = "",
    tracking_allowed: FormText = "",
    language: Annotated[str | None, Form(max_length=20)] = None,
) -> Response:
    person = get_subscriber(db, subscriber_id)
    values = {
        "name": name,
        "attributes": attributes,
        "tracking_allowed": tracking_allowed,
        "language": language or NOT_SET,
    }
    if language not in (None, NOT_SET, *SUPPORTED):  # absent: left as it is
        return _edit_form(request, person, values, {"language": "Choose a language from the list"})
    try:
        parsed = json.loads(attributes) if attributes.strip() else {}
    except ValueError:
        return _edit_form(
            request,
            person,
            values,
            {"attributes": 'Attributes must be JSON, e.g. {"city": "Lyon"}'},
        )
    try:
        profile.update_profile(
            db,
            person,
            name=name,
            attributes=parsed,
            # "" (not chosen) changes nothing: nobody but the person un-chooses
            tracking_allowed={"yes": True, "no": False}.get(tracking_allowed),
            evidence=request_evidence(request, by=me.email),
            language="" if language == NOT_SET else language,
        )
    except InvalidInput as exc:
        db.rollback()
        person = get_subscriber(db, subscriber_id)
        return _edit_form(request, person, values, {"attributes": str(exc).capitalize()})
    return redirect(f"/admin/subscribers/{subscriber_id}", "Saved.")


CONFIRM = {
    "unsubscribe": (
        "Unsubscribe {email} from everything?",
        "Unsubscribe from everything",
    ),
    "blocklist": ("Blocklist {email}?", "Blocklist"),
    "erase": ("Erase {email}?", "Erase"),
}


def _confirm_page(request: Request, person: Subscriber, action: str, db: SessionDep) -> Response:
    title, button = CONFIRM[action]
    person_id = saved_id(person)
    live = [
        s for s in subscriptions_of(db, [person_id])[person_id] if s["status"] != "unsubscribed"
    ]
    return render(
        request,
        "admin/subscribers/confirm.html",
        {
            "person": person,
            "action": action,
            "page_title": title.format(email=person.email),
            "button": button,
            "topics_count": len(live),
            "events_count": len(profile.consent_history(db, person_id)),
            "breadcrumbs": _crumbs(person, button),
        },
    )


def _evidence(request: Request, me: Editor) -> Evidence:
    return request_evidence(request, by=me.user.email)


@router.get("/{subscriber_id}/unsubscribe")
def confirm_unsubscribe(
    request: Request, db: SessionDep, me: Editor, subscriber_id: DbId
) -> Response:
    return _confirm_page(request, get_subscriber(db, subscriber_id), "unsubscribe", db)


@router.post("/{subscriber_id}/unsubscribe")
def do_unsubscribe(request: Request, db: SessionDep, me: Editor, subscriber_id: DbId) -> Response:
    person = get_subscriber(db, subscriber_id)
    profile.opt_out_everything(db, person, channel=Channel.ADMIN, evidence=_evidence(request, me))
    return redirect(
        f"/admin/subscribers/{subscriber_id}", f"{person.email} is unsubscribed from everything."
    )


@router.get("/{subscriber_id}/blocklist")
def confirm_blocklist(
    request: Request, db: SessionDep, me: Editor, subscriber_id: DbId
) -> Response:
    return _confirm_page(request, get_subscriber(db, subscriber_id), "blocklist", db)


@router.post("/{subscriber_id}/blocklist")
def do_blocklist(request: Request, db: SessionDep, me: Editor, subscriber_id: DbId) -> Response:
    person = get_subscriber(db, subscriber_id)
    profile.blocklist(db, person, channel=Channel.ADMIN, evidence=_evidence(request, me))
    return redirect(f"/admin/subscribers/{subscriber_id}", f"{person.email} is blocklisted.")


@router.get("/{subscriber_id}/erase")
def confirm_erase(request: Request, db: SessionDep, me: Editor, subscriber_id: DbId) -> Response:
    return _confirm_page(request, get_subscriber(db, subscriber_id), "erase", db)


@router.post("/{subscriber_id}/erase")
def do_erase(request: Request, db: SessionDep, me: Editor, subscriber_id: DbId) -> Response:
    person = get_subscriber(db, subscriber_id)
    email = person.email
    erase(
        db,
        person,
        channel=Channel.ADMIN,
        evidence=Evidence(details={"requested_by": me.user.email}),
    )
    return redirect("/admin/subscribers", f"{email} is erased; the address stays suppressed.")
