"""NOC benchmark: the fleet grid's query at 10,000 tenants with a month of rollups.

    .venv/bin/python bench/noc.py                # or: make bench-noc
    .venv/bin/python bench/noc.py --tenants 2000 --days 7 --keep

1. Creates a throwaway PostgreSQL database ``storeops_bench_noc_<hex>`` (127.0.0.1:5432,
   superuser ``postgres``) and migrates it.
2. Loads, as the table owner and mostly inside PostgreSQL (``generate_series``): 20
   partners; 10,000 tenants with one to three of 8 region codes; per tenant and hour of the
   last 30 days two hourly rollups (the heartbeat/usage row under template "" and one
   workflow template's row, counters and a run-duration histogram filled); the last hour's
   5-minute rollups, shaped the same; and a heartbeat per tenant (a few stale or missing,
   so every status occurs).
3. Times the fleet query server-side, in process: ``control_plane.health.noc.fleet`` (one
   page of 100 rows, default sort, a new scoped session each time: the RLS-scoped read of
   the caller's tenants, open alert counts, every verdict, sorting, the page's rows) as a
   platform NOC operator (all 10,000 tenants) and as a partner's NOC operator (its 500),
   then the whole handler ``GET /api/v1/noc/fleet`` through ASGI (routing, auth, JSON).
   The heartbeats and rollup sums come from the shared platform-wide snapshot of
   ``control_plane.health.recent`` (refreshed in the background every few seconds; the
   hour/day sums every minute); the cost of those refreshes is timed and printed too.
4. For a limit, times the bare SQL of the same answer computed from scratch over asyncpg as
   the table owner (one statement joining tenants, regions, heartbeats and the summed
   rollups through the same index; no RLS, no Python work), and a bare ``SELECT`` of the
   tenant ids, the least any scoped grid request reads.
5. Prints median / p95 / max in ms, the target (100 ms) and the ratio to the bare SQL.

Timing figures are reported, never asserted. The database is dropped at the end (kept
with ``--keep``).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchdb import PG_SUPERUSER, admin_exec, pg_dsn, sa_url  # noqa: E402

from control_plane.app import create_app  # noqa: E402
from control_plane.config import Settings  # noqa: E402
from control_plane.context import Ctx  # noqa: E402
from control_plane.db import Database  # noqa: E402
from control_plane.db.migrate import upgrade  # noqa: E402
from control_plane.health import noc, recent  # noqa: E402
from control_plane.identity.admin import ensure_signing_key  # noqa: E402
from control_plane.identity.principal import Grant, Principal  # noqa: E402
from control_plane.identity.roles import Role  # noqa: E402
from control_plane.runner import run_as  # noqa: E402

TARGET_MS = 100.0
REGIONS = ("north", "south", "east", "west", "central", "coast", "mountain", "metro")

# Everything below runs as the owner, which row-level security does not restrict.
SEED_SQL = """
INSERT INTO partners (id, slug, name, kind, status, settings, created_at, updated_at, version)
SELECT gen_random_uuid(), 'bench-msp-' || p, 'Bench MSP ' || p, 'msp', 'active', '{}',
       now(), now(), 1
FROM generate_series(1, $1::int) AS p;

INSERT INTO tenants (id, partner_id, slug, name, status, timezone, isolation_tier, settings,
                     created_at, updated_at, version)
SELECT gen_random_uuid(), p.id, 'retailer-' || t, 'Retailer ' || lpad(t::text, 5, '0'),
       'active', 'Europe/Paris', 'shared_cluster', '{}', now(), now(), 1
FROM generate_series(1, $2::int) AS t
JOIN (SELECT id, row_number() OVER (ORDER BY slug) - 1 AS n FROM partners) AS p
  ON p.n = t % $1::int;

