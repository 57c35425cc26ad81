"""The NOC's fleet grid: every tenant the caller sees, judged, filtered, sorted and paged.

The caller's session (ORM criteria plus row-level security) says which tenants match the
partner and region filters; their heartbeats and rollup sums come from the platform-wide
snapshot of :mod:`control_plane.health.recent`, shared by every viewer for a few
seconds, so a tenant outside the scope is never looked up. Statuses are judged for every
matching tenant (the status filter, the counts and the sort need them); rows, with
:func:`assess`'s reasons, are built for the requested page only.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import ColumnElement, select

from control_plane.alerts.service import open_alert_counts
from control_plane.context import Ctx
from control_plane.health.assess import Signals, Status, Thresholds, assess
from control_plane.health.noc_filter import SORTS, FleetFilter, parse_filter
from control_plane.health.recent import Entry, fleet_snapshot, sla_percent
from control_plane.telemetry.service import collector_paused
from control_plane.tenancy.models import Partner, Region, Tenant, TenantStatus

#: Worst first: the order a NOC works in.
SEVERITY = {Status.DOWN: 0, Status.DEGRADED: 1, Status.UNKNOWN: 2, Status.HEALTHY: 3}
#: How SLA % is computed, said where it is shown.
SLA_DEFINITION = (
    "SLA % = share of approval tasks opened in the last 24 h (hourly rollups) that did"
    " not breach their deadline: 1 - breaches / tasks opened"
)

__all__ = [
    "SLA_DEFINITION",
    "SORTS",
    "Facets",
    "Fleet",
    "FleetFilter",
    "FleetRow",
    "facets",
    "fleet",
    "parse_filter",
    "sla_percent",
    "status_of",
    "tenant_names",
]


class FleetRow(msgspec.Struct):
    tenant_id: UUID
    name: str
    slug: str
    partner_id: UUID
    partner: str
    partner_slug: str
    regions: list[str]
    status: str
    reasons: list[str]
    #: Percent of the last 24 h's approval tasks that met their SLA; null without tasks.
    sla_pct: float | None
    tasks_24h: int
    breaches_24h: int
    open_alerts: int
    last_heartbeat_at: datetime | None
    heartbeat_age_s: float | None
    #: Runs finished in the last hour (5-minute rollups).
    runs_last_hour: int
    failed_last_hour: int
    queue_depth: int
    #: Unreplayed dead letters, as the runtime's latest heartbeat counted them.
    dead_letters: int | None


class Fleet(msgspec.Struct):
    items: list[FleetRow]
    #: Tenants matching the filters (all pages).
    total: int
    #: Tenants per status among those matching partner and region (before ``status``).
    counts: dict[str, int]
    limit: int
    offset: int
    next_offset: int | None
    generated_at: datetime
    #: When the shared fleet state was read (a few seconds behind at most).
    snapshot_at: datetime | None = None
    #: When runs per hour and SLA % were last summed (a minute behind at most).
    totals_at: datetime | None = None
    sla_definition: str = SLA_DEFINITION


# --- judging ------------------------------------------------------------------------------


def status_of(
    age: float | None,
    queue_depth: int,
    oldest_pending_s: float,
    runs: int,
    failed: int,
    tasks: int,
    breaches: int,
    t: Thresholds,
) -> Status:
    """:func:`assess`'s status without its reasons (or the Signals object, which costs
    more to build than this whole test). A test holds the two to the same answers."""
    if age is None:
        return Status.UNKNOWN
    if age > t.heartbeat_down_s:
        return Status.DOWN
    if (
        (runs >= t.min_runs and failed / runs > t.failure_rate)
        or queue_depth > t.queue_depth
        or oldest_pending_s > t.oldest_pending_s
        or (tasks >= t.min_tasks and breaches / tasks > t.breach_rate)
    ):
        return Status.DEGRADED
    return Status.HEALTHY


# Positions in a snapshot entry (control_plane.health.recent.Entry).
_NAME, _SLUG, _PID, _PARTNER, _PSLUG, _CODES, _AT, _DEPTH, _OLDEST, _DEAD = range(10)
_W_RUNS, _W_FAILED, _W_TASKS, _W_BREACHES, _RUNS, _FAILED, _TASKS, _BREACHES = range(10, 18)
_LOWER = 18
#: A judged tenant: (id, entry, heartbeat age, severity, open alerts).
Judged = tuple[UUID, Entry, float | None, int, int]
#: Statuses by severity (the index).
_BY_SEVERITY = sorted(SEVERITY, key=SEVERITY.__getitem__)


def _sla_key(j: Judged) -> tuple[float, str]:
    pct = sla_percent(j[1][_TASKS], j[1][_BREACHES])
    return (101.0 if pct is None else pct, j[1][_LOWER])


_SORT_KEYS: dict[str, Callable[[Judged], Any]] = {
    "status": lambda j: (j[3], j[1][_LOWER]),
    "name": lambda j: (j[1][_LOWER], j[0]),
    "partner": lambda j: (j[1][_PARTNER].lower(), j[1][_LOWER]),
    "sla": _sla_key,
    "alerts": lambda j: (j[4], j[1][_LOWER]),
    "heartbeat": lambda j: (j[2] is None, j[2] or 0.0),
    "runs": lambda j: (j[1][_RUNS], j[1][_LOWER]),
    "dead_letters": lambda j: (j[1][_DEAD] or 0, j[1][_LOWER]),
}


def _partner_clause(values: Collection[str]) -> ColumnElement[bool]:
    ids, slugs = [], []
    for value in values:
        try:
            ids.append(UUID(value))
        except ValueError:
            slugs.append(value)
    return Partner.id.in_(ids) | Partner.slug.in_(slugs)


async def visible_tenants(ctx: Ctx, query: FleetFilter) -> list[UUID]:
    """The tenants the caller's scope shows that match the partner and region filters."""
    stmt = select(Tenant.id).where(Tenant.status != TenantStatus.OFFBOARDED.value)
    if query.partners:
        stmt = stmt.join(Partner, Partner.id == Tenant.partner_id).where(
            _partner_clause(query.partners)
        )
    if query.regions:
        stmt = stmt.where(
            Tenant.id.in_(select(Region.tenant_id).where(Region.code.in_(query.regions)))
        )
    return list((await ctx.session.scalars(stmt)).all())


