"""The real tenant runtime against this control plane: it bootstraps with a one-time token,
follows its desired state and reports back, and the operators' view shows no drift."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from litestar import Litestar

from tenant_runtime.agent import Agent
from tenant_runtime.config import RuntimeSettings
from tenant_runtime.db.migrate import upgrade
from tenant_runtime.runtime import Runtime
from tests.conftest import World, bearer
from tests.deployments.support import CHECKLIST, TRANSFER, Fleet, checklist, fleet, transfer
from tests.runtimelink.support import issue


@pytest.fixture
async def f(world: World) -> Fleet:
    return await fleet(world)


@pytest.fixture
async def runtime(app: Litestar, f: Fleet, tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = RuntimeSettings(
        tenant_id=f.tenant_id, home=tmp_path, control_plane_url="http://testserver"
    )
    await asyncio.to_thread(upgrade, settings.database_url)  # Alembic runs its own loop
    made = Runtime(settings)
    assert made.link is not None
    await made.link.http.aclose()
    made.link.http = httpx.AsyncClient(
        base_url="http://testserver", transport=httpx.ASGITransport(app=app)
    )
    yield made
    await made.close()


async def test_bootstrap_follow_and_report(
    client: httpx.AsyncClient, f: Fleet, runtime: Runtime
) -> None:
    partner = bearer(f.tree.partner_token)
    res = await client.post(
        f"{f.base}/deployments/apply",
        json={"deployments": [transfer(), checklist(status="paused")]},
        headers=partner,
    )
    assert res.status_code == 200, res.text
    assert runtime.link is not None
    await runtime.link.bootstrap((await issue(client, f))["token"])

    agent = Agent(runtime)
    assert await agent.poll_once(wait=0)
    assert set(runtime.deployments) == {TRANSFER}, "a paused deployment starts no runs"
    assert str(f.tree.store_id) in runtime.stores
    view = (await client.get(f"{f.base}/desired-vs-reported", headers=partner)).json()
    assert view["drift"] is False, view
    assert {d["template_id"]: d["reported"]["status"] for d in view["deployments"]} == {
        TRANSFER: "applied",
        CHECKLIST: "applied",
    }
    # Nothing changed: the conditional poll is a 304 and applies nothing.
    assert not await agent.poll_once(wait=0)

    res = await client.post(
        f"{f.base}/deployments/apply",
        json={"deployments": [transfer("1.1.0"), checklist()]},
        headers=partner,
    )
    assert res.json()["generation"] == 2
    view = (await client.get(f"{f.base}/desired-vs-reported", headers=partner)).json()
    assert view["drift"] is True
    assert await agent.poll_once(wait=5)
    assert set(runtime.deployments) == {TRANSFER, CHECKLIST}
    assert runtime.deployments[TRANSFER].template.version == "1.1.0"
    view = (await client.get(f"{f.base}/desired-vs-reported", headers=partner)).json()
    assert view["drift"] is False, view
    assert view["generation"] == 2
