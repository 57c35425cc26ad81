"""Rollouts: start (every check before anything is written), read, promote, abort.
The periodic job (:mod:`control_plane.rollouts.job`) moves them on between calls."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import Select, select, text

from control_plane.api.pagination import fetch_page
from control_plane.audit.service import record_change
from control_plane.context import Ctx
from control_plane.db import utcnow
from control_plane.deployments.models import Deployment
from control_plane.deployments.resolve import Resolver
from control_plane.deployments.validation import InvalidDeployment, Problem
from control_plane.errors import Conflict, Forbidden, NotFound
from control_plane.rollouts import machine, plan, schemas
from control_plane.rollouts.models import MOVING, Rollout, RolloutTenant
from control_plane.tenancy.models import Partner, Region, Tenant, TenantStatus

log = logging.getLogger(__name__)

READ = "rollouts:read"
WRITE = "rollouts:write"


class InvalidRollout(InvalidDeployment):
    type_, title = "invalid-rollout", "The rollout is not valid"


class TenantsOutOfReach(NotFound):
    """Named tenants the caller cannot see: a 404, as for any object outside its subtree."""

    type_, title = "rollout-tenants-not-found", "Tenants not found in your subtree"


class RolloutOverlap(Conflict):
    type_, title = "rollout-overlap", "Another rollout of this template is in progress"


def _refuse(path: str, message: str) -> InvalidRollout:
    return InvalidRollout([Problem(path, message)])


async def _partner(ctx: Ctx, partner_id: UUID) -> None:
    if await ctx.session.scalar(select(Partner.id).where(Partner.id == partner_id)) is None:
        raise NotFound(
            f"partner {partner_id} does not exist or is outside your subtree; nothing was created"
        )


async def _fleet(ctx: Ctx, data: schemas.RolloutCreate) -> list[Tenant]:
    """The tenants the selector names, ordered canary first, then by slug."""
    if data.partner_id is None and data.tenant_ids is None and data.match is None:
        raise _refuse("$", "choose the fleet: partner_id, tenant_ids and/or match")
    if data.partner_id is not None:
        await _partner(ctx, data.partner_id)
    stmt = select(Tenant).where(Tenant.status != TenantStatus.OFFBOARDED)
    if data.tenant_ids is not None:
        wanted = set(data.tenant_ids)
        if not wanted:
            raise _refuse("$.tenant_ids", "is empty; list at least one tenant or leave it out")
        visible = set(
            (await ctx.session.scalars(select(Tenant.id).where(Tenant.id.in_(wanted)))).all()
        )
        if missing := sorted(str(t) for t in wanted - visible):
            raise TenantsOutOfReach(
                f"tenant(s) {', '.join(missing)} do not exist or are outside your subtree; "
                "nothing was created",
                tenants=missing,
            )
        stmt = stmt.where(Tenant.id.in_(wanted))
    if data.partner_id is not None:
        stmt = stmt.where(Tenant.partner_id == data.partner_id)
    found = list((await ctx.session.scalars(stmt)).all())
    for key, value in (data.match or {}).items():
        if key == "region":
            have = set(
                await ctx.session.scalars(select(Region.tenant_id).where(Region.code == value))
            )
            found = [t for t in found if t.id in have]
        elif key in schemas.ATTRIBUTES:
            found = [t for t in found if str(getattr(t, key)) == value]
        else:
            found = [t for t in found if (t.labels or {}).get(key) == value]
    denied = [
        t.slug
        for t in found
        if not ctx.principal.can(WRITE, partner_id=t.partner_id, tenant_id=t.id)
    ]
    if denied:
        raise Forbidden(
            f"your roles do not grant '{WRITE}' over tenant(s) {', '.join(sorted(denied))}",
            tenants=sorted(denied),
        )
    if data.tenant_ids is not None and (
        off := {t for t in data.tenant_ids} - {t.id for t in found}
    ):
        raise _refuse(
            "$.tenant_ids",
            f"tenant(s) {', '.join(sorted(map(str, off)))} are offboarded or do not match "
            "partner_id/match",
        )
    if not found:
        raise _refuse("$", "no tenant matches the selector; the rollout would move nothing")
    found.sort(key=lambda t: (t.id != data.canary, t.slug, str(t.id)))
    if data.canary is not None and found[0].id != data.canary:
        raise _refuse("$.canary", f"tenant {data.canary} is not in the rollout's target set")
    return found


async def _deployments(
    ctx: Ctx, data: schemas.RolloutCreate, fleet: list[Tenant]
) -> list[tuple[Tenant, Deployment]]:
    """Each tenant's deployment of the template, checked against the new version."""
    rows = (
        await ctx.session.scalars(
            select(Deployment).where(
                Deployment.template_id == data.template_id,
                Deployment.tenant_id.in_([t.id for t in fleet]),
            )
        )
    ).all()
    by_tenant = {d.tenant_id: d for d in rows}
    if absent := [t.slug for t in fleet if t.id not in by_tenant]:
        raise _refuse(
            "$.template_id",
            f"{data.template_id} is not deployed on tenant(s) {', '.join(absent)}; deploy it "
            "there first or leave them out",
        )
    problems: list[Problem] = []
    seen: set[str] = set()
    moving = []
    for tenant in fleet:
        deployment = by_tenant[tenant.id]
        if deployment.semver == data.version:
            continue
        target = await Resolver(ctx, tenant).target(
            template_id=data.template_id,
            version=data.version,
            params=deployment.params,
            bindings=deployment.bindings,
            triggers=deployment.triggers,
            status=deployment.status,
            path=f"$.tenants.{tenant.slug}",
        )
        if isinstance(target, list):
            for p in target:
                where = "$.version" if p.path.endswith((".version", ".template_id")) else p.path
                if p.message not in seen:
                    seen.add(p.message)
                    problems.append(Problem(where, p.message))
            continue
        moving.append((tenant, deployment))
    if problems:
        raise InvalidRollout(problems)
    if not moving:
        raise _refuse("$.version", f"every selected tenant already runs {data.version}")
    return moving


