"""Telemetry ingest and reads: every rule, for the API and the CLI alike."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import select

from control_plane.context import Ctx
from control_plane.contracts import telemetry
from control_plane.contracts.telemetry import Batch, Event
from control_plane.db import Database
from control_plane.errors import Forbidden, InvalidInput
from control_plane.identity.principal import Principal
from control_plane.identity.roles import Role
from control_plane.insights import ingest as insights
from control_plane.runtimelink.auth import runtime_tenant
from control_plane.telemetry import embedded, pg
from control_plane.telemetry.models import Heartbeat, Rollup
from control_plane.telemetry.rollup import (
    HISTOGRAM_BOUNDS_MS,
    Counters,
    Key,
    by_granularity,
    latest_heartbeat,
    percentile,
)
from control_plane.telemetry.schemas import (
    Granularity,
    IngestResult,
    RollupBucket,
    Rollups,
    RunDurations,
)
from control_plane.telemetry.schemas import Heartbeat as HeartbeatOut
from control_plane.tenancy.models import Tenant
from control_plane.tenancy.service import read_tenant

#: Who reads a tenant's telemetry (over that tenant, from a grant that covers it).
READERS = frozenset(
    {Role.PLATFORM_ADMIN, Role.NOC_OPERATOR, Role.PARTNER_ADMIN, Role.RETAILER_ADMIN}
)
#: The span a read covers when ``from`` is not given, and the widest it may ask for.
DEFAULT_SPAN = {"5m": timedelta(hours=24), "1h": timedelta(days=7)}
MAX_SPAN = {"5m": timedelta(days=7), "1h": timedelta(days=93)}


# --- ingest -----------------------------------------------------------------------------


@contextmanager
def collector_paused() -> Iterator[None]:
    """Decoding a batch, or reading and judging the fleet (control_plane.health), makes
    thousands of objects at once; each collection that would trigger walks the
    application's whole long-lived heap (4x the cost of decoding a batch). The objects are
    collected as usual afterwards."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def distinct_events(events: Sequence[Event]) -> list[Event]:
    """Each id once (its first occurrence); naive times taken as UTC."""
    for event in events:
        if event.at.tzinfo is None:
            event.at = event.at.replace(tzinfo=UTC)
    if len({e.id.int for e in events}) == len(events):
        return list(events)
    seen: dict[int, Event] = {}
    for event in events:
        seen.setdefault(event.id.int, event)
    return list(seen.values())


def _decode(body: bytes, tenant_id: UUID) -> Batch:
    try:
        batch = telemetry.decode(body)
    except telemetry.InvalidBatch as exc:
        raise InvalidInput(str(exc)) from None
    if batch.tenant_id != tenant_id:
        raise Forbidden(
            f"batch for another tenant: this token reports for tenant {tenant_id},"
            f" the batch names {batch.tenant_id}"
        )
    return batch


def _prepare(body: bytes, tenant_id: UUID) -> tuple[pg.Prepared, list[insights.Found]]:
    batch = _decode(body, tenant_id)
    events = distinct_events(batch.events)
    prepared = pg.prepare(batch.runtime, len(batch.events), events, datetime.now(UTC).date())
    return prepared, insights.collect(events, tenant_id)


def _refold(
    body: bytes, tenant_id: UUID, new_ids: set[UUID], horizon: datetime | None
) -> tuple[dict[str, dict[Key, Counters]], Event | None, int]:
    """Rollups and heartbeat of the events that were new, and how many others expired."""
    events = distinct_events(_decode(body, tenant_id).events)
    new = [e for e in events if e.id in new_ids]
    expired = 0 if horizon is None else sum(1 for e in events if e.at < horizon)
    return by_granularity(new), latest_heartbeat(new), expired


async def ingest(db: Database, principal: Principal, body: bytes) -> IngestResult:
    """Store a runtime's batch: each event once, whatever the retries, and roll up only the
    events stored now, in the same transaction. The batch's insights are upserted with it
    (all of them, new events or not: an insight is stored once, at its highest count)."""
    tenant_id, partner_id = runtime_tenant(principal)
    if not db.is_postgres:
        with collector_paused():
            decoded = _decode(body, tenant_id)
        partner_id = partner_id or await _tenant_partner(db, principal, tenant_id)
        return await _ingest_embedded(db, principal, tenant_id, partner_id, decoded)
    # The decoded events die inside _prepare, before the first round trip.
    with collector_paused():
        batch, found = _prepare(body, tenant_id)
    partner_id = partner_id or await _tenant_partner(db, principal, tenant_id)
    horizon = await pg.ensure_partitions(db, batch.days)
    rollups, beat, expired = batch.rollups, batch.heartbeat, 0
    async with db.transaction(principal.scope()) as session:
        conn = await pg.driver(session)
        accepted, new_ids = await pg.insert_events(conn, tenant_id, partner_id, batch)
        if new_ids is not None and (accepted or horizon is not None):
            # Not all were new: count only those that were (and tell expired ones apart).
            with collector_paused():
                rollups, beat, expired = _refold(body, tenant_id, new_ids, horizon)
        if accepted:
            await pg.upsert_rollups(conn, tenant_id, partner_id, rollups)
            if beat is not None:
                await pg.upsert_heartbeat(conn, tenant_id, partner_id, batch.runtime, beat)
        await insights.record(session, tenant_id, partner_id, found)
    return IngestResult(
        accepted=accepted, duplicates=batch.sent - accepted - expired, expired=expired
    )


