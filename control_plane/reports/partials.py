"""PostgreSQL report partials: counts, and the durations behind each percentile, per tenant
(and per UTC day for the cache of closed days), merged into one report in Python."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from control_plane.context import Ctx
from control_plane.reports.figures import KINDS, Fold, field_list, select_list
from control_plane.reports.models import report_days

_KINDS_SQL = ", ".join(f"'{k}'" for k in KINDS)

# PostgreSQL. A report is the merge of partials (counts, and the durations behind each
# percentile) per tenant: closed UTC days come from ``report_days``, recomputed when the
# number of their events has changed (a count over the partial index of 0008: late
# events are never missed); the open day and the period's ragged edges are computed live.
# A partial is computed in one pass over the day partitions (pruned by ``at``), reading
# each event's ``data`` once in the inner select.
_PARTIALS = f"""
SELECT tenant_id, {{day}} AS day, count(*) AS events,
    {select_list()}
FROM (
    SELECT tenant_id, at, kind, status, duration_ms,
        {field_list()}
    FROM telemetry_events
    WHERE partner_id = :partner_id {{tenant}}
      AND at >= :since AND at < :until
      AND kind IN ({_KINDS_SQL})
      {{tenants}}
    OFFSET 0
) AS e
GROUP BY tenant_id{{by_day}}
"""  # noqa: S608 - built from this module's constants only
_DAY = "(at AT TIME ZONE 'UTC')::date"
#: Rows per cache write (7 parameters each, well under PostgreSQL's 32767).
_STORE_CHUNK = 1000
_STAMPS = f"""
SELECT tenant_id, {_DAY} AS day, count(*) AS events
FROM telemetry_events
WHERE partner_id = :partner_id {{tenant}} AND at >= :since AND at < :until
  AND kind IN ({_KINDS_SQL})