async def _no_overlap(ctx: Ctx, template_id: str, tenant_ids: list[UUID]) -> None:
    if ctx.session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(f"storeops-rollout:{template_id}".encode())
        await ctx.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
    busy = (
        await ctx.session.execute(
            select(RolloutTenant.rollout_id, RolloutTenant.tenant_slug).where(
                RolloutTenant.active.is_(True),
                RolloutTenant.template_id == template_id,
                RolloutTenant.tenant_id.in_(tenant_ids),
            )
        )
    ).all()
    if busy:
        ids = sorted({str(r[0]) for r in busy})
        raise RolloutOverlap(
            f"rollout {', '.join(ids)} of {template_id} is still in progress on tenant(s) "
            f"{', '.join(sorted(r[1] for r in busy))}; wait for it, or promote or abort it",
            rollouts=ids,
        )


async def create(ctx: Ctx, data: schemas.RolloutCreate, now: datetime | None = None) -> Rollout:
    ctx.principal.require(WRITE)
    try:
        plan.check_spec(data.waves)
    except plan.BadWaves as exc:
        raise _refuse("$.waves", str(exc)) from None
    fleet = await _fleet(ctx, data)
    await _no_overlap(ctx, data.template_id, [t.id for t in fleet])
    moving = await _deployments(ctx, data, fleet)
    waves = plan.split(moving, data.waves)
    partners = {t.partner_id for t, _ in moving}
    rollout = Rollout(
        partner_id=next(iter(partners)) if len(partners) == 1 else None,
        template_id=data.template_id,
        target_version=data.version,
        selector={
            "partner_id": str(data.partner_id) if data.partner_id else None,
            "tenant_ids": [str(t) for t in data.tenant_ids] if data.tenant_ids else None,
            "match": data.match,
            "canary": str(data.canary) if data.canary else None,
        },
        wave_spec=list(data.waves),
        soak_seconds=data.soak_seconds,
        apply_timeout_seconds=data.apply_timeout_seconds,
        gates=msgspec.to_builtins(data.gates),
        auto_rollback=data.auto_rollback,
        current_wave=-1,
        waves=[{"index": i, "size": len(w), "state": "waiting"} for i, w in enumerate(waves)],
        created_by=ctx.principal.subject,
    )
    ctx.session.add(rollout)
    await ctx.session.flush()
    position = 0
    for index, wave in enumerate(waves):
        for tenant, deployment in wave:
            ctx.session.add(
                RolloutTenant(
                    rollout_id=rollout.id,
                    partner_id=tenant.partner_id,
                    tenant_id=tenant.id,
                    tenant_slug=tenant.slug,
                    template_id=data.template_id,
                    wave=index,
                    position=position,
                    deployment_id=deployment.id,
                    from_version=deployment.semver,
                )
            )
            position += 1
    await ctx.session.flush()
    await record_change(ctx, "rollout.create", rollout)
    await machine.advance(ctx, rollout, now or utcnow())
    await ctx.session.flush()
    return rollout


async def get(ctx: Ctx, rollout_id: UUID, *, lock: bool = False) -> Rollout:
    stmt = select(Rollout).where(Rollout.id == rollout_id)
    found = await ctx.session.scalar(stmt.with_for_update() if lock else stmt)
    if found is None:
        raise NotFound(f"rollout {rollout_id} does not exist")
    return found


async def list_rollouts(
    ctx: Ctx, *, status: str | None = None, limit: int = 50, cursor: str | None = None
) -> tuple[Sequence[Rollout], str | None]:
    stmt: Select[Any] = select(Rollout)
    if status:
        stmt = stmt.where(Rollout.status == status)
    return await fetch_page(ctx.session, stmt, Rollout.id, limit=limit, cursor=cursor)


async def _writable(ctx: Ctx, rollout_id: UUID) -> Rollout:
    rollout = await get(ctx, rollout_id, lock=True)
    for rt in await machine.tenants(ctx, rollout):
        if not ctx.principal.can(WRITE, partner_id=rt.partner_id, tenant_id=rt.tenant_id):
            raise Forbidden(f"your roles do not grant '{WRITE}' over tenant {rt.tenant_slug}")
    return rollout


async def promote(ctx: Ctx, rollout_id: UUID, reason: str | None = None) -> Rollout:
    rollout = await _writable(ctx, rollout_id)
    await machine.promote(ctx, rollout, utcnow(), reason)
    await ctx.session.flush()
    return rollout


async def abort(ctx: Ctx, rollout_id: UUID, reason: str | None = None) -> Rollout:
    rollout = await _writable(ctx, rollout_id)
    await machine.abort(ctx, rollout, utcnow(), reason)
    await ctx.session.flush()
    return rollout


async def advance_all(ctx: Ctx, now: datetime) -> int:
    """Move every moving rollout one step; one failing rollout does not stop the others."""
    ids = (await ctx.session.scalars(select(Rollout.id).where(Rollout.status.in_(MOVING)))).all()
    changed = 0
    for rollout_id in ids:
        try:
            async with ctx.session.begin_nested():
                rollout = await get(ctx, rollout_id, lock=True)
                changed += int(await machine.advance(ctx, rollout, now))
        except Exception:
            log.exception("rollout %s could not advance; trying again next time", rollout_id)
    return changed
