"""Canary: distinctive secret values planted through every path must surface nowhere but
in the broker's answer to the runtime that uses them."""

from __future__ import annotations

import asyncio
import logging
import secrets as random
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from click.testing import CliRunner
from litestar import Litestar

from control_plane.cli import main
from control_plane.config import Settings, get_settings
from control_plane.identity.principal import Grant
from control_plane.identity.roles import Role
from tenant_runtime.secrets import BrokerProvider, SecretCache
from tests.conftest import World, bearer
from tests.db.test_rls import dsn


@pytest.fixture
async def recording_client(app: Litestar) -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:
    bodies: list[str] = []

    async def keep(response: httpx.Response) -> None:
        await response.aread()
        if not response.url.path.startswith("/runtime/v1/secrets/"):
            bodies.append(response.text)
        bodies.append(str(response.headers))

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", event_hooks={"response": [keep]}
    ) as client:
        yield client, bodies


async def test_planted_values_surface_nowhere(
    recording_client: tuple[httpx.AsyncClient, list[str]],
    world: World,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    client, bodies = recording_client
    canaries = [f"CANARY{random.token_hex(12)}" for _ in range(4)]
    tree = await world.tree()
    headers = bearer(tree.tenant_token)
    base = f"/api/v1/tenants/{tree.tenant_id}/secrets"

    # The API: create, rotate, a refused duplicate, a stale rotation, list, read metadata.
    await client.post(base, json={"name": "erp-key", "value": canaries[0]}, headers=headers)
    await client.post(base, json={"name": "erp-key", "value": canaries[0]}, headers=headers)
    await client.put(f"{base}/erp-key", json={"value": canaries[1]}, headers=headers)
    await client.put(f"{base}/erp-key", json={"value": canaries[1], "cas": 1}, headers=headers)
    await client.post(base, json={"name": "Bad Name", "value": canaries[1]}, headers=headers)
    await client.post(
        base,
        json={"name": "pos-key", "value": canaries[1]},
        headers={**headers, "Idempotency-Key": random.token_hex(8)},
    )
    await client.get(base, headers=headers)
    await client.get(f"{base}/erp-key", headers=headers)

    # Onboarding a tenant (runtime access is provisioned on the way).
    platform = bearer(await world.token(Grant(Role.PLATFORM_ADMIN)))
    onboarded = await client.post(
        f"/api/v1/partners/{tree.partner_id}/tenants",
        json={"slug": f"t-{random.token_hex(3)}", "name": "Canary", "timezone": "UTC"},
        headers=platform,
    )
    assert onboarded.status_code == 201

    # The runtime resolves a connector binding through the broker.
    runtime = await world.token(
        Grant(Role.TENANT_RUNTIME, partner_id=tree.partner_id, tenant_id=tree.tenant_id)
    )
    cache = SecretCache(BrokerProvider(client, lambda: runtime), ttl=60)
    binding = await cache.resolve({"auth": {"token": "secret://erp-key"}, "url": "https://erp"})
    assert binding["auth"]["token"] == canaries[1]

    # The CLI, value on stdin.
    monkeypatch.setenv("STOREOPS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("STOREOPS_HOME", str(settings.home))
    get_settings.cache_clear()
    try:
        result = await asyncio.to_thread(  # the CLI runs its own event loop
            CliRunner().invoke,
            main,
            ["secret", "set", "--tenant", str(tree.tenant_id), "wms-key"],
            input=canaries[2] + "\n",
        )
        assert result.exit_code == 0, result.output
        cli_output = result.output
    finally:
        get_settings.cache_clear()

    # Nowhere: HTTP bodies and headers, logs, console, audit rows, idempotency records, disk.
    conn = await asyncpg.connect(dsn(settings.admin_database_url))
    try:
        audit = "\n".join(str(dict(r)) for r in await conn.fetch("SELECT * FROM audit_entries"))
        stored = "\n".join(str(dict(r)) for r in await conn.fetch("SELECT * FROM idempotency_keys"))
    finally:
        await conn.close()
    captured = capfd.readouterr()
    on_disk = "\n".join(
        p.read_bytes().decode("latin-1") for p in settings.home.rglob("*") if p.is_file()
    )
    places = {
        "HTTP bodies": "\n".join(bodies),
        "logs": "\n".join(r.getMessage() for r in caplog.records) + caplog.text,
        "console": captured.out + captured.err + cli_output,
        "audit rows": audit,
        "idempotency records": stored,
        "files under the home": on_disk,
    }
    for canary in canaries:
        for place, text in places.items():
            assert canary not in text, f"a secret value leaked into {place}"
    assert "secret.create" in audit and "secret.rotate" in audit
