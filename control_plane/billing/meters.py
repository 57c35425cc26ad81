"""Meters from telemetry: each tenant's usage per UTC day, recomputed from the raw events.

The ingest stores every event once (its id is the key: retries and replays are dropped
there), so counting a day's events again gives the same numbers, plus any that arrived
late. Metering a day replaces its rows; it runs every few minutes for the recent days
(``billing.meter``) and for the whole period (and the ones before it) when a period
closes. Raw events are kept for the retention period only; what was metered stays.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import case, delete, distinct, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.billing.models import UsageDaily
from control_plane.catalog.models import CatalogTemplate
from control_plane.contracts.telemetry import Kind
from control_plane.errors import InvalidInput
from control_plane.telemetry.models import events, retention

UNCATEGORISED = "uncategorised"
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def period_bounds(period: str) -> tuple[date, date]:
    """``YYYY-MM`` -> (first day, first day of the next month)."""
    match = _PERIOD.match(period)
    if match is None:
        raise InvalidInput(f"period {period!r} is not a month written YYYY-MM")
    year, month = int(match.group(1)), int(match.group(2))
    start = date(year, month, 1)
    end = date(year + month // 12, month % 12 + 1, 1)
    return start, end


def period_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def previous_period(period: str) -> str:
    start, _ = period_bounds(period)
    return period_of(start - timedelta(days=1))


def days(start: date, end: date) -> Iterator[date]:
    day = start
    while day < end:
        yield day
        day += timedelta(days=1)


def _moment(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


async def categories(session: AsyncSession) -> dict[tuple[UUID | None, str], str]:
    """(owner partner or None for the platform, template slug) -> category."""
    rows = await session.execute(
        select(CatalogTemplate.owner_partner_id, CatalogTemplate.slug, CatalogTemplate.category)
    )
    return {(owner, slug): category for owner, slug, category in rows}


def category(
    known: dict[tuple[UUID | None, str], str], partner_id: UUID, template_id: str | None
) -> str:
    slug = template_id or ""
    return known.get((partner_id, slug)) or known.get((None, slug)) or UNCATEGORISED


async def meter_day(
    session: AsyncSession, day: date, *, now: datetime, partner_id: UUID | None = None
) -> int:
    """Recompute one day's usage rows (of one partner's tenants, or all) from the raw
    events; the number of rows written comes back. ``session`` must see every tenant
    metered."""
    start, end = _moment(day), _moment(day + timedelta(days=1))
    window = [events.c.at >= start, events.c.at < end]
    if partner_id is not None:
        window.append(events.c.partner_id == partner_id)
    known = await categories(session)
    rows: dict[tuple[UUID, str, str], tuple[UUID, int]] = {}

    def add(tenant: UUID, partner: UUID, meter: str, dimension: str, quantity: int) -> None:
        if quantity:
            key = (tenant, meter, dimension)
            rows[key] = (partner, rows.get(key, (partner, 0))[1] + int(quantity))

    runs = await session.execute(
        select(events.c.tenant_id, events.c.partner_id, events.c.template_id, func.count())
        .where(*window, events.c.kind == Kind.RUN_STARTED)
        .group_by(events.c.tenant_id, events.c.partner_id, events.c.template_id)
    )
    for tenant, partner, template, count in runs:
        add(tenant, partner, "runs", category(known, partner, template), count)
    api_calls = events.c.data["api_calls"].as_integer()
    totals = await session.execute(
        select(
            events.c.tenant_id,
            events.c.partner_id,
            func.sum(case((events.c.kind == Kind.STEP_FINISHED, 1), else_=0)),
            func.count(distinct(events.c.store)),
            func.sum(case((events.c.kind == Kind.USAGE, func.coalesce(api_calls, 0)), else_=0)),
        )
        .where(*window)
        .group_by(events.c.tenant_id, events.c.partner_id)
    )
    for tenant, partner, steps, stores, calls in totals:
        add(tenant, partner, "steps", "", steps or 0)
        add(tenant, partner, "store_days", "", stores or 0)
        add(tenant, partner, "api_calls", "", calls or 0)
        add(tenant, partner, "tenant_days", "", 1)
    clear = delete(UsageDaily).where(UsageDaily.day == day)
    if partner_id is not None:
        clear = clear.where(UsageDaily.partner_id == partner_id)
    await session.execute(clear)
    if rows:
        await session.execute(
            insert(UsageDaily),
            [
                {
                    "tenant_id": tenant,
                    "day": day,
                    "meter": meter,
                    "dimension": dimension,
                    "partner_id": partner,
                    "quantity": quantity,
                    "metered_at": now,
                }
                for (tenant, meter, dimension), (partner, quantity) in rows.items()
            ],
        )
    return len(rows)


async def meter_span(
    session: AsyncSession,
    start: date,
    end: date,
    *,
    now: datetime,
    partner_id: UUID | None = None,
) -> int:
    """Meter every day in [start, end) that has begun by ``now``, never one before the
    retention horizon (its raw events are gone: what was metered then stays)."""
    horizon = await session.scalar(select(retention.c.horizon).where(retention.c.id == 1))
    if horizon is not None:
        start = max(start, horizon.date())
    written = 0
    for day in days(start, min(end, now.date() + timedelta(days=1))):
        written += await meter_day(session, day, now=now, partner_id=partner_id)
    return written


async def totals(
    session: AsyncSession,
    start: date,
    end: date,
    *,
    partner_id: UUID | None = None,
    tenant_id: UUID | None = None,
) -> dict[tuple[UUID, str, str], int]:
    """(tenant, meter, dimension) -> quantity over [start, end), as metered."""
    stmt: Any = (
        select(UsageDaily.tenant_id, UsageDaily.meter, UsageDaily.dimension,
               func.sum(UsageDaily.quantity))
        .where(UsageDaily.day >= start, UsageDaily.day < end)
        .group_by(UsageDaily.tenant_id, UsageDaily.meter, UsageDaily.dimension)
    )  # fmt: skip
    if partner_id is not None:
        stmt = stmt.where(UsageDaily.partner_id == partner_id)
    if tenant_id is not None:
        stmt = stmt.where(UsageDaily.tenant_id == tenant_id)
    result = await session.execute(stmt)
    return {(t, m, d): int(q) for t, m, d, q in result}
