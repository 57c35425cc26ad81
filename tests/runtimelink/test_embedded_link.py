"""The whole runtime link on the embedded path (SQLite, no RLS): deploy, bootstrap, pull,
long-poll, report."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from control_plane.app import create_app
from control_plane.catalog import service as catalog
from control_plane.config import Settings
from control_plane.context import Ctx
from control_plane.db.migrate import upgrade
from control_plane.identity.admin import ensure_signing_key
from control_plane.identity.principal import Grant, Principal
from control_plane.identity.roles import Role
from control_plane.runner import run_as
from control_plane.tenancy import schemas as ts
from control_plane.tenancy import service as tenancy
from tests.conftest import bearer
from tests.deployments.support import TRANSFER, checklist, source, transfer

pytestmark = pytest.mark.sqlite


@dataclass
class Embedded:
    client: httpx.AsyncClient
    tenant_id: UUID
    store_id: UUID
    partner_token: str

    @property
    def base(self) -> str:
        return f"/api/v1/tenants/{self.tenant_id}"


@pytest.fixture(scope="module")
async def embedded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Embedded]:
    settings = Settings(
        home=Path(tmp_path_factory.mktemp("embedded-link")),
        public_url="http://embedded",
        log_level="WARNING",
    )
    assert settings.database_url.startswith("sqlite")
    await asyncio.to_thread(upgrade, settings)
    await run_as(settings, lambda c: ensure_signing_key(c, settings))

    async def build(c: Ctx) -> tuple[UUID, UUID, UUID]:
        p = await tenancy.create_partner(c, ts.PartnerCreate(slug="emb", name="Emb", kind="msp"))
        t = await tenancy.onboard_tenant(
            c, p.id, ts.TenantCreate(slug="shop", name="Shop", timezone="Europe/Paris")
        )
        s = await tenancy.create_store(c, t.id, ts.StoreCreate(code="S1", name="One"))
        for version in ("1.0.0", "1.1.0"):
            await catalog.publish(c, source(TRANSFER, "emb", version))
        await catalog.publish(c, source("store-opening-closing-checklist", "emb"))
        return p.id, t.id, s.id

    partner_id, tenant_id, store_id = await run_as(settings, build)
    app = create_app(settings)
    principal = Principal(
        subject="user:embedded",
        kind="user",
        name="embedded",
        grants=(Grant(Role.PARTNER_ADMIN, partner_id=partner_id),),
    )
    token, _ = await app.state.tokens.issue(principal)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://embedded"
    ) as client:
        yield Embedded(client, tenant_id, store_id, str(token))
    for hook in app.on_shutdown:
        await hook()


async def test_the_runtime_link_on_sqlite(embedded: Embedded) -> None:
    client, partner = embedded.client, bearer(embedded.partner_token)
    applied = await client.post(
        f"{embedded.base}/deployments/apply",
        json={"deployments": [transfer(), checklist()]},
        headers={**partner, "If-Match": '"g0"'},
    )
    assert applied.status_code == 200, applied.text
    assert applied.json()["generation"] == 1

    issued = await client.post(f"{embedded.base}/runtime-bootstrap", headers=partner)
    assert issued.status_code == 201, issued.text
    creds = await client.post("/runtime/v1/bootstrap", json={"token": issued.json()["token"]})
    assert creds.status_code == 200, creds.text
    again = await client.post("/runtime/v1/bootstrap", json={"token": issued.json()["token"]})
    assert again.status_code == 409
    got = await client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": creds.json()["client_id"],
            "client_secret": creds.json()["client_secret"],
        },
    )
    runtime = bearer(got.json()["access_token"])

    first = await client.get("/runtime/v1/desired-state", headers=runtime)
    assert first.status_code == 200, first.text
    doc = first.json()
    assert doc["generation"] == 1
    assert [d["template_id"] for d in doc["deployments"]] == [
        TRANSFER,
        "store-opening-closing-checklist",
    ]
    assert set(doc["stores"]) == {str(embedded.store_id)}
    etag = first.headers["etag"]
    unchanged = await client.get(
        "/runtime/v1/desired-state", headers={**runtime, "If-None-Match": etag}
    )
    assert unchanged.status_code == 304

    async def poll() -> tuple[httpx.Response, float]:
        res = await client.get(
            "/runtime/v1/desired-state",
            params={"wait": 10},
            headers={**runtime, "If-None-Match": etag},
        )
        return res, time.monotonic()

    waiting = asyncio.create_task(poll())
    await asyncio.sleep(0.3)
    upgrade_res = await client.post(
        f"{embedded.base}/deployments/apply",
        json={"deployments": [transfer("1.1.0"), checklist()]},
        headers=partner,
    )
    changed_at = time.monotonic()
    assert upgrade_res.status_code == 200, upgrade_res.text
    res, answered = await waiting
    assert res.status_code == 200
    assert answered - changed_at < 1.5
    doc = res.json()
    assert doc["generation"] == 2

    report = {
        "generation": 2,
        "deployments": [
            {"id": d["id"], "status": "applied", "content_hash": d["content_hash"]}
            for d in doc["deployments"]
        ],
    }
    stored = await client.put("/runtime/v1/deployment-status", json=report, headers=runtime)
    assert stored.status_code == 200, stored.text
    view = await client.get(f"{embedded.base}/desired-vs-reported", headers=partner)
    assert view.json()["drift"] is False
    paused = await client.post(
        f"{embedded.base}/deployments/{doc['deployments'][0]['id']}/pause", headers=partner
    )
    assert paused.status_code == 200, paused.text
    view = await client.get(f"{embedded.base}/desired-vs-reported", headers=partner)
    drifting = {d["template_id"]: d["drift_reason"] for d in view.json()["deployments"]}
    assert drifting[TRANSFER] == (
        "reported generation 2 is behind desired generation 3; "
        "the reported content hash differs from the desired content hash"
    )
