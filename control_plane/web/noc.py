"""The NOC console's pages: the fleet grid, a tenant's drill-down (with its insights),
the alert queue."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect

from control_plane.api.params import CtxDep, Form, Text
from control_plane.health import noc
from control_plane.health.assess import Status
from control_plane.health.noc_routes import requires_noc
from control_plane.health.series import RANGES, parse_range, tenant_series
from control_plane.insights import service as insights
from control_plane.rollouts.views import open_rollouts
from control_plane.web import alerts
from control_plane.web.render import SECURITY_HEADERS, page

#: The runtime's replay API, named where the console cannot link to the runtime itself.
REPLAY_PATH = "/api/v1/dead-letters/{id}/replay"
#: Insights on a tenant's page (latest incident first); the API pages through all.
RECENT_INSIGHTS = 10
COLUMNS = (
    ("name", "Tenant"),
    ("partner", "Partner"),
    (None, "Regions"),
    ("status", "Health"),
    ("sla", "SLA % (24 h)"),
    ("alerts", "Open alerts"),
    ("heartbeat", "Last heartbeat"),
    ("runs", "Runs / h"),
    ("dead_letters", "Dead letters"),
)


def view_query(query: noc.FleetFilter, **changes: Any) -> str:
    """The grid's query string with ``changes`` applied (empty values dropped)."""
    values: dict[str, Any] = {
        "partner": ",".join(query.partners),
        "region": ",".join(query.regions),
        "status": ",".join(s.value for s in query.statuses),
        "sort": ("-" if query.descending else "") + query.sort,
        "offset": query.offset or "",
        "limit": query.limit if query.limit != noc.FleetFilter().limit else "",
    }
    values.update(changes)
    kept = {k: v for k, v in values.items() if v not in ("", None)}
    if kept.get("sort") == "status":  # the default
        del kept["sort"]
    return urlencode(kept)


def sort_link(query: noc.FleetFilter, key: str) -> str:
    descending = query.sort == key and not query.descending
    return "?" + view_query(query, sort=("-" if descending else "") + key, offset="")


@get("/noc", guards=[requires_noc], include_in_schema=False)
async def fleet_page(
    ctx: CtxDep,
    partner: Text = None,
    region: Text = None,
    status: Text = None,
    sort: Text = None,
    offset: Text = None,
    limit: Text = None,
) -> Response[str]:
    query = noc.parse_filter(
        partner=partner, region=region, status=status, sort=sort, offset=offset, limit=limit
    )
    grid = await noc.fleet(ctx, query)
    choices = await noc.facets(ctx)
    return page(
        "noc/fleet.html",
        grid=grid,
        rollouts=await open_rollouts(ctx),
        query=query,
        facets=choices,
        statuses=[s.value for s in Status],
        columns=COLUMNS,
        sort_link=lambda key: sort_link(query, key),
        page_link=lambda at: "?" + view_query(query, offset=at or ""),
        status_link=lambda status: "?" + view_query(query, status=status, offset=""),
        stream_url="/noc/stream?" + view_query(query),
        principal=ctx.principal,
    )


@get("/noc/tenants/{tenant_id:uuid}", guards=[requires_noc], include_in_schema=False)
async def tenant_page(
    ctx: CtxDep,
    tenant_id: FromPath[UUID],
    range_: Annotated[str | None, QueryParameter(name="range", required=False)] = None,
) -> Response[str]:
    span = parse_range(range_)
    drill = await tenant_series(ctx, tenant_id, span)
    queue = await alerts.firing(ctx, tenant_id=tenant_id)
    return page(
        "noc/tenant.html",
        tenant=drill,
        ranges=list(RANGES),
        alerts=queue,
        insights=await insights.recent(ctx, tenant_id, limit=RECENT_INSIGHTS),
        replay_path=REPLAY_PATH,
        principal=ctx.principal,
    )


@get("/noc/tenants/{tenant_id:uuid}/series.json", guards=[requires_noc], include_in_schema=False)
async def tenant_series_json(
    ctx: CtxDep,
    tenant_id: FromPath[UUID],
    range_: Annotated[str | None, QueryParameter(name="range", required=False)] = None,
) -> Response[bytes]:
    drill = await tenant_series(ctx, tenant_id, parse_range(range_))
    return Response(
        msgspec.json.encode(drill),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


@get("/noc/alerts", guards=[requires_noc], include_in_schema=False)
async def alerts_page(ctx: CtxDep) -> Response[str]:
    queue = await alerts.firing(ctx)
    names = await noc.tenant_names(ctx, {a.tenant_id for a in queue})
    return page("noc/alerts.html", alerts=queue, names=names, principal=ctx.principal)


def _back(request: Request[Any, Any, Any], fallback: str) -> str:
    target = request.headers.get("referer", "")
    host = request.headers.get("host", "")
    for prefix in (f"http://{host}", f"https://{host}"):
        if target.startswith(prefix + "/"):
            return target[len(prefix) :]
    return fallback


@post(
    "/noc/alerts/{alert_id:uuid}/{action:str}",
    guards=[requires_noc],
    include_in_schema=False,
    status_code=303,
)
async def alert_action(
    request: Request[Any, Any, Any],
    ctx: CtxDep,
    alert_id: FromPath[UUID],
    action: FromPath[str],
    data: Form,
) -> Response[Any]:
    await alerts.act(ctx, alert_id, action, note=(data.get("note") or "").strip() or None)
    return Redirect(_back(request, "/noc/alerts"), status_code=303, headers=SECURITY_HEADERS)


HANDLERS = [fleet_page, tenant_page, tenant_series_json, alerts_page, alert_action]
