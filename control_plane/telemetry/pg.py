"""The PostgreSQL ingest path: one ``INSERT ... ON CONFLICT DO NOTHING`` per batch, upserts.

Everything runs on the asyncpg connection under the request's scoped session, so the RLS
context is the runtime's own and the rollups commit with the events they count. Rows go in
sorted (events by id, rollups by key): two batches that overlap take their row locks in the
same order and never deadlock.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID
from weakref import WeakKeyDictionary

import asyncpg
import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.contracts.telemetry import Event
from control_plane.db import Database
from control_plane.telemetry.literals import columns
from control_plane.telemetry.rollup import (
    SUMMED_SLOTS,
    Counters,
    Key,
    by_granularity,
    latest_heartbeat,
)

#: Partitions are made on demand for days this close to today; events further out (a
#: runtime's clock gone wrong) land in the default partition instead of making tables.
DAYS_BEHIND = 45
DAYS_AHEAD = 1
#: How long this process trusts the horizon it read (only to tell expired from duplicate;
#: the INSERT itself checks the stored horizon).
HORIZON_TTL_S = 30.0

# Each column goes in as one text parameter holding a PostgreSQL array literal (written by
# msgspec in one C call, see :mod:`.literals`): the cheapest input for both sides,
# where per-element binary array encoding or JSON records cost several times more.
# ORDER BY id: overlapping batches lock their keys in the same order. The answer is one
# row: how many were new, and which, only when not all were.
INSERT_EVENTS = """
WITH ins AS (
    INSERT INTO telemetry_events AS t (
        id, at, tenant_id, partner_id, kind, template_id, template_version, run_id, store,
        status, duration_ms, data
    )
    SELECT e.id, e.at, $1::uuid, $2::uuid, e.kind, e.template_id, e.template_version,
           e.run_id, e.store, e.status, e.duration_ms, e.data::jsonb
    FROM unnest(
        $3::text::uuid[], $4::text::timestamptz[], $5::text::text[], $6::text::text[],
        $7::text::text[], $8::text::uuid[], $9::text::text[], $10::text::text[],
        $11::text::int8[], $12::text::text[]
    ) AS e(id, at, kind, template_id, template_version, run_id, store, status, duration_ms,
           data)
    WHERE e.at >= coalesce(
        (SELECT horizon FROM telemetry_retention WHERE id = 1), '-infinity'::timestamptz
    )
    ORDER BY e.id
    ON CONFLICT (id, at) DO NOTHING
    RETURNING t.id
)
SELECT count(*)::int, CASE WHEN count(*) < $13 THEN array_agg(id) END FROM ins
"""

_ROLLUP_ARRAYS = ", ".join(f"${n}::int8[]" for n in range(6, 6 + len(SUMMED_SLOTS) + 1))
_H = 6 + len(SUMMED_SLOTS) + 1
# Built once, at import, from this package's own column names.
UPSERT_ROLLUPS = f"""
INSERT INTO telemetry_rollups AS t (
    tenant_id, partner_id, granularity, bucket, template_id,
    {", ".join(SUMMED_SLOTS)}, run_ms_max, run_ms_hist, steps_by_status, usage
)
SELECT $1::uuid, $2::uuid, r.granularity, to_timestamp(r.bucket), r.template_id,
       {", ".join(f"r.{c}" for c in SUMMED_SLOTS)}, r.run_ms_max,
       r.run_ms_hist::int8[], r.steps_by_status::jsonb, r.usage::jsonb
FROM unnest(
    $3::text[], $4::int8[], $5::text[], {_ROLLUP_ARRAYS},
    ${_H}::text[], ${_H + 1}::text[], ${_H + 2}::text[]
) AS r(granularity, bucket, template_id, {", ".join(SUMMED_SLOTS)}, run_ms_max,
       run_ms_hist, steps_by_status, usage)
ORDER BY r.granularity, r.bucket, r.template_id
ON CONFLICT (tenant_id, granularity, bucket, template_id) DO UPDATE SET
    {", ".join(f"{c} = t.{c} + excluded.{c}" for c in SUMMED_SLOTS)},
    run_ms_max = greatest(t.run_ms_max, excluded.run_ms_max),
    run_ms_hist = storeops_add_counts(t.run_ms_hist, excluded.run_ms_hist),
    steps_by_status = CASE WHEN excluded.steps_by_status = '{{}}'::jsonb THEN t.steps_by_status
        ELSE storeops_add_counters(t.steps_by_status, excluded.steps_by_status) END,
    usage = CASE WHEN excluded.usage = '{{}}'::jsonb THEN t.usage
        ELSE storeops_add_counters(t.usage, excluded.usage) END
"""  # noqa: S608

UPSERT_HEARTBEAT = """
INSERT INTO telemetry_heartbeats AS h (tenant_id, partner_id, runtime, at, data, received_at)
VALUES ($1, $2, $3, $4, $5::jsonb, now())
ON CONFLICT (tenant_id) DO UPDATE SET
    partner_id = excluded.partner_id, runtime = excluded.runtime, at = excluded.at,
    data = excluded.data, received_at = excluded.received_at