GROUP BY tenant_id, day
"""  # noqa: S608 - built from this module's constants only

#: For this transaction only: compiling the aggregates' expressions (JIT) costs more than it
#: saves (2.6 s of a 7 s query over a month of 1.2 M events, measured), and the grouping
#: with its duration arrays stays in memory.
_SETTINGS = ("SET LOCAL jit = off", "SET LOCAL work_mem = '64MB'")


async def aggregate(
    ctx: Ctx,
    partner_id: UUID,
    tenant_id: UUID | None,
    start: datetime,
    end: datetime,
    now: datetime,
) -> tuple[dict[str, Any], dict[UUID, dict[str, Any]]]:
    for setting in _SETTINGS:
        await ctx.session.execute(text(setting))
    scope = _Scope(ctx, partner_id, tenant_id)
    folds: dict[UUID, Fold] = {}

    def add(tenant: UUID, fold: Fold) -> None:
        if tenant in folds:
            folds[tenant].merge(fold)
        else:
            folds[tenant] = fold

    first, last = _ceil_day(start), min(_floor_day(end), _floor_day(now))
    if first < last:
        for tenant, fold in await scope.closed_days(first.date(), last.date()):
            add(tenant, fold)
        edges = [(start, first), (last, end)]
    else:
        edges = [(start, end)]
    for since, until in edges:
        if since < until:
            for row in await scope.partials(since, until):
                add(row["tenant_id"], _fold_of(row))
    whole = Fold()
    for fold in folds.values():
        whole.merge(fold)
    return whole.raw(), {tenant: fold.raw() for tenant, fold in folds.items()}


def _fold_of(row: Mapping[str, Any]) -> Fold:
    return Fold.of(row, {name: row[name] for name in Fold().durations})


def _floor_day(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _ceil_day(moment: datetime) -> datetime:
    floor = _floor_day(moment)
    return floor if floor == moment else floor + timedelta(days=1)


class _Scope:
    """The statements of one report's scope (a partner, or one tenant of it)."""

    def __init__(self, ctx: Ctx, partner_id: UUID, tenant_id: UUID | None) -> None:
        self.ctx, self.partner_id, self.tenant_id = ctx, partner_id, tenant_id
        self.tenant = "AND tenant_id = :tenant_id" if tenant_id is not None else ""

    def _params(self, **more: Any) -> dict[str, Any]:
        params: dict[str, Any] = {"partner_id": self.partner_id, **more}
        if self.tenant_id is not None:
            params["tenant_id"] = self.tenant_id
        return params

    async def partials(
        self,
        since: datetime,
        until: datetime,
        *,
        by_day: bool = False,
        tenants: list[UUID] | None = None,
    ) -> list[Mapping[str, Any]]:
        sql = _PARTIALS.format(
            day=_DAY if by_day else "NULL::date",
            tenant=self.tenant,
            tenants="AND tenant_id = ANY(:tenants)" if tenants is not None else "",
            by_day=", day" if by_day else "",
        )
        params = self._params(since=since, until=until)
        if tenants is not None:
            params["tenants"] = tenants
        result = await self.ctx.session.execute(text(sql), params)
        return [dict(row) for row in result.mappings()]

    async def closed_days(self, first: date, last: date) -> list[tuple[UUID, Fold]]:
        """Partials of the days [first, last), from the cache, recomputing stale days."""
        since = datetime.combine(first, time(), tzinfo=UTC)
        until = datetime.combine(last, time(), tzinfo=UTC)
        session = self.ctx.session
        stamps = {
            (r.tenant_id, r.day): r.events
            for r in await session.execute(
                text(_STAMPS.format(tenant=self.tenant)), self._params(since=since, until=until)
            )
        }
        cached_rows = select(report_days).where(
            report_days.c.partner_id == self.partner_id,
            report_days.c.day >= first,
            report_days.c.day < last,
        )
        if self.tenant_id is not None:
            cached_rows = cached_rows.where(report_days.c.tenant_id == self.tenant_id)
        cached = {(r.tenant_id, r.day): r for r in await session.execute(cached_rows)}
        stale = sorted(k for k, n in stamps.items() if k not in cached or cached[k].events != n)
        fresh: dict[tuple[UUID, date], Fold] = {}
        if stale:
            days = [d for _, d in stale]
            low = datetime.combine(min(days), time(), tzinfo=UTC)
            high = datetime.combine(max(days), time(), tzinfo=UTC) + timedelta(days=1)
            tenants = sorted({t for t, _ in stale})
            rows = await self.partials(low, high, by_day=True, tenants=tenants)
            wanted = set(stale)
            computed = []
            for row in rows:
                key = (row["tenant_id"], row["day"])
                if key in wanted:
                    fresh[key] = _fold_of(row)
                    computed.append((key, int(row["events"]), fresh[key]))
            await self._store(computed)
        out = []
        for key in stamps:
            fold = fresh.get(key)
            if fold is None:
                kept = cached[key]
                fold = Fold.of(kept.counts, kept.durations)
            out.append((key[0], fold))
        return out

    async def _store(self, computed: list[tuple[tuple[UUID, date], int, Fold]]) -> None:
        """Keep recomputed days (one statement; a concurrent report's copy is replaced)."""
        if not computed:
            return
        now = datetime.now(UTC)
        rows = []
        for (tenant, day), count, fold in computed:
            counts, durations = fold.stored()
            rows.append(
                {
                    "tenant_id": tenant,
                    "day": day,
                    "partner_id": self.partner_id,
                    "events": count,
                    "counts": counts,
                    "durations": durations,
                    "computed_at": now,
                }
            )
        for start in range(0, len(rows), _STORE_CHUNK):
            stmt = pg_insert(report_days).values(rows[start : start + _STORE_CHUNK])
            stmt = stmt.on_conflict_do_update(
                index_elements=[report_days.c.tenant_id, report_days.c.day],
                set_={
                    k: stmt.excluded[k] for k in ("events", "counts", "durations", "computed_at")
                },
            )
            await self.ctx.session.execute(stmt)