async def fleet(
    ctx: Ctx,
    query: FleetFilter | None = None,
    *,
    now: datetime | None = None,
    limits: Thresholds | None = None,
) -> Fleet:
    """The page of the fleet grid ``query`` asks for."""
    with collector_paused():
        return await _fleet(ctx, query or FleetFilter(), now or datetime.now(UTC), limits)


async def _fleet(ctx: Ctx, query: FleetFilter, now: datetime, limits: Thresholds | None) -> Fleet:
    limits = limits or Thresholds()
    ids = await visible_tenants(ctx, query)
    narrowed = bool(query.partners or query.regions)
    alerts = await open_alert_counts(ctx, tenant_ids=ids if narrowed else None)
    snapshot = await fleet_snapshot(ctx, limits=limits)
    judged, counts, missing = _judge(ids, snapshot.entries, now, limits, alerts)
    if missing:  # onboarded since the snapshot was read
        snapshot = await fleet_snapshot(ctx, fresh=True, limits=limits)
        judged, counts, _ = _judge(ids, snapshot.entries, now, limits, alerts)
    if query.statuses:
        wanted = {SEVERITY[s] for s in query.statuses}
        judged = [j for j in judged if j[3] in wanted]
    judged.sort(key=_SORT_KEYS[query.sort], reverse=query.descending)
    page = judged[query.offset : query.offset + query.limit]
    end = query.offset + len(page)
    return Fleet(
        items=[_row(j, limits) for j in page],
        total=len(judged),
        counts={status.value: counts[n] for n, status in enumerate(_BY_SEVERITY)},
        limit=query.limit,
        offset=query.offset,
        next_offset=end if end < len(judged) else None,
        generated_at=now,
        snapshot_at=snapshot.at,
        totals_at=snapshot.totals_at,
    )


def _judge(
    ids: list[UUID],
    entries: dict[UUID, Entry],
    now: datetime,
    limits: Thresholds,
    alerts: dict[UUID, int],
) -> tuple[list[Judged], list[int], bool]:
    """Every tenant's verdict (as a severity), the count per severity, and whether any
    tenant was missing from ``entries``."""
    judged: list[Judged] = []
    counts = [0] * len(SEVERITY)
    severity, open_alerts, missing = SEVERITY, alerts.get, False
    for tenant_id in ids:
        e = entries.get(tenant_id)
        if e is None:
            missing = True
            continue
        at = e[_AT]
        age = None if at is None else (now - at).total_seconds()
        rank = severity[
            status_of(
                age,
                e[_DEPTH],
                e[_OLDEST],
                e[_W_RUNS],
                e[_W_FAILED],
                e[_W_TASKS],
                e[_W_BREACHES],
                limits,
            )
        ]
        counts[rank] += 1
        judged.append((tenant_id, e, age, rank, open_alerts(tenant_id, 0)))
    return judged, counts, missing


def _row(j: Judged, limits: Thresholds) -> FleetRow:
    tenant_id, e, age, _, open_alerts = j
    signals = Signals(
        heartbeat_age_s=age,
        queue_depth=e[_DEPTH],
        oldest_pending_s=e[_OLDEST],
        runs_finished=e[_W_RUNS],
        runs_failed=e[_W_FAILED],
        tasks_opened=e[_W_TASKS],
        sla_breaches=e[_W_BREACHES],
    )
    verdict = assess(signals, limits)
    return FleetRow(
        tenant_id=tenant_id,
        name=e[_NAME],
        slug=e[_SLUG],
        partner_id=e[_PID],
        partner=e[_PARTNER],
        partner_slug=e[_PSLUG],
        regions=sorted(e[_CODES].split(",")) if e[_CODES] else [],
        status=verdict.status.value,
        reasons=verdict.reasons,
        sla_pct=sla_percent(e[_TASKS], e[_BREACHES]),
        tasks_24h=e[_TASKS],
        breaches_24h=e[_BREACHES],
        open_alerts=int(open_alerts),
        last_heartbeat_at=e[_AT],
        heartbeat_age_s=None if age is None else round(age, 1),
        runs_last_hour=e[_RUNS],
        failed_last_hour=e[_FAILED],
        queue_depth=signals.queue_depth,
        dead_letters=e[_DEAD],
    )


# --- filter choices and names -------------------------------------------------------------


class Facets(msgspec.Struct):
    """The filter choices: partners and region codes among the visible tenants."""

    partners: list[tuple[UUID, str, str]]
    regions: list[str]


async def facets(ctx: Ctx) -> Facets:
    partners = (
        await ctx.session.execute(
            select(Partner.id, Partner.slug, Partner.name).order_by(Partner.name)
        )
    ).all()
    regions = (
        await ctx.session.scalars(select(Region.code).distinct().order_by(Region.code))
    ).all()
    return Facets(partners=[(p[0], p[1], p[2]) for p in partners], regions=list(regions))


async def tenant_names(ctx: Ctx, tenant_ids: Collection[UUID]) -> dict[UUID, str]:
    if not tenant_ids:
        return {}
    rows = await ctx.session.execute(
        select(Tenant.id, Tenant.name).where(Tenant.id.in_(list(tenant_ids)))
    )
    return {row[0]: row[1] for row in rows.all()}
