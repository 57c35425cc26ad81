"""Alerts from what runtimes really send: run failures, a runtime going quiet, a tenant
leaving the fleet."""

from __future__ import annotations

from datetime import timedelta

import httpx

from control_plane.contracts.telemetry import Kind
from control_plane.tenancy import service as tenancy
from tests.alerts.conftest import alerts_of, evaluate, heartbeat, make_rule, minutes_ago, new_key
from tests.conftest import World
from tests.telemetry.conftest import event, post_ok, runtime_token


async def test_failure_rate_and_health_rules_fire_from_telemetry_with_the_reason(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    failing, degraded = new_key("fail"), new_key("health")
    common = {"partner_id": str(tree.partner_id), "for_seconds": 0, "severity": "critical"}
    await make_rule(client, tree.partner_token, key=failing, metric="failure_rate",
                    comparator=">", threshold=0.25, **common)  # fmt: skip
    await make_rule(client, tree.partner_token, key=degraded, metric="health_status",
                    comparator=">=", threshold="degraded", **common)  # fmt: skip
    t0 = minutes_ago(6)
    finished = [
        event(Kind.RUN_FINISHED, t0 - timedelta(minutes=1), template_id="price-sync", status=s)
        for s in ("failed",) * 4 + ("succeeded",) * 6
    ]
    beat = event(Kind.HEARTBEAT, t0, data={"queue_depth": 0})
    await post_ok(client, await runtime_token(world, tree), tree, [*finished, beat])
    await evaluate(world, t0)
    [rate] = await alerts_of(client, tree.partner_token, tree.tenant_id, failing)
    assert rate["state"] == "open" and rate["value"] == 0.4
    assert rate["reason"] == "40% of runs failed in the last 15 min (4 of 10)"
    [health] = await alerts_of(client, tree.partner_token, tree.tenant_id, degraded)
    assert health["value"] == 1.0
    assert health["reason"].startswith("degraded: 40% of runs failed")

    # The runtime goes quiet: health is down (still >= degraded), then it is suspended.
    await evaluate(world, t0 + timedelta(minutes=5))
    [health] = await alerts_of(client, tree.partner_token, tree.tenant_id, degraded)
    assert health["state"] == "open" and health["value"] == 2.0
    assert health["reason"].startswith("down: last heartbeat 300s ago")
    await world.run(lambda c: tenancy.transition_tenant(c, tree.tenant_id, "suspend"))
    await evaluate(world, t0 + timedelta(minutes=5, seconds=15))
    states = {
        a["rule_key"]: (a["state"], a["resolution"])
        for key in (failing, degraded)
        for a in await alerts_of(client, tree.partner_token, tree.tenant_id, key)
    }
    assert states == {
        failing: ("resolved", "tenant_inactive"),
        degraded: ("resolved", "tenant_inactive"),
    }


async def test_a_tenant_that_never_reported_has_no_alerts(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    key = new_key("age")
    await make_rule(client, tree.partner_token, key=key, partner_id=str(tree.partner_id),
                    metric="heartbeat_age_s", comparator=">", threshold=60, severity="critical")  # fmt: skip
    await evaluate(world, minutes_ago(1))
    assert await alerts_of(client, tree.partner_token, tree.tenant_id, key) == []
    beat = minutes_ago(5)
    await heartbeat(client, world, tree, beat)
    await evaluate(world, beat + timedelta(seconds=240))
    [alert] = await alerts_of(client, tree.partner_token, tree.tenant_id, key)
    assert alert["reason"] == "last heartbeat 240s ago"
