"""``Idempotency-Key`` on creating POSTs, with Stripe's semantics.

Same key and body: the stored response is replayed. Same key, other body: 422. A
request still running under the key: 409. Keys are per caller and kept
``idempotency_ttl_hours``. The key row is committed *before* the handler runs, so of two
concurrent requests exactly one creates; 5xx outcomes are forgotten so a retry can run.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

import msgspec
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from control_plane.api.models import IdempotencyRecord
from control_plane.db import Database, utcnow
from control_plane.db.scope import Scope as DataScope
from control_plane.errors import (
    PROBLEM_MEDIA_TYPE,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    InvalidInput,
    PayloadTooLarge,
    StoreOpsError,
)

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_KEPT_HEADERS = ("content-type", "location", "etag")


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, b"idempotency-key")
        handler = scope.get("route_handler")
        if (
            scope["type"] != ScopeType.HTTP
            or scope["method"] != "POST"
            or key is None
            or handler is None
            or not handler.opt.get("idempotent")
        ):
            await self.app(scope, receive, send)
            return
        try:
            await self._handle(scope, receive, send, key)
        except StoreOpsError as error:
            await _send_problem(scope, send, error)

    async def _handle(self, scope: Any, receive: Receive, send: Send, key: str) -> None:
        if not _KEY.match(key):
            raise InvalidInput("Idempotency-Key must be 1-255 visible ASCII characters")
        app = scope["litestar_app"]
        db: Database = app.state.db
        body = await _read_body(receive, app.state.settings.max_body_bytes)
        principal = scope["user"].subject
        digest = hashlib.sha256(
            scope["method"].encode() + b" " + scope["path"].encode() + b"\n" + body
        ).hexdigest()
        record = await self._claim(db, principal, key, digest, scope)
        if record is not None:
            await _replay(send, record)
            return

        captured: dict[str, Any] = {"status": 500, "headers": {}, "body": bytearray()}

        pending: list[bytes] = [body]

        async def replay_receive() -> Any:
            if pending:
                return {"type": "http.request", "body": pending.pop(), "more_body": False}
            return await receive()

        async def capture_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = {
                    k.decode().lower(): v.decode()
                    for k, v in message.get("headers", [])
                    if k.decode().lower() in _KEPT_HEADERS
                }
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, replay_receive, capture_send)
        except BaseException:
            await self._forget(db, principal, key)
            raise
        if captured["status"] >= 500:
            await self._forget(db, principal, key)
            return
        async with db.transaction(DataScope.system()) as session:
            row = await session.scalar(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
                )
            )
            if row is not None:
                row.state = "complete"
                row.status_code = captured["status"]
                row.headers = captured["headers"]
                row.body = bytes(captured["body"])

    async def _claim(
        self, db: Database, principal: str, key: str, digest: str, scope: Any
    ) -> IdempotencyRecord | None:
        """Insert the in-progress row, or return the completed one to replay."""
        ttl = timedelta(hours=scope["litestar_app"].state.settings.idempotency_ttl_hours)
        try:
            async with db.transaction(DataScope.system()) as session:
                await session.execute(
                    delete(IdempotencyRecord).where(
                        IdempotencyRecord.principal == principal,
                        IdempotencyRecord.key == key,
                        IdempotencyRecord.created_at < utcnow() - ttl,
                    )
                )
                session.add(
                    IdempotencyRecord(
                        principal=principal,
                        key=key,
                        method=scope["method"],
                        path=scope["path"],
                        request_hash=digest,
                    )
                )
            return None
        except IntegrityError:
            pass
        async with db.session(DataScope.system()) as session:
            existing = await session.scalar(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
                )
            )
        if existing is None:  # forgotten between our insert and read: the caller may retry
            raise IdempotencyInProgress(f"Idempotency-Key {key!r} is being released; retry")
        if existing.request_hash != digest:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {key!r} was used with a different request "
                f"({existing.method} {existing.path} with another body); use a new key"
            )
        if existing.state != "complete":
            raise IdempotencyInProgress(
                f"a request with Idempotency-Key {key!r} is still in progress; retry later"
            )
        return existing

    async def _forget(self, db: Database, principal: str, key: str) -> None:
        async with db.transaction(DataScope.system()) as session:
            await session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
                )
            )


def _header(scope: Any, name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k == name:
            return str(v.decode("latin-1"))
    return None


async def _read_body(receive: Receive, limit: int) -> bytes:
    body = bytearray()
    while True:
        message: Any = await receive()
        body += message.get("body", b"")
        if len(body) > limit:
            raise PayloadTooLarge(f"the request body exceeds {limit} bytes")
        if not message.get("more_body", False):
            return bytes(body)


async def _replay(send: Send, record: IdempotencyRecord) -> None:
    headers = [(k.encode(), v.encode()) for k, v in (record.headers or {}).items()]
    headers.append((b"idempotent-replayed", b"true"))
    await _respond(send, record.status_code or 200, headers, record.body or b"")


async def _send_problem(scope: Any, send: Send, error: StoreOpsError) -> None:
    body = msgspec.json.encode(error.problem(instance=scope["path"]))
    headers = [(b"content-type", PROBLEM_MEDIA_TYPE.encode())]
    await _respond(send, error.status, headers, body)


async def _respond(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
    }
    await send(start)
    done: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(done)
