"""The embedded path: insights ingested, upserted and read on SQLite, and triage settings
in the desired state, by the same rules as on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
import pytest

from control_plane.alerts.evaluate import evaluate
from control_plane.app import create_app
from control_plane.config import Settings
from control_plane.contracts.triage import TriageSettings
from control_plane.db.migrate import upgrade
from control_plane.identity.admin import ensure_signing_key
from control_plane.runner import run_as
from tests.conftest import World, bearer
from tests.insights.conftest import insight, insight_event, keys, listed, report
from tests.telemetry.conftest import runtime_token

pytestmark = pytest.mark.sqlite


class Embedded:
    def __init__(self, world: World, client: httpx.AsyncClient) -> None:
        self.world, self.client = world, client


@pytest.fixture(scope="module")
async def embedded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Embedded]:
    settings = Settings(home=Path(tmp_path_factory.mktemp("insights")), log_level="WARNING")
    assert settings.database_url.startswith("sqlite")
    await asyncio.to_thread(upgrade, settings)
    await run_as(settings, lambda c: ensure_signing_key(c, settings))
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://embedded") as client:
        yield Embedded(World(app, settings), client)
    for hook in app.on_shutdown:
        await hook()


async def test_insights_on_sqlite(embedded: Embedded) -> None:
    client, world = embedded.client, embedded.world
    tree, other = await world.tree(), await world.tree()
    first = insight(tree, count=3)
    await report(client, world, tree, insight_event(first))
    await report(client, world, tree, insight_event(first))  # re-sent: the same insight
    await report(client, world, other, insight_event(insight(other)))
    [stored] = await listed(client, tree.tenant_token)
    assert stored["key"] == first.id and stored["count"] == 3
    assert stored["subject_name"] == "Store"

    await report(client, world, tree, insight_event(msgspec.structs.replace(first, count=8)))
    await report(client, world, tree, insight_event(msgspec.structs.replace(first, count=4)))
    [grown] = await listed(client, tree.tenant_token)
    assert (grown["id"], grown["count"]) == (stored["id"], 8)
    assert grown["version"] == stored["version"] + 1

    one = await client.get(f"/api/v1/insights/{grown['id']}", headers=bearer(tree.tenant_token))
    assert one.status_code == 200 and one.json() == grown
    hidden = await client.get(f"/api/v1/insights/{grown['id']}", headers=bearer(other.tenant_token))
    assert hidden.status_code == 404
    assert keys(await listed(client, other.partner_token)) == {
        i["key"] for i in await listed(client, other.tenant_token)
    }

    changes = await run_as(world.settings, lambda c: evaluate(c, datetime.now(UTC)))
    assert changes > 0
    alerts = await client.get(
        "/api/v1/alerts",
        params={"tenant_id": str(tree.tenant_id)},
        headers=bearer(tree.partner_token),
    )
    assert [a["rule_key"] for a in alerts.json()["items"]] == ["recurring-incidents"]


async def test_triage_settings_reach_the_desired_state_on_sqlite(embedded: Embedded) -> None:
    client, world = embedded.client, embedded.world
    tree = await world.tree()
    response = await client.patch(
        f"/api/v1/partners/{tree.partner_id}",
        json={"settings": {"triage": {"store_threshold": 4}}},
        headers=bearer(tree.partner_token),
    )
    assert response.status_code == 200, response.text
    runtime = await runtime_token(world, tree)
    document = await client.get("/runtime/v1/desired-state", headers=bearer(runtime))
    assert document.status_code == 200, document.text
    triage = msgspec.convert(document.json()["triage"], TriageSettings)
    assert triage == TriageSettings(store_threshold=4)
