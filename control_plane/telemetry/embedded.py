"""The embedded (SQLite) ingest path: a plain table keyed by event id, the same rules.

SQLite admits one writer at a time and the first INSERT takes that lock, so reading the
horizon and the rollups after it, then writing them back, cannot race another ingest.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import delete, select
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.contracts.telemetry import Event
from control_plane.telemetry.models import Heartbeat, Rollup, events, retention
from control_plane.telemetry.rollup import Counters, Key

#: Rows per INSERT (12 columns each, well under SQLite's bound-parameter limit).
CHUNK = 500


async def insert_events(
    session: AsyncSession, tenant_id: UUID, partner_id: UUID, batch: Sequence[Event]
) -> tuple[list[Event], int]:
    """Insert ``batch`` (distinct, sorted by id); return the new events and how many were
    refused as older than the retention horizon."""
    new_ids: set[UUID] = set()
    for start in range(0, len(batch), CHUNK):
        rows = [
            {
                "id": e.id,
                "at": e.at,
                "tenant_id": tenant_id,
                "partner_id": partner_id,
                "kind": e.kind.value,
                "template_id": e.template_id,
                "template_version": e.template_version,
                "run_id": e.run_id,
                "store": e.store,
                "status": e.status,
                "duration_ms": e.duration_ms,
                "data": e.data,
            }
            for e in batch[start : start + CHUNK]
        ]
        stmt = insert(events).values(rows).on_conflict_do_nothing().returning(events.c.id)
        new_ids.update((await session.execute(stmt)).scalars())
    new = [e for e in batch if e.id in new_ids]
    horizon = await session.scalar(select(retention.c.horizon).where(retention.c.id == 1))
    if horizon is None:
        return new, 0
    expired = [e.id for e in new if e.at < horizon]
    if expired:
        await session.execute(delete(events).where(events.c.id.in_(expired)))
        new = [e for e in new if e.at >= horizon]
    return new, len(expired)


async def upsert_rollups(
    session: AsyncSession,
    tenant_id: UUID,
    partner_id: UUID,
    rollups: dict[str, dict[Key, Counters]],
) -> None:
    for granularity, buckets in rollups.items():
        for (template, start), counters in sorted(buckets.items()):
            bucket = datetime.fromtimestamp(start, UTC)
            row = await session.get(Rollup, (tenant_id, granularity, bucket, template))
            if row is None:
                values = counters.values()
                session.add(
                    Rollup(
                        tenant_id=tenant_id,
                        granularity=granularity,
                        bucket=bucket,
                        template_id=template,
                        partner_id=partner_id,
                        **values,
                    )
                )
                continue
            merged = Counters.from_row(row)
            merged.merge(counters)
            for name, value in merged.values().items():
                setattr(row, name, value)
    await session.flush()


async def upsert_heartbeat(
    session: AsyncSession, tenant_id: UUID, partner_id: UUID, runtime: str, event: Event
) -> None:
    now = datetime.now(UTC)
    row = await session.get(Heartbeat, tenant_id)
    if row is None:
        session.add(
            Heartbeat(
                tenant_id=tenant_id,
                partner_id=partner_id,
                runtime=runtime,
                at=event.at,
                data=event.data,
                received_at=now,
            )
        )
    elif row.at <= event.at:
        row.partner_id, row.runtime, row.at = partner_id, runtime, event.at
        row.data, row.received_at = dict(event.data), now
    await session.flush()
