"""/admin/topics: the list with counts, create, edit, delete (with a confirmation page;
refused while unfinished campaigns target the topic, naming them). Editors change,
viewers read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from app.errors import Conflict
from app.models import Role, Topic
from app.subscribers import topics as service
from app.web.admin.auth import Editor, Marketer, admin_user
from app.web.admin.render import redirect, render
from app.web.deps import SessionDep
from app.web.params import DbId

router = APIRouter(prefix="/admin/topics", dependencies=[Depends(admin_user(Role.VIEWER))])
FormText = Annotated[str, Form(max_length=4000)]
LIST = ("Topics", "/admin/topics")


@router.get("")
def topics(request: Request, db: SessionDep, me: Marketer) -> Response:
    return render(
        request,
        "admin/topics/list.html",
        {"rows": service.list_with_counts(db), "breadcrumbs": [LIST]},
    )


def _form(
    request: Request,
    topic: Topic | None,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
) -> Response:
    here = (topic.name, f"/admin/topics/{topic.id}") if topic else ("New topic", "")
    return render(
        request,
        "admin/topics/form.html",
        {"topic": topic, "values": values, "errors": errors or {}, "breadcrumbs": [LIST, here]},
        status_code=422 if errors else 200,
    )


@router.get("/new")
def new_topic(request: Request, me: Editor) -> Response:
    return _form(request, None, {})


@router.post("/new")
def create_topic(
    request: Request,
    db: SessionDep,
    me: Editor,
    slug: FormText = "",
    name: FormText = "",
    description: FormText = "",
) -> Response:
    values = {"slug": slug, "name": name, "description": description}
    try:
        topic = service.create_topic(db, slug=slug, name=name, description=description)
    except service.InvalidFields as exc:
        return _form(request, None, values, exc.fields)
    return redirect("/admin/topics", f"Topic “{topic.name}” created.")


@router.get("/{topic_id}")
def edit_topic(request: Request, db: SessionDep, me: Marketer, topic_id: DbId) -> Response:
    topic = service.get_topic(db, topic_id)
    return _form(request, topic, {"name": topic.name, "description": topic.description})


@router.post("/{topic_id}")
def update_topic(
    request: Request,
    db: SessionDep,
    me: Editor,
    topic_id: DbId,
    name: FormText = "",
    description: FormText = "",
) -> Response:
    topic = service.get_topic(db, topic_id)
    try:
        service.update_topic(db, topic, name=name, description=description)
    except service.InvalidFields as exc:
        db.rollback()
        topic = service.get_topic(db, topic_id)
        return _form(request, topic, {"name": name, "description": description}, exc.fields)
    return redirect("/admin/topics", f"Topic “{topic.name}” saved.")


@router.get("/{topic_id}/delete")
def confirm_delete(request: Request, db: SessionDep, me: Editor, topic_id: DbId) -> Response:
    topic = service.get_topic(db, topic_id)
    return _confirm(request, topic, service.topic_use(db, topic))


def _confirm(
    request: Request, topic: Topic, use: service.TopicUse, status_code: int = 200
) -> Response:
    return render(
        request,
        "admin/topics/delete.html",
        {
            "topic": topic,
            "use": use,
            "breadcrumbs": [LIST, (topic.name, f"/admin/topics/{topic.id}"), ("Delete", "")],
        },
        status_code=status_code,
    )


@router.post("/{topic_id}/delete")
def delete_topic(request: Request, db: SessionDep, me: Editor, topic_id: DbId) -> Response:
    topic = service.get_topic(db, topic_id)
    name = topic.name
    try:
        service.delete_topic(db, topic)
    except Conflict:
        return _confirm(request, topic, service.topic_use(db, topic), status_code=409)
    return redirect("/admin/topics", f"Topic “{name}” deleted.")
