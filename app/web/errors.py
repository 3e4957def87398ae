"""Domain errors -> JSON for /api, pages for everything else. Never a 500 for bad input."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError

from app import errors
from app.i18n import N_
from app.web.admin.render import render as render_admin
from app.web.templating import public_message, render, request_language

_STATUS = {
    errors.LinkGone: 410,
    errors.NotFound: 404,
    errors.InvalidTransition: 409,
    errors.Conflict: 409,
    errors.Suppressed: 409,
    errors.TokenInvalid: 400,
    errors.InvalidCursor: 400,
    errors.InvalidInput: 422,
    errors.ConfigurationError: 409,
    errors.RateLimited: 429,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
}


_UNTRANSLATED = N_("This request could not be completed.")


def status_for(exc: errors.OctomailError) -> int:
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 400


def error_response(request: Request, exc: errors.OctomailError) -> Response:
    status = status_for(exc)
    wants_json = request.headers.get("content-type", "").startswith("application/json")
    if request.url.path.startswith("/api/") or wants_json:
        return JSONResponse({"detail": str(exc)}, status_code=status)
    if request.url.path.startswith("/admin/"):
        return render_admin(
            request,
            "admin/error.html",
            {"title": "That did not work", "message": str(exc), "inbox_waiting": None},
            status_code=status,
        )

    if isinstance(exc, errors.LinkGone):  # the person is gone: the same page as every link's
        return render(request, "public/preferences_gone.html", {}, status_code=status)
    # Messages of the errors public pages show are in the catalogues (locale/babel.cfg);
    # any other is shown in English only, else replaced by a translated general sentence.
    message = public_message(request_language(request), str(exc), _UNTRANSLATED)
    return render(
        request, "public/error.html", {"message": message, "status": status}, status_code=status
    )


def _printable(value: object) -> str:
    """Text that JSON can carry: a location may be a key from the request itself."""
    return str(value).encode("utf-8", "replace").decode("utf-8")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.OctomailError)
    async def _domain_error(request: Request, exc: errors.OctomailError) -> Response:
        return error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's own answer echoes each field's input: a lone surrogate in it cannot be
        # encoded (a 500), and a password or token in it would land in the client's logs.
        detail = [
            {
                "loc": [
                    part if isinstance(part, int) else _printable(part) for part in e.get("loc", ())
                ],
                "msg": _printable(e.get("msg", "")),
                "type": _printable(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(DataError)
    async def _bad_value(request: Request, exc: DataError) -> Response:
        # A value the database cannot hold (an id past 2**31, ...) is bad input, not a crash.
        return error_response(request, errors.InvalidInput("a value is out of range"))

    @app.exception_handler(OverflowError)
    async def _too_big(request: Request, exc: OverflowError) -> Response:
        # SQLite's driver raises this itself (not a DataError) for an integer past 2**63.
        return error_response(request, errors.InvalidInput("a value is out of range"))
