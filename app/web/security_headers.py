"""Security headers on every response (ASGI middleware).

Public pages carry signed tokens in their URLs (unsubscribe, preferences, confirm), so they
must not leak through the Referer header, be framed by another site (clickjacking a one-click
unsubscribe or an erase button) or run anything but our own static files. The public
templates use no inline script or style, so the policy needs no hashes or nonces.
A route that sets one of these headers itself keeps its own value.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

ADMIN_CSP = CSP.replace(
    "default-src 'none';", "default-src 'none'; script-src 'self'; connect-src 'self';"
)
"""The marketer pages load our own copy of htmx (static/vendor): scripts and its requests to
this site only; still no inline script or style."""

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


class SecurityHeaders:
    def __init__(
        self,
        app: ASGIApp,
        *,
        no_csp_paths: Iterable[str] = (),
        script_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.script_prefixes = script_prefixes
        # The interactive API docs (when OCTOMAIL_PUBLIC_DOCS is on) load Swagger UI with
        # an inline script: they get every header but the content policy.
        self.no_csp_paths = frozenset(no_csp_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        skip_csp = scope["path"] in self.no_csp_paths
        scripts = bool(self.script_prefixes) and scope["path"].startswith(self.script_prefixes)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    if name not in headers and not (skip_csp and name.startswith("Content-S")):
                        headers[name] = ADMIN_CSP if scripts and value == CSP else value
                if scripts:  # signed-in pages: never kept by a shared cache or the back button
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, with_headers)
