"""What the pages where people manage their own subscription share: the preference centre
(/preferences/{token}, the signed link in every footer) and /account (a signed-in session).

One reading of their forms, one choices section (topics, name, language, tracking) and one
data download, so the two pages cannot drift apart. What differs stays in each page: how
the person is known (a link's token or a session), CSRF, where the buttons post. Every page
about one person (the unsubscribe pages too) goes out through private_page.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from app.i18n import N_, NAMES
from app.models import SubscriptionStatus, saved_id
from app.settings import get_settings
from app.subscribers.preferences import SubscriberView
from app.web.templating import render, request_gettext, request_language

PRIVATE_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
}
"""A page about one person, its token often in the URL: never cached or indexed, and
never named in a Referer."""
UNSUBSCRIBED_FROM_EVERYTHING = N_(
    "You are unsubscribed from everything. You will not receive our emails any more."
)
"""What both pages say after their "unsubscribe from all emails" button."""


async def read_form(request: Request, *, max_length: int | None = None) -> dict[str, list[str]]:
    """Every text field of the posted form, by name (files are ignored); with `max_length`
    each value is cut to it."""
    async with request.form(max_files=0, max_fields=500) as form:
        fields: dict[str, list[str]] = {}
        for key, value in form.multi_items():
            if isinstance(value, str):
                fields.setdefault(key, []).append(value[:max_length])
        return fields


def private_page(
    request: Request,
    name: str,
    context: dict[str, Any],
    status_code: int = 200,
    language: str | None = None,
) -> Response:
    """`language`: the one stored for the page's person (after ?lang=, before the browser's)."""
    response = render(request, name, context, status_code=status_code, stored_language=language)
    response.headers.update(PRIVATE_HEADERS)
    return response


def choices_context(
    request: Request, view: SubscriberView, *, notice: str | None, error: str | None
) -> dict[str, Any]:
    """The values of the choices form both pages show, and the page's message: `notice` and
    `error` are English msgids, translated here into the page's language."""
    subscriber = view.subscriber
    gettext = request_gettext(request, subscriber.language)
    return {
        "name": subscriber.name,
        "status": str(subscriber.status),
        "tracking_allowed": subscriber.tracking_allowed,
        "tracking_default_on": get_settings().tracking_default == "on",
        "topics": [
            {
                "id": t.id,
                "name": t.name,
                "description": t.description,
                "checked": view.status_by_topic.get(saved_id(t)) == SubscriptionStatus.SUBSCRIBED,
            }
            for t in view.topics
        ],
        "languages": NAMES,
        "language": request_language(request, subscriber.language),
        "notice": gettext(notice) if notice else None,
        "error": gettext(error) if error else None,
    }


def data_download(data: dict[str, Any] | None) -> Response:
    """The person's data export as a JSON file download, dated today."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    return Response(
        json.dumps(data, indent=2, ensure_ascii=False, default=str),
        media_type="application/json",
        headers={
            **PRIVATE_HEADERS,
            "Content-Disposition": f'attachment; filename="my-data-{stamp}.json"',
        },
    )
