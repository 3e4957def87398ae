"""/admin/inbox: the messages the poller left for a person (app/inbound/review.py, the same
functions as /api/v1/inbound), why, and what the sender wrote, shown as text; one-click
resolve (unsubscribe the sender, apply a report, apply a change of contact details,
dismiss) as POST forms. Viewers read;
editors resolve."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response

from app.errors import Conflict, InvalidInput
from app.inbound import review
from app.models import InboundMessage, InboundStatus, Role
from app.web.admin.auth import Editor, Marketer, admin_user
from app.web.admin.render import redirect, render
from app.web.deps import SessionDep, request_evidence
from app.web.params import MAX_DB_INT, DbId

router = APIRouter(prefix="/admin/inbox", dependencies=[Depends(admin_user(Role.VIEWER))])
LIST = ("Inbox", "/admin/inbox")
PAGE = 50
TABS = (
    ("review", "Waiting"),
    ("resolved", "Resolved"),
    ("dismissed", "Dismissed"),
    ("processed", "Handled"),
)
ACTIONS = {
    "unsubscribe": "Sender unsubscribed.",
    "apply": "Report applied to the addresses it names.",
    "apply_update": "Contact details updated.",
    "dismiss": "Message dismissed.",
}


def relevant_text(row: InboundMessage) -> str:
    """What the sender wrote (the part the reader looked at), or the matched wording."""
    evidence = row.evidence or {}
    written = evidence.get("written")
    if isinstance(written, str) and written.strip():
        return written
    matched = evidence.get("matched")
    if isinstance(matched, dict) and matched.get("match"):
        return str(matched["match"])
    return ""


@router.get("")
def inbox(
    request: Request,
    db: SessionDep,
    me: Marketer,
    status: InboundStatus = InboundStatus.REVIEW,
    cursor: int | None = Query(None, ge=1, le=MAX_DB_INT),
) -> Response:
    rows, next_cursor = review.list_messages(db, status=status, limit=PAGE, cursor=cursor)
    return render(
        request,
        "admin/inbox/list.html",
        {
            "rows": [(row, relevant_text(row)) for row in rows],
            "status": status.value,
            "tabs": TABS,
            "next_url": f"/admin/inbox?status={status.value}&cursor={next_cursor}"
            if next_cursor
            else None,
            "first_url": f"/admin/inbox?status={status.value}" if cursor else None,
            "breadcrumbs": [LIST],
        },
    )


def _detail(
    request: Request, row: InboundMessage, errors: dict[str, str] | None = None, code: int = 200
) -> Response:
    evidence: dict[str, Any] = row.evidence or {}
    return render(
        request,
        "admin/inbox/detail.html",
        {
            "row": row,
            "text": relevant_text(row),
            "auth": evidence.get("auth") if isinstance(evidence.get("auth"), dict) else None,
            "evidence_json": json.dumps(evidence, indent=2, ensure_ascii=False, default=str),
            "applicable": row.verdict in ("hard_bounce", "complaint") and evidence.get("named"),
            "proposal": review.proposal_of(row),
            "errors": errors or {},
            "breadcrumbs": [LIST, (row.subject or f"Message {row.id}", "")],
        },
        status_code=code,
    )


@router.get("/{inbound_id}")
def message(request: Request, db: SessionDep, me: Marketer, inbound_id: DbId) -> Response:
    return _detail(request, review.get_message(db, inbound_id))


@router.post("/{inbound_id}/resolve")
def resolve(
    request: Request,
    db: SessionDep,
    me: Editor,
    inbound_id: DbId,
    action: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    if action not in ACTIONS:
        return _detail(
            request,
            review.get_message(db, inbound_id),
            {"form": "Choose unsubscribe, apply or dismiss."},
            422,
        )
    try:
        review.resolve(
            db,
            inbound_id,
            action=action,  # type: ignore[arg-type]
            actor=me.email,
            evidence=request_evidence(request, via="admin"),
        )
    except (Conflict, InvalidInput) as exc:
        db.rollback()
        code = 409 if isinstance(exc, Conflict) else 422
        message = str(exc)
        return _detail(
            request, review.get_message(db, inbound_id), {"form": message.capitalize()}, code
        )
    return redirect("/admin/inbox", ACTIONS[action])
