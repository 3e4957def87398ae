"""/admin/segments: saved audience filters built from rows of field / operator / value.

One form per segment, several buttons (`action`): save, count (the count and the first 20
matches, on demand: never on load, a count over a million people is a scan), add a row,
remove row N. Without JavaScript each re-renders the page; with htmx, add/remove swap the
rules block and count swaps the count block (the same template's blocks). Viewers read
and count a saved segment (GET ?count=1); editors change. Delete asks first, and is
refused while a campaign that is not finished uses the segment, naming it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from app.errors import Conflict, InvalidInput
from app.models import Role, Segment, saved_id
from app.segments import service
from app.segments.rules import MAX_RULES
from app.subscribers import topics as topic_service
from app.web.admin import segment_form
from app.web.admin.auth import Editor, Marketer, admin_user
from app.web.admin.render import redirect, render
from app.web.admin.segment_form import Row, SegmentForm
from app.web.deps import SessionDep
from app.web.params import DbId

router = APIRouter(prefix="/admin/segments", dependencies=[Depends(admin_user(Role.VIEWER))])
LIST = ("Segments", "/admin/segments")


async def _posted(request: Request) -> dict[str, str]:
    """The form as plain strings (the gate has read it already: Starlette caches it)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str) and len(v) <= 4000}


Posted = Annotated[dict[str, str], Depends(_posted)]


def describe(segment: Segment) -> str:
    """One line for the list: "status = active and topic = news"."""
    labels = dict(segment_form.FIELDS)
    parts = []
    for rule in segment.rules:
        row = segment_form.row_of(rule)
        name = f"{row.key}" if row.field == "attributes" else labels.get(row.field, row.field)
        parts.append(f"{name} {row.op} {row.value}")
    joined = f" {'and' if segment.match == 'all' else 'or'} ".join(parts)
    return joined or "everyone"


@router.get("")
def segments(request: Request, db: SessionDep, me: Marketer) -> Response:
    rows = [(s, describe(s)) for s in service.list_segments(db)]
    return render(request, "admin/segments/list.html", {"rows": rows, "breadcrumbs": [LIST]})


def _page(
    request: Request,
    db: SessionDep,
    segment: Segment | None,
    form: SegmentForm,
    *,
    errors: dict[str, str] | None = None,
    counted: service.Preview | None = None,
    block: str | None = None,
) -> Response:
    here = (segment.name, f"/admin/segments/{segment.id}") if segment else ("New segment", "")
    context: dict[str, Any] = {
        "segment": segment,
        "form": form,
        "editable": request.state.me.can(Role.EDITOR),
        "errors": errors or {},
        "counted": counted,
        "fields": segment_form.FIELDS,
        "operators": segment_form.OPERATOR_LABELS,
        "topics": [row.topic.slug for row in topic_service.list_with_counts(db)],
        "action_url": f"/admin/segments/{segment.id}" if segment else "/admin/segments/new",
        "breadcrumbs": [LIST, here],
    }
    status = 422 if errors else 200
    return render(request, "admin/segments/form.html", context, status_code=status, block=block)


@router.get("/new")
def new_segment(request: Request, db: SessionDep, me: Editor) -> Response:
    return _page(request, db, None, SegmentForm(rows=[Row(field="status", value="active")]))


@router.get("/{segment_id}")
def show_segment(
    request: Request, db: SessionDep, me: Marketer, segment_id: DbId, count: bool = False
) -> Response:
    segment = service.get_segment(db, segment_id)
    form = SegmentForm.of(segment.name, segment.match, segment.rules)
    counted = service.preview(db, match=segment.match, rules=segment.rules) if count else None
    return _page(request, db, segment, form, counted=counted, block="count" if count else None)


def _errors_of(exc: Exception, form: SegmentForm) -> dict[str, str]:
    message = str(exc)
    return {segment_form.error_field(message, form): message[:1].upper() + message[1:]}


def _act(
    request: Request, db: SessionDep, segment: Segment | None, posted: dict[str, str]
) -> Response | None:
    """add / remove-N / count: the page again with the rows as posted, nothing saved."""
    form = segment_form.parse(posted)
    action = posted.get("action", "save")
    if action == "add":
        if len(form.rows) < MAX_RULES:
            form.rows.append(Row())
        return _page(request, db, segment, form, block="rules")
    if action.startswith("remove-"):
        index = action.removeprefix("remove-")
        if index.isdigit() and int(index) < len(form.rows):
            del form.rows[int(index)]
        form.rows = form.rows or [Row()]
        return _page(request, db, segment, form, block="rules")
    if action == "count":
        try:
            counted = service.preview(db, match=form.match, rules=form.rules())
        except InvalidInput as exc:
            return _page(request, db, segment, form, errors=_errors_of(exc, form))
        return _page(request, db, segment, form, counted=counted, block="count")
    return None


@router.post("/new")
def create_segment(request: Request, db: SessionDep, me: Editor, posted: Posted) -> Response:
    acted = _act(request, db, None, posted)
    if acted is not None:
        return acted
    form = segment_form.parse(posted)
    try:
        segment = service.create_segment(db, name=form.name, match=form.match, rules=form.rules())
    except (InvalidInput, Conflict) as exc:
        db.rollback()
        return _page(request, db, None, form, errors=_errors_of(exc, form))
    return redirect(f"/admin/segments/{segment.id}", f"Segment “{segment.name}” created.")


@router.post("/{segment_id}")
def update_segment(
    request: Request, db: SessionDep, me: Editor, segment_id: DbId, posted: Posted
) -> Response:
    segment = service.get_segment(db, segment_id)
    acted = _act(request, db, segment, posted)
    if acted is not None:
        return acted
    form = segment_form.parse(posted)
    try:
        service.update_segment(db, segment_id, name=form.name, match=form.match, rules=form.rules())
    except (InvalidInput, Conflict) as exc:
        db.rollback()
        segment = service.get_segment(db, segment_id)
        return _page(request, db, segment, form, errors=_errors_of(exc, form))
    return redirect(f"/admin/segments/{segment_id}", f"Segment “{segment.name}” saved.")


@router.get("/{segment_id}/delete")
def confirm_delete(request: Request, db: SessionDep, me: Editor, segment_id: DbId) -> Response:
    return _confirm(request, db, service.get_segment(db, segment_id))


def _confirm(
    request: Request, db: SessionDep, segment: Segment, status_code: int = 200
) -> Response:
    return render(
        request,
        "admin/segments/delete.html",
        {
            "segment": segment,
            "blocking": service.campaigns_using(db, saved_id(segment)),
            "breadcrumbs": [LIST, (segment.name, f"/admin/segments/{segment.id}"), ("Delete", "")],
        },
        status_code=status_code,
    )


@router.post("/{segment_id}/delete")
def delete_segment(request: Request, db: SessionDep, me: Editor, segment_id: DbId) -> Response:
    segment = service.get_segment(db, segment_id)
    name = segment.name
    try:
        service.delete_segment(db, segment_id)
    except Conflict:
        db.rollback()
        return _confirm(request, db, service.get_segment(db, segment_id), status_code=409)
    return redirect("/admin/segments", f"Segment “{name}” deleted.")
