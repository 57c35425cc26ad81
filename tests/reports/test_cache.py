"""Closed days come from ``report_days``; a day whose events changed since (a runtime's
outbox delivering late) is recomputed, so a report never reads stale partials."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import httpx

from control_plane.config import Settings
from tests.conftest import World
from tests.reports.conftest import _move, decided, report, tenant_one, tenant_two
from tests.reports.test_sla import ONE, PARTNER, durations
from tests.telemetry.conftest import post_ok, runtime_token, superuser


async def cached_days(settings: Settings, partner_id: object) -> dict[tuple[str, str], int]:
    conn = await superuser(settings)
    try:
        rows = await conn.fetch(
            "SELECT tenant_id, day, events FROM report_days WHERE partner_id = $1", partner_id
        )
    finally:
        await conn.close()
    return {(str(r["tenant_id"]), r["day"].isoformat()): r["events"] for r in rows}


async def test_closed_days_are_cached_and_recomputed_when_late_events_arrive(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    one = await world.tree()
    two = await _move(world, one, await world.tree())
    today = datetime.combine(datetime.now(UTC).date(), time(), tzinfo=UTC)
    day_one, day_two = today - timedelta(days=3), today - timedelta(days=2)
    token_one = await runtime_token(world, one)
    await post_ok(client, token_one, one, tenant_one(day_one + timedelta(hours=12)))
    await post_ok(
        client, await runtime_token(world, two), two, tenant_two(day_two + timedelta(hours=23))
    )
    # Whole days, up to tomorrow: the closed days cached, today computed live.
    period = {
        "from": (today - timedelta(days=5)).date().isoformat(),
        "to": (today + timedelta(days=1)).date().isoformat(),
    }
    ask = {"partner_id": str(one.partner_id), **period}

    first = (await report(client, one.partner_token, **ask)).json()
    assert first["total"] == PARTNER
    events_one = sum(
        1
        for e in tenant_one(today)
        if e.kind.value
        in ("task.opened", "task.decided", "task.breached", "task.escalated", "run.finished")
    )
    assert await cached_days(settings, one.partner_id) == {
        (str(one.tenant_id), day_one.date().isoformat()): events_one,
        (str(two.tenant_id), day_two.date().isoformat()): 2,
    }
    # Read again: from the cache, the same figures.
    again = (await report(client, one.partner_token, **ask)).json()
    assert {**again, "generated_at": None} == {**first, "generated_at": None}

    # A decision of that day reaches the control plane only now.
    late = decided(day_one + timedelta(hours=13), 4000, "approved", within_sla=True)
    await post_ok(client, token_one, one, [late])
    body = (await report(client, one.tenant_token, tenant_id=str(one.tenant_id), **period)).json()
    # [1000, 2000, 3000, 4000]: p50 at rank 1.5, p95 at 2.85 = 3000 + 0.85 * 1000.
    assert body["total"]["approval_turnaround"]["turnaround"] == durations(4, 2500.0, 3850.0)
    assert body["total"]["sla"]["decided_within_sla"] == {"count": 4, "of": 7, "pct": 57.14}
    assert body["total"]["return_approvals"] == ONE["return_approvals"]
    cached = await cached_days(settings, one.partner_id)
    assert cached[(str(one.tenant_id), day_one.date().isoformat())] == events_one + 1


async def test_a_period_with_ragged_edges_counts_each_event_once(
    client: httpx.AsyncClient, world: World
) -> None:
    one = await world.tree()
    today = datetime.combine(datetime.now(UTC).date(), time(), tzinfo=UTC)
    base = today - timedelta(days=4)
    token = await runtime_token(world, one)
    # One human approval at 06:00 on each of four days.
    ms = [1000, 2000, 3000, 4000]
    await post_ok(
        client,
        token,
        one,
        [decided(base + timedelta(days=i, hours=6), m, "approved") for i, m in enumerate(ms)],
    )
    # From 07:00 on the first day (its approval is out) to 07:00 on the last (in).
    period = {
        "from": (base + timedelta(hours=7)).isoformat(),
        "to": (base + timedelta(days=3, hours=7)).isoformat(),
    }
    body = (await report(client, one.tenant_token, tenant_id=str(one.tenant_id), **period)).json()
    assert body["total"]["approval_turnaround"]["turnaround"] == durations(3, 3000.0, 3900.0)
