"""Triage through the runtime API and portal: a review task decided over HTTP, the audit of
AI decisions (scoped like runs), the tenant's labelled examples (read tenant-wide, taught by
its admin), the insights it raised, and the inbox's review form and advice block."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete

from control_plane.contracts.triage import TriageSettings
from control_plane.contracts.validate import lint
from tenant_runtime.config import RuntimeSettings
from tenant_runtime.connectors import NoAuth, RestConnector, RetryPolicy
from tenant_runtime.connectors.bindings import BoundConnectors
from tenant_runtime.db.migrate import upgrade
from tenant_runtime.db.schema import triage_examples
from tenant_runtime.engine.directory import Deployment
from tenant_runtime.runtime import Runtime, load_template
from tenant_runtime.sandbox import SYSTEMS, SandboxConfig, create_sandbox_app
from tenant_runtime.secrets import SecretCache
from tenant_runtime.triage.patterns import raise_insights
from tests.conftest import _admin_exec
from tests.engine.conftest import _database
from tests.runtime.api.conftest import (
    NORTH,
    STORE_A,
    TENANT,
    Tokens,
    assert_problem,
    bearer,
    directory,
    start,
    task_of,
)
from tests.templates.harness import TEMPLATES

CONFIDENT = "Dairy chiller at 9°C and rising, alarm beeping"
UNSURE = "Something is not right at the back of the shop, please send someone"
TASKS, DECISIONS = "/api/v1/tasks", "/api/v1/ai/decisions"
EXAMPLES, INSIGHTS = "/api/v1/triage/examples", "/api/v1/insights"

#: Classify, recommend, then ask the store: triage without connectors, for the advice.
ADVICE_TEMPLATE = """
id: incident-advice
name: Incident advice
version: 1.0.0
category: maintenance
owner: platform
summary: Classifies a fault, finds similar resolved faults, and asks the store to confirm.
triggers: [{kind: api}]
steps:
  - id: triage
    kind: classify
    text: input.description
    target: category
    threshold: 0.6
    assignee: {role: regional_manager, scope: region}
    next: advise
  - id: advise
    kind: recommend
    text: input.description
    label: steps.triage.output.label
    context:
      asset: "{'asset_id': 'AST-20001', 'under_warranty': true}"
    outcome: {vendor: "'FAC-COLD'"}
    resolution: "'vendor FAC-COLD replaced the evaporator fan'"
    next: confirm
  - id: confirm
    kind: approval
    name: Confirm the repair
    title: '"Confirm the repair of " + input.description'
    assignee: {role: store_manager, scope: store}
    outcomes: {approved: end, rejected: end}
"""


class _NoSecrets:
    async def get(self, name: str) -> str:
        raise AssertionError(f"the sandbox needs no secret, asked for {name}")


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
async def runtime(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Runtime]:
    """The API tests' runtime with maintenance-incident 1.2.0 (its service desk and ERP the
    sandbox's) and a connector-free triage template deployed."""
    home = Path(tmp_path_factory.mktemp("runtime-triage"))
    url, name = await _database(request.param, home)
    await asyncio.to_thread(upgrade, url)
    sandbox = httpx.ASGITransport(app=create_sandbox_app(SandboxConfig()))
    connectors = {
        system: RestConnector(
            f"http://sandbox/{system}",
            NoAuth(),
            timeout=5.0,
            retry=RetryPolicy(attempts=1),
            secrets=SecretCache(_NoSecrets()),
            transport=sandbox,
        )
        for system in SYSTEMS
    }
    advice, problems = lint(ADVICE_TEMPLATE, "incident-advice/1.0.0.yaml")
    assert advice is not None and not problems, problems
    found = directory()
    found.deployments["maintenance-incident"] = Deployment(
        load_template(TEMPLATES, "maintenance-incident", "1.2.0"), {}
    )
    found.deployments["incident-advice"] = Deployment(advice, {})
    settings = RuntimeSettings(tenant_id=TENANT, home=home, database_url=url)
    rt = Runtime(settings, directory=found, connectors=BoundConnectors(connectors))
    yield rt
    await rt.close()
    for connector in connectors.values():
        await connector.aclose()
    if name:
        await _admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
async def _forget_examples(runtime: Runtime) -> AsyncIterator[None]:
    """What a test teaches the tenant's model stays in that test: an unsure text stays unsure."""
    yield
    async with runtime.db.begin() as conn:
        await conn.execute(delete(triage_examples))


