"""``PUT /runtime/v1/deployment-status`` and the drift it leaves visible to operators."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.test_conventions import assert_problem
from tests.conftest import World, bearer
from tests.deployments.support import CHECKLIST, TRANSFER, Fleet, checklist, fleet, transfer
from tests.runtimelink.support import runtime_token

STATUS = "/runtime/v1/deployment-status"


@pytest.fixture
async def f(world: World) -> Fleet:
    return await fleet(world)


async def setup(client: httpx.AsyncClient, f: Fleet) -> tuple[str, dict[str, Any]]:
    res = await client.post(
        f"{f.base}/deployments/apply",
        json={"deployments": [transfer(), checklist()]},
        headers=bearer(f.tree.partner_token),
    )
    assert res.status_code == 200, res.text
    token = await runtime_token(client, f)
    doc = (await client.get("/runtime/v1/desired-state", headers=bearer(token))).json()
    return token, doc


def applied(doc: dict[str, Any], **overrides: dict[str, Any]) -> dict[str, Any]:
    """What a runtime that took everything in ``doc`` reports."""
    items = []
    for d in doc["deployments"]:
        item = {"id": d["id"], "status": "applied", "content_hash": d["content_hash"]}
        item.update(overrides.get(d["template_id"], {}))
        items.append(item)
    return {"generation": doc["generation"], "deployments": items}


async def report(client: httpx.AsyncClient, token: str, body: dict[str, Any]) -> httpx.Response:
    return await client.put(STATUS, json=body, headers=bearer(token))


async def view(client: httpx.AsyncClient, f: Fleet) -> dict[str, dict[str, Any]]:
    res = await client.get(f"{f.base}/desired-vs-reported", headers=bearer(f.tree.partner_token))
    assert res.status_code == 200, res.text
    body = res.json()
    return {d["template_id"]: d for d in body["deployments"]} | {"_": body}


async def test_never_reported_then_in_sync(client: httpx.AsyncClient, f: Fleet) -> None:
    token, doc = await setup(client, f)
    before = await view(client, f)
    assert before["_"]["drift"] is True
    assert before[TRANSFER]["drift_reason"].startswith("never reported")
    assert before[TRANSFER]["reported"] is None

    res = await report(client, token, applied(doc))
    assert res.status_code == 200, res.text
    assert sorted(res.json()["accepted"]) == sorted(d["id"] for d in doc["deployments"])
    assert res.json()["unknown"] == [] and res.json()["stale"] == []

    after = await view(client, f)
    assert after["_"]["drift"] is False
    assert after[TRANSFER]["drift"] is False and after[TRANSFER]["drift_reason"] is None
    reported = after[TRANSFER]["reported"]
    assert reported["status"] == "applied"
    assert reported["generation"] == 1
    assert reported["content_hash"] == after[TRANSFER]["content_hash"]
    assert reported["reported_at"]
    listed = await client.get(f"{f.base}/deployments", headers=bearer(f.tree.tenant_token))
    assert all(d["drift"] is False for d in listed.json()["items"])


async def test_failed_is_drift_with_the_reason(client: httpx.AsyncClient, f: Fleet) -> None:
    token, doc = await setup(client, f)
    body = applied(doc, **{CHECKLIST: {"status": "failed", "reason": "connector 'itsm' refused"}})
    assert (await report(client, token, body)).status_code == 200
    v = await view(client, f)
    assert v[TRANSFER]["drift"] is False
    assert v[CHECKLIST]["drift"] is True
    assert v[CHECKLIST]["drift_reason"] == (
        "the runtime failed to apply it: connector 'itsm' refused"
    )
    assert v[CHECKLIST]["reported"]["reason"] == "connector 'itsm' refused"


async def test_behind_generation_is_drift(client: httpx.AsyncClient, f: Fleet) -> None:
    token, doc = await setup(client, f)
    await report(client, token, applied(doc))
    # A new generation the runtime has not confirmed yet.
    res = await client.post(
        f"{f.base}/deployments/apply",
        json={"deployments": [transfer("1.1.0"), checklist()]},
        headers=bearer(f.tree.partner_token),
    )
    assert res.json()["generation"] == 2
    v = await view(client, f)
    assert "reported generation 1 is behind desired generation 2" in v[CHECKLIST]["drift_reason"]
    assert v[TRANSFER]["drift_reason"] == (
        "reported generation 1 is behind desired generation 2; "
        "the reported content hash differs from the desired content hash"
    )
    fresh = (await client.get("/runtime/v1/desired-state", headers=bearer(token))).json()
    await report(client, token, applied(fresh))
    assert (await view(client, f))["_"]["drift"] is False


async def test_content_hash_mismatch_is_drift(client: httpx.AsyncClient, f: Fleet) -> None:
    token, doc = await setup(client, f)
    body = applied(doc, **{TRANSFER: {"content_hash": "0" * 64}})
    assert (await report(client, token, body)).status_code == 200
    v = await view(client, f)
    assert v[TRANSFER]["drift_reason"] == (
        "the reported content hash differs from the desired content hash"
    )
    assert v[CHECKLIST]["drift"] is False


async def test_reports_do_not_invalidate_etags(client: httpx.AsyncClient, f: Fleet) -> None:
    token, doc = await setup(client, f)
    url = f"{f.base}/deployments/{doc['deployments'][0]['id']}"
    etag = (await client.get(url, headers=bearer(f.tree.partner_token))).headers["etag"]
    state_etag = (await client.get("/runtime/v1/desired-state", headers=bearer(token))).headers[
        "etag"
    ]
    await report(client, token, applied(doc))
    assert (await client.get(url, headers=bearer(f.tree.partner_token))).headers["etag"] == etag
    again = await client.get(
        "/runtime/v1/desired-state", headers={**bearer(token), "If-None-Match": state_etag}
    )
    assert again.status_code == 304, "a report is not a change of the desired state"
    res = await client.patch(
        url,
        json={"status": "paused"},
        headers={**bearer(f.tree.partner_token), "If-Match": etag},
    )
    assert res.status_code == 200, res.text


async def test_bad_reports(client: httpx.AsyncClient, f: Fleet, world: World) -> None:
    token, doc = await setup(client, f)
    ahead = applied(doc) | {"generation": 5}
    problem = assert_problem(await report(client, token, ahead), 422)
    assert problem["detail"] == "generation 5 is ahead of the desired generation 1"
    twice = applied(doc)
    twice["deployments"].append(twice["deployments"][0])
    assert "more than once" in assert_problem(await report(client, token, twice), 422)["detail"]
    wrong = applied(doc, **{TRANSFER: {"status": "maybe"}})
    assert_problem(await report(client, token, wrong), 400)
    short = applied(doc, **{TRANSFER: {"content_hash": "abc"}})
    assert_problem(await report(client, token, short), 400)
    not_mine = applied(doc) | {"tenant_id": str(f.tree.partner_id)}
    assert (
        "not this runtime's tenant"
        in assert_problem(await report(client, token, not_mine), 422)["detail"]
    )
    problem = assert_problem(await report(client, f.tree.partner_token, applied(doc)), 403)
    assert "tenant_runtime" in problem["detail"]


async def test_a_runtime_cannot_report_for_another_tenant(
    client: httpx.AsyncClient, f: Fleet, world: World
) -> None:
    other = await fleet(world)
    _, their_doc = await setup(client, other)
    token, _ = await setup(client, f)
    body = applied(their_doc) | {"generation": 0}
    res = await report(client, token, body)
    assert res.status_code == 200, res.text
    assert res.json()["accepted"] == []
    assert sorted(res.json()["unknown"]) == sorted(d["id"] for d in their_doc["deployments"])
    theirs = await view(client, other)
    assert theirs[TRANSFER]["reported"] is None


async def test_older_reports_do_not_overwrite_newer_ones(
    client: httpx.AsyncClient, f: Fleet
) -> None:
    token, doc = await setup(client, f)
    await client.post(
        f"{f.base}/deployments/apply",
        json={"deployments": [transfer("1.1.0"), checklist()]},
        headers=bearer(f.tree.partner_token),
    )
    fresh = (await client.get("/runtime/v1/desired-state", headers=bearer(token))).json()
    await report(client, token, applied(fresh))
    late = await report(client, token, applied(doc, **{TRANSFER: {"status": "failed"}}))
    assert late.status_code == 200
    assert len(late.json()["stale"]) == 2
    assert (await view(client, f))["_"]["drift"] is False
