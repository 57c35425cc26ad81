"""The API answers, authenticates and scopes on PostgreSQL."""

from __future__ import annotations

from httpx import AsyncClient

from tests.conftest import World, bearer


async def test_health_and_readiness(client: AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_partner_admin_sees_own_tenant_only(client: AsyncClient, world: World) -> None:
    a, b = await world.tree(), await world.tree()
    mine = await client.get(f"/api/v1/tenants/{a.tenant_id}", headers=bearer(a.partner_token))
    assert mine.status_code == 200, mine.text
    assert mine.headers["etag"]
    other = await client.get(f"/api/v1/tenants/{b.tenant_id}", headers=bearer(a.partner_token))
    assert other.status_code == 404
    assert other.headers["content-type"].startswith("application/problem+json")
    listed = await client.get("/api/v1/tenants", headers=bearer(a.partner_token))
    assert {t["id"] for t in listed.json()["items"]} == {str(a.tenant_id)}
