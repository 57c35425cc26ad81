"""The runtime's link home: its own credentials (from a one-time bootstrap token), an access
token kept fresh, and the telemetry sender that drains the outbox.

Telemetry leaves only what the outbox holds, and an outbox row is marked sent only after the
control plane acknowledged its batch. A control-plane outage of any length therefore loses
nothing (rows wait), and a batch sent twice (a lost acknowledgement) is counted once (the
control plane deduplicates by event id).

Calls home carry the W3C trace context; the runtime's run and step metrics are counted from
the telemetry events as the control plane acknowledges them (off the engine's hot path, and
once per event).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
from opentelemetry.trace import Span, SpanKind, get_current_span
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.contracts import telemetry
from control_plane.contracts.desired_state import CHANGE_HEADER_PREFIX
from tenant_runtime import tracing
from tenant_runtime.config import RuntimeSettings
from tenant_runtime.db.schema import outbox
from tenant_runtime.engine import state


class LinkError(Exception):
    """The control plane could not be reached or refused the request."""


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str


def credentials_file(settings: RuntimeSettings) -> Path:
    return settings.home / f"runtime-{settings.tenant_id}.credentials.json"


class ControlPlane:
    """Calls to the control plane as this runtime (role ``tenant_runtime``)."""

    def __init__(
        self,
        settings: RuntimeSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.http = httpx.AsyncClient(
            base_url=settings.control_plane_url, timeout=30.0, transport=transport
        )
        self.clock = clock
        self._token: tuple[str, float] | None = None
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        await self.http.aclose()

    # --- credentials ----------------------------------------------------------------------

    def credentials(self) -> Credentials:
        if self.settings.client_id and self.settings.client_secret:
            return Credentials(self.settings.client_id, self.settings.client_secret)
        path = credentials_file(self.settings)
        if path.is_file():
            data = json.loads(path.read_text())
            return Credentials(str(data["client_id"]), str(data["client_secret"]))
        raise LinkError(
            "this runtime has no credentials: start it once with --bootstrap-token, or set "
            "STOREOPS_RUNTIME_CLIENT_ID and STOREOPS_RUNTIME_CLIENT_SECRET"
        )

    async def bootstrap(self, token: str) -> Credentials:
        """Exchange a one-time bootstrap token for this runtime's own client credentials,
        kept in a file only its user can read."""
        answer = await self.http.post("/runtime/v1/bootstrap", json={"token": token})
        if answer.status_code != 200:
            raise LinkError(f"bootstrap refused ({answer.status_code}): {_detail(answer)}")
        body = answer.json()
        if str(body.get("tenant_id")) != str(self.settings.tenant_id):
            raise LinkError(
                f"the bootstrap token is for tenant {body.get('tenant_id')}, "
                f"not this runtime's {self.settings.tenant_id}"
            )
        found = Credentials(str(body["client_id"]), str(body["client_secret"]))
        path = credentials_file(self.settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"client_id": found.client_id, "client_secret": found.client_secret}, out)
        return found

    async def token(self) -> str:
        async with self._lock:
            if self._token is None or self.clock() > self._token[1]:
                found = self.credentials()
                answer = await self.http.post(
                    "/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=(found.client_id, found.client_secret),
                )
                if answer.status_code != 200:
                    raise LinkError(f"token refused ({answer.status_code}): {_detail(answer)}")
                body = answer.json()
                expires = self.clock() + max(float(body.get("expires_in", 300)) - 60, 30)
                self._token = (str(body["access_token"]), expires)
            return self._token[0]

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request as this runtime; a transport failure is a LinkError."""
        headers = {"Authorization": f"Bearer {await self.token()}", **kwargs.pop("headers", {})}
        if not tracing.active():
            answer = await self._send(method, path, headers, kwargs)
        else:
            route = path.split("?", 1)[0]
            with tracing.tracer.start_as_current_span(
                f"{method} {route}",
                kind=SpanKind.CLIENT,
                attributes={"http.request.method": method, "url.template": route},
            ) as span:
                answer = await self._send(method, path, headers, kwargs)
                span.set_attribute("http.response.status_code", answer.status_code)
                _link_change(span, answer)
        if answer.status_code == 401:
            self._token = None  # rotated or revoked: fetch a new one next time
        return answer

    async def _send(
        self, method: str, path: str, headers: dict[str, str], kwargs: dict[str, Any]
    ) -> httpx.Response:
        try:
            return await self.http.request(method, path, headers=tracing.inject(headers), **kwargs)
        except httpx.HTTPError as exc:
            raise LinkError(f"{method} {path}: {exc!r}") from None

    # --- calls ----------------------------------------------------------------------------

    async def post_telemetry(self, body: bytes) -> dict[str, Any]:
        answer = await self.call(
            "POST",
            "/runtime/v1/telemetry",
            content=body,
            headers={"Content-Type": telemetry.MEDIA_TYPE, "Content-Encoding": "gzip"},
        )
        if answer.status_code != 200:
            raise LinkError(f"telemetry refused ({answer.status_code}): {_detail(answer)}")
        result: dict[str, Any] = answer.json()
        return result


