"""``POST /hooks/{source}``: signed inbound webhooks (Standard Webhooks) become events.

Only authenticity is checked here; duplicates are recognised by the engine's events table
(unique per source and ``webhook-id``), which survives restarts and is shared by every
replica, so an in-memory replay guard would add nothing but a way to lose an event whose
first delivery failed after being remembered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, post
from litestar.params import FromPath

from tenant_runtime.api import schemas
from tenant_runtime.api.deps import runtime_of
from tenant_runtime.api.problems import InvalidInput, NotFound, WebhookRefused
from tenant_runtime.secrets import SecretCache
from tenant_runtime.webhooks import (
    BadSignature,
    MalformedHeader,
    MissingHeader,
    StaleTimestamp,
    Verifier,
    WebhookVerificationError,
)

_REASONS: dict[type[WebhookVerificationError], str] = {
    MissingHeader: "missing-header",
    MalformedHeader: "malformed-header",
    StaleTimestamp: "stale-timestamp",
    BadSignature: "bad-signature",
}


class HookBody(msgspec.Struct, kw_only=True):
    """A sender's event. Unknown members (``timestamp``...) are allowed: senders add them."""

    type: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    correlation: Annotated[str, msgspec.Meta(max_length=255)] | int | None = None
    data: dict[str, Any] | None = None
    payload: dict[str, Any] | None = None


class WebhookSources:
    """The secrets each source signs with: literal ``whsec_`` values or ``secret://`` names
    resolved through the runtime's secret cache (several while a secret rotates)."""

    def __init__(
        self, secrets: Mapping[str, Sequence[str]], cache: SecretCache | None = None
    ) -> None:
        self.secrets = {source: list(values) for source, values in secrets.items() if values}
        self.cache = cache

    async def verifier(self, source: str) -> Verifier:
        bindings = self.secrets.get(source)
        if bindings is None:
            known = ", ".join(sorted(self.secrets)) or "none"
            raise NotFound(f"no webhook source {source!r} here (configured: {known})")
        if self.cache is not None:
            return await Verifier.from_bindings(bindings, self.cache)
        return Verifier(bindings)


def _parse(body: bytes) -> HookBody:
    try:
        event = msgspec.json.decode(body, type=HookBody)
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"the webhook body is not a valid event: {exc}") from None
    if event.data is not None and event.payload is not None:
        raise InvalidInput("send the event's content as 'data' or as 'payload', not both")
    return event


@post(
    "/hooks/{source:str}",
    operation_id="receiveWebhook",
    tags=["webhooks"],
    status_code=202,
    security=[],
    description="A Standard Webhooks delivery (webhook-id, webhook-timestamp, "
    "webhook-signature headers). 202: accepted; 200: a duplicate webhook-id, ignored.",
)
async def receive_webhook(
    request: Request[Any, Any, Any], source: FromPath[str]
) -> Response[schemas.HookAccepted]:
    sources: WebhookSources = request.app.state.webhook_sources
    verifier = await sources.verifier(source)
    body = await request.body()
    try:
        verified = verifier.check(request.headers, body)
    except WebhookVerificationError as exc:
        reason = next((r for t, r in _REASONS.items() if isinstance(exc, t)), "unauthenticated")
        raise WebhookRefused(str(exc), reason=reason) from None
    event = _parse(verified.body)
    correlation = None if event.correlation is None else str(event.correlation)
    new = await runtime_of(request).engine.ingest(
        source,
        external_id=verified.msg_id,
        type=event.type,
        correlation=correlation,
        payload=event.data if event.data is not None else (event.payload or {}),
    )
    if not new:
        return Response(
            schemas.HookAccepted(id=verified.msg_id, accepted=False, duplicate=True),
            status_code=200,
        )
    return Response(schemas.HookAccepted(id=verified.msg_id), status_code=202)
