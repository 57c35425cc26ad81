"""The whole platform's fleet state, read once and shared by every grid request and live
stream for a few seconds.

At 10,000 tenants one read of every tenant's latest heartbeat, region codes and health
window costs a few hundred milliseconds on a small database host, and the last hour's
runs and the last day's SLA tasks (about 350,000 rollup rows) more; each NOC viewer's
page and each live stream polling every few seconds would repeat that. So both are read
platform-wide, in a system session, and kept: the snapshot for ``SNAPSHOT_SECONDS``, the
hour/day sums for ``TOTALS_SECONDS``. The first caller waits for them; afterwards a stale
copy is served while one background refresh replaces it.

Nothing here is scoped, and nothing here is shown as is: :mod:`control_plane.health.noc`
reads the caller's visible tenants in the caller's scoped session (row-level security)
and looks only those up.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.context import Ctx
from control_plane.db.session import system_session
from control_plane.health.assess import Thresholds
from control_plane.health.fleet import window_sums
from control_plane.telemetry.models import Heartbeat, Rollup
from control_plane.telemetry.service import collector_paused
from control_plane.tenancy.models import Partner, Region, Tenant, TenantStatus

log = logging.getLogger(__name__)

#: How old the shared snapshot may get before a refresh starts; 0: read on every call.
SNAPSHOT_SECONDS = 5.0
#: The same for the hour's runs and the day's SLA sums, which move slowly.
TOTALS_SECONDS = 60.0

T = TypeVar("T")

#: A tenant's entry: name, slug, partner id, partner name, partner slug, region codes
#: (comma-separated or None), heartbeat time, queue depth, oldest pending (s), dead
#: letters (None: not reported), then the health window's runs, failed runs, tasks,
#: breaches, then the last hour's runs and failed runs, the last day's tasks and
#: breaches, and the name in lower case (for sorting).
Entry = tuple[Any, ...]


@dataclass(frozen=True)
class Totals:
    at: datetime
    #: tenant -> (runs, failed runs) in the last hour, (tasks, breaches) in the last day.
    by_tenant: dict[UUID, tuple[int, int, int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Snapshot:
    at: datetime
    totals_at: datetime
    entries: dict[UUID, Entry] = field(default_factory=dict)


@dataclass
class _Slot(Generic[T]):
    value: T | None = None
    stamp: float = 0.0
    refresh: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def get(self, ttl: float, compute: Callable[[], Awaitable[T]]) -> T:
        if self.value is None or ttl <= 0:
            async with self.lock:
                if self.value is None or ttl <= 0:
                    await self._store(compute)
        elif time.monotonic() - self.stamp > ttl and (self.refresh is None or self.refresh.done()):
            self.refresh = asyncio.create_task(self._background(compute, ttl))
        assert self.value is not None
        return self.value

    async def _store(self, compute: Callable[[], Awaitable[T]]) -> None:
        self.value, self.stamp = await compute(), time.monotonic()

    async def _background(self, compute: Callable[[], Awaitable[T]], ttl: float) -> None:
        try:
            await self._store(compute)
        except Exception:  # the stale copy stays; a later caller tries again
            log.exception("refreshing the shared fleet state failed")
            self.stamp = time.monotonic() - ttl / 2


@dataclass
class _Slots:
    snapshot: _Slot[Snapshot] = field(default_factory=_Slot)
    totals: _Slot[Totals] = field(default_factory=_Slot)


_SLOTS: weakref.WeakKeyDictionary[Any, _Slots] = weakref.WeakKeyDictionary()


def _slots(session: AsyncSession) -> _Slots:
    engine = session.bind.sync_engine if session.bind is not None else session
    slots = _SLOTS.get(engine)
    if slots is None:
        slots = _SLOTS[engine] = _Slots()
    return slots


def sla_percent(opened: int, breached: int) -> float | None:
    """Tasks that met their SLA, in percent (one decimal); None when none were opened."""
    if opened <= 0:
        return None
    return round(100.0 * max(0.0, 1.0 - breached / opened), 1)


# Runs and tasks always belong to a workflow template; the "" rows are heartbeats and
# usage. Filtering them out lets these sums read migration 0009's index alone.
_WORK = Rollup.template_id != ""


async def read_totals(session: AsyncSession, now: datetime) -> Totals:
    """Every tenant's runs in the last hour (5-minute rollups) and SLA tasks in the last
    day (hourly rollups)."""
    hour = (
        select(Rollup.tenant_id, func.sum(Rollup.runs_finished), func.sum(Rollup.runs_failed))
        .where(
            Rollup.granularity == "5m",
            Rollup.bucket >= now - timedelta(hours=1),
            Rollup.bucket <= now,
            _WORK,
        )
        .group_by(Rollup.tenant_id)
    )
    day = (
        select(Rollup.tenant_id, func.sum(Rollup.tasks_opened), func.sum(Rollup.sla_breaches))
        .where(
            Rollup.granularity == "1h",
            Rollup.bucket >= now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23),
            Rollup.bucket <= now,
            _WORK,
        )
        .group_by(Rollup.tenant_id)
    )
    out: dict[UUID, tuple[int, int, int, int]] = {}
    for tenant_id, runs, failed in (await session.execute(hour)).all():
        out[tenant_id] = (int(runs or 0), int(failed or 0), 0, 0)
    for tenant_id, tasks, breaches in (await session.execute(day)).all():
        runs, failed, _, _ = out.get(tenant_id, (0, 0, 0, 0))
        out[tenant_id] = (runs, failed, int(tasks or 0), int(breaches or 0))
    return Totals(at=now, by_tenant=out)


def _statement(now: datetime, limits: Thresholds) -> Any:
    codes = (
        select(Region.tenant_id, func.aggregate_strings(Region.code, ",").label("codes"))
        .group_by(Region.tenant_id)
        .subquery()
    )
    window = window_sums(now, limits).subquery()
    return (
        select(
            Tenant.id,
            Tenant.name,
            Tenant.slug,
            Tenant.partner_id,
            Partner.name,
            Partner.slug,
            codes.c.codes,
            Heartbeat.at,
            Heartbeat.data["queue_depth"].as_float(),
            Heartbeat.data["oldest_pending_s"].as_float(),
            Heartbeat.data["dead_letters"].as_float(),
            window.c.runs,
            window.c.failed,
            window.c.tasks,
            window.c.breaches,
        )
        .join(Partner, Partner.id == Tenant.partner_id)
        .outerjoin(codes, codes.c.tenant_id == Tenant.id)
        .outerjoin(Heartbeat, Heartbeat.tenant_id == Tenant.id)
        .outerjoin(window, window.c.tenant_id == Tenant.id)
        .where(Tenant.status != TenantStatus.OFFBOARDED.value)
    )


_NO_TOTALS = (0, 0, 0, 0)


async def read_snapshot(
    session: AsyncSession, now: datetime, totals: Totals, limits: Thresholds
) -> Snapshot:
    """Every tenant's entry, as of ``now``, with ``totals`` merged in."""
    with collector_paused():
        rows = (await session.execute(_statement(now, limits))).all()
        get = totals.by_tenant.get
        partners: dict[UUID, UUID] = {}
        # One partner id object per partner, not per tenant: fewer objects to collect.
        entries = {
            row[0]: (
                *row[1:3],
                partners.setdefault(row[3], row[3]),
                *row[4:8],
                int(row[8] or 0),
                float(row[9] or 0),
                None if row[10] is None else int(row[10]),
                int(row[11] or 0),
                int(row[12] or 0),
                int(row[13] or 0),
                int(row[14] or 0),
                *get(row[0], _NO_TOTALS),
                row[1].lower(),
            )
            for row in rows
        }
    return Snapshot(at=now, totals_at=totals.at, entries=entries)


async def fleet_snapshot(
    ctx: Ctx, *, fresh: bool = False, limits: Thresholds | None = None
) -> Snapshot:
    """The shared snapshot (at most ``SNAPSHOT_SECONDS`` old, or read now if ``fresh``)."""
    limits = limits or Thresholds()
    slots = _slots(ctx.session)
    session = ctx.session

    async def totals() -> Totals:
        async with system_session(session) as own:
            return await read_totals(own, datetime.now(UTC))

    async def snapshot() -> Snapshot:
        summed = await slots.totals.get(TOTALS_SECONDS, totals)
        async with system_session(session) as own:
            return await read_snapshot(own, datetime.now(UTC), summed, limits)

    return await slots.snapshot.get(0.0 if fresh else SNAPSHOT_SECONDS, snapshot)
