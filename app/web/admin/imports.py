"""CSV import from the admin pages: /admin/subscribers/import (file, topic, the consent
attestation) starts a background job (app/subscribers/import_jobs.py); /admin/imports/{id}
shows its progress (htmx polls the page's report block) and the rejected lines, with a CSV
of them. Editors import; viewers may read a report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response, StreamingResponse
from sqlmodel import select

from app.errors import InvalidInput, NotFound
from app.models import Role, Topic
from app.subscribers import import_jobs
from app.web.admin.auth import Editor, Marketer, admin_user
from app.web.admin.render import redirect, render
from app.web.deps import SessionDep

router = APIRouter(dependencies=[Depends(admin_user(Role.VIEWER))])
FormText = Annotated[str, Form(max_length=2000)]
CRUMBS = [("Subscribers", "/admin/subscribers"), ("Import", "/admin/subscribers/import")]


def _form(
    request: Request,
    db: SessionDep,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
) -> Response:
    return render(
        request,
        "admin/imports/new.html",
        {
            "values": values,
            "errors": errors or {},
            "topics": list(db.exec(select(Topic).order_by(Topic.name))),
            "breadcrumbs": CRUMBS,
        },
        status_code=422 if errors else 200,
    )


@router.get("/admin/subscribers/import")
def import_form(request: Request, db: SessionDep, me: Editor) -> Response:
    return _form(request, db, {})


@router.post("/admin/subscribers/import")
def start_import(
    request: Request,
    db: SessionDep,
    me: Editor,
    file: Annotated[UploadFile | None, File()] = None,
    topic: FormText = "",
    consent_source: FormText = "",
    attest: FormText = "",
) -> Response:
    values = {"topic": topic, "consent_source": consent_source, "attest": attest}
    errors = import_jobs.check_request(consent_source, topic or None)
    if not attest:
        errors["attest"] = "Confirm that everyone in the file agreed to receive these emails"
    if file is None or not file.filename:
        errors["file"] = "Choose a CSV file"
    if not errors and file is not None:
        try:
            job_id = import_jobs.start(
                file.file,
                file_name=file.filename or "upload.csv",
                consent_source=consent_source,
                topic_slug=topic or None,
                by=me.user.email,
            )
        except InvalidInput as exc:
            errors["file"] = f"This file cannot be imported: {exc}"
    if errors:
        return _form(request, db, values, errors)
    return redirect(f"/admin/imports/{job_id}", "The import has started.")


def _job(job_id: str) -> import_jobs.ImportJob:
    job = import_jobs.read(job_id)
    if job is None:
        raise NotFound("import not found (reports are kept 7 days)")
    return job


@router.get("/admin/imports/{job_id}")
def import_report(request: Request, me: Marketer, job_id: str) -> Response:
    job = _job(job_id)
    return render(
        request,
        "admin/imports/report.html",
        {"job": job, "breadcrumbs": [*CRUMBS, (job.file_name, "")]},
        block="report",
    )


@router.get("/admin/imports/{job_id}/rejected.csv")
def rejected_lines(me: Marketer, job_id: str) -> Response:
    chunks = import_jobs.rejected_csv(job_id)
    if chunks is None:
        return redirect(f"/admin/imports/{job_id}", "No line was rejected.")
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="rejected-{job_id}.csv"'},
    )
