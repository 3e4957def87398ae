"""The dashboard, /admin/: where a marketer lands after signing in."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from app.models import Role
from app.web.admin.auth import Marketer, admin_user
from app.web.admin.render import render

router = APIRouter(prefix="/admin", dependencies=[Depends(admin_user(Role.VIEWER))])


@router.get("/")
def dashboard(request: Request, me: Marketer) -> Response:
    return render(request, "admin/dashboard.html", {})
