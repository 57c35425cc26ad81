"""Telemetry upkeep: retention (whole day partitions on PostgreSQL) and rollup rebuilds."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.config import Settings
from control_plane.contracts.telemetry import Event, Kind
from control_plane.db import Database, Scope
from control_plane.db.session import make_engine
from control_plane.errors import InvalidInput
from control_plane.telemetry.models import Rollup, events, retention
from control_plane.telemetry.pg import DAYS_AHEAD
from control_plane.telemetry.rollup import GRANULARITIES, Counters, Key, coarsen, fold
from control_plane.telemetry.schemas import RebuildResult, RetentionResult

PARTITION = re.compile(r"^telemetry_events_p(\d{8})$")
#: A partition drop waits at most this long for the ingest traffic holding the table.
LOCK_TIMEOUT = "10s"
#: Raw events read per round trip while rebuilding.
REBUILD_CHUNK = 5000


def partition_name(day: date) -> str:
    return f"telemetry_events_p{day:%Y%m%d}"


def horizon_for(keep_days: int, now: datetime) -> datetime:
    """Midnight (UTC) ``keep_days`` days before today: events before it are dropped."""
    return datetime.combine(now.astimezone(UTC).date(), time(), UTC) - timedelta(days=keep_days)


async def apply_retention(
    settings: Settings, keep_days: int, *, now: datetime | None = None
) -> RetentionResult:
    """Drop raw events older than ``keep_days`` days and refuse them from now on.

    Runs as the table owner (``migration_url``): only the owner drops partitions. The
    horizon only moves forward, so an event whose stored copy was dropped cannot come back
    in a late retry and be counted twice. Rollups are kept.
    """
    if keep_days < 1:
        raise InvalidInput(f"keep_days must be at least 1, not {keep_days}")
    now = now or datetime.now(UTC)
    engine = make_engine(settings.migration_url, settings, pooled=False)
    try:
        async with engine.begin() as conn:
            horizon = await _advance_horizon(conn, horizon_for(keep_days, now), now)
        if engine.dialect.name == "postgresql":
            return await _drop_partitions(engine, horizon, now)
        async with engine.begin() as conn:
            deleted = (await conn.execute(delete(events).where(events.c.at < horizon))).rowcount
        return RetentionResult(
            horizon=horizon, dropped_partitions=[], deleted_rows=deleted, created_partitions=[]
        )
    finally:
        await engine.dispose()


async def _advance_horizon(conn: AsyncConnection, wanted: datetime, now: datetime) -> datetime:
    current = await conn.scalar(
        select(retention.c.horizon).where(retention.c.id == 1).with_for_update()
    )
    horizon = max(current, wanted) if current is not None else wanted
    await conn.execute(
        update(retention).where(retention.c.id == 1).values(horizon=horizon, updated_at=now)
    )
    return horizon


async def _drop_partitions(
    engine: AsyncEngine, horizon: datetime, now: datetime
) -> RetentionResult:
    async with engine.connect() as conn:
        names = (
            await conn.execute(
                text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                    " WHERE i.inhparent = 'telemetry_events'::regclass ORDER BY c.relname"
                )
            )
        ).scalars()
        old = [
            name
            for name in names
            if (m := PARTITION.match(name))
            and datetime.strptime(m.group(1), "%Y%m%d").replace(tzinfo=UTC) + timedelta(days=1)
            <= horizon
        ]
    dropped: list[str] = []
    for name in old:  # one transaction each: the parent is locked only for a moment
        async with engine.begin() as conn:
            await conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
            await conn.execute(text(f'DROP TABLE "{name}"'))
        dropped.append(name)
    async with engine.begin() as conn:
        deleted = (
            await conn.execute(
                text("DELETE FROM telemetry_events_default WHERE at < :horizon"),
                {"horizon": horizon},
            )
        ).rowcount
        # Tomorrow's partitions made here keep the creation off the ingest path.
        created: list[str] = []
        today = now.astimezone(UTC).date()
        for offset in range(DAYS_AHEAD + 1):
            day = today + timedelta(days=offset)
            if await conn.scalar(text("SELECT storeops_telemetry_partition(:day)"), {"day": day}):
                created.append(partition_name(day))
    return RetentionResult(
        horizon=horizon,
        dropped_partitions=dropped,
        deleted_rows=deleted,
        created_partitions=created,
    )


def _hour(moment: datetime, *, up: bool = False) -> datetime:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor + timedelta(hours=1) if up and floor != moment else floor


async def rebuild_rollups(
    db: Database, since: datetime, until: datetime, tenant_id: UUID | None = None
) -> RebuildResult:
    """Recompute the rollups of whole hours in [since, until) from the raw events.

    The rollup table is locked (EXCLUSIVE on PostgreSQL) before the events are read: an
    ingest that committed before is in the events read here, one still running waits and
    adds its own counts after this commit, so nothing is lost or counted twice.
    """
    since, until = _hour(since), _hour(until, up=True)
    if since >= until:
        raise InvalidInput(f"'since' ({since.isoformat()}) must be before 'until'")
    async with db.transaction(Scope.system()) as session:
        horizon = await session.scalar(select(retention.c.horizon).where(retention.c.id == 1))
        if horizon is not None and since < horizon:
            raise InvalidInput(
                f"raw events before {horizon.isoformat()} were dropped by retention;"
                " rebuild from there on"
            )
        if db.is_postgres:
            await session.execute(text("LOCK TABLE telemetry_rollups IN EXCLUSIVE MODE"))
        where = [Rollup.bucket >= since, Rollup.bucket < until]
        reads = [events.c.at >= since, events.c.at < until]
        if tenant_id is not None:
            where.append(Rollup.tenant_id == tenant_id)
            reads.append(events.c.tenant_id == tenant_id)
        await session.execute(
            delete(Rollup).where(*where).execution_options(synchronize_session=False)
        )
        per_tenant: dict[tuple[UUID, UUID], dict[Key, Counters]] = {}
        count = 0
        result = await session.stream(
            select(events).where(*reads).execution_options(yield_per=REBUILD_CHUNK)
        )
        async for chunk in result.partitions(REBUILD_CHUNK):
            by_owner: dict[tuple[UUID, UUID], list[Event]] = {}
            for row in chunk:
                by_owner.setdefault((row.tenant_id, row.partner_id), []).append(
                    Event(
                        id=row.id,
                        at=row.at,
                        kind=Kind(row.kind),
                        template_id=row.template_id,
                        status=row.status,
                        duration_ms=row.duration_ms,
                        data=row.data or {},
                    )
                )
            for owner, batch in by_owner.items():
                fold(batch, into=per_tenant.setdefault(owner, {}))
            count += len(chunk)
        rows: list[dict[str, Any]] = []
        for (tenant, partner), finest in per_tenant.items():
            layers = {"5m": finest, "1h": coarsen(finest, GRANULARITIES["1h"])}
            for granularity, buckets in layers.items():
                for (template, start), counters in buckets.items():
                    rows.append(
                        {
                            "tenant_id": tenant,
                            "partner_id": partner,
                            "granularity": granularity,
                            "bucket": datetime.fromtimestamp(start, UTC),
                            "template_id": template,
                            **counters.values(),
                        }
                    )
        if rows:
            await session.execute(insert(Rollup), rows)
    return RebuildResult(since=since, until=until, events=count, rollups=len(rows))
