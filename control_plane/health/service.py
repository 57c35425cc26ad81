"""A tenant's health from its latest heartbeat and its recent rollups."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec

from control_plane.context import Ctx
from control_plane.health.assess import Signals, Thresholds, assess
from control_plane.health.fleet import reported_count
from control_plane.telemetry import service as telemetry


class TenantHealth(msgspec.Struct):
    tenant_id: UUID
    status: str
    reasons: list[str]
    checked_at: datetime
    last_heartbeat_at: datetime | None
    signals: dict[str, float | int | None]


async def tenant_health(
    ctx: Ctx, tenant_id: UUID, *, now: datetime | None = None, limits: Thresholds | None = None
) -> TenantHealth:
    now = now or datetime.now(UTC)
    limits = limits or Thresholds()
    beat = await telemetry.heartbeat(ctx, tenant_id, now=now)
    since = now - timedelta(minutes=limits.window_minutes)
    recent = await telemetry.rollups(
        ctx, tenant_id, "5m", since, now + timedelta(minutes=5), now=now
    )
    data = beat.data
    signals = Signals(
        heartbeat_age_s=beat.age_seconds,
        queue_depth=int(data.get("queue_depth") or 0),
        oldest_pending_s=float(data.get("oldest_pending_s") or 0),
        dead_letters=reported_count(data.get("dead_letters")),
        runs_finished=sum(b.runs_finished for b in recent.buckets),
        runs_failed=sum(b.runs_failed for b in recent.buckets),
        tasks_opened=sum(b.tasks_opened for b in recent.buckets),
        sla_breaches=sum(b.sla_breaches for b in recent.buckets),
    )
    verdict = assess(signals, limits)
    return TenantHealth(
        tenant_id=tenant_id,
        status=verdict.status.value,
        reasons=verdict.reasons,
        checked_at=now,
        last_heartbeat_at=beat.at,
        signals=asdict(signals),
    )
