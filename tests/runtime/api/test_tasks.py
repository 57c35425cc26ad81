"""The inbox: each role sees and decides exactly the tasks in its scope; anything else is a
404, so a task's existence does not leak. Decisions are checked and move the run on."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tenant_runtime.runtime import Runtime
from tests.runtime.api.conftest import (
    STORE_A,
    STORE_B,
    Tokens,
    assert_problem,
    bearer,
    start,
    task_of,
)

TASKS = "/api/v1/tasks"


def tag() -> str:
    return secrets.token_hex(4)


async def inbox(client: httpx.AsyncClient, token: str, **params: Any) -> set[str]:
    res = await client.get(TASKS, params={"limit": 200, **params}, headers=bearer(token))
    assert res.status_code == 200, res.text
    return {t["id"] for t in res.json()["items"]}


async def markdown(client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens, store: str) -> str:
    run = await start(
        client, runtime, "markdown-approval", tokens.admin, store=store, sku=f"MD-{tag()}"
    )
    return str(await task_of(runtime, run["id"]))


async def signoff(client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens, store: str) -> str:
    run = await start(client, runtime, "regional-signoff", tokens.admin, store=store, po=tag())
    return str(await task_of(runtime, run["id"]))


async def test_each_role_sees_the_tasks_of_its_scope(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    task_a = await markdown(client, runtime, tokens, "S-A")
    task_b = await markdown(client, runtime, tokens, str(STORE_B))
    north = await signoff(client, runtime, tokens, "S-A")
    south = await signoff(client, runtime, tokens, "S-S")

    seen_by_a = await inbox(client, tokens.manager_a)
    assert task_a in seen_by_a
    assert not seen_by_a & {task_b, north, south}  # other store; a regional manager's task
    seen_by_b = await inbox(client, tokens.manager_b)
    assert task_b in seen_by_b and task_a not in seen_by_b
    # Regional managers: their region's own tasks and its stores' tasks.
    assert {task_a, task_b, north} <= await inbox(client, tokens.regional_north)
    assert south not in await inbox(client, tokens.regional_north)
    seen_south = await inbox(client, tokens.regional_south)
    assert south in seen_south and not seen_south & {task_a, task_b, north}
    assert {task_a, task_b, north, south} <= await inbox(client, tokens.admin)

    task = (await client.get(f"{TASKS}/{task_a}", headers=bearer(tokens.manager_a))).json()
    assert task["store"] == str(STORE_A) and task["assignee_role"] == "store_manager"
    assert task["kind"] == "approval" and task["form"][0]["name"] == "reason"
    assert task["title"].startswith("Approve markdown of MD-")


async def test_another_stores_task_is_a_404_to_read_and_to_decide(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    task_b = await markdown(client, runtime, tokens, "S-B")
    res = await client.get(f"{TASKS}/{task_b}", headers=bearer(tokens.manager_a))
    assert_problem(res, 404, "not-found")
    res = await client.post(
        f"{TASKS}/{task_b}/decision",
        json={"decision": "approved"},
        headers=bearer(tokens.manager_a),
    )
    body = assert_problem(res, 404, "not-found")
    assert body["detail"] == f"task {task_b} does not exist"  # as for a task that never was
    unknown = await client.get(
        f"{TASKS}/{'0' * 8}-0000-7000-8000-{'0' * 12}", headers=bearer(tokens.admin)
    )
    assert_problem(unknown, 404)
    still = (await client.get(f"{TASKS}/{task_b}", headers=bearer(tokens.manager_b))).json()
    assert still["status"] == "open"


async def test_an_approval_moves_the_run_on_and_closes_the_task(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    task_id = await markdown(client, runtime, tokens, "S-A")
    res = await client.post(
        f"{TASKS}/{task_id}/decision",
        json={
            "decision": "approved",
            "comment": "ok",
            "answers": {"reason": "old stock", "percent": 20},
        },
        headers=bearer(tokens.manager_a),
    )
    assert res.status_code == 200, res.text
    task = res.json()
    assert task["status"] == "done" and task["decision"] == "approved"
    assert task["decided_via"] == "human" and task["decided_by"].startswith("user:")
    assert task["answers"] == {"reason": "old stock", "percent": 20}
    assert task_id not in await inbox(client, tokens.manager_a)
    assert task_id in await inbox(client, tokens.manager_a, status="done")

    await runtime.engine.pump()
    run = (await client.get(f"/api/v1/runs/{task['run_id']}", headers=bearer(tokens.admin))).json()
    assert run["status"] == "succeeded"
    assert [s["step_id"] for s in run["steps"]] == ["approve", "applied"]
    assert run["steps"][0]["output"]["decision"] == "approved"

    again = await client.post(
        f"{TASKS}/{task_id}/decision",
        json={"decision": "rejected"},
        headers=bearer(tokens.manager_a),
    )
    assert "done" in assert_problem(again, 409, "conflict")["detail"]


async def test_bad_decisions_are_a_422_and_leave_the_task_open(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    task_id = await markdown(client, runtime, tokens, "S-A")
    url = f"{TASKS}/{task_id}/decision"
    cases = [
        ({"decision": "maybe"}, "maybe"),
        ({"decision": "approved", "answers": {"colour": "red"}}, "colour"),
        ({"decision": "approved", "answers": {"percent": 95}}, "percent"),
        ({"decision": "approved", "answers": {"reason": 7}}, "reason"),
    ]
    for body, named in cases:
        res = await client.post(url, json=body, headers=bearer(tokens.manager_a))
        assert named in assert_problem(res, 422, "invalid-input")["detail"], body
    res = await client.post(
        url, json={"decision": "approved", "vote": 1}, headers=bearer(tokens.manager_a)
    )
    assert "vote" in assert_problem(res, 400)["detail"]
    res = await client.post(url, json={"comment": "no decision"}, headers=bearer(tokens.manager_a))
    assert "decision" in assert_problem(res, 400)["detail"]
    task = (await client.get(f"{TASKS}/{task_id}", headers=bearer(tokens.manager_a))).json()
    assert task["status"] == "open"


async def test_a_checklist_is_submitted_with_its_evidence(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    run = await start(client, runtime, "opening-checklist", tokens.admin, store="S-A", day=tag())
    task_id = str(await task_of(runtime, run["id"]))
    assert task_id in await inbox(client, tokens.manager_a, kind="checklist")
    assert task_id not in await inbox(client, tokens.manager_a, kind="approval")
    url = f"{TASKS}/{task_id}/decision"
    res = await client.post(url, json={"decision": "approved"}, headers=bearer(tokens.manager_a))
    assert "submitted" in assert_problem(res, 422)["detail"]
    res = await client.post(
        url,
        json={"decision": "submitted", "answers": {"doors": {"ok": True}}},
        headers=bearer(tokens.manager_a),
    )
    assert "fridge" in assert_problem(res, 422)["detail"]
    answers = {"doors": {"ok": True, "evidence": None}, "fridge": {"ok": True, "evidence": 11.5}}
    res = await client.post(
        url, json={"decision": "submitted", "answers": answers}, headers=bearer(tokens.manager_a)
    )
    assert res.status_code == 200, res.text
    assert res.json()["decision"] == "exception"  # 11.5 °C is outside 0..8: a failed item
    await runtime.engine.pump()
    detail = (await client.get(f"/api/v1/runs/{run['id']}", headers=bearer(tokens.admin))).json()
    assert detail["status"] == "succeeded"
    assert detail["steps"][0]["output"]["failed_items"] == ["fridge"]


async def test_inbox_filters_are_checked(client: httpx.AsyncClient, tokens: Tokens) -> None:
    res = await client.get(TASKS, params={"kind": "errand"}, headers=bearer(tokens.admin))
    assert "errand" in assert_problem(res, 422)["detail"]
    res = await client.get(TASKS, params={"status": "later"}, headers=bearer(tokens.admin))
    assert "later" in assert_problem(res, 422)["detail"]
    assert (
        await client.get(TASKS, params={"status": "any"}, headers=bearer(tokens.admin))
    ).status_code == 200


async def test_the_inbox_pages_newest_first(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    made = [await markdown(client, runtime, tokens, "S-B") for _ in range(3)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(TASKS, params=params, headers=bearer(tokens.manager_b))).json()
        seen += [t["id"] for t in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert [t for t in seen if t in made] == list(reversed(made))
    assert len(seen) == len(set(seen))


async def test_the_noc_reads_tasks_but_does_not_decide(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    task_id = await markdown(client, runtime, tokens, "S-A")
    assert (await client.get(f"{TASKS}/{task_id}", headers=bearer(tokens.noc))).status_code == 200
    res = await client.post(
        f"{TASKS}/{task_id}/decision", json={"decision": "approved"}, headers=bearer(tokens.noc)
    )
    assert_problem(res, 403, "forbidden")


async def test_a_regional_manager_decides_a_store_task_in_the_region(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    task_id = await markdown(client, runtime, tokens, "S-B")
    url = f"{TASKS}/{task_id}/decision"
    assert_problem(
        await client.post(
            url, json={"decision": "rejected"}, headers=bearer(tokens.regional_south)
        ),
        404,
    )
    res = await client.post(
        url, json={"decision": "rejected"}, headers=bearer(tokens.regional_north)
    )
    assert res.status_code == 200 and res.json()["decision"] == "rejected"
