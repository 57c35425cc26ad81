"""The console on the embedded SQLite database (`make demo`): the same answers without RLS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from litestar import Litestar

from control_plane.app import create_app
from control_plane.config import Settings
from control_plane.db.migrate import upgrade
from control_plane.identity.admin import ensure_signing_key
from control_plane.identity.principal import Grant, Principal
from control_plane.identity.roles import Role
from control_plane.runner import run_as
from tests.web.support import SeededFleet, seed_fleet

pytestmark = pytest.mark.sqlite


@pytest.fixture(scope="module")
async def embedded(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Litestar, SeededFleet]]:
    settings = Settings(home=Path(tmp_path_factory.mktemp("noc-embedded")), log_level="WARNING")
    await asyncio.to_thread(upgrade, settings)
    await run_as(settings, lambda c: ensure_signing_key(c, settings))
    app = create_app(settings)
    fleet = await seed_fleet(settings, app.state.db, tenants=12, partners=2)
    yield app, fleet
    for hook in app.on_shutdown:
        await hook()


async def _token(app: Litestar, *grants: Grant) -> dict[str, str]:
    principal = Principal(subject="user:noc", kind="user", name="noc", grants=grants)
    token, _ = await app.state.tokens.issue(principal)
    return {"Authorization": f"Bearer {token}"}


async def test_fleet_and_drill_down_on_sqlite(embedded: tuple[Litestar, SeededFleet]) -> None:
    app, fleet = embedded
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        platform = await _token(app, Grant(Role.NOC_OPERATOR))
        body = (await client.get("/api/v1/noc/fleet", headers=platform)).json()
        assert body["total"] == 12
        by_id = {r["tenant_id"]: r for r in body["items"]}
        for tenant in fleet.tenants:
            assert by_id[str(tenant.id)]["status"] == tenant.expected
            assert by_id[str(tenant.id)]["regions"] == [tenant.region]
        healthy = next(r for r in body["items"] if r["status"] == "healthy")
        assert healthy["runs_last_hour"] > 0 and healthy["sla_pct"] is not None

        partner_id, slug = fleet.partners[0]
        mine = await _token(app, Grant(Role.NOC_OPERATOR, partner_id=partner_id))
        scoped = (await client.get("/api/v1/noc/fleet?region=north,south", headers=mine)).json()
        expected = {str(t.id) for t in fleet.of_partner(slug) if t.region in ("north", "south")}
        assert {r["tenant_id"] for r in scoped["items"]} == expected
        foreign = fleet.of_partner(fleet.partners[1][1])[0]
        hidden = await client.get(f"/api/v1/noc/tenants/{foreign.id}/series", headers=mine)
        assert hidden.status_code == 404
        page = await client.get(f"/noc/tenants/{fleet.tenants[0].id}", headers=platform)
        assert page.status_code == 200 and fleet.tenants[0].name in page.text
