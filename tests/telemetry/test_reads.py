"""Who reads a tenant's rollups and heartbeat, and what a read may ask for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from control_plane.identity.principal import Grant
from control_plane.identity.roles import Role
from tests.conftest import Tree, World, bearer
from tests.telemetry.conftest import mixed_events, post_ok, runtime_token


def urls(tree: Tree) -> list[str]:
    base = f"/api/v1/tenants/{tree.tenant_id}/telemetry"
    return [f"{base}/rollups", f"{base}/rollups?granularity=1h", f"{base}/heartbeat"]


async def test_retailer_partner_and_noc_read_others_are_refused(
    client: httpx.AsyncClient, world: World, tree: Tree, token: str
) -> None:
    other = await world.tree()
    await post_ok(client, token, tree, mixed_events(30))
    pid, tid = tree.partner_id, tree.tenant_id
    readers = {
        "retailer_admin": tree.tenant_token,
        "partner_admin": tree.partner_token,
        "noc_operator (platform)": await world.token(Grant(Role.NOC_OPERATOR)),
        "noc_operator (partner)": await world.token(Grant(Role.NOC_OPERATOR, partner_id=pid)),
        "platform_admin": await world.token(Grant(Role.PLATFORM_ADMIN)),
    }
    # They see the tenant, but their roles do not read its telemetry: 403.
    forbidden = {
        "partner_operator": await world.token(Grant(Role.PARTNER_OPERATOR, partner_id=pid)),
        "regional_manager": await world.token(
            Grant(Role.REGIONAL_MANAGER, partner_id=pid, tenant_id=tid, region_id=tree.region_id)
        ),
        "store_manager": await world.token(
            Grant(
                Role.STORE_MANAGER,
                partner_id=pid,
                tenant_id=tid,
                region_id=tree.region_id,
                store_id=tree.store_id,
            )
        ),
        "its runtime": token,
    }
    # Another tree's people do not see the tenant at all: 404.
    hidden = {
        "other retailer_admin": other.tenant_token,
        "other partner_admin": other.partner_token,
        "other noc_operator": await world.token(
            Grant(Role.NOC_OPERATOR, partner_id=other.partner_id)
        ),
        "other runtime": await runtime_token(world, other),
    }
    for expected, tokens in ((200, readers), (403, forbidden), (404, hidden)):
        for name, who in tokens.items():
            for url in urls(tree):
                response = await client.get(url, headers=bearer(who))
                assert response.status_code == expected, (name, url, response.text)
                if expected != 200:
                    assert response.headers["content-type"].startswith("application/problem+json")
                elif url.endswith("rollups"):
                    assert sum(b["events"] for b in response.json()["buckets"]) == 30
    assert (await client.get(urls(tree)[0])).status_code == 401


async def test_a_read_names_a_sensible_window(client: httpx.AsyncClient, tree: Tree) -> None:
    url = urls(tree)[0]
    now = datetime.now(UTC)
    headers = bearer(tree.tenant_token)
    backwards = {"from": now.isoformat(), "to": (now - timedelta(hours=1)).isoformat()}
    too_wide = {"from": (now - timedelta(days=8)).isoformat(), "to": now.isoformat()}
    for params, reason in ((backwards, "before"), (too_wide, "at most 7 days")):
        response = await client.get(url, params=params, headers=headers)
        assert response.status_code == 422, response.text
        assert reason in response.json()["detail"]
    assert (await client.get(url, params={"granularity": "2m"}, headers=headers)).status_code == 400
    wide_hours = {"granularity": "1h", **too_wide}
    response = await client.get(url, params=wide_hours, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["granularity"] == "1h" and body["buckets"] == []
    assert datetime.fromisoformat(body["from"]) == datetime.fromisoformat(too_wide["from"])
    assert body["histogram_bounds_ms"][0] == 50


async def test_the_heartbeat_before_any_is_empty(client: httpx.AsyncClient, tree: Tree) -> None:
    response = await client.get(urls(tree)[2], headers=bearer(tree.tenant_token))
    assert response.status_code == 200
    assert response.json() == {
        "tenant_id": str(tree.tenant_id),
        "runtime": None,
        "at": None,
        "received_at": None,
        "age_seconds": None,
        "data": {},
    }
