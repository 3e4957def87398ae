"""GET|HEAD /o/{token} (the open pixel) and /r/{message}/{link} (the click redirect).

No sign-in, no database on the request: the token is verified, the hit queued for the
writer thread (app/tracking/writer.py), and the answer goes at once. The pixel never fails:
a tampered or unknown token still gets the image and counts nothing. A click whose tokens
do not verify, or name different campaigns, gets the 400 page and never a redirect, so the
redirect can only reach a URL we signed for that campaign (no open redirect).

These are the one deliberate exception to "GET never changes state": loading the image and
following the link ARE the measurement, and they write only counts, never consent or data.
A client past OCTOMAIL_TRACKING_RATE_LIMIT hits a minute still gets its answer, uncounted.
"""

from __future__ import annotations

import base64
import threading
import time

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from app.errors import TokenInvalid
from app.links import read_click, read_open_token
from app.models import utcnow
from app.settings import get_settings
from app.tracking.classify import classify_request
from app.tracking.record import Hit
from app.tracking.writer import writer
from app.web.ratelimit import client_key

router = APIRouter()

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
"""A 1x1 transparent GIF (43 bytes)."""
_NO_STORE = {"Cache-Control": "no-store, no-cache, max-age=0", "Pragma": "no-cache"}


class _Budget:
    """At most `limit` counted hits per client (IPv4 address, IPv6 /64) per minute: a fixed
    window, one small entry per client, so a flood from many addresses stays cheap."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._window = 0
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def allow(self, host: str, limit: int) -> bool:
        if limit <= 0:
            return True
        window = int(time.monotonic() // 60)
        key = client_key(host)
        with self._lock:
            if window != self._window or len(self._counts) >= self.max_keys:
                self._window, self._counts = window, {}
            count = self._counts.get(key, 0) + 1
            self._counts[key] = count
            return count <= limit


_budget = _Budget()


def _counted(request: Request) -> tuple[str | None, bool]:
    """(the request's machine reason, whether its client may still be counted)."""
    host = request.client.host if request.client else ""
    reason = classify_request(request.method, request.headers.get("user-agent", ""), host)
    return reason, _budget.allow(host, get_settings().tracking_rate_limit)


# Plain `def` routes (the threadpool), like /healthz: on the shared 2-core box the async
# versions answered fewer requests (bench/tracking.py, docs/DESIGN.md "Measured figures");
# nothing here blocks either way (no database on the request).
@router.api_route("/o/{token}", methods=["GET", "HEAD"], include_in_schema=False)
def open_pixel(token: str, request: Request) -> Response:
    try:
        ref = read_open_token(token)
    except TokenInvalid:
        ref = None
    if ref is not None:
        reason, allowed = _counted(request)
        if allowed:
            writer().submit(
                Hit("open", ref.campaign_id, ref.who.subscriber_id, ref.who.tag, utcnow(), reason)
            )
    return Response(GIF, media_type="image/gif", headers=_NO_STORE)


@router.api_route("/r/{message}/{link}", methods=["GET", "HEAD"], include_in_schema=False)
def click(message: str, link: str, request: Request) -> Response:
    ref, url = read_click(message, link)  # TokenInvalid: the 400 page (app/web/errors.py)
    reason, allowed = _counted(request)
    if allowed:
        writer().submit(
            Hit("click", ref.campaign_id, ref.who.subscriber_id, ref.who.tag, utcnow(), reason, url)
        )
    return RedirectResponse(url, status_code=302, headers=_NO_STORE)
