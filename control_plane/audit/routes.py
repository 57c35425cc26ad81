"""``GET /api/v1/audit``: the audit trail of the caller's subtree, filtered and paged."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from litestar import get
from litestar.params import FromQuery

from control_plane.api.auth import requires
from control_plane.api.pagination import Page
from control_plane.api.params import CtxDep, Limit
from control_plane.api.responses import to_schema
from control_plane.audit import schemas, service
from control_plane.audit.service import AuditFilter


@get(
    "/api/v1/audit",
    operation_id="listAudit",
    tags=["audit"],
    guards=[requires("audit:read")],
    description="Newest first. Filter by action (prefix with a trailing '*'), actor, target, "
    "tenant, partner and time range; page with ?cursor= (a seq).",
)
async def list_audit(
    ctx: CtxDep,
    action: FromQuery[str | None] = None,
    actor: FromQuery[str | None] = None,
    target_type: FromQuery[str | None] = None,
    target_id: FromQuery[str | None] = None,
    partner_id: FromQuery[UUID | None] = None,
    tenant_id: FromQuery[UUID | None] = None,
    since: FromQuery[datetime | None] = None,
    until: FromQuery[datetime | None] = None,
    limit: Limit = 50,
    cursor: FromQuery[str | None] = None,
) -> Page[schemas.AuditEntry]:
    rows, nxt = await service.list_entries(
        ctx,
        AuditFilter(
            action=action,
            actor=actor,
            target_type=target_type,
            target_id=target_id,
            partner_id=partner_id,
            tenant_id=tenant_id,
            since=since,
            until=until,
        ),
        limit=limit,
        cursor=cursor,
    )
    return Page(items=[to_schema(r, schemas.AuditEntry) for r in rows], next_cursor=nxt)
