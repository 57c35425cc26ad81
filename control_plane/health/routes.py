"""``GET /api/v1/tenants/{tenant_id}/health``."""

from __future__ import annotations

from uuid import UUID

from litestar import get
from litestar.params import FromPath

from control_plane.api.auth import requires
from control_plane.api.params import CtxDep
from control_plane.health.service import TenantHealth, tenant_health


@get(
    "/api/v1/tenants/{tenant_id:uuid}/health",
    operation_id="getTenantHealth",
    tags=["health"],
    guards=[requires("tenants:read")],
    description="healthy, degraded, down or unknown, with the reasons: heartbeat age,"
    " failure rate and SLA breach rate over the last 15 minutes, backlog.",
)
async def get_tenant_health(ctx: CtxDep, tenant_id: FromPath[UUID]) -> TenantHealth:
    return await tenant_health(ctx, tenant_id)
