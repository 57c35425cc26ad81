"""Dead letters: listed for the tenant's admins and the NOC, replayed by the admin once."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tenant_runtime.runtime import Runtime
from tests.runtime.api.conftest import Tokens, assert_problem, bearer, start

LETTERS = "/api/v1/dead-letters"


async def dead_run(client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens) -> dict[str, Any]:
    """A run whose call step dies: the ERP connector has no binding in this runtime."""
    run = await start(
        client, runtime, "price-push", tokens.admin, store="S-A", sku=f"P-{secrets.token_hex(4)}"
    )
    detail: dict[str, Any] = (
        await client.get(f"/api/v1/runs/{run['id']}", headers=bearer(tokens.admin))
    ).json()
    assert detail["status"] == "failed", detail
    return detail


async def test_dead_letters_are_listed_and_read(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    run = await dead_run(client, runtime, tokens)
    [letter] = run["dead_letters"]
    assert letter["step_id"] == "push" and letter["template_id"] == "price-push"
    assert "no binding" in letter["reason"] and letter["replayed_at"] is None

    listed = (await client.get(LETTERS, params={"limit": 200}, headers=bearer(tokens.admin))).json()
    assert letter["id"] in {d["id"] for d in listed["items"]}
    pending = (
        await client.get(LETTERS, params={"replayed": "false"}, headers=bearer(tokens.noc))
    ).json()
    assert letter["id"] in {d["id"] for d in pending["items"]}
    one = await client.get(f"{LETTERS}/{letter['id']}", headers=bearer(tokens.noc))
    assert one.status_code == 200 and one.json() == letter
    assert_problem(await client.get(LETTERS, headers=bearer(tokens.manager_a)), 403)
    assert_problem(await client.get(LETTERS, headers=bearer(tokens.regional_north)), 403)


async def test_the_admin_replays_a_dead_letter_once(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    run = await dead_run(client, runtime, tokens)
    letter_id = run["dead_letters"][0]["id"]
    url = f"{LETTERS}/{letter_id}/replay"
    assert_problem(await client.post(url, headers=bearer(tokens.manager_a)), 403)
    assert_problem(await client.post(url, headers=bearer(tokens.noc)), 403)

    res = await client.post(url, headers=bearer(tokens.admin))
    assert res.status_code == 202, res.text
    assert res.json() == {"dead_letter_id": letter_id, "step_row_id": run["steps"][0]["id"]}
    again = await client.post(url, headers=bearer(tokens.admin))
    assert "already replayed" in assert_problem(again, 409)["detail"]

    replayed = (await client.get(f"{LETTERS}/{letter_id}", headers=bearer(tokens.admin))).json()
    assert replayed["replayed_at"] is not None
    await runtime.engine.pump()  # still unbound: the step dies again, with a new letter
    detail = (await client.get(f"/api/v1/runs/{run['id']}", headers=bearer(tokens.admin))).json()
    assert detail["status"] == "failed" and len(detail["dead_letters"]) == 2
    assert detail["steps"][0]["attempt"] == 2


async def test_an_unknown_dead_letter_is_a_404(client: httpx.AsyncClient, tokens: Tokens) -> None:
    unknown = "0190aaaa-0000-7000-8000-000000000000"
    assert_problem(await client.get(f"{LETTERS}/{unknown}", headers=bearer(tokens.admin)), 404)
    res = await client.post(f"{LETTERS}/{unknown}/replay", headers=bearer(tokens.admin))
    assert_problem(res, 404)