async def incident(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens, text: str, store: str = "S-A"
) -> dict[str, Any]:
    return await start(
        client,
        runtime,
        "maintenance-incident",
        tokens.admin,
        store=store,
        category="other",
        asset_id="AST-10001",
        description=text,
        reported_by="store app",
    )


async def get(client: httpx.AsyncClient, path: str, token: str, **params: Any) -> Any:
    res = await client.get(path, params=params, headers=bearer(token))
    assert res.status_code == 200, res.text
    return res.json()


async def audit_of(client: httpx.AsyncClient, token: str, run_id: str) -> list[dict[str, Any]]:
    page = await get(client, DECISIONS, token, run_id=run_id)
    items: list[dict[str, Any]] = page["items"]
    return items


# --- a review task, decided over HTTP --------------------------------------------------


async def test_an_unsure_incident_is_reviewed_through_the_task_api(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    run = await incident(client, runtime, tokens, UNSURE)
    task_id = str(await task_of(runtime, run["id"]))

    inbox = await get(client, TASKS, tokens.regional_north, kind="review")
    [task] = [t for t in inbox["items"] if t["id"] == task_id]
    assert task["kind"] == "review" and task["assignee_role"] == "regional_manager"
    review = task["context"]["review"]
    assert review["text"] == UNSURE and review["confidence"] < review["threshold"] == 0.6
    assert task["form"][0]["name"] == "label"
    assert "building_plumbing" in task["form"][0]["options"] == review["labels"]
    assert task_id not in {
        t["id"] for t in (await get(client, TASKS, tokens.regional_north, kind="approval"))["items"]
    }
    # The store's manager does not review the category: the task is not theirs to see.
    res = await client.post(
        f"{TASKS}/{task_id}/decision",
        json={"decision": "reviewed", "answers": {"label": "hvac"}},
        headers=bearer(tokens.manager_a),
    )
    assert_problem(res, 404, "not-found")

    decide = f"{TASKS}/{task_id}/decision"
    north = bearer(tokens.regional_north)
    for body, message in (
        ({"decision": "reviewed", "answers": {"label": "plumbin"}}, "label must be one of"),
        ({"decision": "approved", "answers": {"label": "hvac"}}, "a review is 'reviewed'"),
        ({"decision": "reviewed", "answers": {"label": "hvac", "x": 1}}, "give only 'label'"),
        ({"decision": "corrected", "answers": {}}, "'label' is required"),
        (
            {"decision": "confirmed", "answers": {"label": "building_plumbing"}},
            "does not fit label 'building_plumbing'",
        ),
    ):
        if body["decision"] == "confirmed" and review["suggestion"] == "building_plumbing":
            continue
        problem = assert_problem(await client.post(decide, json=body, headers=north), 422)
        assert message in problem["detail"], problem
    assert (await get(client, f"{TASKS}/{task_id}", tokens.admin))["status"] == "open"

    res = await client.post(
        decide,
        json={"decision": "reviewed", "answers": {"label": "building_plumbing"}, "comment": "leak"},
        headers=north,
    )
    assert res.status_code == 200, res.text
    decided = res.json()
    expected = "confirmed" if review["suggestion"] == "building_plumbing" else "corrected"
    assert (decided["status"], decided["decision"]) == ("done", expected)
    assert decided["answers"] == {"label": "building_plumbing"}
    again = await client.post(
        decide, json={"decision": "reviewed", "answers": {"label": "hvac"}}, headers=north
    )
    assert_problem(again, 409, "conflict")

    await runtime.engine.pump()
    detail = await get(client, f"/api/v1/runs/{run['id']}", tokens.admin)
    triage = next(s for s in detail["steps"] if s["step_id"] == "triage")
    assert triage["output"]["label"] == "building_plumbing"
    assert triage["output"]["routed"] == "review" and triage["output"]["decision"] == expected
    assert "advise" in {s["step_id"] for s in detail["steps"]}  # the run went on

    classify, recommend = sorted(
        await audit_of(client, tokens.admin, run["id"]), key=lambda d: d["kind"]
    )
    assert classify["routed"] == "review" and classify["task_id"] == task_id
    assert (classify["decision"], classify["final_label"]) == (expected, "building_plumbing")
    assert classify["decided_by"] and classify["decided_at"] and classify["text"] == UNSURE
    assert recommend["routed"] == "advice" and recommend["label"] == "building_plumbing"
    # What the person answered is now one of the tenant's examples.
    learnt = await get(client, EXAMPLES, tokens.admin, source="review")
    [example] = [e for e in learnt["items"] if e["text"] == UNSURE]
    assert example["label"] == "building_plumbing"
    assert example["decision_id"] == classify["id"]


async def test_the_review_kind_is_a_known_task_filter(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    res = await client.get(TASKS, params={"kind": "reviews"}, headers=bearer(tokens.admin))
    problem = assert_problem(res, 422, "invalid-input")
    assert "approval, checklist, review" in problem["detail"]


# --- the AI decision audit -------------------------------------------------------------


async def test_the_audit_holds_every_field_of_a_decision(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    run = await incident(client, runtime, tokens, CONFIDENT)
    audit = await audit_of(client, tokens.admin, run["id"])
    [classify] = [d for d in audit if d["kind"] == "classify"]
    assert set(classify) == {
        "id", "run_id", "step_row_id", "step_id", "template_id", "template_version", "store",
        "kind", "target", "input_hash", "text", "model", "model_version", "label",
        "confidence", "threshold", "routed", "task_id", "decision", "final_label",
        "decided_by", "decided_at", "detail", "created_at",
    }  # fmt: skip
    assert classify["routed"] == "auto" and classify["label"] == "refrigeration"
    assert classify["confidence"] >= classify["threshold"] == 0.6
    assert (classify["template_id"], classify["template_version"]) == (
        "maintenance-incident",
        "1.2.0",
    )
    assert classify["store"] == str(STORE_A) and classify["text"] == CONFIDENT
    assert classify["target"] == "category" and classify["step_id"] == "triage"
    assert classify["decision"] is None and classify["task_id"] is None
    assert re.fullmatch(r"[0-9a-f]{64}", classify["input_hash"])

    one = await get(client, f"{DECISIONS}/{classify['id']}", tokens.admin)
    assert one == classify
    [recommend] = [d for d in audit if d["kind"] == "recommend"]
    assert recommend["routed"] == "advice" and "cases_searched" in recommend["detail"]


async def test_each_role_sees_the_decisions_of_the_runs_it_may_see(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    run = await incident(client, runtime, tokens, CONFIDENT, store="S-A")
    [decision, *_] = await audit_of(client, tokens.admin, run["id"])
    one = f"{DECISIONS}/{decision['id']}"
    for token in (tokens.manager_a, tokens.regional_north, tokens.noc):
        assert (await get(client, one, token))["id"] == decision["id"]
        assert len(await audit_of(client, token, run["id"])) == 2
    # Another store's manager, another region's: as if the decision did not exist.
    for token in (tokens.manager_b, tokens.regional_south):
        assert_problem(await client.get(one, headers=bearer(token)), 404, "not-found")
        assert await audit_of(client, token, run["id"]) == []
        listed = await get(client, DECISIONS, token, limit=200)
        assert decision["id"] not in {d["id"] for d in listed["items"]}
    unknown = await client.get(f"{DECISIONS}/{secrets.token_hex(16)}", headers=bearer(tokens.admin))
    assert_problem(unknown, 404, "not-found")


async def test_decisions_filter_and_page(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    runs = [(await incident(client, runtime, tokens, CONFIDENT))["id"] for _ in range(2)]
    mine = set(runs)

    recent = await get(client, DECISIONS, tokens.admin, since=before.isoformat(), limit=200)
    assert mine <= {d["run_id"] for d in recent["items"]}
    assert all(d["created_at"] >= before.isoformat()[:19] for d in recent["items"])
    later = (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    assert (await get(client, DECISIONS, tokens.admin, since=later))["items"] == []

    auto = await get(client, DECISIONS, tokens.admin, routed="auto", kind="classify", limit=200)
    assert mine <= {d["run_id"] for d in auto["items"]}
    assert {(d["kind"], d["routed"]) for d in auto["items"]} == {("classify", "auto")}
    advice = await get(client, DECISIONS, tokens.admin, kind="recommend", limit=200)
    assert {d["routed"] for d in advice["items"]} == {"advice"}

    # Page through this run's two decisions one at a time, newest first.
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"run_id": runs[0], "limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = await get(client, DECISIONS, tokens.admin, **params)
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [d["kind"] for d in seen] == ["recommend", "classify"]
    assert seen[0]["created_at"] >= seen[1]["created_at"]

    for params, status, message in (
        ({"kind": "guess"}, 422, "kind 'guess' is not one of: classify, recommend"),
        ({"routed": "manual"}, 422, "routed 'manual' is not one of: auto, review, advice"),
        ({"cursor": "not-a-cursor"}, 422, "is not one this API returned"),
        ({"since": "last tuesday"}, 400, "since"),
        ({"run_id": "42"}, 400, "run_id"),
        ({"limit": 0}, 400, "limit"),
    ):
        res = await client.get(DECISIONS, params=params, headers=bearer(tokens.admin))
        assert message in assert_problem(res, status)["detail"]


# --- the tenant's examples -------------------------------------------------------------


def examples(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"text": text, "label": label} for text, label in pairs]


async def test_the_admin_imports_examples_and_the_model_learns_them(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    tag = secrets.token_hex(4)
    walk_in = f"Walk-in freezer {tag} door seal torn, ice building up on the floor"
    spill = f"Customer dropped a jar of olive oil {tag} in aisle four"
    admin = bearer(tokens.admin)
    body = {
        "target": "category",
        "examples": examples(
            (walk_in, "refrigeration"),
            (f"  {spill}  ", "hvac"),
            (spill, "safety_spill"),  # the same text again: the last label counts
            (f"Scanner {tag} keeps beeping", "pos_scanner"),
        ),
    }
    res = await client.post(EXAMPLES, json=body, headers=admin)
    assert res.status_code == 200, res.text
    assert res.json() == {
        "target": "category",
        "received": 4,
        "created": 3,
        "relabelled": 0,
        "unchanged": 0,
        "repeated": 1,
        "new_labels": ["pos_scanner"],
    }
    again = {
        "target": "category",
        "examples": examples((walk_in, "refrigeration"), (spill, "building_plumbing")),
    }
    res = await client.post(EXAMPLES, json=again, headers=admin)
    assert res.status_code == 200, res.text
    assert res.json() == {
        "target": "category",
        "received": 2,
        "created": 0,
        "relabelled": 1,
        "unchanged": 1,
        "repeated": 0,
        "new_labels": [],
    }

    listed = await get(client, EXAMPLES, tokens.admin, target="category", source="import")
    mine = {e["text"]: e for e in listed["items"] if tag in e["text"]}
    assert {t: e["label"] for t, e in mine.items()} == {
        walk_in: "refrigeration",
        spill: "building_plumbing",
        f"Scanner {tag} keeps beeping": "pos_scanner",
    }
    assert {e["created_by"] for e in mine.values()} == {mine[walk_in]["created_by"]}
    priorities = await get(client, EXAMPLES, tokens.noc, target="priority", limit=200)
    assert not [e for e in priorities["items"] if tag in e["text"]]

    # The tenant's model is trained again with them.
    verdict = await runtime.engine.triage.classify("category", spill)
    assert verdict.label == "building_plumbing"

    # Forgetting one: it is gone, and only an admin may.
    gone = f"{EXAMPLES}/{mine[f'Scanner {tag} keeps beeping']['id']}"
    assert_problem(await client.delete(gone, headers=bearer(tokens.noc)), 403, "forbidden")
    assert (await client.delete(gone, headers=admin)).status_code == 204
    assert_problem(await client.delete(gone, headers=admin), 404, "not-found")
    left = await get(client, EXAMPLES, tokens.admin, limit=200)
    assert f"Scanner {tag} keeps beeping" not in {e["text"] for e in left["items"]}


async def test_examples_page_and_are_for_tenant_wide_roles(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    tag = secrets.token_hex(4)
    body = {
        "target": "priority",
        "examples": examples(*((f"Lights {tag} flicker in aisle {n}", "low") for n in range(5))),
    }
    res = await client.post(EXAMPLES, json=body, headers=bearer(tokens.admin))
    assert res.status_code == 200 and res.json()["created"] == 5, res.text

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"target": "priority", "label": "low", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await get(client, EXAMPLES, tokens.admin, **params)
        assert len(page["items"]) <= 2
        seen += [e["text"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) and {t for t in seen if tag in t} == {
        f"Lights {tag} flicker in aisle {n}" for n in range(5)
    }

    for token in (tokens.manager_a, tokens.regional_north):
        assert_problem(await client.get(EXAMPLES, headers=bearer(token)), 403, "forbidden")
    for token in (tokens.manager_a, tokens.regional_north, tokens.noc):
        res = await client.post(EXAMPLES, json=body, headers=bearer(token))
        assert_problem(res, 403, "forbidden")
    bad = await client.get(EXAMPLES, params={"target": "colour"}, headers=bearer(tokens.admin))
    assert "target 'colour' is not one of: category, priority" in assert_problem(bad, 422)["detail"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"target": "category", "examples": []}, 400, "length >= 1"),
        (
            {"target": "colour", "examples": examples(("A fridge is warm", "hvac"))},
            400,
            "body 'target': Invalid enum value 'colour'; give one of: category, priority",
        ),
        ({"target": "category", "examples": examples(("ab", "hvac"))}, 400, "examples[0].text"),
        (
            {"target": "category", "examples": examples(("A fridge is warm", "Refrigeration"))},
            400,
            "body 'examples[0].label': Expected `str` matching regex '^[a-z][a-z0-9_]{1,62}$' "
            "(a lower-case letter, then 1-62 lower-case letters, digits or underscores",
        ),
        (
            {"target": "category", "examples": examples(("Warm fridge", "hvac"), ("x", "hvac"))},
            400,
            "examples[1].text",
        ),
        ({"target": "category", "examples": examples(("   ab   ", "hvac"))}, 422, "at least 3"),
        ({"target": "category", "examples": examples(("A fridge is warm", "x"))}, 400, "label"),
        ({"target": "category", "examples": [{"text": "A fridge is warm"}]}, 400, "label"),
        ({"target": "category", "examples": examples(("Warm fridge", "hvac")), "x": 1}, 400, "x"),
        ({"examples": examples(("Warm fridge", "hvac"))}, 400, "target"),
        (
            {"target": "category", "examples": examples(*[("Warm fridge", "hvac")] * 1001)},
            400,
            "length <= 1000",
        ),
    ],
)
async def test_a_bad_import_is_refused_with_what_was_wrong(
    client: httpx.AsyncClient, tokens: Tokens, body: dict[str, Any], status: int, message: str
) -> None:
    res = await client.post(EXAMPLES, json=body, headers=bearer(tokens.admin))
    problem = assert_problem(res, status)
    assert message in problem["detail"], problem


async def test_an_import_of_a_thousand_long_texts_fits_in_one_request(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """1000 texts of 2000 characters exceed the API's usual 1 MiB body: the import takes
    more (the last label is wrong on purpose, so nothing is written)."""
    long = examples(*((f"{n:04d} " + "w" * 1995, "hvac") for n in range(999)))
    body = {"target": "category", "examples": [*long, {"text": "w" * 2000, "label": "Bad"}]}
    res = await client.post(EXAMPLES, json=body, headers=bearer(tokens.admin))
    assert "examples[999].label" in assert_problem(res, 400)["detail"]
    huge = {"target": "category", "examples": examples(("w" * 2000, "hvac"))} | {
        "padding": "x" * (5 * 1024 * 1024)
    }
    res = await client.post(EXAMPLES, json=huge, headers=bearer(tokens.admin))
    assert_problem(res, 413)


# --- insights --------------------------------------------------------------------------


async def test_insights_list_the_patterns_raised_newest_first(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    for store in ("S-A", "S-A", "S-B"):
        await start(
            client, runtime, "incident-advice", tokens.admin, store=store, description=CONFIDENT
        )
    settings = TriageSettings(store_threshold=2, region_threshold=3)
    await raise_insights(runtime.engine, settings)

    listed = await get(client, INSIGHTS, tokens.noc, limit=200)
    by_id = {i["id"]: i for i in listed["items"]}
    [store_a] = [
        i for i in by_id.values() if (i["scope"], i["subject"]) == ("store", str(STORE_A))
        and i["label"] == "refrigeration"
    ]  # fmt: skip
    assert store_a["count"] >= 2 and store_a["threshold"] == 2
    assert store_a["evidence"][-1]["text"] == CONFIDENT
    assert store_a["notified"] == f"regional_manager@region:{NORTH}"
    [region] = [
        i for i in by_id.values() if i["scope"] == "region" and i["label"] == "refrigeration"
    ]
    assert region["subject"] == str(NORTH) and region["count"] >= 3
    raised_at = [i["raised_at"] for i in listed["items"]]
    assert raised_at == sorted(raised_at, reverse=True)

    only_regions = await get(client, INSIGHTS, tokens.admin, scope="region")
    assert {i["scope"] for i in only_regions["items"]} == {"region"}
    fridges = await get(client, INSIGHTS, tokens.admin, label="refrigeration")
    assert {i["label"] for i in fridges["items"]} == {"refrigeration"}
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert (await get(client, INSIGHTS, tokens.admin, since=later))["items"] == []
    assert (await get(client, INSIGHTS, tokens.admin, since=store_a["last_at"]))["items"]
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = await get(client, INSIGHTS, tokens.admin, **params)
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [i["id"] for i in listed["items"]]

    for token in (tokens.manager_a, tokens.regional_north):
        assert_problem(await client.get(INSIGHTS, headers=bearer(token)), 403, "forbidden")
    for params in ({"scope": "planet"}, {"cursor": "bm9wZQ"}):
        res = await client.get(INSIGHTS, params=params, headers=bearer(tokens.admin))
        assert_problem(res, 422, "invalid-input")


# --- the portal ------------------------------------------------------------------------


async def test_the_inbox_shows_a_review_with_its_suggestion_and_a_label_form(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    run = await incident(client, runtime, tokens, UNSURE, store="S-B")
    task_id = str(await task_of(runtime, run["id"]))
    task = await get(client, f"{TASKS}/{task_id}", tokens.admin)
    review = task["context"]["review"]

    res = await client.get("/portal", headers=bearer(tokens.regional_north))
    assert res.status_code == 200, res.text
    card = res.text.split(f'id="task-{task_id}"')[1].split("</article>")[0]
    assert f'<blockquote class="classified">{UNSURE}</blockquote>' in card
    assert f'data-suggestion="{review["suggestion"]}"' in card
    assert f"{round(review['confidence'] * 100)}% confidence" in card
    assert "below the 60% it needs" in card
    assert f'data-task="{task_id}" data-kind="review"' in card
    assert f'<option value="{review["suggestion"]}" selected>' in card
    assert card.count("<option ") == len(review["labels"])
    assert 'value="reviewed">Save category</button>' in card
    assert "&#34;suggestion&#34;" not in card and '"suggestion":' not in card  # no raw JSON
    assert "labels" not in re.findall(r"<dt>([^<]*)</dt>", card)

    # The NOC sees the review, not the form.
    noc = (await client.get("/portal", headers=bearer(tokens.noc))).text
    noc_card = noc.split(f'id="task-{task_id}"')[1].split("</article>")[0]
    assert "blockquote" in noc_card and "data-kind" not in noc_card

    # Decided as the form posts it, the run page shows the audit.
    res = await client.post(
        f"{TASKS}/{task_id}/decision",
        json={"decision": "reviewed", "comment": None, "answers": {"label": review["suggestion"]}},
        headers=bearer(tokens.regional_north),
    )
    assert res.status_code == 200 and res.json()["decision"] == "confirmed", res.text
    page = (await client.get(f"/portal/runs/{run['id']}", headers=bearer(tokens.admin))).text
    assert "AI decisions" in page and "confirmed:" in page and "waiting for a review" not in page


async def test_a_task_after_a_recommendation_shows_the_similar_resolved_cases(
    client: httpx.AsyncClient, runtime: Runtime, tokens: Tokens
) -> None:
    first = await start(
        client, runtime, "incident-advice", tokens.admin, store="S-A", description=CONFIDENT
    )
    res = await client.post(
        f"{TASKS}/{await task_of(runtime, first['id'])}/decision",
        json={"decision": "approved"},
        headers=bearer(tokens.manager_a),
    )
    assert res.status_code == 200, res.text
    await runtime.engine.pump()
    second = await start(
        client,
        runtime,
        "incident-advice",
        tokens.admin,
        store="S-A",
        description="Milk chiller warm again and the temperature alarm is beeping",
    )
    task_id = str(await task_of(runtime, second["id"]))
    advice = (await get(client, f"{TASKS}/{task_id}", tokens.manager_a))["context"]["advice"]
    similar = advice["advise"]["similar"]
    assert first["id"] in {c["run_id"] for c in similar}

    page = (await client.get("/portal", headers=bearer(tokens.manager_a))).text
    card = page.split(f'id="task-{task_id}"')[1].split("</article>")[0]
    assert "Similar resolved cases" in card
    assert f'<p class="case-text">{CONFIDENT}</p>' in card
    assert "store S-A Avenue" in card and "Refrigeration" in card
    assert "Resolution: vendor FAC-COLD replaced the evaporator fan" in card
    assert re.search(r"\d+% similar", card)
    assert "What resolved them" in card and re.search(r"<td>\d+</td><td>\d+%</td>", card)
    assert "<dt>asset · asset id</dt><dd>AST-20001</dd>" in card
    assert "similar" not in re.findall(r"<dt>([^<]*)</dt>", card)  # not dumped as JSON
    assert "run_id" not in card and "cases_searched" not in card
    assert str(STORE_A) not in card
