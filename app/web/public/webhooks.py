"""POST /webhooks/{provider}: bounces, complaints and unsubscribes reported by the sending
provider (SES via SNS, SendGrid, Postmark, Mailgun), verified in app/webhooks.

Answers JSON whatever the content type (SNS posts text/plain): 200 with what was done, 401
for an unsigned or badly signed call (nothing changes), 403 for a signed SNS message of a
topic that is not ours, 404 for a provider that is not configured, 400 for a genuine call we
cannot read (the provider retries; a fix on our side then gets it), 429 past the rate limit,
502 when an SNS subscription could not be confirmed (SNS sends the confirmation again).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from app import errors
from app.db import session_scope
from app.settings import get_settings
from app.web.deps import client_ip
from app.web.ratelimit import RateLimiter, client_key
from app.webhooks.service import Receipt, confirm_subscription, receive
from app.webhooks.sns import Certificates

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)

_STATUS: tuple[tuple[type[errors.OctomailError], int], ...] = (
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.ConfigurationError, 503),
)


def certificates(request: Request) -> Certificates:
    """The SNS certificate cache of this app (tests put one with their own fetcher here)."""
    state = request.app.state
    if not hasattr(state, "sns_certificates"):
        state.sns_certificates = Certificates()
    return state.sns_certificates


def _limiter(request: Request) -> RateLimiter:
    state = request.app.state
    if not hasattr(state, "webhook_limiter"):
        state.webhook_limiter = RateLimiter(get_settings().webhook_rate_limit, window=60)
    return state.webhook_limiter


def _work(request: Request, provider: str, body: bytes) -> Receipt:
    settings = get_settings()
    with session_scope() as session:  # committed before the answer
        receipt = receive(
            session,
            settings,
            provider,
            headers=request.headers,
            body=body,
            client=client_ip(request),
            certificates=certificates(request),
        )
    if receipt.subscribe_url:
        confirm_subscription(receipt.subscribe_url, certificates(request))
    return receipt


@router.post("/webhooks/{provider}")
async def webhook(provider: str, request: Request) -> JSONResponse:
    if not _limiter(request).allow(client_key(client_ip(request) or "")):
        return JSONResponse({"detail": "too many requests"}, status_code=429)
    body = await request.body()
    try:
        receipt = await run_in_threadpool(_work, request, provider, body)
    except errors.InvalidInput as exc:
        return JSONResponse({"detail": str(exc)}, status_code=400)
    except errors.OctomailError as exc:
        status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 400)
        if status == 401:
            log.warning("webhook %s refused: %s", provider[:40], exc)
        headers = {"WWW-Authenticate": 'Basic realm="webhooks"'} if provider == "postmark" else {}
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)
    except OSError as exc:
        log.warning("SNS subscription not confirmed: %s", exc)
        return JSONResponse({"detail": "the SNS subscription could not be confirmed"}, 502)
    return JSONResponse(
        {
            "received": receipt.received,
            "duplicates": receipt.duplicates,
            "ignored": receipt.ignored,
            "actions": receipt.actions,
            "subscription_confirmed": bool(receipt.subscribe_url),
        }
    )
