"""The embedded path `make demo` uses: SQLite, migrations, demo data, scoping without RLS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from control_plane.app import create_app
from control_plane.config import Settings
from control_plane.db.migrate import upgrade
from control_plane.demo import DEMO_PASSWORD, seed
from control_plane.identity.admin import ensure_signing_key
from control_plane.runner import run_as


@pytest.fixture(scope="module")
async def embedded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(home=Path(tmp_path_factory.mktemp("embedded")), log_level="WARNING")
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    await asyncio.to_thread(upgrade, settings)  # Alembic runs its own event loop
    await run_as(settings, lambda c: ensure_signing_key(c, settings))
    first = await run_as(settings, seed)
    again = await run_as(settings, seed)
    assert first.created and not again.created
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://demo"
    ) as client:
        yield client
    for hook in app.on_shutdown:
        await hook()


async def login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/login", json={"email": email, "password": DEMO_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def items(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> list[dict[str, Any]]:
    response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()["items"]
    return result


async def test_partners_see_only_their_retailers(embedded: httpx.AsyncClient) -> None:
    northwind = await login(embedded, "admin@northwind.example")
    bluepeak = await login(embedded, "admin@bluepeak.example")
    mine = {t["slug"] for t in await items(embedded, "/api/v1/tenants", northwind)}
    assert mine == {"freshmart", "urbanthreads"}
    theirs = await items(embedded, "/api/v1/tenants", bluepeak)
    assert [t["slug"] for t in theirs] == ["harborhardware"]
    other = await embedded.get(f"/api/v1/tenants/{theirs[0]['id']}", headers=northwind)
    assert other.status_code == 404
    platform = await login(embedded, "admin@storeops.local")
    assert len(await items(embedded, "/api/v1/tenants", platform)) == 3


async def test_region_and_store_grants_narrow_the_stores(embedded: httpx.AsyncClient) -> None:
    admin = await login(embedded, "admin@freshmart.example")
    tenant = (await items(embedded, "/api/v1/tenants", admin))[0]
    stores = f"/api/v1/tenants/{tenant['id']}/stores"
    assert len(await items(embedded, stores, admin)) == 3
    north = await login(embedded, "north@freshmart.example")
    assert {s["code"] for s in await items(embedded, stores, north)} == {
        "FM-LEEDS-01",
        "FM-YORK-02",
    }
    leeds = await login(embedded, "leeds@freshmart.example")
    assert [s["code"] for s in await items(embedded, stores, leeds)] == ["FM-LEEDS-01"]
    brighton = next(
        s for s in await items(embedded, stores, admin) if s["code"] == "FM-BRIGHTON-03"
    )
    assert (await embedded.get(f"{stores}/{brighton['id']}", headers=north)).status_code == 404
    # A store manager reads its store but cannot rename it.
    mine = (await items(embedded, stores, leeds))[0]
    denied = await embedded.patch(f"{stores}/{mine['id']}", headers=leeds, json={"name": "Renamed"})
    assert denied.status_code == 403
    renamed = await embedded.patch(
        f"{stores}/{mine['id']}", headers=north, json={"name": "Leeds Central"}
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "Leeds Central"


async def test_effective_settings_inherit_from_the_partner(embedded: httpx.AsyncClient) -> None:
    admin = await login(embedded, "admin@harborhardware.example")
    tenant = (await items(embedded, "/api/v1/tenants", admin))[0]
    response = await embedded.get(f"/api/v1/tenants/{tenant['id']}/settings", headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["settings"]["allowed_templates"] == [
        "stock-transfer-approval",
        "maintenance-incident",
        "returns-refund-approval",
        "store-opening-closing-checklist",
    ]
    assert body["sources"]["allowed_templates"] == "partner"
    assert body["sources"]["sla_calendar"] == "platform"


async def test_user_and_client_lists_carry_their_grants(embedded: httpx.AsyncClient) -> None:
    platform = await login(embedded, "admin@storeops.local")
    users = {u["email"]: u for u in await items(embedded, "/api/v1/users?limit=200", platform)}
    assert [g["role"] for g in users["north@freshmart.example"]["grants"]] == ["regional_manager"]
    assert users["admin@storeops.local"]["grants"][0]["node"] == "platform"
    clients = await items(embedded, "/api/v1/clients", platform)
    assert [g["role"] for g in clients[0]["grants"]] == ["partner_admin"]
