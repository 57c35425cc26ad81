"""``Idempotency-Key`` on POST /api/v1/tenants/{id}/regions: replay, reuse, races."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any
from uuid import UUID

import httpx

from control_plane.identity.principal import Grant
from control_plane.identity.roles import Role
from tests.conftest import Tree, World, bearer

PROBLEM = "urn:storeops:problem:"


def regions_url(tenant_id: UUID) -> str:
    return f"/api/v1/tenants/{tenant_id}/regions"


def key() -> str:
    return f"idem-{secrets.token_hex(8)}"


async def post_region(
    client: httpx.AsyncClient,
    tree: Tree,
    body: dict[str, Any],
    idempotency_key: str | None,
    token: str | None = None,
) -> httpx.Response:
    headers = bearer(token or tree.partner_token)
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return await client.post(regions_url(tree.tenant_id), json=body, headers=headers)


async def regions_with_code(client: httpx.AsyncClient, tree: Tree, code: str) -> list[str]:
    res = await client.get(
        regions_url(tree.tenant_id), params={"limit": 200}, headers=bearer(tree.partner_token)
    )
    assert res.status_code == 200, res.text
    return [r["id"] for r in res.json()["items"] if r["code"] == code]


async def test_same_key_same_body_replays_the_first_response(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    k = key()
    body = {"code": "west", "name": "West"}
    first = await post_region(client, tree, body, k)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers

    for _ in range(2):
        again = await post_region(client, tree, body, k)
        assert again.status_code == 201, again.text
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
        assert again.content == first.content
        assert again.headers["etag"] == first.headers["etag"]
        assert again.headers["content-type"] == first.headers["content-type"]

    assert await regions_with_code(client, tree, "west") == [first.json()["id"]]


async def test_without_a_key_posts_are_not_deduplicated(
    client: httpx.AsyncClient, world: World
) -> None:
    """The contrast case: no key, so a retry runs again (and meets the unique code)."""
    tree = await world.tree()
    body = {"code": "dup", "name": "Dup"}
    assert (await post_region(client, tree, body, None)).status_code == 201
    retry = await post_region(client, tree, body, None)
    assert retry.status_code == 409, retry.text
    assert retry.json()["type"] == PROBLEM + "duplicate"
    assert "idempotent-replayed" not in retry.headers


async def test_same_key_different_body_is_refused(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    k = key()
    first = await post_region(client, tree, {"code": "k1", "name": "One"}, k)
    assert first.status_code == 201, first.text
    reused = await post_region(client, tree, {"code": "k2", "name": "Two"}, k)
    assert reused.status_code == 422, reused.text
    assert reused.headers["content-type"].startswith("application/problem+json")
    problem = reused.json()
    assert problem["type"] == PROBLEM + "idempotency-key-reused"
    assert problem["status"] == 422
    assert k in problem["detail"]
    assert await regions_with_code(client, tree, "k2") == []

    # Same key on another path (another tenant's regions) is also another request.
    other = await world.tree()
    elsewhere = await client.post(
        regions_url(other.tenant_id),
        json={"code": "k1", "name": "One"},
        headers={**bearer(tree.partner_token), "Idempotency-Key": k},
    )
    assert elsewhere.status_code == 422, elsewhere.text
    assert elsewhere.json()["type"] == PROBLEM + "idempotency-key-reused"


async def test_keys_are_per_principal(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    k = key()
    alice = tree.partner_token
    bob = await world.token(Grant(Role.PARTNER_ADMIN, partner_id=tree.partner_id))

    mine = await post_region(client, tree, {"code": "alice", "name": "Alice"}, k, alice)
    assert mine.status_code == 201, mine.text
    # Bob's request under the same key is not Alice's: it neither replays nor clashes.
    theirs = await post_region(client, tree, {"code": "bob", "name": "Bob"}, k, bob)
    assert theirs.status_code == 201, theirs.text
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]

    # Each replays their own outcome.
    alice_again = await post_region(client, tree, {"code": "alice", "name": "Alice"}, k, alice)
    bob_again = await post_region(client, tree, {"code": "bob", "name": "Bob"}, k, bob)
    assert alice_again.json() == mine.json()
    assert bob_again.json() == theirs.json()
    assert alice_again.headers["idempotent-replayed"] == "true"
    assert bob_again.headers["idempotent-replayed"] == "true"
    assert len(await regions_with_code(client, tree, "alice")) == 1
    assert len(await regions_with_code(client, tree, "bob")) == 1


async def test_a_4xx_outcome_is_replayed(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    k = key()
    # The tree already has region "north": this create is refused with a 409.
    body = {"code": "north", "name": "North twice"}
    first = await post_region(client, tree, body, k)
    assert first.status_code == 409, first.text
    assert first.json()["type"] == PROBLEM + "duplicate"

    again = await post_region(client, tree, body, k)
    assert again.status_code == 409, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["content-type"].startswith("application/problem+json")
    assert len(await regions_with_code(client, tree, "north")) == 1

    # A schema-level refusal (400) is stored and replayed the same way.
    k2 = key()
    bad = {"code": "ok", "name": "Ok", "colour": "red"}
    refused = await post_region(client, tree, bad, k2)
    assert refused.status_code == 400, refused.text
    replayed = await post_region(client, tree, bad, k2)
    assert replayed.status_code == 400
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json() == refused.json()


async def test_malformed_key_is_refused(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    res = await post_region(client, tree, {"code": "longkey", "name": "x"}, "k" * 256)
    assert res.status_code == 422, res.text
    assert res.json()["type"] == PROBLEM + "invalid-input"
    assert await regions_with_code(client, tree, "longkey") == []


async def test_concurrent_requests_with_one_key_create_once(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    outcomes: list[tuple[int, str]] = []
    for i in range(5):
        k = key()
        code = f"race{i}"
        body = {"code": code, "name": f"Race {i}"}
        a, b = await asyncio.gather(
            post_region(client, tree, body, k), post_region(client, tree, body, k)
        )
        created = [
            r for r in (a, b) if r.status_code == 201 and "idempotent-replayed" not in r.headers
        ]
        assert len(created) == 1, (a.text, b.text)
        winner = created[0]
        loser = b if winner is a else a
        if loser.status_code == 201:
            assert loser.headers["idempotent-replayed"] == "true"
            assert loser.json() == winner.json()
            outcomes.append((201, "replay"))
        else:
            assert loser.status_code == 409, loser.text
            problem = loser.json()
            assert problem["type"] == PROBLEM + "idempotency-in-progress", problem
            assert problem["status"] == 409
            outcomes.append((409, "in-progress"))
        assert await regions_with_code(client, tree, code) == [winner.json()["id"]]

        # Once the winner has finished, a retry of the loser replays the winner.
        retry = await post_region(client, tree, body, k)
        assert retry.status_code == 201, retry.text
        assert retry.headers["idempotent-replayed"] == "true"
        assert retry.json() == winner.json()
    assert len(outcomes) == 5
