"""What /api/v1 documents besides success: the error answers each route can give, and times
as RFC 3339 UTC. The OpenAPI schema is the contract; tests/api/test_schema_fuzz.py holds
every route to it (status codes, bodies)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict

_MEANING = {
    400: "Malformed request: an unreadable body or a bad token in it.",
    401: "Missing or invalid bearer token, a revoked token, or a disabled user.",
    403: "The caller's role does not allow this.",
    404: "Not found.",
    409: "Conflicts with the current state.",
    413: "The request body is too large.",
    422: "Invalid input: `detail` says why (a list of field errors, or one sentence).",
}


class FieldError(BaseModel):
    """One item of a request validation error (FastAPI's shape)."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    detail: str | list[FieldError]


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the error answers it may give, all `{"detail": ...}`."""
    return {code: {"model": ErrorBody, "description": _MEANING[code]} for code in codes}


# Every /api/v1 route: the token check, the body size limit, parameter validation.
COMMON = errors(401, 413, 422)


def _as_utc(value: datetime) -> datetime:
    # The database holds naive UTC (docs/DESIGN.md); say so on the way out.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
"""A time in an API answer: rendered `2026-11-30T02:42:21.650291Z`, never without a zone."""
