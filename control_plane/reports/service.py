"""The SLA and business report of one tenant, or of a partner's tenants, for a period."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select

from control_plane.context import Ctx
from control_plane.errors import Forbidden, InvalidInput, NotFound
from control_plane.identity.principal import Principal
from control_plane.identity.roles import role_allows
from control_plane.reports.figures import KINDS, Fold, figures
from control_plane.reports.partials import aggregate
from control_plane.reports.period import window
from control_plane.reports.schemas import SlaReport, TenantFigures
from control_plane.telemetry.models import events
from control_plane.tenancy.models import Tenant
from control_plane.tenancy.service import read_partner, read_tenant

PERMISSION = "reports:read"


async def sla_report(
    ctx: Ctx,
    *,
    tenant_id: UUID | None = None,
    partner_id: UUID | None = None,
    period: str | None = None,
    since: str | None = None,
    until: str | None = None,
    now: datetime | None = None,
) -> SlaReport:
    """The report of ``tenant_id`` (or of every tenant of ``partner_id``) over the period.

    Another partner's tenant or partner is a 404; a visible one the caller holds no report
    role over is a 403.
    """
    now = now or datetime.now(UTC)
    start, end = window(period, since, until, now)
    principal = ctx.principal
    if tenant_id is None and partner_id is None:
        tenant_id, partner_id = _home(principal)
    names: dict[UUID, tuple[str | None, str | None]] = {}
    if tenant_id is not None:
        tenant = await read_tenant(ctx, tenant_id)
        if partner_id is not None and tenant["partner_id"] != partner_id:
            raise NotFound(f"tenant {tenant_id} does not exist under partner {partner_id}")
        partner_id = tenant["partner_id"]
        if not principal.can(PERMISSION, partner_id=partner_id, tenant_id=tenant_id):
            raise Forbidden(
                "a tenant's report is read by its retailer admins, its partner's staff and"
                " NOC operators"
            )
        names[tenant_id] = (tenant["slug"], tenant["name"])
    else:
        assert partner_id is not None
        await read_partner(ctx, partner_id)
        if not principal.can(PERMISSION, partner_id=partner_id):
            raise Forbidden(
                "a partner's report is read by its partner staff and NOC operators;"
                " ask for one tenant's report with 'tenant_id'"
            )
        rows = await ctx.session.execute(
            select(Tenant.id, Tenant.slug, Tenant.name)
            .where(Tenant.partner_id == partner_id)
            .order_by(Tenant.slug)
        )
        names = {r.id: (r.slug, r.name) for r in rows}
    if (await ctx.session.connection()).dialect.name == "postgresql":
        total, per_tenant = await aggregate(ctx, partner_id, tenant_id, start, end, now)
    else:
        total, per_tenant = await _fold(ctx, partner_id, tenant_id, start, end)
    tenants = [
        TenantFigures(
            tenant_id=tid,
            slug=names.get(tid, (None, None))[0],
            name=names.get(tid, (None, None))[1],
            figures=figures(per_tenant.get(tid) or Fold().raw()),
        )
        for tid in [*names, *sorted(set(per_tenant) - set(names))]
    ]
    return SlaReport(
        scope="tenant" if tenant_id is not None else "partner",
        partner_id=partner_id,
        tenant_id=tenant_id,
        from_=start,
        to=end,
        generated_at=now,
        total=figures(total or Fold().raw()),
        tenants=tenants,
    )


def _home(principal: Principal) -> tuple[UUID | None, UUID | None]:
    """The scope a report names none of: the caller's own tenant or partner, when its
    grants point at exactly one."""
    if principal.home_tenant_id or principal.home_partner_id:
        return principal.home_tenant_id, principal.home_partner_id
    nodes = {
        (g.tenant_id, g.partner_id)
        for g in principal.grants
        if role_allows(g.role, PERMISSION) and (g.tenant_id or g.partner_id)
    }
    if len(nodes) != 1:
        raise InvalidInput("name the report's scope: 'tenant_id' or 'partner_id'")
    return nodes.pop()


async def _fold(
    ctx: Ctx, partner_id: UUID, tenant_id: UUID | None, start: datetime, end: datetime
) -> tuple[dict[str, Any], dict[UUID, dict[str, Any]]]:
    """The embedded store: the same figures, folded in Python."""
    stmt = select(
        events.c.tenant_id, events.c.kind, events.c.status, events.c.duration_ms, events.c.data
    ).where(
        events.c.partner_id == partner_id,
        events.c.at >= start,
        events.c.at < end,
        events.c.kind.in_(KINDS),
    )
    if tenant_id is not None:
        stmt = stmt.where(events.c.tenant_id == tenant_id)
    folds: dict[UUID, Fold] = {}
    for row in await ctx.session.execute(stmt):
        folds.setdefault(row.tenant_id, Fold()).add(row.kind, row.status, row.duration_ms, row.data)
    whole = Fold()
    for fold in folds.values():
        whole.merge(fold)
    return whole.raw(), {tid: fold.raw() for tid, fold in folds.items()}
