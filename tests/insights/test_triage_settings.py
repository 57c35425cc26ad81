"""Tenant triage settings: inherited like the other policy settings (partner defaults,
tenant overrides), refused precisely when wrong, and carried to the runtime in its desired
state, whose long poll wakes when they change."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from control_plane.config import Settings
from control_plane.contracts.desired_state import DesiredState
from control_plane.contracts.triage import ModelKind, TriageSettings
from control_plane.tenancy.schemas import TriageOverride
from tests.conftest import Tree, World, bearer
from tests.telemetry.conftest import runtime_token

DESIRED = "/runtime/v1/desired-state"


def triage_of(document: dict[str, Any]) -> TriageSettings | None:
    """The document's triage settings as the runtime decodes them (the contract's wire
    form leaves out fields equal to their defaults)."""
    value = document["triage"]
    return None if value is None else msgspec.convert(value, TriageSettings)


async def pull(client: httpx.AsyncClient, token: str, **headers: str) -> httpx.Response:
    response = await client.get(DESIRED, headers={**bearer(token), **headers})
    assert response.status_code in (200, 304), response.text
    return response


async def patch(
    client: httpx.AsyncClient, token: str, url: str, settings: dict[str, Any]
) -> httpx.Response:
    return await client.patch(url, json={"settings": settings}, headers=bearer(token))


def tenant_url(tree: Tree) -> str:
    return f"/api/v1/tenants/{tree.tenant_id}"


def partner_url(tree: Tree) -> str:
    return f"/api/v1/partners/{tree.partner_id}"


async def test_a_tenants_model_choice_reaches_its_desired_state(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    runtime = await runtime_token(world, tree)
    before = await pull(client, runtime)
    assert before.json()["triage"] is None

    changed = await patch(
        client, tree.tenant_token, tenant_url(tree), {"triage": {"model": "embeddings"}}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["settings"]["triage"] == {"model": "embeddings"}
    after = await pull(client, runtime, **{"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200, "the change must change the document and its ETag"
    assert triage_of(after.json()) == TriageSettings(model="embeddings")
    decoded = msgspec.json.decode(after.content, type=DesiredState)
    assert decoded.triage == TriageSettings(model="embeddings")

    effective = await client.get(f"{tenant_url(tree)}/settings", headers=bearer(tree.tenant_token))
    assert effective.json()["settings"]["triage"] == {"model": "embeddings"}
    assert effective.json()["sources"]["triage"] == "tenant"

    # Another partner's tenant is untouched.
    other = await world.tree()
    assert (await pull(client, await runtime_token(world, other))).json()["triage"] is None


async def test_partner_defaults_and_tenant_overrides_merge_field_by_field(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    runtime = await runtime_token(world, tree)
    partner_wide = {"model": "embeddings", "store_threshold": 5, "window_days": 14}
    response = await patch(client, tree.partner_token, partner_url(tree), {"triage": partner_wide})
    assert response.status_code == 200, response.text
    assert triage_of((await pull(client, runtime)).json()) == TriageSettings(
        model="embeddings", store_threshold=5, window_days=14
    )

    # The tenant goes back to the default model (a value equal to the contract's default
    # still overrides its partner) and keeps the partner's thresholds.
    response = await patch(
        client,
        tree.partner_token,
        tenant_url(tree),
        {"triage": {"model": "tfidf", "region_threshold": 9}},
    )
    assert response.status_code == 200, response.text
    assert triage_of((await pull(client, runtime)).json()) == TriageSettings(
        model="tfidf", store_threshold=5, region_threshold=9, window_days=14
    )
    effective = await client.get(f"{tenant_url(tree)}/settings", headers=bearer(tree.tenant_token))
    assert effective.json()["settings"]["triage"] == {
        "model": "tfidf",
        "store_threshold": 5,
        "region_threshold": 9,
        "window_days": 14,
    }


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"model": "gpt-4"}, "settings.triage.model", "'gpt-4'"),
    ({"store_threshold": 1}, "settings.triage.store_threshold", ">= 2"),
    ({"region_threshold": 10001}, "settings.triage.region_threshold", "<= 10000"),
    ({"window_days": 0}, "settings.triage.window_days", ">= 1"),
    ({"store_threshold": 2.5}, "settings.triage.store_threshold", "int"),
    ({"model": "tfidf", "thresold": 3}, "settings.triage", "thresold"),
]


@pytest.mark.parametrize(("triage", "field", "said"), BAD)
@pytest.mark.parametrize("level", ["tenant", "partner"])
async def test_bad_triage_settings_are_problems_naming_the_field(
    client: httpx.AsyncClient,
    world: World,
    level: str,
    triage: dict[str, Any],
    field: str,
    said: str,
) -> None:
    tree = await world.tree()
    url = tenant_url(tree) if level == "tenant" else partner_url(tree)
    before = (await client.get(url, headers=bearer(tree.partner_token))).json()
    refused = await patch(client, tree.partner_token, url, {"triage": triage})
    assert refused.status_code == 400, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["type"] == "urn:storeops:problem:invalid-request"
    assert field in problem["detail"] and said in problem["detail"], problem["detail"]
    after = (await client.get(url, headers=bearer(tree.partner_token))).json()
    assert after["version"] == before["version"] and after["settings"] == before["settings"]


def test_the_override_has_the_contracts_fields_and_bounds() -> None:
    """Each field of TriageOverride accepts what TriageSettings accepts (or null); the model
    only the kinds the platform has (the contract stays open to new ones)."""
    contract = msgspec.inspect.type_info(TriageSettings)
    override = msgspec.inspect.type_info(TriageOverride)
    assert isinstance(contract, msgspec.inspect.StructType)
    assert isinstance(override, msgspec.inspect.StructType)
    wanted = {f.name: f.type for f in contract.fields}
    assert isinstance(wanted.pop("model"), msgspec.inspect.StrType)
    wanted["model"] = msgspec.inspect.type_info(ModelKind)
    for field in override.fields:
        assert isinstance(field.type, msgspec.inspect.UnionType), field.name
        kinds = [t for t in field.type.types if not isinstance(t, msgspec.inspect.NoneType)]
        assert kinds == [wanted.pop(field.name)], field.name
    assert wanted == {}, f"fields of TriageSettings missing from TriageOverride: {wanted}"


async def _poll_then(
    client: httpx.AsyncClient, token: str, change: Callable[[], Awaitable[None]]
) -> tuple[dict[str, Any], float]:
    """Start a long poll, make ``change`` once it waits: the document and the delay."""
    etag = (await pull(client, token)).headers["etag"]
    poll = asyncio.create_task(
        client.get(DESIRED, params={"wait": 10}, headers={**bearer(token), "If-None-Match": etag})
    )
    await asyncio.sleep(0.3)
    assert not poll.done(), "the poll answered before anything changed"
    await change()
    changed_at = time.monotonic()
    response = await poll
    assert response.status_code == 200, response.text
    assert response.headers["etag"] != etag
    document: dict[str, Any] = response.json()
    return document, time.monotonic() - changed_at


@pytest.mark.parametrize("level", ["tenant", "partner"])
async def test_a_triage_change_wakes_the_long_poll(
    client: httpx.AsyncClient, world: World, level: str
) -> None:
    tree = await world.tree()
    runtime = await runtime_token(world, tree)
    url = tenant_url(tree) if level == "tenant" else partner_url(tree)

    async def change() -> None:
        response = await patch(client, tree.partner_token, url, {"triage": {"window_days": 7}})
        assert response.status_code == 200, response.text

    document, elapsed = await _poll_then(client, runtime, change)
    assert elapsed < 1.5, f"answered {elapsed:.2f}s after the change"
    assert triage_of(document) == TriageSettings(window_days=7)


async def test_a_triage_change_made_by_another_process_is_seen(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    tree = await world.tree()
    runtime = await runtime_token(world, tree)

    async def change() -> None:
        # Straight into the database, as another control-plane process would commit it.
        conn = await asyncpg.connect(settings.admin_database_url.replace("+asyncpg", ""))
        try:
            await conn.execute(
                "UPDATE partners SET settings = $2::jsonb, version = version + 1 WHERE id = $1",
                tree.partner_id,
                json.dumps({"triage": {"model": "embeddings"}}),
            )
        finally:
            await conn.close()

    document, elapsed = await _poll_then(client, runtime, change)
    assert elapsed < 1.5, f"answered {elapsed:.2f}s after the change"
    assert triage_of(document) == TriageSettings(model="embeddings")
