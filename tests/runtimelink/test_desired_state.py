"""``GET /runtime/v1/desired-state``: the document, its ETag, 304s and the long poll."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from control_plane.config import Settings
from control_plane.context import Ctx
from control_plane.contracts import dsl
from control_plane.contracts.desired_state import DesiredState, deployment_hash
from control_plane.identity import schemas as ids
from control_plane.identity import service as identity
from control_plane.identity.principal import Grant
from control_plane.identity.roles import Role
from tests.api.test_conventions import assert_problem
from tests.conftest import World, bearer
from tests.deployments.support import CHECKLIST, TRANSFER, Fleet, checklist, fleet, transfer
from tests.runtimelink.support import access_token, runtime_token

URL = "/runtime/v1/desired-state"


@pytest.fixture
async def f(world: World) -> Fleet:
    return await fleet(world)


async def deploy(client: httpx.AsyncClient, f: Fleet, *bodies: dict[str, Any]) -> None:
    res = await client.post(
        f"{f.base}/deployments/apply",
        json={"deployments": list(bodies)},
        headers=bearer(f.tree.partner_token),
    )
    assert res.status_code == 200, res.text


async def pull(client: httpx.AsyncClient, token: str, **headers: str) -> httpx.Response:
    return await client.get(URL, headers={**bearer(token), **headers})


async def test_the_document(client: httpx.AsyncClient, f: Fleet) -> None:
    await deploy(client, f, transfer(), checklist())
    token = await runtime_token(client, f)
    res = await pull(client, token)
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("application/json")
    assert res.headers["etag"] == '"' + hashlib.sha256(res.content).hexdigest() + '"'
    doc = res.json()
    assert set(doc) == {
        "tenant_id",
        "contract_version",
        "generation",
        "deployments",
        "stores",
        "brand",
        "triage",
    }
    assert doc["triage"] is None, "neither the partner nor the tenant set triage settings"
    assert doc["tenant_id"] == str(f.tenant_id)
    assert doc["contract_version"] == 1
    assert doc["generation"] == 1
    assert [d["template_id"] for d in doc["deployments"]] == [TRANSFER, CHECKLIST]
    for entry in doc["deployments"]:
        assert set(entry) == {
            "id",
            "template_id",
            "version",
            "content_hash",
            "spec",
            "params",
            "bindings",
            "triggers",
            "status",
        }
        template = dsl.parse(entry["spec"])  # exactly what the DSL parser accepts
        assert (template.id, template.version) == (entry["template_id"], entry["version"])
        fields = {k: entry[k] for k in ("template_id", "version", "spec", "params", "bindings")}
        assert entry["content_hash"] == deployment_hash(
            **fields, triggers=entry["triggers"], status=entry["status"]
        )
    assert doc["deployments"][0]["params"] == {"auto_approve_below": 250}
    store = doc["stores"][str(f.tree.store_id)]
    assert store == {
        "code": store["code"],
        "name": "Store",
        "region_id": str(f.tree.region_id),
        "timezone": "Europe/Paris",
        "opening_hours": {},
        "holidays": [],
    }
    # The runtime's contract decodes it.
    decoded = msgspec.json.decode(res.content, type=DesiredState)
    assert decoded.generation == 1


async def test_if_none_match(client: httpx.AsyncClient, f: Fleet) -> None:
    await deploy(client, f, transfer())
    token = await runtime_token(client, f)
    first = await pull(client, token)
    etag = first.headers["etag"]
    started = time.monotonic()
    same = await pull(client, token, **{"If-None-Match": etag})
    assert time.monotonic() - started < 0.5
    assert same.status_code == 304
    assert same.headers["etag"] == etag
    assert same.content == b""
    assert (await pull(client, token, **{"If-None-Match": f"W/{etag}"})).status_code == 304
    other = await pull(client, token, **{"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.headers["etag"] == etag
    again = await pull(client, token)
    assert again.content == first.content, "the same state is the same bytes"


async def _timed_poll(
    client: httpx.AsyncClient, token: str, etag: str, wait: int
) -> tuple[httpx.Response, float]:
    res = await client.get(
        URL, params={"wait": wait}, headers={**bearer(token), "If-None-Match": etag}
    )
    return res, time.monotonic()


async def _poll_then(
    client: httpx.AsyncClient, token: str, change: Any, wait: int = 10
) -> tuple[httpx.Response, float]:
    """Start a long poll, make ``change`` once it waits, and time the answer from the
    moment the change was made."""
    etag = (await pull(client, token)).headers["etag"]
    poll = asyncio.create_task(_timed_poll(client, token, etag, wait))
    await asyncio.sleep(0.3)
    assert not poll.done(), "the poll answered before anything changed"
    await change()
    changed_at = time.monotonic()
    res, answered_at = await poll
    assert res.headers["etag"] != etag
    return res, answered_at - changed_at


async def test_long_poll_returns_when_a_deployment_changes(
    client: httpx.AsyncClient, f: Fleet
) -> None:
    await deploy(client, f, transfer())
    token = await runtime_token(client, f)

    async def change() -> None:
        await deploy(client, f, transfer("1.1.0"))

    res, elapsed = await _poll_then(client, token, change)
    assert res.status_code == 200, res.text
    assert elapsed < 1.5, f"answered {elapsed:.2f}s after the change"
    assert res.json()["generation"] == 2
    assert res.json()["deployments"][0]["version"] == "1.1.0"


async def test_long_poll_returns_when_a_store_changes(client: httpx.AsyncClient, f: Fleet) -> None:
    token = await runtime_token(client, f)

    async def change() -> None:
        res = await client.patch(
            f"{f.base}/stores/{f.tree.store_id}",
            json={"holidays": ["2026-12-25"]},
            headers=bearer(f.tree.partner_token),
        )
        assert res.status_code == 200, res.text

    res, elapsed = await _poll_then(client, token, change)
    assert res.status_code == 200
    assert elapsed < 1.5, f"answered {elapsed:.2f}s after the change"
    assert res.json()["generation"] == 0, "a store edit changes the content, not the generation"
    assert res.json()["stores"][str(f.tree.store_id)]["holidays"] == ["2026-12-25"]


async def test_long_poll_sees_changes_made_by_another_process(
    client: httpx.AsyncClient, f: Fleet, settings: Settings
) -> None:
    token = await runtime_token(client, f)

    async def change() -> None:
        # Straight into the database, as another control-plane process would commit it.
        conn = await asyncpg.connect(settings.admin_database_url.replace("+asyncpg", ""))
        try:
            await conn.execute(
                "UPDATE stores SET name = 'Renamed', version = version + 1 WHERE id = $1",
                f.tree.store_id,
            )
        finally:
            await conn.close()

    res, elapsed = await _poll_then(client, token, change)
    assert res.status_code == 200
    assert elapsed < 1.5, f"answered {elapsed:.2f}s after the change"
    assert res.json()["stores"][str(f.tree.store_id)]["name"] == "Renamed"


async def test_long_poll_without_change_is_304_after_the_wait(
    client: httpx.AsyncClient, f: Fleet, world: World
) -> None:
    await deploy(client, f, transfer())
    other = await fleet(world)
    token = await runtime_token(client, f)
    etag = (await pull(client, token)).headers["etag"]
    started = time.monotonic()
    poll = asyncio.create_task(_timed_poll(client, token, etag, 2))
    await asyncio.sleep(0.3)
    # Another tenant's change wakes nobody here.
    await deploy(client, other, transfer())
    res, answered = await poll
    assert res.status_code == 304
    assert res.headers["etag"] == etag
    assert res.content == b""
    assert 1.95 <= answered - started < 3.0


async def test_wait_is_bounded(client: httpx.AsyncClient, f: Fleet) -> None:
    token = await runtime_token(client, f)
    for bad in ("61", "-1", "soon"):
        res = await client.get(URL, params={"wait": bad}, headers=bearer(token))
        assert_problem(res, 400)


async def test_only_a_runtime_token_reads_it(
    client: httpx.AsyncClient, f: Fleet, world: World
) -> None:
    other = await fleet(world)
    await deploy(client, other, transfer())
    mine, theirs = await runtime_token(client, f), await runtime_token(client, other)
    doc = (await pull(client, mine)).json()
    assert doc["tenant_id"] == str(f.tenant_id)
    assert doc["deployments"] == []
    assert str(other.tenant_id) not in (await pull(client, mine)).text
    assert str(other.tree.store_id) not in (await pull(client, mine)).text
    assert (await pull(client, theirs)).json()["tenant_id"] == str(other.tenant_id)

    platform = await world.token(Grant(Role.PLATFORM_ADMIN))
    for token in (f.tree.partner_token, f.tree.tenant_token, platform):
        problem = assert_problem(await pull(client, token), 403, "forbidden")
        assert "tenant_runtime" in problem["detail"]
    assert_problem(await client.get(URL), 401)
    assert_problem(await pull(client, "not-a-jwt"), 401)

    # A client of the tenant with another role is not its runtime either.
    async def make(c: Ctx) -> tuple[str, str]:
        made, _, secret = await identity.create_client(
            c,
            ids.ClientCreate(
                name="erp-sync",
                grants=[ids.GrantSpec(role=Role.RETAILER_ADMIN, tenant_id=f.tenant_id)],
            ),
        )
        return made.client_id, secret

    client_id, secret = await world.run(make)
    other_client = (await access_token(client, client_id, secret)).json()["access_token"]
    assert_problem(await pull(client, other_client), 403)
