"""Alert rules: impossible thresholds refused precisely, partner overrides and disabling."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from control_plane.alerts.metrics import check_rule
from tests.alerts.conftest import (
    alerts_of,
    evaluate,
    heartbeat,
    make_rule,
    minutes_ago,
    new_key,
    platform_token,
)
from tests.conftest import World, bearer

IMPOSSIBLE: list[tuple[dict[str, Any], str, str]] = [
    ({"metric": "failure_rate", "comparator": ">", "threshold": 1.5}, "threshold", "[0, 1]"),
    ({"metric": "failure_rate", "comparator": ">", "threshold": -0.1}, "threshold", "[0, 1]"),
    ({"metric": "sla_breach_rate", "comparator": ">=", "threshold": 2}, "threshold", "[0, 1]"),
    ({"metric": "queue_depth", "comparator": ">", "threshold": -1}, "threshold", "[0, ∞)"),
    ({"metric": "queue_depth", "comparator": ">", "threshold": 2.5}, "threshold", "whole number"),
    ({"metric": "dead_letters", "comparator": ">", "threshold": -3}, "threshold", "[0, ∞)"),
    ({"metric": "heartbeat_age_s", "comparator": ">", "threshold": -5}, "threshold", "[0, ∞)"),
    ({"metric": "oldest_pending_s", "comparator": ">", "threshold": -1}, "threshold", "seconds"),
    ({"metric": "health_status", "comparator": "==", "threshold": "sick"}, "threshold", "down"),
    ({"metric": "health_status", "comparator": "<", "threshold": "down"}, "comparator", ">="),
    ({"metric": "cpu", "comparator": ">", "threshold": 1}, "metric", "failure_rate"),
    ({"metric": "queue_depth", "comparator": "!=", "threshold": 1}, "comparator", ">="),
    ({"metric": "failure_rate", "comparator": "<", "threshold": 0}, "comparator", "never"),
    ({"metric": "failure_rate", "comparator": ">", "threshold": 1}, "comparator", "never"),
    ({"metric": "queue_depth", "comparator": "<", "threshold": 0}, "comparator", "never"),
    (
        {"metric": "queue_depth", "comparator": ">", "threshold": 1, "for_seconds": -1},
        "for_seconds",
        "[0, 604800]",
    ),
    (
        {"metric": "queue_depth", "comparator": ">", "threshold": 1, "for_seconds": 604801},
        "for_seconds",
        "7 days",
    ),
]


@pytest.mark.parametrize(("fields", "field", "allowed"), IMPOSSIBLE)
async def test_an_impossible_rule_is_refused_naming_the_field_and_range(
    client: httpx.AsyncClient, world: World, fields: dict[str, Any], field: str, allowed: str
) -> None:
    tree = await world.tree()
    key = new_key()
    body = {"key": key, "partner_id": str(tree.partner_id), "severity": "warning", **fields}
    response = await client.post(
        "/api/v1/alert-rules", json=body, headers=bearer(tree.partner_token)
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem["type"] == "urn:storeops:problem:invalid-input"
    named = [e for e in problem["errors"] if e["field"] == field]
    assert named, problem
    assert allowed in named[0]["allowed"] + named[0]["message"], problem
    assert field in problem["detail"]
    # Nothing was made.
    listed = await client.get(
        "/api/v1/alert-rules",
        params={"partner_id": str(tree.partner_id)},
        headers=bearer(tree.partner_token),
    )
    assert [r for r in listed.json()["items"] if r["key"] == key] == []


async def test_an_update_making_a_rule_impossible_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    rule = await make_rule(
        client,
        tree.partner_token,
        key=new_key(),
        partner_id=str(tree.partner_id),
        metric="failure_rate",
        comparator=">",
        threshold=0.3,
        severity="critical",
    )
    url = f"/api/v1/alert-rules/{rule['id']}"
    refused = await client.patch(url, json={"threshold": 3}, headers=bearer(tree.partner_token))
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "threshold"
    again = (await client.get(url, headers=bearer(tree.partner_token))).json()
    assert again["threshold"] == 0.3 and again["updated_at"] == rule["updated_at"]
    ok = await client.patch(url, json={"threshold": 0.4}, headers=bearer(tree.partner_token))
    assert ok.status_code == 200 and ok.json()["threshold"] == 0.4


def test_health_status_takes_level_names() -> None:
    assert check_rule("health_status", ">=", "degraded", 0) == (1.0, [])
    assert check_rule("health_status", "==", "down", 60) == (2.0, [])


async def test_platform_defaults_are_seeded_and_partners_may_not_change_them(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    listed = await client.get(
        "/api/v1/alert-rules", params={"platform": "true"}, headers=bearer(tree.partner_token)
    )
    keys = {r["key"] for r in listed.json()["items"]}
    assert {"runtime-down", "runtime-degraded", "dead-letters"} <= keys
    down = next(r for r in listed.json()["items"] if r["key"] == "runtime-down")
    refused = await client.patch(
        f"/api/v1/alert-rules/{down['id']}",
        json={"enabled": False},
        headers=bearer(tree.partner_token),
    )
    assert refused.status_code == 403
    platform_rule = await client.post(
        "/api/v1/alert-rules",
        json={"key": new_key(), "metric": "queue_depth", "comparator": ">", "threshold": 5,
              "severity": "info"},
        headers=bearer(tree.partner_token),
    )  # fmt: skip
    assert platform_rule.status_code == 403


async def test_a_partner_override_replaces_or_disables_the_platform_rule(
    client: httpx.AsyncClient, world: World
) -> None:
    platform = await platform_token(world)
    key = new_key("depth")
    await make_rule(
        client,
        platform,
        key=key,
        metric="queue_depth",
        comparator=">",
        threshold=10,
        for_seconds=0,
        severity="warning",
    )
    plain, raised, off = await world.tree(), await world.tree(), await world.tree()
    raised_rule = await make_rule(
        client, raised.partner_token, key=key, partner_id=str(raised.partner_id), threshold=100
    )
    assert raised_rule["metric"] == "queue_depth" and raised_rule["severity"] == "warning"
    await make_rule(
        client, off.partner_token, key=key, partner_id=str(off.partner_id), enabled=False
    )
    duplicate = await client.post(
        "/api/v1/alert-rules",
        json={"key": key, "partner_id": str(off.partner_id), "threshold": 5},
        headers=bearer(off.partner_token),
    )
    assert duplicate.status_code == 409

    t0 = minutes_ago(10)
    for tree in (plain, raised, off):
        await heartbeat(client, world, tree, t0, queue_depth=50)
    await evaluate(world, t0)
    assert [a["state"] for a in await alerts_of(client, platform, plain.tenant_id, key)] == ["open"]
    assert await alerts_of(client, platform, raised.tenant_id, key) == []
    assert await alerts_of(client, platform, off.tenant_id, key) == []

    # Deleting the override: the platform rule applies again.
    deleted = await client.delete(
        f"/api/v1/alert-rules/{raised_rule['id']}", headers=bearer(raised.partner_token)
    )
    assert deleted.status_code == 204
    await evaluate(world, t0 + timedelta(seconds=15))
    assert [a["state"] for a in await alerts_of(client, platform, raised.tenant_id, key)] == [
        "open"
    ]


async def test_switching_a_rule_off_resolves_its_alerts_and_rules_are_audited(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    key = new_key("off")
    rule = await make_rule(
        client,
        tree.partner_token,
        key=key,
        partner_id=str(tree.partner_id),
        metric="dead_letters",
        comparator=">",
        threshold=0,
        severity="warning",
    )
    t0 = minutes_ago(10)
    await heartbeat(client, world, tree, t0, dead_letters=3)
    await evaluate(world, t0)
    [alert] = await alerts_of(client, tree.partner_token, tree.tenant_id, key)
    assert alert["state"] == "open" and alert["reason"] == "3 dead-lettered steps"

    # In force for the tenant, as its retailer's staff can see too.
    effective = await client.get(
        f"/api/v1/tenants/{tree.tenant_id}/alert-rules", headers=bearer(tree.tenant_token)
    )
    assert effective.status_code == 200
    assert key in {r["key"] for r in effective.json()}
    other = await world.tree()
    hidden = await client.get(
        f"/api/v1/tenants/{tree.tenant_id}/alert-rules", headers=bearer(other.partner_token)
    )
    assert hidden.status_code == 404

    off = await client.patch(
        f"/api/v1/alert-rules/{rule['id']}",
        json={"enabled": False},
        headers=bearer(tree.partner_token),
    )
    assert off.status_code == 200
    await evaluate(world, t0 + timedelta(seconds=15))
    [alert] = await alerts_of(client, tree.partner_token, tree.tenant_id, key)
    assert alert["state"] == "resolved" and alert["resolution"] == "rule_disabled"

    audit = await client.get(
        "/api/v1/audit", params={"target_id": rule["id"]}, headers=bearer(tree.partner_token)
    )
    assert sorted(e["action"] for e in audit.json()["items"]) == [
        "alert_rule.create",
        "alert_rule.update",
    ]