async def _ingest_embedded(
    db: Database, principal: Principal, tenant_id: UUID, partner_id: UUID, batch: Batch
) -> IngestResult:
    events = distinct_events(batch.events)
    async with db.transaction(principal.scope()) as session:
        new, expired = await embedded.insert_events(session, tenant_id, partner_id, events)
        if new:
            await embedded.upsert_rollups(session, tenant_id, partner_id, by_granularity(new))
            if (beat := latest_heartbeat(new)) is not None:
                await embedded.upsert_heartbeat(session, tenant_id, partner_id, batch.runtime, beat)
        await insights.record(session, tenant_id, partner_id, insights.collect(events, tenant_id))
    return IngestResult(
        accepted=len(new), duplicates=len(batch.events) - len(new) - expired, expired=expired
    )


async def _tenant_partner(db: Database, principal: Principal, tenant_id: UUID) -> UUID:
    """The tenant's partner, for a grant minted without its ancestry."""
    async with db.session(principal.scope()) as session:
        partner_id = await session.scalar(select(Tenant.partner_id).where(Tenant.id == tenant_id))
    if partner_id is None:
        raise Forbidden(f"tenant {tenant_id} of this runtime token does not exist")
    return partner_id


# --- reads ------------------------------------------------------------------------------


async def readable_tenant(ctx: Ctx, tenant_id: UUID) -> None:
    """404 for a tenant the caller cannot see; 403 for one it sees without a reader role."""
    tenant = await read_tenant(ctx, tenant_id)
    node = {"partner_id": tenant["partner_id"], "tenant_id": tenant_id}
    if not any(g.role in READERS and g.covers(**node) for g in ctx.principal.grants):
        raise Forbidden(
            "a tenant's telemetry is read by its retailer admins, its partner's admins"
            " and NOC operators"
        )


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _window(
    granularity: Granularity, since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    until = _utc(until) or now
    since = _utc(since) or until - DEFAULT_SPAN[granularity]
    if since >= until:
        raise InvalidInput(
            f"'from' ({since.isoformat()}) must be before 'to' ({until.isoformat()})"
        )
    if until - since > MAX_SPAN[granularity]:
        raise InvalidInput(
            f"a {granularity} read covers at most {MAX_SPAN[granularity].days} days;"
            " narrow 'from'/'to' or use a coarser granularity"
        )
    return since, until


def _bucket(row: Rollup) -> RollupBucket:
    hist = list(row.run_ms_hist or [])
    count = row.run_ms_count
    return RollupBucket(
        bucket=row.bucket,
        template_id=row.template_id or None,
        events=row.events,
        runs_started=row.runs_started,
        runs_finished=row.runs_finished,
        runs_succeeded=row.runs_succeeded,
        runs_failed=row.runs_failed,
        runs_cancelled=row.runs_cancelled,
        run_duration=RunDurations(
            count=count,
            sum_ms=row.run_ms_sum,
            max_ms=row.run_ms_max,
            mean_ms=round(row.run_ms_sum / count, 1) if count else None,
            p95_ms=percentile(hist, row.run_ms_max),
            histogram=hist,
        ),
        steps_finished=row.steps_finished,
        steps_by_status={k: int(v) for k, v in (row.steps_by_status or {}).items()},
        tasks_opened=row.tasks_opened,
        tasks_decided=row.tasks_decided,
        tasks_escalated=row.tasks_escalated,
        sla_breaches=row.sla_breaches,
        usage=dict(row.usage or {}),
    )


async def rollups(
    ctx: Ctx,
    tenant_id: UUID,
    granularity: Granularity = "5m",
    since: datetime | None = None,
    until: datetime | None = None,
    template_id: str | None = None,
    *,
    now: datetime | None = None,
) -> Rollups:
    """A tenant's rollup buckets starting in [since, until), oldest first."""
    await readable_tenant(ctx, tenant_id)
    since, until = _window(granularity, since, until, now or datetime.now(UTC))
    stmt = (
        select(Rollup)
        .where(
            Rollup.tenant_id == tenant_id,
            Rollup.granularity == granularity,
            Rollup.bucket >= since,
            Rollup.bucket < until,
        )
        .order_by(Rollup.bucket, Rollup.template_id)
    )
    if template_id is not None:
        stmt = stmt.where(Rollup.template_id == template_id)
    rows = (await ctx.session.scalars(stmt)).all()
    return Rollups(
        tenant_id=tenant_id,
        granularity=granularity,
        from_=since,
        to=until,
        histogram_bounds_ms=list(HISTOGRAM_BOUNDS_MS),
        buckets=[_bucket(row) for row in rows],
    )


async def heartbeat(ctx: Ctx, tenant_id: UUID, *, now: datetime | None = None) -> HeartbeatOut:
    await readable_tenant(ctx, tenant_id)
    row = await ctx.session.scalar(select(Heartbeat).where(Heartbeat.tenant_id == tenant_id))
    if row is None:
        return HeartbeatOut(tenant_id=tenant_id)
    age = ((now or datetime.now(UTC)) - row.at).total_seconds()
    return HeartbeatOut(
        tenant_id=tenant_id,
        runtime=row.runtime,
        at=row.at,
        received_at=row.received_at,
        age_seconds=round(age, 3),
        data=dict(row.data or {}),
    )
