"""Request ids: accepted from ``X-Request-ID`` or minted, and echoed on every response."""

from __future__ import annotations

import re
from collections import Counter

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from control_plane.contracts import uuid7

_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def ensure_request_id(scope: Scope) -> str:
    """The request's id: already assigned, else a valid ``X-Request-ID``, else a new one."""
    state = scope.setdefault("state", {})
    rid = state.get("request_id")
    if not rid:
        given = next(
            (v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-request-id"), ""
        )
        rid = given if _VALID.match(given) else uuid7().hex
        state["request_id"] = rid
    return str(rid)


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        rid = ensure_request_id(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                if "x-request-id" not in headers:
                    headers["X-Request-ID"] = rid
            await send(message)

        await self.app(scope, receive, send_with_id)


class UsageMiddleware:
    """Counts the API calls and webhooks the runtime serves (a usage meter); health, metrics
    and the portal's pages are not counted."""

    def __init__(self, app: ASGIApp, counter: Counter[str]) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            path = scope.get("path", "")
            if path.startswith("/api/"):
                self.counter["api_calls"] += 1
            elif path.startswith("/hooks/"):
                self.counter["webhooks_received"] += 1
        await self.app(scope, receive, send)