def _link_change(span: Span, answer: httpx.Response) -> None:
    """A desired state names the trace of the change that produced it: link to it."""
    carrier = {
        name: answer.headers[f"{CHANGE_HEADER_PREFIX}{name}"]
        for name in ("traceparent", "tracestate")
        if f"{CHANGE_HEADER_PREFIX}{name}" in answer.headers
    }
    if carrier:
        change = get_current_span(tracing.extract(carrier)).get_span_context()
        if change.is_valid:
            span.add_link(change, {"storeops.link": "desired-state change"})


def _detail(answer: httpx.Response) -> str:
    try:
        return str(answer.json().get("detail") or answer.text[:200])
    except ValueError:
        return answer.text[:200]


def count(events: list[telemetry.Event]) -> None:
    """The run and step metrics these acknowledged events stand for."""
    tracing.telemetry_batches.add(1)
    tracing.telemetry_events.add(len(events))
    for event in events:
        if event.kind is telemetry.Kind.RUN_STARTED:
            tracing.runs_started.add(1, {"template": event.template_id or ""})
        elif event.kind is telemetry.Kind.RUN_FINISHED:
            attributes = {"template": event.template_id or "", "status": event.status or ""}
            tracing.runs_finished.add(1, attributes)
            if event.duration_ms is not None:
                tracing.run_duration.record(event.duration_ms / 1000, attributes)
        elif event.kind is telemetry.Kind.STEP_FINISHED and event.duration_ms is not None:
            tracing.step_duration.record(
                event.duration_ms / 1000,
                {"step_kind": str(event.data.get("step_kind", "")), "status": event.status or ""},
            )


class TelemetrySender:
    """Drains the outbox's telemetry rows in batches, oldest first, marking a row sent only
    after the control plane acknowledged the batch that carried it."""

    def __init__(
        self,
        db: AsyncEngine,
        settings: RuntimeSettings,
        post: Callable[[bytes], Any],
        *,
        name: str = "runtime",
        max_events: int = 2000,
    ) -> None:
        self.db = db
        self.settings = settings
        self.post = post
        self.name = name
        self.max_events = min(max_events, telemetry.MAX_EVENTS)
        self.failures = 0

    async def send_once(self) -> int:
        """One batch; returns how many events were acknowledged (0: nothing to send)."""
        async with self.db.begin() as conn:
            stmt = (
                select(outbox.c.id, outbox.c.payload)
                .where(outbox.c.topic == "telemetry", outbox.c.sent_at.is_(None))
                .order_by(outbox.c.id)
                .limit(max(self.max_events // 4, 1))
            )
            stmt = state.locked(conn, stmt, skip=True)  # several senders share the work
            rows: list[int] = []
            events: list[dict[str, Any]] = []
            for row in (await conn.execute(stmt)).all():
                if rows and len(events) + len(row.payload) > self.max_events:
                    break
                rows.append(row.id)
                events.extend(row.payload)
            if not rows:
                return 0
            batch = telemetry.Batch(
                tenant_id=self.settings.tenant_id,
                runtime=self.name,
                sent_at=datetime.now(UTC),
                events=msgspec.convert(events, list[telemetry.Event]),
            )
            await self.post(telemetry.encode(batch))
            await conn.execute(
                update(outbox).where(outbox.c.id.in_(rows)).values(sent_at=datetime.now(UTC))
            )
        count(batch.events)
        return len(events)

    async def drain(self) -> int:
        """Send until the outbox holds no unsent telemetry; raises LinkError on failure."""
        sent = 0
        while n := await self.send_once():
            sent += n
        return sent

    def backoff(self) -> float:
        """Seconds to wait after the ``failures``-th failure in a row (capped, jittered)."""
        delay = min(2.0 ** min(self.failures, 6), 60.0)
        return delay / 2 + random.uniform(0, delay / 2)
