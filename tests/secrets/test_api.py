"""Secrets through the API: write-only values, metadata, CAS, isolation and the broker."""

from __future__ import annotations

import secrets as random

import httpx

from control_plane.identity.principal import Grant
from control_plane.identity.roles import Role
from tests.conftest import Tree, World, bearer


def url(tree: Tree, name: str | None = None, *, partner: bool = False) -> str:
    base = (
        f"/api/v1/partners/{tree.partner_id}/secrets"
        if partner
        else f"/api/v1/tenants/{tree.tenant_id}/secrets"
    )
    return f"{base}/{name}" if name else base


async def test_values_go_in_and_never_come_out(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    value = f"erp-key-{random.token_hex(8)}"
    headers = bearer(tree.tenant_token)
    created = await client.post(
        url(tree), json={"name": "erp-api-key", "value": value}, headers=headers
    )
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1 and value not in created.text
    again = await client.post(
        url(tree), json={"name": "erp-api-key", "value": "x"}, headers=headers
    )
    assert again.status_code == 409
    rotated = await client.put(
        url(tree, "erp-api-key"), json={"value": value + "2"}, headers=headers
    )
    assert rotated.status_code == 200 and rotated.json()["version"] == 2
    stale = await client.put(
        url(tree, "erp-api-key"), json={"value": "y", "cas": 1}, headers=headers
    )
    assert stale.status_code == 412
    listed = await client.get(url(tree), headers=headers)
    assert [s["name"] for s in listed.json()["items"]] == ["erp-api-key"]
    meta = await client.get(url(tree, "erp-api-key"), headers=headers)
    assert meta.json()["updated_by"].startswith("user:") and "value" not in meta.json()
    for response in (listed, meta, rotated):
        assert value not in response.text
    deleted = await client.delete(url(tree, "erp-api-key"), headers=headers)
    assert deleted.status_code == 204
    assert (await client.get(url(tree, "erp-api-key"), headers=headers)).json()["deleted"] is True
    missing = await client.put(url(tree, "nope"), json={"value": "x"}, headers=headers)
    assert missing.status_code == 404
    bad = await client.post(url(tree), json={"name": "Bad Name", "value": "x"}, headers=headers)
    assert bad.status_code == 400


async def test_partner_secrets(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    res = await client.post(
        url(tree, partner=True),
        json={"name": "pos-signing-key", "value": "v"},
        headers=bearer(tree.partner_token),
    )
    assert res.status_code == 201
    # A retailer under the partner does not manage the partner's secrets.
    res = await client.get(url(tree, partner=True), headers=bearer(tree.tenant_token))
    assert res.status_code == 404


async def test_other_tenants_secrets_are_404(client: httpx.AsyncClient, world: World) -> None:
    a, b = await world.tree(), await world.tree()
    await client.post(
        url(b), json={"name": "crm-token", "value": "b-secret"}, headers=bearer(b.tenant_token)
    )
    for token in (a.tenant_token, a.partner_token):
        headers = bearer(token)
        assert (await client.get(url(b), headers=headers)).status_code == 404
        assert (await client.get(url(b, "crm-token"), headers=headers)).status_code == 404
        assert (
            await client.put(url(b, "crm-token"), json={"value": "x"}, headers=headers)
        ).status_code == 404
        assert (await client.delete(url(b, "crm-token"), headers=headers)).status_code == 404
        assert (
            await client.post(url(b), json={"name": "x", "value": "y"}, headers=headers)
        ).status_code == 404


async def test_the_broker_serves_a_runtime_its_own_tenants_secrets(
    client: httpx.AsyncClient, world: World
) -> None:
    a, b = await world.tree(), await world.tree()
    for tree, value in ((a, "value-a"), (b, "value-b")):
        res = await client.post(
            url(tree),
            json={"name": "wms-password", "value": value},
            headers=bearer(tree.tenant_token),
        )
        assert res.status_code == 201
    runtime_a = await world.token(
        Grant(Role.TENANT_RUNTIME, partner_id=a.partner_id, tenant_id=a.tenant_id)
    )
    got = await client.get("/runtime/v1/secrets/wms-password", headers=bearer(runtime_a))
    assert got.status_code == 200 and got.json()["value"] == "value-a"
    assert got.headers["cache-control"] == "no-store"
    missing = await client.get("/runtime/v1/secrets/absent", headers=bearer(runtime_a))
    assert missing.status_code == 404
    # People, however senior, do not read values.
    for token in (a.tenant_token, a.partner_token, await world.token(Grant(Role.PLATFORM_ADMIN))):
        denied = await client.get("/runtime/v1/secrets/wms-password", headers=bearer(token))
        assert denied.status_code == 403
