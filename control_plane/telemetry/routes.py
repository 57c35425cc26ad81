"""``POST /runtime/v1/telemetry`` (runtimes report) and the tenant's telemetry reads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery, QueryParameter

from control_plane.api.auth import requires
from control_plane.api.params import CtxDep
from control_plane.contracts.telemetry import MAX_COMPRESSED_BYTES, MEDIA_TYPE
from control_plane.identity.principal import Principal
from control_plane.runtimelink.auth import requires_runtime
from control_plane.telemetry import service
from control_plane.telemetry.schemas import Granularity, Heartbeat, IngestResult, Rollups

#: Above the contract's limit, so the decoder (not the framework) refuses a body that is
#: slightly too large, with the contract's own message; far larger bodies are a 413.
BODY_LIMIT = MAX_COMPRESSED_BYTES + 64 * 1024


@post(
    "/runtime/v1/telemetry",
    operation_id="ingestTelemetry",
    tags=["runtime"],
    guards=[requires_runtime],
    status_code=200,
    request_max_body_size=BODY_LIMIT,
    description=(
        f"A batch of telemetry events (Content-Type {MEDIA_TYPE}, Content-Encoding gzip:"
        " control_plane.contracts.telemetry.encode). Each event is stored once, by id,"
        " however often it is sent; `accepted` counts the events new in this batch,"
        " `duplicates` those already stored (or repeated within it)."
    ),
)
async def ingest_telemetry(request: Request[Principal, str, Any]) -> IngestResult:
    body = await request.body()
    return await service.ingest(request.app.state.db, request.user, body)


class TelemetryController(Controller):
    path = "/api/v1/tenants/{tenant_id:uuid}/telemetry"
    tags = ["telemetry"]
    guards = [requires("tenants:read")]

    @get(
        "/rollups",
        operation_id="getTenantTelemetryRollups",
        description="Counters per template and 5-minute or 1-hour bucket, oldest first:"
        " buckets that start in [from, to). Defaults: the last 24 h (5m) or 7 days (1h).",
    )
    async def rollups(
        self,
        ctx: CtxDep,
        tenant_id: FromPath[UUID],
        granularity: FromQuery[Granularity] = "5m",
        from_: Annotated[datetime | None, QueryParameter(name="from")] = None,
        to: FromQuery[datetime | None] = None,
        template_id: FromQuery[str | None] = None,
    ) -> Rollups:
        return await service.rollups(ctx, tenant_id, granularity, from_, to, template_id)

    @get(
        "/heartbeat",
        operation_id="getTenantHeartbeat",
        description="The tenant runtime's latest heartbeat (fields null before the first).",
    )
    async def heartbeat(self, ctx: CtxDep, tenant_id: FromPath[UUID]) -> Heartbeat:
        return await service.heartbeat(ctx, tenant_id)
