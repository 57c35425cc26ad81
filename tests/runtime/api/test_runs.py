"""Runs through the API: start (idempotent), list and read scoped to the caller, cancel."""

from __future__ import annotations

import asyncio
import secrets

import httpx
from sqlalchemy import func, select

from tenant_runtime.db.schema import runs
from tenant_runtime.runtime import Runtime
from tests.runtime.api.conftest import (
    STORE_A,
    STORE_B,
    Tokens,
    assert_problem,
    bearer,
    start,
)

RUNS = "/api/v1/runs"


def sku() -> str:
    return f"SKU-{secrets.token_hex(4)}"


async def test_start_answers_201_with_location_and_the_run(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    body = {"template_id": "markdown-approval", "input": {"sku": sku()}, "store": "S-A"}
    res = await client.post(RUNS, json=body, headers=bearer(tokens.admin))
    assert res.status_code == 201, res.text
    run = res.json()
    assert res.headers["location"] == f"{RUNS}/{run['id']}"
    assert run["template_id"] == "markdown-approval"
    assert run["template_version"] == "1.0.0"
    assert run["status"] == "running"
    assert run["store"] == str(STORE_A)  # the code named the store; the run keeps its id
    assert run["input"] == body["input"]


async def test_same_key_and_body_return_the_same_run(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    body = {"template_id": "markdown-approval", "input": {"sku": sku()}, "store": "S-A"}
    headers = {**bearer(tokens.admin), "Idempotency-Key": f"key-{secrets.token_hex(4)}"}
    first = await client.post(RUNS, json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await client.post(RUNS, json=body, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    # Key order in the body does not make it another body.
    reordered = {"store": "S-A", "input": body["input"], "template_id": "markdown-approval"}
    assert (await client.post(RUNS, json=reordered, headers=headers)).json()["id"] == first.json()[
        "id"
    ]


async def test_same_key_with_another_body_is_a_422(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    headers = {**bearer(tokens.admin), "Idempotency-Key": f"key-{secrets.token_hex(4)}"}
    body = {"template_id": "markdown-approval", "input": {"sku": sku()}, "store": "S-A"}
    assert (await client.post(RUNS, json=body, headers=headers)).status_code == 201
    other = {**body, "input": {"sku": sku()}}
    problem = assert_problem(
        await client.post(RUNS, json=other, headers=headers), 422, "idempotency-key-reused"
    )
    assert "different body" in problem["detail"]


async def test_idempotency_keys_are_per_caller(client: httpx.AsyncClient, tokens: Tokens) -> None:
    key = f"key-{secrets.token_hex(4)}"
    body = {"template_id": "markdown-approval", "input": {"sku": sku()}, "store": "S-A"}
    mine = await client.post(
        RUNS, json=body, headers={**bearer(tokens.admin), "Idempotency-Key": key}
    )
    theirs = await client.post(
        RUNS, json=body, headers={**bearer(tokens.manager_a), "Idempotency-Key": key}
    )
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


async def test_a_bad_idempotency_key_is_refused(client: httpx.AsyncClient, tokens: Tokens) -> None:
    body = {"template_id": "markdown-approval", "input": {"sku": sku()}, "store": "S-A"}
    res = await client.post(
        RUNS, json=body, headers={**bearer(tokens.admin), "Idempotency-Key": "x" * 256}
    )
    assert "Idempotency-Key" in assert_problem(res, 422)["detail"]


async def test_unknown_template_is_a_404(client: httpx.AsyncClient, tokens: Tokens) -> None:
    res = await client.post(
        RUNS, json={"template_id": "no-such-flow", "input": {}}, headers=bearer(tokens.admin)
    )
    problem = assert_problem(res, 404, "not-found")
    assert "no-such-flow" in problem["detail"] and "markdown-approval" in problem["detail"]


async def test_parameters_failing_their_schema_are_a_422_with_the_path(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    res = await client.post(
        RUNS, json={"template_id": "strict-params", "input": {}}, headers=bearer(tokens.admin)
    )
    problem = assert_problem(res, 422, "invalid-input")
    assert problem["detail"].startswith("limits/max:"), problem
    assert "integer" in problem["detail"]


async def test_body_shape_errors_name_the_field(client: httpx.AsyncClient, tokens: Tokens) -> None:
    res = await client.post(
        RUNS,
        json={"template_id": "markdown-approval", "input": {}, "colour": "red"},
        headers=bearer(tokens.admin),
    )
    assert "colour" in assert_problem(res, 400, "invalid-request")["detail"]
    res = await client.post(
        RUNS, json={"template_id": "markdown-approval", "input": []}, headers=bearer(tokens.admin)
    )
    assert "input" in assert_problem(res, 400)["detail"]
    res = await client.post(
        RUNS,
        content=b'{"template_id": ',
        headers={**bearer(tokens.admin), "Content-Type": "application/json"},
    )
    assert_problem(res, 400)


async def test_a_store_manager_starts_runs_only_for_their_store(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    body = {"template_id": "markdown-approval", "input": {"sku": sku()}, "store": "S-B"}
    problem = assert_problem(
        await client.post(RUNS, json=body, headers=bearer(tokens.manager_a)), 403, "forbidden"
    )
    assert "S-B" in problem["detail"]
    body["store"] = str(STORE_A)
    assert (await client.post(RUNS, json=body, headers=bearer(tokens.manager_a))).status_code == 201


async def test_runs_are_listed_newest_first_within_the_callers_stores(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    mine = [
        (await start(client, runtime, "markdown-approval", tokens.admin, store="S-A", sku=sku()))[
            "id"
        ]
        for _ in range(3)
    ]
    theirs = (
        await start(client, runtime, "markdown-approval", tokens.admin, store="S-B", sku=sku())
    )["id"]

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, "template_id": "markdown-approval"}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(RUNS, params=params, headers=bearer(tokens.manager_a))).json()
        seen += [r["id"] for r in page["items"]]
        assert len(page["items"]) <= 2
        if not (cursor := page["next_cursor"]):
            break
    assert [r for r in seen if r in mine] == list(reversed(mine))
    assert theirs not in seen
    assert all(
        r["store"] == str(STORE_A)
        for r in (await client.get(RUNS, headers=bearer(tokens.manager_a))).json()["items"]
    )

    everything = (
        await client.get(RUNS, params={"limit": 200}, headers=bearer(tokens.admin))
    ).json()
    assert {theirs, *mine} <= {r["id"] for r in everything["items"]}
    by_store = (
        await client.get(RUNS, params={"store": "S-B"}, headers=bearer(tokens.admin))
    ).json()["items"]
    assert by_store and all(r["store"] == str(STORE_B) for r in by_store)


async def test_list_filters_and_cursors_are_checked(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    res = await client.get(RUNS, params={"status": "sleeping"}, headers=bearer(tokens.admin))
    assert "sleeping" in assert_problem(res, 422)["detail"]
    res = await client.get(RUNS, params={"cursor": "!!"}, headers=bearer(tokens.admin))
    assert "cursor" in assert_problem(res, 422)["detail"]
    res = await client.get(RUNS, params={"limit": 0}, headers=bearer(tokens.admin))
    assert_problem(res, 400)


async def test_the_run_carries_its_timeline(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    run = await start(client, runtime, "markdown-approval", tokens.admin, store="S-A", sku=sku())
    detail = (await client.get(f"{RUNS}/{run['id']}", headers=bearer(tokens.manager_a))).json()
    assert [s["step_id"] for s in detail["steps"]] == ["approve"]
    step = detail["steps"][0]
    assert step["status"] == "waiting" and step["attempt"] == 1 and step["visit"] == 1
    assert step["name"] == "Approve markdown" and step["kind"] == "approval"
    assert step["branch"] == ""
    [task] = detail["tasks"]
    assert task["title"].startswith("Approve markdown of SKU-") and task["status"] == "open"
    assert detail["notifications"][0]["reason"] == "task_assigned"
    assert detail["params"] == {"max_percent": 30}
    assert detail["waits"] == [] and detail["dead_letters"] == []


async def test_another_stores_run_is_a_404(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    run = await start(client, runtime, "markdown-approval", tokens.admin, store="S-B", sku=sku())
    res = await client.get(f"{RUNS}/{run['id']}", headers=bearer(tokens.manager_a))
    assert_problem(res, 404)
    assert (
        await client.get(f"{RUNS}/{run['id']}", headers=bearer(tokens.manager_b))
    ).status_code == 200


async def test_cancel_closes_the_run_and_its_tasks(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    run = await start(client, runtime, "markdown-approval", tokens.admin, store="S-A", sku=sku())
    url = f"{RUNS}/{run['id']}/cancel"
    assert_problem(await client.post(url, headers=bearer(tokens.manager_a)), 403)
    res = await client.post(url, headers=bearer(tokens.admin))
    assert res.status_code == 200, res.text
    assert res.json() == {"run_id": run["id"], "status": "cancelled"}
    detail = (await client.get(f"{RUNS}/{run['id']}", headers=bearer(tokens.admin))).json()
    assert detail["status"] == "cancelled"
    assert [t["status"] for t in detail["tasks"]] == ["cancelled"]
    problem = assert_problem(await client.post(url, headers=bearer(tokens.admin)), 409)
    assert "cancelled" in problem["detail"]


async def test_an_unknown_store_is_a_422(client: httpx.AsyncClient, tokens: Tokens) -> None:
    body = {"template_id": "markdown-approval", "input": {"sku": sku()}, "store": "S-ZZ"}
    problem = assert_problem(await client.post(RUNS, json=body, headers=bearer(tokens.admin)), 422)
    assert "S-ZZ" in problem["detail"] and "S-A" in problem["detail"]


async def test_the_store_may_be_named_in_the_input(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    body = {"template_id": "markdown-approval", "input": {"sku": sku(), "store_id": "S-B"}}
    assert_problem(await client.post(RUNS, json=body, headers=bearer(tokens.manager_a)), 403)
    res = await client.post(RUNS, json=body, headers=bearer(tokens.manager_b))
    assert res.status_code == 201 and res.json()["store"] == str(STORE_B)


async def test_concurrent_retries_with_one_key_make_one_run(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    body = {"template_id": "markdown-approval", "input": {"sku": sku()}, "store": "S-A"}
    headers = {**bearer(tokens.admin), "Idempotency-Key": f"key-{secrets.token_hex(4)}"}
    answers = await asyncio.gather(
        *(client.post(RUNS, json=body, headers=headers) for _ in range(5))
    )
    # Racing requests may each be told 201 (the engine returns the key's run either way),
    # but they all get the one run.
    assert {a.status_code for a in answers} <= {200, 201}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    async with runtime.db.connect() as conn:
        made = await conn.scalar(
            select(func.count())
            .select_from(runs)
            .where(runs.c.input["sku"].as_string() == body["input"]["sku"])
        )
    assert made == 1