WHERE h.at <= excluded.at
"""

_json = msgspec.json.Encoder()


class _State:
    """What one process remembers about one database: partitions made, the horizon."""

    def __init__(self) -> None:
        self.days: set[date] = set()
        self.horizon: datetime | None = None
        self.horizon_read = float("-inf")


_states: WeakKeyDictionary[Database, _State] = WeakKeyDictionary()


def _state(db: Database) -> _State:
    state = _states.get(db)
    if state is None:
        state = _states[db] = _State()
    return state


async def driver(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under ``session`` (its scoped transaction begins here)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


def partition_days(events: Iterable[Event], today: date) -> set[date]:
    """The days of ``events`` that get a partition of their own."""
    first, last = today - timedelta(days=DAYS_BEHIND), today + timedelta(days=DAYS_AHEAD)
    return {day for e in events if first <= (day := e.at.date()) <= last}


async def ensure_partitions(db: Database, days: set[date]) -> datetime | None:
    """Make sure the partitions of ``days`` exist; return the horizon as last read.

    Runs outside the ingest transaction, so a new partition's locks are held only while
    it is attached.
    """
    state = _state(db)
    missing = days - state.days
    stale = time.monotonic() - state.horizon_read > HORIZON_TTL_S
    if not missing and not stale:
        return state.horizon
    async with db.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        conn: asyncpg.Connection = raw.driver_connection
        if stale:
            state.horizon = await conn.fetchval(
                "SELECT horizon FROM telemetry_retention WHERE id = 1"
            )
            state.horizon_read = time.monotonic()
        for day in sorted(missing):
            # (The function itself also refuses days before the stored horizon.)
            if state.horizon is None or day >= state.horizon.date():
                await conn.fetchval("SELECT storeops_telemetry_partition($1)", day)
    state.days |= missing
    return state.horizon


def forget_partitions(db: Database) -> None:
    """Drop the memory of made partitions (after retention dropped some, in tests)."""
    state = _state(db)
    state.days.clear()
    state.horizon_read = float("-inf")


@dataclass
class Prepared:
    """A batch made ready for the database before any I/O.

    Everything the statements need is computed while the decoded events are at hand, so
    they can be freed at once rather than live on across the round trips (where each
    garbage collection would walk them again). The rollups assume every event is new;
    when some were not, the caller folds the new ones again from the body.
    """

    runtime: str
    #: Events in the batch, and distinct ones.
    sent: int
    distinct: int
    days: set[date]
    columns: list[str]
    rollups: dict[str, dict[Key, Counters]]
    heartbeat: Event | None


def prepare(runtime: str, sent: int, events: Sequence[Event], today: date) -> Prepared:
    return Prepared(
        runtime=runtime,
        sent=sent,
        distinct=len(events),
        days=partition_days(events, today),
        columns=columns(events),
        rollups=by_granularity(events),
        heartbeat=latest_heartbeat(events),
    )


async def insert_events(
    conn: asyncpg.Connection, tenant_id: UUID, partner_id: UUID, batch: Prepared
) -> tuple[int, set[UUID] | None]:
    """Insert the batch's events; return how many were new and, unless all were, which."""
    count, new_ids = await conn.fetchrow(
        INSERT_EVENTS, tenant_id, partner_id, *batch.columns, batch.distinct
    )
    if count == batch.distinct:
        return count, None
    return count, {UUID(bytes=i.bytes) for i in new_ids or ()}


async def upsert_rollups(
    conn: asyncpg.Connection,
    tenant_id: UUID,
    partner_id: UUID,
    rollups: dict[str, dict[Key, Counters]],
) -> None:
    items = [
        (granularity, key, counters)
        for granularity, buckets in rollups.items()
        for key, counters in buckets.items()
    ]
    if not items:
        return
    counters_of = [c for _, _, c in items]
    await conn.execute(
        UPSERT_ROLLUPS,
        tenant_id,
        partner_id,
        [g for g, _, _ in items],
        [start for _, (_, start), _ in items],
        [template for _, (template, _), _ in items],
        *[[getattr(c, name) for c in counters_of] for name in SUMMED_SLOTS],
        [c.run_ms_max for c in counters_of],
        ["{" + ",".join(map(str, c.run_ms_hist)) + "}" for c in counters_of],
        [_json.encode(c.steps_by_status).decode() for c in counters_of],
        [_json.encode(c.usage).decode() for c in counters_of],
    )


async def upsert_heartbeat(
    conn: asyncpg.Connection, tenant_id: UUID, partner_id: UUID, runtime: str, event: Event
) -> None:
    await conn.execute(
        UPSERT_HEARTBEAT,
        tenant_id,
        partner_id,
        runtime,
        event.at,
        _json.encode(event.data).decode(),
    )
