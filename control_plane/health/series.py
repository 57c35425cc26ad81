"""A tenant's drill-down: its verdict now and its rollups as chartable series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

import msgspec
from sqlalchemy import select

from control_plane.context import Ctx
from control_plane.errors import InvalidInput, NotFound
from control_plane.health.recent import sla_percent
from control_plane.health.service import TenantHealth, tenant_health
from control_plane.telemetry import service as telemetry
from control_plane.telemetry.rollup import GRANULARITIES, Counters, percentile
from control_plane.tenancy.models import Partner, Region, Tenant

Range = Literal["6h", "24h", "7d", "30d"]
#: Each range's span and the rollups it is drawn from.
RANGES: dict[str, tuple[timedelta, Literal["5m", "1h"]]] = {
    "6h": (timedelta(hours=6), "5m"),
    "24h": (timedelta(hours=24), "1h"),
    "7d": (timedelta(days=7), "1h"),
    "30d": (timedelta(days=30), "1h"),
}
BACKLOG_NOTE = (
    "The control plane keeps only a runtime's latest heartbeat, so the step queue depth has"
    " no history; the chart shows the approval backlog's change instead (tasks opened minus"
    " tasks decided, accumulated over the range)."
)


class Series(msgspec.Struct):
    """Parallel arrays, one entry per bucket (empty buckets included, as zeros or null)."""

    #: Bucket starts, epoch seconds (UTC).
    t: list[int]
    #: Runs finished per hour in the bucket.
    runs_per_hour: list[float]
    #: Failed / finished runs, percent; null where none finished.
    failure_pct: list[float | None]
    #: 95th percentile of run duration (ms), from the rollups' histograms.
    p95_run_ms: list[float | None]
    #: Tasks that met their SLA, percent; null where none were opened.
    sla_pct: list[float | None]
    #: Approval tasks opened minus decided, accumulated from the range's start.
    approval_backlog: list[int]


class TenantSeries(msgspec.Struct):
    tenant_id: UUID
    name: str
    partner: str
    regions: list[str]
    range: str
    granularity: str
    health: TenantHealth
    queue_depth: int
    dead_letters: int | None
    series: Series
    backlog_note: str = BACKLOG_NOTE


def parse_range(raw: str | None) -> Range:
    value = raw or "24h"
    if value not in RANGES:
        raise InvalidInput(f"range {raw!r} is not offered; use one of {', '.join(RANGES)}")
    return value  # type: ignore[return-value]


async def tenant_series(
    ctx: Ctx, tenant_id: UUID, span: Range = "24h", *, now: datetime | None = None
) -> TenantSeries:
    """The tenant's charts over ``span``; 404 for a tenant outside the caller's scope."""
    now = now or datetime.now(UTC)
    found = (
        await ctx.session.execute(
            select(Tenant.name, Partner.name)
            # A retailer's own staff do not see its partner's row: the name is then blank.
            .outerjoin(Partner, Partner.id == Tenant.partner_id)
            .where(Tenant.id == tenant_id)
        )
    ).first()
    if found is None:
        raise NotFound(f"tenant {tenant_id} does not exist")
    regions = (
        await ctx.session.scalars(
            select(Region.code).where(Region.tenant_id == tenant_id).order_by(Region.code)
        )
    ).all()
    delta, granularity = RANGES[span]
    width = GRANULARITIES[granularity]
    end = int(now.timestamp()) // width * width + width
    start = end - int(delta.total_seconds())
    since = datetime.fromtimestamp(start, UTC)
    until = datetime.fromtimestamp(end, UTC)
    rollups = await telemetry.rollups(ctx, tenant_id, granularity, since, until, now=now)
    merged: dict[int, Counters] = {}
    for bucket in rollups.buckets:
        at = int(bucket.bucket.timestamp())
        counters = Counters.from_row(
            {
                "runs_finished": bucket.runs_finished,
                "runs_failed": bucket.runs_failed,
                "run_ms_max": bucket.run_duration.max_ms,
                "run_ms_hist": bucket.run_duration.histogram,
                "tasks_opened": bucket.tasks_opened,
                "tasks_decided": bucket.tasks_decided,
                "sla_breaches": bucket.sla_breaches,
            }
        )
        if at in merged:
            merged[at].merge(counters)
        else:
            merged[at] = counters
    health = await tenant_health(ctx, tenant_id, now=now)
    beat = await telemetry.heartbeat(ctx, tenant_id, now=now)
    dead = beat.data.get("dead_letters")
    return TenantSeries(
        tenant_id=tenant_id,
        name=found[0],
        partner=found[1] or "",
        regions=list(regions),
        range=span,
        granularity=granularity,
        health=health,
        queue_depth=int(beat.data.get("queue_depth") or 0),
        dead_letters=None if dead is None else int(dead),
        series=_series(merged, start, end, width),
    )


def _series(merged: dict[int, Counters], start: int, end: int, width: int) -> Series:
    out = Series(
        t=[], runs_per_hour=[], failure_pct=[], p95_run_ms=[], sla_pct=[], approval_backlog=[]
    )
    backlog = 0
    per_hour = 3600 / width
    for at in range(start, end, width):
        c = merged.get(at) or Counters()
        out.t.append(at)
        out.runs_per_hour.append(round(c.runs_finished * per_hour, 1))
        out.failure_pct.append(
            round(100.0 * c.runs_failed / c.runs_finished, 1) if c.runs_finished else None
        )
        out.p95_run_ms.append(percentile(c.run_ms_hist, c.run_ms_max))
        out.sla_pct.append(sla_percent(c.tasks_opened, c.sla_breaches))
        backlog += c.tasks_opened - c.tasks_decided
        out.approval_backlog.append(backlog)
    return out
