"""``GET /api/v1/noc/fleet`` and ``GET /api/v1/noc/tenants/{id}/series``: the NOC's data.

The API serves anyone who reads tenants, each over the tenants it sees (a retailer admin,
its own); the console's pages are for NOC staff (:func:`requires_noc`).
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import get
from litestar.connection import ASGIConnection
from litestar.params import FromPath, Parameter, QueryParameter

from control_plane.api.auth import requires
from control_plane.api.params import CtxDep
from control_plane.errors import Forbidden
from control_plane.health import noc
from control_plane.health.series import TenantSeries, parse_range, tenant_series
from control_plane.identity.principal import Principal
from control_plane.identity.roles import Role

#: Who watches the fleet: platform NOC staff everywhere, a partner's staff over its own.
NOC_ROLES = frozenset({Role.PLATFORM_ADMIN, Role.NOC_OPERATOR, Role.PARTNER_ADMIN})

Text = Annotated[str | None, Parameter(required=False)]


def is_noc(principal: Principal) -> bool:
    return any(g.role in NOC_ROLES for g in principal.grants)


async def requires_noc(connection: ASGIConnection[Any, Principal, Any, Any], _: Any) -> None:
    if not is_noc(connection.user):
        raise Forbidden(
            "the NOC console is for noc_operator, platform_admin and partner_admin roles"
        )


@get(
    "/api/v1/noc/fleet",
    operation_id="getNocFleet",
    tags=["noc"],
    guards=[requires("tenants:read")],
    description="The fleet grid: every tenant the caller watches with its health status and"
    " reasons, SLA % (last 24 h), open alerts, last heartbeat, runs in the last hour and dead"
    " letters. Filters (comma-separated lists): partner (id or slug), region (code), status"
    " (healthy, degraded, down, unknown). sort: status (worst first), name, partner, sla,"
    " alerts, heartbeat, runs or dead_letters; '-' before it reverses. Paged by limit/offset;"
    " counts are per status before the status filter.",
)
async def get_fleet(
    ctx: CtxDep,
    partner: Text = None,
    region: Text = None,
    status: Text = None,
    sort: Text = None,
    limit: Text = None,
    offset: Text = None,
) -> noc.Fleet:
    query = noc.parse_filter(
        partner=partner, region=region, status=status, sort=sort, limit=limit, offset=offset
    )
    return await noc.fleet(ctx, query)


@get(
    "/api/v1/noc/tenants/{tenant_id:uuid}/series",
    operation_id="getNocTenantSeries",
    tags=["noc"],
    guards=[requires("tenants:read")],
    description="A tenant's drill-down: health now, and per bucket runs per hour, failure"
    " rate, p95 run duration, SLA compliance and the approval backlog. range: 6h"
    " (5-minute buckets), 24h, 7d or 30d (hourly buckets).",
)
async def get_tenant_series(
    ctx: CtxDep,
    tenant_id: FromPath[UUID],
    range_: Annotated[str | None, QueryParameter(name="range", required=False)] = None,
) -> TenantSeries:
    return await tenant_series(ctx, tenant_id, parse_range(range_))


ROUTES = [get_fleet, get_tenant_series]
