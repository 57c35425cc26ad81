"""The catalog API on PostgreSQL: publish, immutability, semver, diff, fork, retire, isolation."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import httpx

from control_plane.identity.principal import Grant
from control_plane.identity.roles import Role
from tests.conftest import Tree, World, bearer

TEMPLATE = Path(__file__).resolve().parents[2] / "templates/stock-transfer-approval/1.0.0.yaml"
BASE = TEMPLATE.read_text()


def variant(slug: str, *, owner: str = "platform", version: str = "1.0.0", extra: str = "") -> str:
    text = BASE.replace("id: stock-transfer-approval", f"id: {slug}", 1)
    text = text.replace("owner: platform", f"owner: {owner}", 1)
    text = text.replace("version: 1.0.0", f"version: {version}", 1)
    return text + extra


async def platform_token(world: World) -> str:
    return await world.token(Grant(Role.PLATFORM_ADMIN))


async def publish(client: httpx.AsyncClient, token: str, source: str) -> httpx.Response:
    return await client.post(
        "/api/v1/catalog/templates", json={"source": source}, headers=bearer(token)
    )


async def partner_slug(client: httpx.AsyncClient, tree: Tree) -> str:
    res = await client.get(
        f"/api/v1/partners/{tree.partner_id}", headers=bearer(tree.partner_token)
    )
    slug: str = res.json()["slug"]
    return slug


async def test_publish_is_immutable_and_idempotent(client: httpx.AsyncClient, world: World) -> None:
    token = await platform_token(world)
    slug = f"transfer-{secrets.token_hex(3)}"
    first = await publish(client, token, variant(slug))
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["created"] is True and body["version"]["semver"] == "1.0.0"
    assert body["version"]["diagram"].startswith("flowchart TD")
    # The same content again (a comment more changes nothing): a no-op.
    again = await publish(client, token, "# reviewed\n" + variant(slug))
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["version"]["id"] == body["version"]["id"]
    # Other content under the same version: refused.
    changed = await publish(client, token, variant(slug).replace("timeout: 30s", "timeout: 45s"))
    assert changed.status_code == 409
    assert changed.json()["type"].endswith("version-immutable")
    versions = (
        await client.get(
            f"/api/v1/catalog/templates/{body['template']['id']}", headers=bearer(token)
        )
    ).json()
    assert versions["versions"] == ["1.0.0"]


async def test_invalid_templates_are_refused_with_every_problem(
    client: httpx.AsyncClient, world: World
) -> None:
    token = await platform_token(world)
    broken = variant(f"broken-{secrets.token_hex(3)}").replace("next: check_value", "next: nowhere")
    res = await publish(client, token, broken)
    assert res.status_code == 422
    problems = res.json()["problems"]
    assert any("unknown step 'nowhere'" in p for p in problems)


async def test_semver_breaking_changes_need_a_major(
    client: httpx.AsyncClient, world: World
) -> None:
    token = await platform_token(world)
    slug = f"transfer-{secrets.token_hex(3)}"
    assert (await publish(client, token, variant(slug))).status_code == 201
    required = variant(slug, version="1.1.0").replace(
        "required: [auto_approve_below]", "required: [auto_approve_below, approval_sla]"
    )
    refused = await publish(client, token, required)
    assert refused.status_code == 422
    assert refused.json()["type"].endswith("breaking-change-needs-major")
    assert "approval_sla" in refused.json()["detail"] and "2.0.0" in refused.json()["detail"]
    minor = variant(slug, version="1.1.0").replace("timeout: 30s", "timeout: 45s")
    assert (await publish(client, token, minor)).status_code == 201
    major = required.replace("version: 1.1.0", "version: 2.0.0", 1)
    published = await publish(client, token, major)
    assert published.status_code == 201, published.text
    template_id = published.json()["template"]["id"]
    diff = await client.get(f"/api/v1/catalog/templates/{template_id}/diff", headers=bearer(token))
    assert diff.status_code == 200
    assert diff.json()["from_version"] == "1.1.0" and diff.json()["to_version"] == "2.0.0"
    assert diff.json()["breaking_changes"] == ["parameter 'approval_sla' is newly required"]
    explicit = await client.get(
        f"/api/v1/catalog/templates/{template_id}/diff?from=1.0.0&to=1.1.0", headers=bearer(token)
    )
    assert explicit.json()["breaking_changes"] == []
    assert "-    timeout: 30s" in explicit.json()["unified_diff"]


async def test_deprecate_yank_restore(client: httpx.AsyncClient, world: World) -> None:
    token = await platform_token(world)
    created = await publish(client, token, variant(f"transfer-{secrets.token_hex(3)}"))
    template_id = created.json()["template"]["id"]
    url = f"/api/v1/catalog/templates/{template_id}/versions/1.0.0"
    for action, status in (
        ("deprecate", "deprecated"),
        ("yank", "yanked"),
        ("restore", "published"),
    ):
        res = await client.post(
            f"{url}/{action}", json={"note": f"{action} test"}, headers=bearer(token)
        )
        assert res.status_code == 200, res.text
        assert res.json()["status"] == status
    bad = await client.post(f"{url}/explode", headers=bearer(token))
    assert bad.status_code == 422
    audit = await client.get(
        f"/api/v1/audit?action=catalog.*&target_id={created.json()['version']['id']}",
        headers=bearer(token),
    )
    assert [e["action"] for e in audit.json()["items"]][:3] == [
        "catalog.published",
        "catalog.yanked",
        "catalog.deprecated",
    ]


async def test_partners_forks_and_private_templates(
    client: httpx.AsyncClient, world: World
) -> None:
    token = await platform_token(world)
    a, b = await world.tree(), await world.tree()
    upstream = await publish(client, token, variant(f"transfer-{secrets.token_hex(3)}"))
    upstream_id = upstream.json()["template"]["id"]
    # Partner A forks the platform template into its private catalog.
    fork = await client.post(
        f"/api/v1/catalog/templates/{upstream_id}/fork",
        json={
            "version": "1.0.0",
            "partner_id": str(a.partner_id),
            "slug": f"a-{secrets.token_hex(3)}",
        },
        headers=bearer(a.partner_token),
    )
    assert fork.status_code == 201, fork.text
    forked = fork.json()["template"]
    assert forked["forked_from_id"] == upstream_id and forked["owner"] == str(a.partner_id)
    # Upstream moves on: the fork's owner sees it.
    source = upstream.json()["version"]["source"].replace("version: 1.0.0", "version: 1.1.0", 1)
    assert (await publish(client, token, source)).status_code == 201
    seen = await client.get(
        f"/api/v1/catalog/templates/{forked['id']}", headers=bearer(a.partner_token)
    )
    assert seen.json()["upstream_updates"] == ["1.1.0"]
    # A's retailers see A's private template; partner B and its retailers do not.
    assert (
        await client.get(
            f"/api/v1/catalog/templates/{forked['id']}", headers=bearer(a.tenant_token)
        )
    ).status_code == 200
    for other in (b.partner_token, b.tenant_token):
        assert (
            await client.get(f"/api/v1/catalog/templates/{forked['id']}", headers=bearer(other))
        ).status_code == 404
        listed = await client.get("/api/v1/catalog/templates?limit=200", headers=bearer(other))
        assert forked["id"] not in {t["id"] for t in listed.json()["items"]}
    # B cannot publish into A's catalog, nor fork into it.
    slug_a = await partner_slug(client, a)
    res = await publish(
        client, b.partner_token, variant(f"b-{secrets.token_hex(3)}", owner=f"partner:{slug_a}")
    )
    assert res.status_code in (403, 404)
    res = await client.post(
        f"/api/v1/catalog/templates/{upstream_id}/fork",
        json={"version": "1.0.0", "partner_id": str(a.partner_id)},
        headers=bearer(b.partner_token),
    )
    assert res.status_code == 404
    # Retailers read the catalog but cannot publish platform templates.
    res = await publish(client, a.tenant_token, variant(f"t-{secrets.token_hex(3)}"))
    assert res.status_code == 403


async def test_concurrent_identical_publishes_create_one_version(
    client: httpx.AsyncClient, world: World
) -> None:
    token = await platform_token(world)
    source = variant(f"transfer-{secrets.token_hex(3)}")
    results = await asyncio.gather(*(publish(client, token, source) for _ in range(3)))
    codes = sorted(r.status_code for r in results)
    assert codes.count(201) == 1, [r.text for r in results]
    assert all(c in (200, 201, 409) for c in codes)


async def test_the_dsl_schema_is_served(client: httpx.AsyncClient, world: World) -> None:
    res = await client.get("/api/v1/catalog/schema", headers=bearer(await platform_token(world)))
    assert res.status_code == 200
    schema: dict[str, Any] = res.json()
    assert "Template" in schema["$defs"]


async def test_a_tenants_catalog_follows_its_allowed_templates(
    client: httpx.AsyncClient, world: World
) -> None:
    token = await platform_token(world)
    tree = await world.tree()
    keep, drop = f"keep-{secrets.token_hex(3)}", f"drop-{secrets.token_hex(3)}"
    for slug in (keep, drop):
        assert (await publish(client, token, variant(slug))).status_code == 201
    url = f"/api/v1/catalog/templates?tenant_id={tree.tenant_id}&limit=200"
    before = {
        t["slug"]
        for t in (await client.get(url, headers=bearer(tree.tenant_token))).json()["items"]
    }
    assert {keep, drop} <= before
    patched = await client.patch(
        f"/api/v1/tenants/{tree.tenant_id}",
        json={"settings": {"allowed_templates": [keep]}},
        headers=bearer(tree.partner_token),
    )
    assert patched.status_code == 200, patched.text
    after = {
        t["slug"]
        for t in (await client.get(url, headers=bearer(tree.tenant_token))).json()["items"]
    }
    assert after == {keep}
    other = await world.tree()
    hidden = await client.get(
        f"/api/v1/catalog/templates?tenant_id={other.tenant_id}", headers=bearer(tree.tenant_token)
    )
    assert hidden.status_code == 404