INSERT INTO regions (id, partner_id, tenant_id, code, name, created_at, updated_at, version)
SELECT gen_random_uuid(), t.partner_id, t.id, r.code, initcap(r.code), now(), now(), 1
FROM (SELECT id, partner_id, row_number() OVER (ORDER BY id) AS n FROM tenants) AS t
CROSS JOIN LATERAL (
    SELECT ($3::text[])[1 + ((t.n + k * 3) % array_length($3::text[], 1))] AS code
    FROM generate_series(0, (t.n % 3)::int) AS k
) AS r
ON CONFLICT DO NOTHING;
"""

#: One rollup row per tenant, bucket and template: $1 granularity, $2 first bucket, $3
#: last bucket, $4 step. Template "" carries heartbeats and usage only.
ROLLUP_SQL = """
INSERT INTO telemetry_rollups (
    tenant_id, granularity, bucket, template_id, partner_id, events, runs_started,
    runs_finished, runs_succeeded, runs_failed, runs_cancelled, run_ms_sum, run_ms_count,
    run_ms_max, run_ms_hist, steps_finished, steps_by_status, tasks_opened, tasks_decided,
    tasks_escalated, sla_breaches, usage)
SELECT t.id, $1::text, b.bucket, tpl.template_id, t.partner_id,
       CASE WHEN tpl.template_id = '' THEN 60 ELSE 40 + v.runs * 4 END,
       v.runs * tpl.w, v.runs * tpl.w, (v.runs - v.failed) * tpl.w, v.failed * tpl.w, 0,
       v.runs * 1800 * tpl.w, v.runs * tpl.w, 9000 * tpl.w,
       CASE WHEN tpl.template_id = '' THEN array_fill(0::bigint, ARRAY[25])
            ELSE ARRAY[0,0,0,v.runs/4,v.runs/4,v.runs/4,v.runs - 3*(v.runs/4),0,0,0,0,0,0,
                       0,0,0,0,0,0,0,0,0,0,0,0]::bigint[] END,
       v.runs * 3 * tpl.w,
       CASE WHEN tpl.w = 1 THEN '{"succeeded": 10}'::jsonb ELSE '{}'::jsonb END,
       v.tasks * tpl.w, v.tasks * tpl.w, 0, v.breaches * tpl.w,
       CASE WHEN tpl.w = 0 THEN '{"api_calls": 120}'::jsonb ELSE '{}'::jsonb END
FROM tenants AS t
CROSS JOIN generate_series($2::timestamptz, $3::timestamptz, $4::interval) AS b(bucket)
CROSS JOIN (VALUES ('', 0), ('stock-transfer-approval', 1)) AS tpl(template_id, w)
CROSS JOIN LATERAL (
    SELECT (4 + (hashtext(t.id::text || b.bucket::text) & 15)) AS runs,
           ((hashtext(b.bucket::text || t.id::text) & 31) / 30) AS failed,
           (1 + (hashtext(t.slug || b.bucket::text) & 3)) AS tasks,
           ((hashtext(b.bucket::text || t.slug) & 7) / 7) AS breaches
) AS v
"""

HEARTBEAT_SQL = """
INSERT INTO telemetry_heartbeats (tenant_id, partner_id, runtime, at, data, received_at)
SELECT t.id, t.partner_id, 'runtime-1',
       now() - CASE WHEN n % 97 = 0 THEN interval '30 minutes' ELSE interval '10 seconds' END,
       jsonb_build_object('queue_depth', n % 50, 'oldest_pending_s', n % 120,
                          'dead_letters', n % 5),
       now()
FROM (SELECT id, partner_id, row_number() OVER (ORDER BY id) AS n FROM tenants) AS t
WHERE n % 211 <> 0
"""

#: The same answer in one bare statement (owner, no RLS): the limit the service is held to.
BARE_SQL = """
WITH hour AS (
    SELECT tenant_id, sum(runs_finished) AS runs, sum(runs_failed) AS failed,
           sum(CASE WHEN bucket >= $2 THEN runs_finished ELSE 0 END) AS w_runs,
           sum(CASE WHEN bucket >= $2 THEN runs_failed ELSE 0 END) AS w_failed,
           sum(CASE WHEN bucket >= $2 THEN tasks_opened ELSE 0 END) AS w_tasks,
           sum(CASE WHEN bucket >= $2 THEN sla_breaches ELSE 0 END) AS w_breaches
    FROM telemetry_rollups
    WHERE granularity = '5m' AND bucket >= $1 AND bucket <= $4 AND template_id <> ''
    GROUP BY tenant_id
), day AS (
    SELECT tenant_id, sum(tasks_opened) AS tasks, sum(sla_breaches) AS breaches
    FROM telemetry_rollups
    WHERE granularity = '1h' AND bucket >= $3 AND bucket <= $4 AND template_id <> ''
    GROUP BY tenant_id
), reg AS (
    SELECT tenant_id, string_agg(code, ',') AS codes FROM regions GROUP BY tenant_id
)
SELECT t.id, t.name, t.slug, p.name, p.slug, reg.codes, h.at, h.data->'queue_depth',
       h.data->'oldest_pending_s', h.data->'dead_letters', hour.*, day.tasks, day.breaches
