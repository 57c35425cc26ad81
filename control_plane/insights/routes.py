"""``/api/v1/insights``: recurring incident patterns the tenants' runtimes reported."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, get
from litestar.params import FromPath, FromQuery, QueryParameter

from control_plane.api.auth import requires
from control_plane.api.pagination import Page
from control_plane.api.params import CtxDep, Cursor, Limit
from control_plane.db.base import etag_for
from control_plane.insights import schemas, service


class InsightController(Controller):
    path = "/api/v1/insights"
    tags = ["insights"]
    guards = [requires("tenants:read")]

    @get(
        "/",
        operation_id="listInsights",
        description="Recurring incident patterns (a category recurring beyond its threshold at"
        " a store or in a region) of every tenant whose telemetry the caller reads, in the"
        " order they were first reported. Filters: tenant_id, scope (store or region), label,"
        " since (latest incident at or after it).",
    )
    async def list_(
        self,
        ctx: CtxDep,
        tenant_id: FromQuery[UUID | None] = None,
        # ("scope" is the ASGI scope to Litestar: the parameter is renamed.)
        scope_: Annotated[schemas.Scope | None, QueryParameter(name="scope")] = None,
        label: FromQuery[str | None] = None,
        since: FromQuery[datetime | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[schemas.Insight]:
        items, nxt = await service.list_insights(
            ctx,
            tenant_id=tenant_id,
            scope=scope_,
            label=label,
            since=since,
            limit=limit,
            cursor=cursor,
        )
        return Page(items=items, next_cursor=nxt)

    @get(
        "/{insight_id:uuid}",
        operation_id="getInsight",
        description="One insight with its evidence (the incidents behind it).",
    )
    async def get_(self, ctx: CtxDep, insight_id: FromPath[UUID]) -> Response[schemas.Insight]:
        insight = await service.get_insight(ctx, insight_id)
        return Response(insight, headers={"ETag": etag_for(insight.id, insight.version)})


ROUTES = [InsightController]
