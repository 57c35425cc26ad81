"""The alert API in the OpenAPI document, and the second wall: PostgreSQL row-level
security on the alert tables, seen as the application role with no ORM in between."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from control_plane.config import Settings
from tests.alerts.conftest import evaluate, heartbeat, make_rule, minutes_ago, new_key
from tests.conftest import World, bearer

PATHS = {
    "/api/v1/alerts": {"get"},
    "/api/v1/alerts/{alert_id}": {"get"},
    "/api/v1/alerts/{alert_id}/acknowledge": {"post"},
    "/api/v1/alerts/{alert_id}/resolve": {"post"},
    "/api/v1/alerts/{alert_id}/assign": {"post"},
    "/api/v1/alerts/{alert_id}/notes": {"post"},
    "/api/v1/alert-rules": {"get", "post"},
    "/api/v1/alert-rules/{rule_id}": {"get", "patch", "delete"},
    "/api/v1/silences": {"get", "post"},
    "/api/v1/silences/{silence_id}": {"get", "delete"},
    "/api/v1/maintenance-windows": {"get", "post"},
    "/api/v1/maintenance-windows/{window_id}": {"get", "delete"},
    "/api/v1/notification-channels": {"get", "post"},
    "/api/v1/notification-channels/{channel_id}": {"get", "patch", "delete"},
}


async def test_every_alert_route_is_documented(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    for path, methods in PATHS.items():
        assert path in doc["paths"], path
        for method in methods:
            operation = doc["paths"][path][method]
            assert operation["operationId"] and operation.get("description"), (path, method)
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()
           if isinstance(op, dict) and "operationId" in op]  # fmt: skip
    assert len(ids) == len(set(ids))
    assert "/api/v1/tenants/{tenant_id}/alert-rules" in doc["paths"]
    channel = doc["components"]["schemas"]["NotificationChannel"]["properties"]
    assert "secret" not in channel and "has_secret" in channel


async def test_row_level_security_hides_other_tenants_alert_rows(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    mine, theirs = await world.tree(), await world.tree()
    key = new_key("rls")
    for tree in (mine, theirs):
        await make_rule(
            client,
            tree.partner_token,
            key=key,
            partner_id=str(tree.partner_id),
            metric="queue_depth",
            comparator=">",
            threshold=1,
            severity="warning",
        )
        await heartbeat(client, world, tree, minutes_ago(5), queue_depth=5)
    await evaluate(world, minutes_ago(5))
    conn = await asyncpg.connect(settings.database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        async with conn.transaction():
            await conn.execute(
                "SELECT set_config('storeops.tenant_ids', $1, true)", str(mine.tenant_id)
            )
            seen = await conn.fetch("SELECT tenant_id FROM alerts WHERE rule_key = $1", key)
            rules = await conn.fetch("SELECT partner_id FROM alert_rules WHERE key = $1", key)
            platform = await conn.fetchval(
                "SELECT count(*) FROM alert_rules WHERE partner_id IS NULL"
            )
        assert [r["tenant_id"] for r in seen] == [mine.tenant_id]
        assert rules == []  # partner rules belong to the partner's scope
        assert platform >= 7  # platform defaults are readable by everyone
        async with conn.transaction():
            await conn.execute(
                "SELECT set_config('storeops.partner_ids', $1, true)", str(mine.partner_id)
            )
            try:
                await conn.execute(
                    "INSERT INTO alert_rules (id, created_at, updated_at, version, key, name,"
                    " description, metric, comparator, threshold, for_seconds, severity, enabled)"
                    " VALUES (gen_random_uuid(), now(), now(), 1, $1, 'x', '', 'queue_depth',"
                    " '>', 1, 0, 'info', true)",
                    new_key(),
                )
                raise AssertionError("a partner scope wrote a platform rule")
            except asyncpg.InsufficientPrivilegeError:
                pass
        async with conn.transaction():
            await conn.execute(
                "SELECT set_config('storeops.partner_ids', $1, true)", str(mine.partner_id)
            )
            assert await conn.fetchval("SELECT count(*) FROM alert_rules WHERE partner_id IS NULL")
            deleted = await conn.execute("DELETE FROM alert_rules WHERE partner_id IS NULL")
            assert deleted == "DELETE 0"  # readable, not deletable
            mine_rules = await conn.execute(
                "UPDATE alert_rules SET name = name WHERE key = $1", key
            )
            assert mine_rules == "UPDATE 1"  # its own rule, and not the other partner's
        async with conn.transaction():
            assert await conn.fetchval("SELECT count(*) FROM alerts") == 0  # no scope at all
    finally:
        await conn.close()


async def test_another_partners_rules_silences_and_windows_are_404(
    client: httpx.AsyncClient, world: World
) -> None:
    mine, theirs = await world.tree(), await world.tree()
    rule = await make_rule(
        client,
        mine.partner_token,
        key=new_key(),
        partner_id=str(mine.partner_id),
        metric="queue_depth",
        comparator=">",
        threshold=1,
        severity="info",
    )
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    made = {
        "alert-rules": rule["id"],
        "silences": (
            await client.post(
                "/api/v1/silences",
                json={"partner_id": str(mine.partner_id), "ends_at": until, "reason": "r"},
                headers=bearer(mine.partner_token),
            )
        ).json()["id"],
        "maintenance-windows": (
            await client.post(
                "/api/v1/maintenance-windows",
                json={"partner_id": str(mine.partner_id), "starts_at": minutes_ago(1).isoformat(),
                      "ends_at": until, "reason": "r"},
                headers=bearer(mine.partner_token),
            )
        ).json()["id"],
    }  # fmt: skip
    for kind, object_id in made.items():
        url = f"/api/v1/{kind}/{object_id}"
        assert (await client.get(url, headers=bearer(mine.partner_token))).status_code == 200
        for token in (theirs.partner_token, theirs.tenant_token):
            assert (await client.get(url, headers=bearer(token))).status_code == 404, url
        gone = await client.delete(url, headers=bearer(theirs.partner_token))
        assert gone.status_code == 404, url
        assert (await client.get(url, headers=bearer(mine.partner_token))).status_code == 200
    patched = await client.patch(
        f"/api/v1/alert-rules/{rule['id']}",
        json={"threshold": 5},
        headers=bearer(theirs.partner_token),
    )
    assert patched.status_code == 404
