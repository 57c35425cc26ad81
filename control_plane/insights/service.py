"""Reading insights: the API's list and detail, the NOC's recent ones, the alert signal.

Insights are telemetry: whoever reads a tenant's telemetry reads its insights (its
retailer admins, its partner's admins, NOC operators), through the caller's scoped
session, so another partner's tenant's insight does not exist for them (404).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import ColumnElement, Select, false, or_, select, true

from control_plane.api.pagination import fetch_page
from control_plane.context import Ctx
from control_plane.errors import Forbidden, NotFound
from control_plane.identity.principal import Principal
from control_plane.identity.roles import Level
from control_plane.insights import schemas
from control_plane.insights.models import Insight
from control_plane.telemetry.service import READERS, readable_tenant
from control_plane.tenancy.models import Region, Store

#: How far back the NOC's alert signal looks: insights stored or updated this recently.
RECENT = timedelta(hours=24)
_REFUSED = (
    "insights are read by those who read a tenant's telemetry: its retailer admins,"
    " its partner's admins and NOC operators"
)
#: (tenant, scope, subject) -> (code, name) of the store or region named.
Names = dict[tuple[UUID, str, str], tuple[str, str]]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _readers_clause(principal: Principal) -> ColumnElement[bool]:
    """The insights the caller's reader grants cover (the session's scope may be wider:
    a partner operator sees the partner's tenants, not their telemetry)."""
    grants = [g for g in principal.grants if g.role in READERS]
    if not grants:
        raise Forbidden(_REFUSED)
    if any(g.level is Level.PLATFORM for g in grants):
        return true()
    partners = sorted({g.partner_id for g in grants if g.level is Level.PARTNER and g.partner_id})
    tenants = sorted({g.tenant_id for g in grants if g.level is Level.TENANT and g.tenant_id})
    terms = []
    if partners:
        terms.append(Insight.partner_id.in_(partners))
    if tenants:
        terms.append(Insight.tenant_id.in_(tenants))
    return or_(*terms) if terms else false()


async def list_insights(
    ctx: Ctx,
    *,
    tenant_id: UUID | None = None,
    scope: str | None = None,
    label: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[schemas.Insight], str | None]:
    """Insights in the order the control plane first stored them, filtered; ``since``
    keeps those whose latest incident is at or after it."""
    if tenant_id is not None:
        await readable_tenant(ctx, tenant_id)
    stmt: Select[Any] = select(Insight).where(_readers_clause(ctx.principal))
    if tenant_id is not None:
        stmt = stmt.where(Insight.tenant_id == tenant_id)
    if scope is not None:
        stmt = stmt.where(Insight.scope == scope)
    if label is not None:
        stmt = stmt.where(Insight.label == label)
    if since is not None:
        stmt = stmt.where(Insight.last_at >= _utc(since))
    rows, nxt = await fetch_page(ctx.session, stmt, Insight.id, limit=limit, cursor=cursor)
    return await _wire(ctx, [_values(r) for r in rows]), nxt


async def get_insight(ctx: Ctx, insight_id: UUID) -> schemas.Insight:
    row = await ctx.read(Insight, insight_id)
    if row is None:
        raise NotFound(f"insight {insight_id} does not exist")
    node = {"partner_id": row["partner_id"], "tenant_id": row["tenant_id"]}
    if not any(g.role in READERS and g.covers(**node) for g in ctx.principal.grants):
        raise Forbidden(_REFUSED)
    [insight] = await _wire(ctx, [row])
    return insight


async def recent(ctx: Ctx, tenant_id: UUID, limit: int = 10) -> list[schemas.Insight]:
    """A tenant's insights, latest incident first (the NOC's tenant page)."""
    await readable_tenant(ctx, tenant_id)
    rows = (
        await ctx.session.scalars(
            select(Insight)
            .where(Insight.tenant_id == tenant_id)
            .order_by(Insight.last_at.desc(), Insight.id)
            .limit(limit)
        )
    ).all()
    return await _wire(ctx, [_values(r) for r in rows])


async def recent_by_tenant(
    ctx: Ctx, now: datetime, tenant_ids: Collection[UUID]
) -> dict[UUID, list[schemas.Insight]]:
    """Per tenant, the insights stored or updated in the :data:`RECENT` period up to
    ``now``, highest count first (the alert evaluator's signal; it reads as the system).
    Judged by the control plane's clock, so a runtime's skewed clock moves nothing."""
    wanted = set(tenant_ids)
    if not wanted:
        return {}
    # By time alone (an index), not by a list of every active tenant: insights are rare.
    rows = (
        await ctx.session.scalars(
            select(Insight)
            .where(Insight.updated_at > now - RECENT, Insight.updated_at <= now)
            .order_by(Insight.tenant_id, Insight.count.desc(), Insight.id)
        )
    ).all()
    kept = [_values(r) for r in rows if r.tenant_id in wanted]
    out: dict[UUID, list[schemas.Insight]] = {}
    for insight in await _wire(ctx, kept):
        out.setdefault(insight.tenant_id, []).append(insight)
    return out


def describe(insight: schemas.Insight) -> str:
    """One line a person reads: "'refrigeration' at store S-001 (5 in 30 days)"."""
    where = insight.subject_code or insight.subject
    return (
        f"{insight.label!r} {'at' if insight.scope == 'store' else 'in'} {insight.scope}"
        f" {where} ({insight.count} in {insight.window_days} days)"
    )


# --- to the wire ----------------------------------------------------------------------------


def _values(row: Insight) -> dict[str, Any]:
    return {name: getattr(row, name) for name in Insight.__table__.columns.keys()}  # noqa: SIM118


async def _wire(ctx: Ctx, rows: Sequence[Mapping[str, Any]]) -> list[schemas.Insight]:
    names = await _names(ctx, rows)
    out = []
    for row in rows:
        code, name = names.get((row["tenant_id"], row["scope"], row["subject"]), (None, None))
        out.append(
            msgspec.convert({**row, "subject_code": code, "subject_name": name}, schemas.Insight)
        )
    return out


def _as_uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


async def _names(ctx: Ctx, rows: Iterable[Mapping[str, Any]]) -> Names:
    """The code and name of each store or region the insights name, by id or code."""
    wanted = {(row["tenant_id"], row["scope"], row["subject"]) for row in rows}
    found: Names = {}
    for model, scope in ((Store, "store"), (Region, "region")):
        subjects = {s for _, sc, s in wanted if sc == scope}
        if not subjects:
            continue
        ids = [i for s in subjects if (i := _as_uuid(s)) is not None]
        stmt = select(model.tenant_id, model.id, model.code, model.name).where(
            model.tenant_id.in_(sorted({t for t, sc, _ in wanted if sc == scope})),
            or_(model.id.in_(ids), model.code.in_(sorted(subjects))),
        )
        for tenant_id, obj_id, code, name in (await ctx.session.execute(stmt)).all():
            for subject in (str(obj_id), code):
                if (tenant_id, scope, subject) in wanted:
                    found[(tenant_id, scope, subject)] = (code, name)
    return found
