"""``GET /api/v1/audit``: the audit trail of the caller's subtree, filtered and paged."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import get
from litestar.params import FromQuery, Parameter
from sqlalchemy import Select, select

from control_plane.api.auth import requires
from control_plane.api.pagination import Page, check_limit
from control_plane.api.params import CtxDep
from control_plane.api.responses import to_schema
from control_plane.audit import schemas
from control_plane.audit.models import AuditEntry
from control_plane.errors import InvalidInput


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
    limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    cursor: FromQuery[str | None] = None,
) -> Page[schemas.AuditEntry]:
    stmt: Select[Any] = select(AuditEntry)
    if action:
        stmt = stmt.where(
            AuditEntry.action.startswith(action[:-1])
            if action.endswith("*")
            else AuditEntry.action == action
        )
    for column, value in (
        (AuditEntry.actor, actor),
        (AuditEntry.target_type, target_type),
        (AuditEntry.target_id, target_id),
        (AuditEntry.partner_id, partner_id),
        (AuditEntry.tenant_id, tenant_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if since:
        stmt = stmt.where(AuditEntry.at >= since)
    if until:
        stmt = stmt.where(AuditEntry.at < until)
    if cursor:
        if not cursor.isdigit():
            raise InvalidInput(f"cursor {cursor!r} is not one this API returned")
        stmt = stmt.where(AuditEntry.seq < int(cursor))
    limit = check_limit(limit)
    rows = (await ctx.session.scalars(stmt.order_by(AuditEntry.seq.desc()).limit(limit + 1))).all()
    nxt = str(rows[limit - 1].seq) if len(rows) > limit else None
    return Page(items=[to_schema(r, schemas.AuditEntry) for r in rows[:limit]], next_cursor=nxt)
