"""PostgreSQL storage: day partitions made on demand, retention by partition, row-level
security, and rollups rebuilt from the raw events."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID

import asyncpg
import httpx
import pytest
from litestar import Litestar

from control_plane.config import Settings
from control_plane.contracts.telemetry import Kind
from control_plane.db.pg_context import begin_sql
from control_plane.db.scope import Scope
from control_plane.telemetry import apply_retention, rebuild_rollups
from control_plane.telemetry.pg import forget_partitions
from tests.conftest import Tree, World
from tests.telemetry.conftest import (
    event,
    mixed_events,
    post_ok,
    rollups,
    runtime_token,
    stored_ids,
    superuser,
    totals,
)


def noon(day: date) -> datetime:
    return datetime.combine(day, time(12), UTC)


async def partitions(settings: Settings) -> set[str]:
    conn = await superuser(settings)
    try:
        rows = await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'telemetry_events'::regclass"
        )
    finally:
        await conn.close()
    return {r["relname"] for r in rows}


async def home_of(settings: Settings, event_id: UUID) -> str:
    conn = await superuser(settings)
    try:
        found: str = await conn.fetchval(
            "SELECT tableoid::regclass::text FROM telemetry_events WHERE id = $1", event_id
        )
    finally:
        await conn.close()
    return found


async def test_partitions_are_made_per_day_and_far_days_use_the_default(
    client: httpx.AsyncClient, settings: Settings, tree: Tree, token: str
) -> None:
    today = datetime.now(UTC).date()
    yesterday = event(Kind.RUN_STARTED, noon(today - timedelta(days=1)), template_id="t")
    ahead = event(Kind.RUN_STARTED, noon(today + timedelta(days=9)), template_id="t")
    assert (await post_ok(client, token, tree, [yesterday, ahead]))["accepted"] == 2
    day_name = f"telemetry_events_p{today - timedelta(days=1):%Y%m%d}"
    assert day_name in await partitions(settings)
    assert await home_of(settings, yesterday.id) == day_name
    assert await home_of(settings, ahead.id) == "telemetry_events_default"

    # That day's partition made later (here by the application role, which may only call
    # the function) takes the rows the default partition held for it: the event keeps one
    # home, and a resend is still a duplicate.
    app_role = await asyncpg.connect(settings.database_url.replace("+asyncpg", ""))
    try:
        made = await app_role.fetchval(
            "SELECT storeops_telemetry_partition($1)", today + timedelta(days=9)
        )
        assert made is True
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app_role.fetch(f"SELECT * FROM {day_name}")  # noqa: S608
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app_role.execute("DELETE FROM telemetry_events")
    finally:
        await app_role.close()
    assert (
        await home_of(settings, ahead.id) == f"telemetry_events_p{today + timedelta(days=9):%Y%m%d}"
    )
    assert await post_ok(client, token, tree, [ahead, yesterday]) == {
        "accepted": 0,
        "duplicates": 2,
    }


async def test_rows_are_readable_only_in_their_tenants_scope(
    client: httpx.AsyncClient, settings: Settings, world: World, tree: Tree, token: str
) -> None:
    other = await world.tree()
    await post_ok(client, token, tree, mixed_events(20))
    conn = await asyncpg.connect(settings.database_url.replace("+asyncpg", ""))
    try:
        counts = {}
        for label, scope in {
            "own tenant": Scope(tenant_ids=frozenset({tree.tenant_id})),
            "own partner": Scope(partner_ids=frozenset({tree.partner_id})),
            "other tenant": Scope(tenant_ids=frozenset({other.tenant_id})),
            "other partner": Scope(partner_ids=frozenset({other.partner_id})),
            "no scope": Scope(),
        }.items():
            await conn.execute(begin_sql(scope))
            counts[label] = [
                await conn.fetchval(
                    f"SELECT count(*) FROM {table} WHERE tenant_id = $1",  # noqa: S608
                    tree.tenant_id,
                )
                for table in ("telemetry_events", "telemetry_rollups", "telemetry_heartbeats")
            ]
            await conn.execute("ROLLBACK")
    finally:
        await conn.close()
    assert counts["own tenant"][0] == 20 and counts["own tenant"][1] > 0
    assert counts["own partner"] == counts["own tenant"]
    assert counts["other tenant"] == counts["other partner"] == counts["no scope"] == [0, 0, 0]


async def test_retention_drops_old_partitions_keeps_recent_and_refuses_late_copies(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, tree: Tree, token: str
) -> None:
    now = datetime.now(UTC)
    today = now.date()
    old = [
        event(Kind.RUN_STARTED, noon(today - timedelta(days=40)), template_id="old"),
        event(Kind.RUN_STARTED, noon(today - timedelta(days=35)), template_id="old"),
    ]
    ancient = event(Kind.USAGE, datetime(2020, 1, 1, tzinfo=UTC), data={"api_calls": 1})
    recent = [
        event(Kind.RUN_STARTED, noon(today - timedelta(days=2)), template_id="recent"),
        event(Kind.RUN_STARTED, now - timedelta(minutes=1), template_id="recent"),
    ]
    assert (await post_ok(client, token, tree, [*old, ancient, *recent]))["accepted"] == 5
    old_names = {f"telemetry_events_p{e.at:%Y%m%d}" for e in old}
    recent_names = {f"telemetry_events_p{e.at:%Y%m%d}" for e in recent}
    assert old_names | recent_names <= await partitions(settings)
    assert await home_of(settings, ancient.id) == "telemetry_events_default"
    before = await rollups(
        client,
        tree.tenant_token,
        tree,
        granularity="1h",
        **{"from": (now - timedelta(days=41)).isoformat()},
    )

    result = await apply_retention(settings, 30, now=now)
    assert result.horizon == datetime.combine(today - timedelta(days=30), time(), UTC)
    assert old_names <= set(result.dropped_partitions)
    assert not recent_names & set(result.dropped_partitions)
    assert result.deleted_rows >= 1  # the 2020 event, from the default partition
    assert f"telemetry_events_p{today + timedelta(days=1):%Y%m%d}" in await partitions(settings)
    left = await partitions(settings)
    assert not old_names & left and recent_names <= left
    assert sorted(await stored_ids(settings, tree.tenant_id)) == sorted(e.id for e in recent)

    # Rollups stay; a late copy of a dropped event is refused, not counted again.
    forget_partitions(app.state.db)
    assert await post_ok(client, token, tree, [*old, ancient, recent[0]]) == {
        "accepted": 0,
        "duplicates": 1,
        "expired": 3,
    }
    after = await rollups(
        client,
        tree.tenant_token,
        tree,
        granularity="1h",
        **{"from": (now - timedelta(days=41)).isoformat()},
    )
    assert after == before
    assert totals(after, "runs_started")["runs_started"] == 4

    # The horizon never moves back: a longer keep later does not readmit dropped days.
    again = await apply_retention(settings, 60, now=now)
    assert again.horizon == result.horizon and again.dropped_partitions == []


async def test_rebuild_restores_the_rollups_from_the_raw_events(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    tree = await world.tree()
    token = await runtime_token(world, tree)
    events = mixed_events(300)
    await post_ok(client, token, tree, events)
    await post_ok(client, token, tree, events[100:200])
    five = await rollups(client, tree.tenant_token, tree)
    hour = await rollups(client, tree.tenant_token, tree, granularity="1h")
    conn = await superuser(settings)
    try:
        await conn.execute(
            "UPDATE telemetry_rollups SET events = 0, runs_started = 99,"
            " steps_by_status = '{}', run_ms_hist = '{}' WHERE tenant_id = $1",
            tree.tenant_id,
        )
    finally:
        await conn.close()
    assert await rollups(client, tree.tenant_token, tree) != five

    now = datetime.now(UTC)
    result = await rebuild_rollups(
        app.state.db, now - timedelta(hours=3), now + timedelta(hours=1), tree.tenant_id
    )
    assert result.events == 300
    assert await rollups(client, tree.tenant_token, tree) == five
    assert await rollups(client, tree.tenant_token, tree, granularity="1h") == hour
