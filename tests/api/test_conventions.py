"""API conventions: problem details for bad input, lifecycle rules, ETags, cursor pages,
request ids, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any
from uuid import UUID

import httpx
import pytest

from control_plane.config import Settings
from tests.conftest import Tree, World, bearer

PROBLEM = "urn:storeops:problem:"


def assert_problem(res: httpx.Response, status: int, type_: str | None = None) -> dict[str, Any]:
    """An RFC 9457 body with every member a client relies on, and a request id."""
    assert res.status_code == status, res.text
    assert res.headers["content-type"].startswith("application/problem+json"), res.headers
    body: dict[str, Any] = res.json()
    for member in ("type", "title", "status", "detail"):
        assert body.get(member), f"problem lacks {member!r}: {body}"
    assert body["status"] == status
    assert body["type"].startswith(PROBLEM)
    if type_ is not None:
        assert body["type"] == PROBLEM + type_, body
    assert res.headers.get("x-request-id"), "problem responses carry X-Request-ID too"
    return body


def tenant_url(tree: Tree, *rest: str) -> str:
    return "/".join([f"/api/v1/tenants/{tree.tenant_id}", *rest])


async def get_json(client: httpx.AsyncClient, url: str, token: str) -> httpx.Response:
    res = await client.get(url, headers=bearer(token))
    assert res.status_code == 200, res.text
    return res


# --- bad input -----------------------------------------------------------------------------


async def test_malformed_json_is_a_400_problem(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    headers = {**bearer(tree.partner_token), "Content-Type": "application/json"}
    for raw in (b'{"code": ', b"{'code': 'x'}", b"not json at all", b'{"code": "x",}'):
        res = await client.post(tenant_url(tree, "regions"), content=raw, headers=headers)
        assert_problem(res, 400)


async def test_unknown_field_is_named(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    res = await client.post(
        tenant_url(tree, "regions"),
        json={"code": "x1", "name": "X", "colour": "red"},
        headers=bearer(tree.partner_token),
    )
    body = assert_problem(res, 400)
    assert "colour" in body["detail"]
    # Nested objects refuse unknown fields as well.
    res = await client.patch(
        tenant_url(tree),
        json={"settings": {"quotas": {"stores": 5}, "colour": "red"}},
        headers=bearer(tree.partner_token),
    )
    assert "colour" in assert_problem(res, 400)["detail"]


async def test_wrong_type_is_a_400(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    headers = bearer(tree.partner_token)
    res = await client.post(
        tenant_url(tree, "regions"), json={"code": 7, "name": "X"}, headers=headers
    )
    body = assert_problem(res, 400)
    assert "code" in body["detail"]
    res = await client.post(tenant_url(tree, "regions"), json=["code", "name"], headers=headers)
    assert_problem(res, 400)
    res = await client.post(
        tenant_url(tree, "stores"),
        json={"code": "S9", "name": "S", "region_id": "not-a-uuid"},
        headers=headers,
    )
    assert "region_id" in assert_problem(res, 400)["detail"]


async def test_oversized_body_is_a_413(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    tree = await world.tree()
    huge = json.dumps({"code": "big", "name": "x" * (settings.max_body_bytes + 1)}).encode()
    headers = {**bearer(tree.partner_token), "Content-Type": "application/json"}
    res = await client.post(tenant_url(tree, "regions"), content=huge, headers=headers)
    assert_problem(res, 413, "payload-too-large")
    # Through the idempotency layer (which reads the body itself) too.
    res = await client.post(
        tenant_url(tree, "regions"),
        content=huge,
        headers={**headers, "Idempotency-Key": secrets.token_hex(8)},
    )
    assert_problem(res, 413, "payload-too-large")
    listed = await get_json(client, tenant_url(tree, "regions"), tree.partner_token)
    assert "big" not in {r["code"] for r in listed.json()["items"]}


@pytest.mark.parametrize("slug", ["Upper", "-leading", "trailing-", "has space", "a" * 64, ""])
async def test_invalid_slug_is_a_400(client: httpx.AsyncClient, world: World, slug: str) -> None:
    tree = await world.tree()
    res = await client.post(
        f"/api/v1/partners/{tree.partner_id}/tenants",
        json={"slug": slug, "name": "Shop", "timezone": "UTC"},
        headers=bearer(tree.partner_token),
    )
    body = assert_problem(res, 400)
    assert "slug" in body["detail"]


async def test_duplicate_slug_is_a_409(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    existing = (await get_json(client, tenant_url(tree), tree.partner_token)).json()["slug"]
    res = await client.post(
        f"/api/v1/partners/{tree.partner_id}/tenants",
        json={"slug": existing, "name": "Again", "timezone": "UTC"},
        headers=bearer(tree.partner_token),
    )
    body = assert_problem(res, 409, "duplicate")
    assert existing in body["detail"]
    # Slugs are unique per partner: another partner may use the same one.
    other = await world.tree()
    res = await client.post(
        f"/api/v1/partners/{other.partner_id}/tenants",
        json={"slug": existing, "name": "Same slug elsewhere", "timezone": "UTC"},
        headers=bearer(other.partner_token),
    )
    assert res.status_code == 201, res.text


async def test_invalid_timezone_is_a_422_naming_the_zone(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    headers = bearer(tree.partner_token)
    res = await client.post(
        f"/api/v1/partners/{tree.partner_id}/tenants",
        json={"slug": f"tz-{secrets.token_hex(3)}", "name": "Shop", "timezone": "Mars/Olympus"},
        headers=headers,
    )
    body = assert_problem(res, 422, "invalid-input")
    assert "Mars/Olympus" in body["detail"]
    res = await client.post(
        tenant_url(tree, "stores"),
        json={"code": "TZ1", "name": "Store", "timezone": "Europe/Atlantis"},
        headers=headers,
    )
    assert "Europe/Atlantis" in assert_problem(res, 422, "invalid-input")["detail"]
    res = await client.patch(tenant_url(tree), json={"timezone": "Not/AZone"}, headers=headers)
    assert "Not/AZone" in assert_problem(res, 422, "invalid-input")["detail"]
    tenant = (await get_json(client, tenant_url(tree), tree.partner_token)).json()
    assert tenant["timezone"] == "Europe/Paris"


async def test_overlapping_opening_hours_are_a_422(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    res = await client.post(
        tenant_url(tree, "stores"),
        json={
            "code": "OH1",
            "name": "Store",
            "opening_hours": {"mon": [["08:00", "12:00"], ["11:30", "18:00"]]},
        },
        headers=bearer(tree.partner_token),
    )
    body = assert_problem(res, 422, "invalid-input")
    assert "mon" in body["detail"]
    assert "overlap" in body["detail"]
    res = await client.post(
        tenant_url(tree, "stores"),
        json={"code": "OH2", "name": "Store", "opening_hours": {"tue": [["18:00", "09:00"]]}},
        headers=bearer(tree.partner_token),
    )
    assert_problem(res, 422, "invalid-input")
    # The same hours, not overlapping, are fine.
    ok = await client.post(
        tenant_url(tree, "stores"),
        json={
            "code": "OH3",
            "name": "Store",
            "opening_hours": {"mon": [["08:00", "12:00"], ["13:00", "18:00"]]},
        },
        headers=bearer(tree.partner_token),
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["opening_hours"] == {"mon": [["08:00", "12:00"], ["13:00", "18:00"]]}


# --- lifecycle -----------------------------------------------------------------------------


async def onboard(client: httpx.AsyncClient, tree: Tree) -> dict[str, Any]:
    res = await client.post(
        f"/api/v1/partners/{tree.partner_id}/tenants",
        json={"slug": f"new-{secrets.token_hex(4)}", "name": "New shop", "timezone": "UTC"},
        headers=bearer(tree.partner_token),
    )
    assert res.status_code == 201, res.text
    body: dict[str, Any] = res.json()
    assert body["status"] == "onboarding"
    return body


async def assert_refused_transition(
    client: httpx.AsyncClient, token: str, tenant_id: UUID | str, action: str
) -> None:
    url = f"/api/v1/tenants/{tenant_id}"
    before = (await get_json(client, url, token)).json()
    res = await client.post(f"{url}/{action}", headers=bearer(token))
    body = assert_problem(res, 409, "illegal-transition")
    assert action in body["detail"]
    assert body["current_status"] == before["status"]
    after = (await get_json(client, url, token)).json()
    assert after["status"] == before["status"]
    assert after["version"] == before["version"]
    assert after["updated_at"] == before["updated_at"]


async def test_illegal_tenant_transitions_are_409_and_write_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    token = tree.partner_token
    fresh = await onboard(client, tree)
    await assert_refused_transition(client, token, fresh["id"], "suspend")
    await assert_refused_transition(client, token, fresh["id"], "resume")
    # The tree's tenant is active.
    await assert_refused_transition(client, token, tree.tenant_id, "resume")
    await assert_refused_transition(client, token, tree.tenant_id, "offboard")
    await assert_refused_transition(client, token, tree.tenant_id, "activate")

    # A legal path still works, and each step bumps the version.
    suspended = await client.post(tenant_url(tree, "suspend"), headers=bearer(token))
    assert suspended.status_code == 200, suspended.text
    offboarded = await client.post(tenant_url(tree, "offboard"), headers=bearer(token))
    assert offboarded.status_code == 200, offboarded.text
    assert offboarded.json()["status"] == "offboarded"
    assert offboarded.json()["version"] == suspended.json()["version"] + 1
    await assert_refused_transition(client, token, tree.tenant_id, "resume")
    # An offboarded tenant refuses new children too.
    res = await client.post(
        tenant_url(tree, "regions"), json={"code": "late", "name": "Late"}, headers=bearer(token)
    )
    assert_problem(res, 409, "illegal-transition")


async def test_unknown_lifecycle_action_is_refused(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    res = await client.post(tenant_url(tree, "explode"), headers=bearer(tree.partner_token))
    body = assert_problem(res, 422, "invalid-input")
    assert "explode" in body["detail"]
    for action in ("activate", "suspend", "resume", "offboard"):
        assert action in body["detail"], "the refusal lists the actions that exist"


# --- ETag / If-Match -----------------------------------------------------------------------


async def test_concurrent_writers_with_one_etag_lose_one(
    client: httpx.AsyncClient, world: World
) -> None:
    """Both pass the If-Match check; the version in the UPDATE lets only one through."""
    tree = await world.tree()
    url = tenant_url(tree, "stores", str(tree.store_id))
    etag = (await get_json(client, url, tree.partner_token)).headers["etag"]
    headers = {**bearer(tree.partner_token), "If-Match": etag}
    for attempt in range(5):
        first, second = await asyncio.gather(
            client.patch(url, json={"name": f"A{attempt}"}, headers=headers),
            client.patch(url, json={"name": f"B{attempt}"}, headers=headers),
        )
        codes = sorted((first.status_code, second.status_code))
        assert codes == [200, 412], (first.text, second.text)
        loser = first if first.status_code == 412 else second
        assert_problem(loser, 412, "precondition-failed")
        winner = second if loser is first else first
        headers["If-Match"] = winner.headers["etag"]
    final = await get_json(client, url, tree.partner_token)
    assert final.json()["version"] == 6


async def test_if_match_guards_updates(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    url = tenant_url(tree, "stores", str(tree.store_id))
    headers = bearer(tree.partner_token)
    current = await get_json(client, url, tree.partner_token)
    etag = current.headers["etag"]
    version = current.json()["version"]

    renamed = await client.patch(
        url, json={"name": "Renamed once"}, headers={**headers, "If-Match": etag}
    )
    assert renamed.status_code == 200, renamed.text
    new_etag = renamed.headers["etag"]
    assert new_etag != etag
    assert renamed.json()["version"] == version + 1
    assert renamed.json()["name"] == "Renamed once"

    # The first ETag is stale now: a second writer holding it is refused.
    stale = await client.patch(
        url, json={"name": "Lost update"}, headers={**headers, "If-Match": etag}
    )
    body = assert_problem(stale, 412, "precondition-failed")
    assert new_etag in body["detail"]
    after = await get_json(client, url, tree.partner_token)
    assert after.json()["name"] == "Renamed once"
    assert after.headers["etag"] == new_etag

    again = await client.patch(
        url, json={"name": "Renamed twice"}, headers={**headers, "If-Match": new_etag}
    )
    assert again.status_code == 200, again.text
    assert again.headers["etag"] not in {etag, new_etag}

    # Same on tenants.
    tenant = await get_json(client, tenant_url(tree), tree.partner_token)
    res = await client.patch(
        tenant_url(tree), json={"name": "T"}, headers={**headers, "If-Match": '"0-0"'}
    )
    assert_problem(res, 412, "precondition-failed")
    res = await client.patch(
        tenant_url(tree),
        json={"name": "T"},
        headers={**headers, "If-Match": tenant.headers["etag"]},
    )
    assert res.status_code == 200, res.text


# --- cursor pagination ---------------------------------------------------------------------


async def test_cursor_pagination_walks_every_page_once(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    headers = bearer(tree.partner_token)
    for i in range(4):
        res = await client.post(
            tenant_url(tree, "stores"), json={"code": f"P{i}", "name": f"P{i}"}, headers=headers
        )
        assert res.status_code == 201, res.text
    everything = (await get_json(client, tenant_url(tree, "stores"), tree.partner_token)).json()
    assert len(everything["items"]) == 5
    assert everything["next_cursor"] is None

    seen: list[str] = []
    sizes: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        res = await client.get(tenant_url(tree, "stores"), params=params, headers=headers)
        assert res.status_code == 200, res.text
        page = res.json()
        sizes.append(len(page["items"]))
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(sizes) < 10, "pagination does not terminate"
    assert sizes == [2, 2, 1]
    assert len(seen) == len(set(seen))
    assert seen == [s["id"] for s in everything["items"]]


@pytest.mark.parametrize("cursor", ["not-a-cursor", "AAAA", "!!!!", "x" * 40])
async def test_bad_cursor_is_a_422(client: httpx.AsyncClient, world: World, cursor: str) -> None:
    tree = await world.tree()
    res = await client.get(
        tenant_url(tree, "stores"), params={"cursor": cursor}, headers=bearer(tree.partner_token)
    )
    assert_problem(res, 422, "invalid-input")


@pytest.mark.parametrize("limit", ["0", "-1", "201", "ten"])
async def test_bad_limit_is_a_400(client: httpx.AsyncClient, world: World, limit: str) -> None:
    tree = await world.tree()
    res = await client.get(
        tenant_url(tree, "stores"), params={"limit": limit}, headers=bearer(tree.partner_token)
    )
    body = assert_problem(res, 400)
    assert "limit" in body["detail"]
    assert "ParamType" not in body["detail"]


# --- request ids, metrics, OpenAPI ---------------------------------------------------------


async def test_every_response_carries_a_request_id(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    tree = await world.tree()
    auth = bearer(tree.partner_token)
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/healthz", {}),
        ("GET", "/metrics", {}),
        ("GET", "/schema/openapi.json", {}),
        ("GET", "/.well-known/jwks.json", {}),
        ("GET", "/api/v1/tenants", {"headers": auth}),
        ("GET", "/api/v1/tenants", {}),  # 401
        ("GET", "/api/v1/no-such-route", {"headers": auth}),  # 404 from the router
        ("DELETE", tenant_url(tree), {"headers": auth}),  # 405 from the router
        ("GET", tenant_url(tree, "stores"), {"headers": auth, "params": {"limit": 0}}),
        (
            "POST",
            tenant_url(tree, "regions"),
            {"headers": {**auth, "Idempotency-Key": "k" * 300}, "json": {}},
        ),
        ("POST", "/oauth/token", {"data": {"grant_type": "password"}}),
    ]
    minted: set[str] = set()
    for method, url, kwargs in requests:
        res = await client.request(method, url, **kwargs)
        generated = res.headers.get("x-request-id")
        assert generated, f"{method} {url} -> {res.status_code} has no X-Request-ID"
        minted.add(generated)

        given = f"req-{secrets.token_hex(6)}"
        headers = {**kwargs.get("headers", {}), "X-Request-ID": given}
        echoed = await client.request(method, url, **{**kwargs, "headers": headers})
        assert echoed.headers.get("x-request-id") == given, f"{method} {url} did not echo"
    assert len(minted) == len(requests), "each request gets its own id"

    # An unusable incoming id is replaced rather than echoed.
    res = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert res.headers["x-request-id"] not in {"", "bad id\twith spaces"}
    res = await client.get("/healthz", headers={"X-Request-ID": "x" * 65})
    assert res.headers["x-request-id"] != "x" * 65


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    await client.get("/api/v1/tenants", headers=bearer(tree.partner_token))
    res = await client.get("/metrics")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/plain")
    text = res.text
    assert "# HELP " in text
    assert "# TYPE " in text
    assert "storeops_control_plane" in text
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert samples
    for line in samples:
        float(line.rsplit(" ", 1)[-1])  # every sample line ends in a number


async def test_openapi_lists_operation_ids(client: httpx.AsyncClient) -> None:
    res = await client.get("/schema/openapi.json")
    assert res.status_code == 200, res.text
    doc = res.json()
    assert doc["openapi"].startswith("3.")
    ops = [
        op
        for path in doc["paths"].values()
        for method, op in path.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    ids = [op.get("operationId") for op in ops]
    assert all(ids), "every operation has an operationId"
    assert len(ids) == len(set(ids)), "operationIds are unique"
    assert {
        "issueToken",
        "login",
        "jwks",
        "listAudit",
        "createPartner",
        "onboardTenant",
        "listTenants",
        "getTenant",
        "updateTenant",
        "transitionTenant",
        "createRegion",
        "createStore",
        "listStores",
        "updateStore",
        "createUser",
        "createClient",
    } <= set(ids)


async def test_every_error_body_is_a_complete_problem(
    client: httpx.AsyncClient, world: World
) -> None:
    """A sweep over the error paths: each answers with type/title/status/detail."""
    tree, other = await world.tree(), await world.tree()
    auth = bearer(tree.partner_token)
    no_roles = bearer(await world.token())
    cases: list[tuple[int, httpx.Response]] = [
        (401, await client.get("/api/v1/tenants")),
        (401, await client.get("/api/v1/tenants", headers=bearer("x.y.z"))),
        (403, await client.get("/api/v1/tenants", headers=no_roles)),
        (403, await client.post("/api/v1/partners", json={}, headers=auth)),
        (404, await client.get(f"/api/v1/tenants/{other.tenant_id}", headers=auth)),
        (404, await client.get("/api/v1/nothing-here", headers=auth)),
        (405, await client.delete(tenant_url(tree), headers=auth)),
        (400, await client.get(f"/api/v1/tenants/{tree.tenant_id}/stores?limit=0", headers=auth)),
        (
            400,
            await client.post(
                tenant_url(tree, "regions"),
                content=b"{",
                headers={**auth, "Content-Type": "application/json"},
            ),
        ),
        (409, await client.post(tenant_url(tree, "resume"), headers=auth)),
        (412, await client.patch(tenant_url(tree), json={}, headers={**auth, "If-Match": '"x"'})),
        (422, await client.get(tenant_url(tree, "stores"), params={"cursor": "zz"}, headers=auth)),
        (401, await client.post("/api/v1/auth/login", json={"email": "a@b.c", "password": "x"})),
        (400, await client.post("/oauth/token", data={"grant_type": "password"})),
    ]
    for status, res in cases:
        assert_problem(res, status)


@pytest.mark.parametrize(
    ("labels", "said"),
    [
        ({"Tier": "gold"}, "labels"),
        ({"tier": "gold plus"}, "labels"),
        ({"tier": ""}, "labels"),
        ({f"k{i}": "v" for i in range(33)}, "labels"),
    ],
)
async def test_bad_tenant_labels_are_refused(
    client: httpx.AsyncClient, world: World, labels: dict[str, str], said: str
) -> None:
    tree = await world.tree()
    res = await client.post(
        f"/api/v1/partners/{tree.partner_id}/tenants",
        json={"slug": f"lb-{secrets.token_hex(3)}", "name": "Shop", "timezone": "UTC",
              "labels": labels},
        headers=bearer(tree.partner_token),
    )  # fmt: skip
    body = assert_problem(res, 400)
    assert said in body["detail"]


async def test_tenant_labels_are_kept_and_replaced_whole(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    made = await client.post(
        f"/api/v1/partners/{tree.partner_id}/tenants",
        json={"slug": f"lb-{secrets.token_hex(3)}", "name": "Shop", "timezone": "UTC",
              "labels": {"ring": "canary", "tier": "gold"}},
        headers=bearer(tree.partner_token),
    )  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["labels"] == {"ring": "canary", "tier": "gold"}
    url = f"/api/v1/tenants/{made.json()['id']}"
    changed = await client.patch(
        url,
        json={"labels": {"ring": "late"}},
        headers={**bearer(tree.partner_token), "If-Match": made.headers["etag"]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["labels"] == {"ring": "late"}
