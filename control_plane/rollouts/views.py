"""Rollouts as the API and the CLI show them: summaries, and the full view with waves,
each tenant's state, gate readings and events."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import func, select

from control_plane.context import Ctx
from control_plane.rollouts import machine, schemas
from control_plane.rollouts.models import OPEN, Rollout, RolloutEvent, RolloutTenant


def summary(rollout: Rollout, tenant_count: int) -> schemas.RolloutSummary:
    return schemas.RolloutSummary(**_summary_fields(rollout, tenant_count))


def _summary_fields(rollout: Rollout, tenant_count: int) -> dict[str, Any]:
    return {
        "id": rollout.id,
        "template_id": rollout.template_id,
        "version": rollout.target_version,
        "status": rollout.status,
        "partner_id": rollout.partner_id,
        "current_wave": rollout.current_wave,
        "wave_count": len(rollout.waves),
        "tenant_count": tenant_count,
        "reason": rollout.reason,
        "created_by": rollout.created_by,
        "created_at": rollout.created_at,
        "updated_at": rollout.updated_at,
        "finished_at": rollout.finished_at,
    }


async def open_rollouts(ctx: Ctx, limit: int = 20) -> list[schemas.RolloutSummary]:
    """The caller's rollouts not yet finished (moving or paused), newest first."""
    found = (
        await ctx.session.scalars(
            select(Rollout)
            .where(Rollout.status.in_(OPEN))
            .order_by(Rollout.created_at.desc())
            .limit(limit)
        )
    ).all()
    counts = await tenant_counts(ctx, [r.id for r in found])
    return [summary(r, counts.get(r.id, 0)) for r in found]


async def tenant_counts(ctx: Ctx, ids: list[UUID]) -> dict[UUID, int]:
    rows = (
        await ctx.session.execute(
            select(RolloutTenant.rollout_id, func.count())
            .where(RolloutTenant.rollout_id.in_(ids))
            .group_by(RolloutTenant.rollout_id)
        )
    ).all()
    return {r[0]: int(r[1]) for r in rows}


async def detail(ctx: Ctx, rollout: Rollout) -> schemas.Rollout:
    rows = await machine.tenants(ctx, rollout)
    events = (
        await ctx.session.scalars(
            select(RolloutEvent)
            .where(RolloutEvent.rollout_id == rollout.id)
            .order_by(RolloutEvent.at, RolloutEvent.id)
        )
    ).all()
    waves = [
        schemas.Wave(
            index=w["index"],
            size=w["size"],
            state=w["state"],
            started_at=w.get("started_at"),
            applied_at=w.get("applied_at"),
            soak_until=w.get("soak_until"),
            finished_at=w.get("finished_at"),
            gate=w.get("gate"),
            tenants=[
                schemas.TenantProgress(
                    tenant_id=rt.tenant_id,
                    slug=rt.tenant_slug,
                    from_version=rt.from_version,
                    state=rt.state,
                    applied_at=rt.applied_at,
                    reason=rt.reason,
                )
                for rt in rows
                if rt.wave == w["index"]
            ],
        )
        for w in rollout.waves
    ]
    return schemas.Rollout(
        **_summary_fields(rollout, len(rows)),
        selector=rollout.selector,
        wave_spec=rollout.wave_spec,
        soak_seconds=rollout.soak_seconds,
        apply_timeout_seconds=rollout.apply_timeout_seconds,
        gates=rollout.gates,
        auto_rollback=rollout.auto_rollback,
        waves=waves,
        events=[
            schemas.Event(at=e.at, kind=e.kind, wave=e.wave, actor=e.actor, data=e.data)
            for e in events
        ],
    )
