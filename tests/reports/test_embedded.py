"""The embedded store (SQLite): the same report, folded in Python, from the same events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from control_plane.app import create_app
from control_plane.config import Settings
from control_plane.db.migrate import upgrade
from control_plane.identity.admin import ensure_signing_key
from control_plane.runner import run_as
from tests.conftest import World, bearer
from tests.reports.conftest import URL, _move, tenant_one, tenant_two
from tests.reports.test_sla import ONE, PARTNER, TWO
from tests.telemetry.conftest import post_ok, runtime_token

pytestmark = pytest.mark.sqlite


@pytest.fixture(scope="module")
async def embedded(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[httpx.AsyncClient, World]]:
    settings = Settings(home=Path(tmp_path_factory.mktemp("reports")), log_level="WARNING")
    assert settings.database_url.startswith("sqlite")
    await asyncio.to_thread(upgrade, settings)
    await run_as(settings, lambda c: ensure_signing_key(c, settings))
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://embedded") as client:
        yield client, World(app, settings)
    for hook in app.on_shutdown:
        await hook()


async def test_the_embedded_report_matches_the_hand_computed_one(
    embedded: tuple[httpx.AsyncClient, World],
) -> None:
    client, world = embedded
    one = await world.tree()
    two = await _move(world, one, await world.tree())
    t = datetime.now(UTC) - timedelta(hours=1)
    await post_ok(client, await runtime_token(world, one), one, tenant_one(t))
    await post_ok(client, await runtime_token(world, two), two, tenant_two(t))
    period = {"from": (t - timedelta(hours=1)).isoformat(), "to": datetime.now(UTC).isoformat()}

    response = await client.get(
        URL, params={"partner_id": str(one.partner_id), **period}, headers=bearer(one.partner_token)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    by_tenant = {t["tenant_id"]: t["figures"] for t in body["tenants"]}
    assert by_tenant == {str(one.tenant_id): ONE, str(two.tenant_id): TWO}
    assert body["total"] == PARTNER