FROM tenants t
JOIN partners p ON p.id = t.partner_id
LEFT JOIN reg ON reg.tenant_id = t.id
LEFT JOIN telemetry_heartbeats h ON h.tenant_id = t.id
LEFT JOIN hour ON hour.tenant_id = t.id
LEFT JOIN day ON day.tenant_id = t.id
WHERE t.status <> 'offboarded'
"""


async def seed(database: str, tenants: int, partners: int, days: int) -> dict[str, int]:
    conn = await asyncpg.connect(pg_dsn(PG_SUPERUSER, database))
    try:
        started = time.perf_counter()
        await conn.execute("SET synchronous_commit = off")
        await conn.execute(
            SEED_SQL.replace("$1::int", str(partners))
            .replace("$2::int", str(tenants))
            .replace("$3::text[]", "'{" + ",".join(REGIONS) + "}'::text[]")
        )
        now = datetime.now(UTC)
        hour = now.replace(minute=0, second=0, microsecond=0)
        five = now.replace(second=0, microsecond=0)
        five = five.replace(minute=five.minute - five.minute % 5)
        print(f"  tenants and regions loaded in {time.perf_counter() - started:.1f}s")
        for day in range(days):
            # A day at a time keeps each statement's memory and WAL modest.
            first = f"timestamptz '{hour.isoformat()}' - interval '{(day + 1) * 24 - 1} hours'"
            last = f"timestamptz '{hour.isoformat()}' - interval '{day * 24} hours'"
            await conn.execute(
                ROLLUP_SQL.replace("$1::text", "'1h'")
                .replace("$2::timestamptz", first)
                .replace("$3::timestamptz", last)
                .replace("$4::interval", "interval '1 hour'")
            )
            print(f"\r  hourly rollups: day {day + 1}/{days}", end="", flush=True)
        print()
        await conn.execute(
            ROLLUP_SQL.replace("$1::text", "'5m'")
            .replace("$2::timestamptz", f"timestamptz '{five.isoformat()}' - interval '55 minutes'")
            .replace("$3::timestamptz", f"timestamptz '{five.isoformat()}'")
            .replace("$4::interval", "interval '5 minutes'")
        )
        await conn.execute(HEARTBEAT_SQL)
        await conn.execute("VACUUM ANALYZE")
        counts = {
            table: int(await conn.fetchval(f"SELECT count(*) FROM {table}"))  # noqa: S608
            for table in ("partners", "tenants", "regions", "telemetry_rollups")
        }
        counts["seconds"] = round(time.perf_counter() - started)
        counts["rollup_mb"] = int(
            await conn.fetchval("SELECT pg_total_relation_size('telemetry_rollups') / 1048576")
        )
        return counts
    finally:
        await conn.close()


async def timed(fn: Callable[[], Awaitable[Any]], repeats: int) -> list[float]:
    await fn()  # warm: plans, caches, connections
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def line(label: str, samples: list[float], bare: float | None = None) -> str:
    samples = sorted(samples)
    median = statistics.median(samples)
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    text = f"  {label:<44} median {median:7.1f} ms  p95 {p95:7.1f} ms  max {samples[-1]:7.1f} ms"
    if bare is None:
        return text
    verdict = "meets" if median < TARGET_MS else "MISSES"
    return f"{text}  ({verdict} {TARGET_MS:.0f} ms)  {median / bare:.2f}x bare SQL"


async def measure(settings: Settings, database: str, repeats: int) -> None:
    db = Database(settings)
    platform = Principal(
        subject="user:bench-noc", kind="user", name="noc", grants=(Grant(Role.NOC_OPERATOR),)
    )
    partner_id: UUID = await run_as(
        settings,
        lambda c: c.session.scalar(
            __import__("sqlalchemy").text("SELECT id FROM partners ORDER BY slug LIMIT 1")
        ),
        db=db,
    )
    partner = Principal(
        subject="user:bench-partner-noc",
        kind="user",
        name="partner noc",
        grants=(Grant(Role.NOC_OPERATOR, partner_id=partner_id),),
    )

    def grid(principal: Principal) -> Callable[[], Awaitable[noc.Fleet]]:
        async def call() -> noc.Fleet:
            ctx = Ctx(principal, db=db)
            try:
                return await noc.fleet(ctx, noc.FleetFilter(limit=100))
            finally:
                if ctx.opened is not None:
                    await ctx.opened.close()

        return call

    first = await grid(platform)()
    mine = await grid(partner)()
    print(f"  platform NOC sees {first.total} tenants {first.counts}")
    print(f"  partner NOC sees {mine.total} tenants")

    owner = await asyncpg.connect(pg_dsn(PG_SUPERUSER, database))
    now = datetime.now(UTC)
    from datetime import timedelta

    args = (
        now - timedelta(hours=1),
        now - timedelta(minutes=15),
        now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23),
        now,
    )

    async def bare() -> None:
        await owner.fetch(BARE_SQL, *args)

    async def floor() -> None:
        await owner.fetch("SELECT id FROM tenants WHERE status <> 'offboarded'")

    bare_ms = statistics.median(await timed(bare, max(5, repeats // 3)))
    floor_ms = statistics.median(await timed(floor, repeats))
    results = {
        "fleet(), platform NOC, 10k tenants": await timed(grid(platform), repeats),
        "fleet(), partner NOC": await timed(grid(partner), repeats),
    }

    async def snapshot() -> None:
        ctx = Ctx(platform, db=db)
        try:
            await recent.fleet_snapshot(ctx, fresh=True)
        finally:
            if ctx.opened is not None:
                await ctx.opened.close()

    async def totals() -> None:
        async with db.session(platform.scope()) as session:
            await recent.read_totals(session, datetime.now(UTC))

    refreshes = {
        f"shared snapshot read (every {recent.SNAPSHOT_SECONDS:g} s)": await timed(
            snapshot, max(5, repeats // 3)
        ),
        f"hour/day sums (every {recent.TOTALS_SECONDS:g} s)": await timed(
            totals, max(5, repeats // 3)
        ),
    }
    app = create_app(settings)
    token, _ = await app.state.tokens.issue(platform)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

        async def http() -> None:
            r = await client.get("/api/v1/noc/fleet", headers={"Authorization": f"Bearer {token}"})
            r.raise_for_status()

        results["GET /api/v1/noc/fleet (ASGI), platform NOC"] = await timed(http, repeats)
    for hook in app.on_shutdown:
        await hook()
    await owner.close()
    await db.dispose()
    print(f"\nfleet query server time ({repeats} runs each; target {TARGET_MS:.0f} ms):")
    print(f"  {'bare SQL, same answer from scratch (owner)':<44} median {bare_ms:7.1f} ms")
    print(f"  {'bare SELECT of the 10k tenant ids (owner)':<44} median {floor_ms:7.1f} ms")
    for label, samples in results.items():
        print(line(label, samples, bare_ms))
    print("background refreshes, platform-wide, shared by every viewer and stream:")
    for label, samples in refreshes.items():
        print(line(label, samples))


def main() -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--partners", type=int, default=20)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--database", help="reuse a database a --keep run left behind")
    args = parser.parse_args()
    name = args.database or f"storeops_bench_noc_{secrets.token_hex(4)}"
    settings = Settings(
        home=Path(tempfile.gettempdir()) / name,
        database_url=sa_url("storeops_app", name),
        admin_database_url=sa_url(PG_SUPERUSER, name),
        log_level="WARNING",
    )
    if not args.database:
        asyncio.run(admin_exec(f'CREATE DATABASE "{name}"'))
    try:
        print(f"database {name}: migrating")
        upgrade(settings)
        if not args.database:
            asyncio.run(run_as(settings, lambda c: ensure_signing_key(c, settings)))
            print(
                f"seeding {args.tenants} tenants over {args.partners} partners,"
                f" {args.days} days of hourly rollups"
            )
            counts = asyncio.run(seed(name, args.tenants, args.partners, args.days))
            print(f"  loaded {counts}")
        asyncio.run(measure(settings, name, args.repeats))
    finally:
        if args.keep:
            print(f"kept database {name} (--database {name} to reuse it)")
        else:
            asyncio.run(admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            print(f"dropped database {name}")


if __name__ == "__main__":
    main()
