"""Request guard (ASGI middleware): a body size limit on every route, a nesting limit on JSON.

Why here and not per route: every route that reads a body (API models, public forms, one-click
POSTs, uploads) is covered at once, including ones added later. The size is counted as the
body streams in, not taken from Content-Length (which a chunked request does not send), so a
client cannot make the server buffer more than the limit. JSON bodies are read whole (they are
small by then) and refused when nested deeper than MAX_JSON_DEPTH: the standard parser
recurses, so 100,000 brackets are a RecursionError (a 500) and 900 levels pass parsing only to
overflow whatever walks the value next (validation, the database's JSON encoder, templates).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_JSON_DEPTH = 32
"""Objects and arrays inside each other; no Octomail document needs more than a few."""


class BodyTooLarge(HTTPException):
    """A Starlette HTTPException, so FastAPI's body parsing re-raises it unchanged (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body too large: the limit is {limit:,} bytes")


class RequestGuard:
    def __init__(
        self, app: ASGIApp, *, max_body: int, max_upload: int, upload_paths: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload
        self.upload_paths = frozenset(upload_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_upload if scope["path"] in self.upload_paths else self.max_body
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "").strip()
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            await _reply(scope, receive, send, BodyTooLarge(limit))
            return
        if is_json(headers.get("content-type", "")):
            try:
                body = await _read_body(receive, limit)
            except BodyTooLarge as exc:
                await _reply(scope, receive, send, exc)
                return
            if body is None:
                return  # the client went away
            if json_too_deep(body):
                await _reply(
                    scope,
                    receive,
                    send,
                    HTTPException(422, f"JSON nested deeper than {MAX_JSON_DEPTH} levels"),
                )
                return
            receive = _replay(body, receive)
        else:
            receive = _counting(receive, limit)

        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await _reply(scope, receive, send, exc)


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when `body` is JSON nested deeper than `limit`; bodies that are not JSON are left
    to the route's own parsing (which answers 422)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # the common case: too few brackets to be that deep
    try:
        value = json.loads(body)
    except RecursionError:
        return True
    except ValueError:
        return False
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then the real channel (which reports the disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _counting(receive: Receive, limit: int) -> Receive:
    total = 0

    async def counted() -> Message:
        nonlocal total
        message = await receive()
        if message["type"] == "http.request":
            total += len(message.get("body", b""))
            if total > limit:
                raise BodyTooLarge(limit)
        return message

    return counted


async def _reply(scope: Scope, receive: Receive, send: Send, exc: HTTPException) -> None:
    response = JSONResponse(
        {"detail": exc.detail},
        status_code=exc.status_code,
        headers={"Connection": "close"} if exc.status_code == 413 else None,
    )
    await response(scope, receive, send)
