"""``/api/v1/rollouts``: a rollout starts with its canary only; every bad input is a
precise problem and changes nothing; another partner sees a 404."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.test_conventions import assert_problem
from tests.conftest import World, bearer
from tests.deployments.support import TRANSFER
from tests.rollouts.support import Fleet, confirm, fleet, version_of

URL = "/api/v1/rollouts"


@pytest.fixture
async def f(world: World) -> Fleet:
    return await fleet(world)


def body(f: Fleet, **changes: Any) -> dict[str, Any]:
    return {
        "template_id": TRANSFER,
        "version": "1.1.0",
        "partner_id": str(f.partner_id),
        "soak_seconds": 5,
        "gates": {"min_runs": 0},
        **changes,
    }


async def start(client: httpx.AsyncClient, f: Fleet, **changes: Any) -> httpx.Response:
    return await client.post(URL, json=body(f, **changes), headers=bearer(f.admin))


async def versions(world: World, f: Fleet) -> list[str]:
    return [await version_of(world, s) for s in f.shops]


async def test_start_moves_only_the_canary(
    client: httpx.AsyncClient, world: World, f: Fleet
) -> None:
    canary = f.shops[2]
    res = await start(client, f, canary=str(canary.id))
    assert res.status_code == 201, res.text
    made = res.json()
    assert made["status"] == "applying"
    assert made["current_wave"] == 0
    # 5 tenants, default waves: the canary, 10 % (1), the rest (3).
    assert [w["size"] for w in made["waves"]] == [1, 1, 3]
    assert [t["slug"] for t in made["waves"][0]["tenants"]] == [canary.slug]
    assert made["waves"][0]["tenants"][0]["state"] == "applying"
    assert await versions(world, f) == ["1.0.0", "1.0.0", "1.1.0", "1.0.0", "1.0.0"]
    assert [e["kind"] for e in made["events"]] == ["wave_started"]

    got = await client.get(f"{URL}/{made['id']}", headers=bearer(f.reader))
    assert got.status_code == 200, got.text
    assert got.json()["waves"][0]["tenants"][0]["tenant_id"] == str(canary.id)
    listed = await client.get(URL, headers=bearer(f.reader))
    assert [r["id"] for r in listed.json()["items"]] == [made["id"]]
    assert listed.json()["items"][0]["tenant_count"] == 5

    # Another partner: the rollout does not exist for it.
    other = await fleet(world, 1)
    hidden = await client.get(f"{URL}/{made['id']}", headers=bearer(other.admin))
    assert_problem(hidden, 404, "not-found")
    assert (await client.get(URL, headers=bearer(other.admin))).json()["items"] == []
    refused = await client.post(f"{URL}/{made['id']}/abort", headers=bearer(other.admin))
    assert_problem(refused, 404, "not-found")

    # A reader cannot start one.
    assert_problem(await client.post(URL, json=body(f), headers=bearer(f.reader)), 403)

    # The canary confirms; promote is refused while a wave applies, then abort rolls back.
    early = await client.post(f"{URL}/{made['id']}/promote", headers=bearer(f.admin))
    assert "still applying (0 of 1 runtimes confirmed)" in assert_problem(early, 409)["detail"]
    await confirm(world, f, canary)
    aborted = await client.post(
        f"{URL}/{made['id']}/abort", json={"reason": "change freeze"}, headers=bearer(f.admin)
    )
    assert aborted.status_code == 200, aborted.text
    assert aborted.json()["status"] == "aborted"
    assert aborted.json()["reason"].endswith(": change freeze")
    assert await versions(world, f) == ["1.0.0"] * 5
    again = await client.post(f"{URL}/{made['id']}/abort", headers=bearer(f.admin))
    assert "already aborted" in assert_problem(again, 409, "illegal-transition")["detail"]

    audit = await client.get(
        "/api/v1/audit", params={"target_id": made["id"]}, headers=bearer(f.admin)
    )
    actions = {e["action"] for e in audit.json()["items"]}
    assert {"rollout.create", "rollout.wave_started", "rollout.aborted"} <= actions


async def refused(
    client: httpx.AsyncClient, world: World, f: Fleet, status: int, type_: str, **changes: Any
) -> str:
    before = await versions(world, f)
    count = len((await client.get(URL, headers=bearer(f.admin))).json()["items"])
    res = await start(client, f, **changes)
    problem = assert_problem(res, status, type_)
    assert await versions(world, f) == before
    assert len((await client.get(URL, headers=bearer(f.admin))).json()["items"]) == count
    return str(problem["detail"])


async def test_bad_input_is_precise_and_changes_nothing(
    client: httpx.AsyncClient, world: World, f: Fleet
) -> None:
    other = await fleet(world, 2)
    outsider = other.shops[0].id
    detail = await refused(
        client, world, f, 404, "rollout-tenants-not-found",
        partner_id=None, tenant_ids=[*f.ids()[:2], str(outsider)],
    )  # fmt: skip
    assert str(outsider) in detail and "outside your subtree" in detail
    detail = await refused(client, world, f, 404, "not-found", partner_id=str(other.partner_id))
    assert str(other.partner_id) in detail

    detail = await refused(client, world, f, 422, "invalid-rollout", version="1.0.1")
    assert "1.0.1 is yanked (leaks stock)" in detail
    detail = await refused(client, world, f, 422, "invalid-rollout", version="9.9.9")
    assert "has no version '9.9.9'" in detail and "1.1.0" in detail
    detail = await refused(
        client, world, f, 422, "invalid-rollout", template_id="store-opening-closing-checklist"
    )
    assert "not deployed on tenant(s)" in detail and f.shops[0].slug in detail
    detail = await refused(
        client, world, f, 422, "invalid-rollout", match={"timezone": "Asia/Tokyo"}
    )
    assert "no tenant matches" in detail
    detail = await refused(client, world, f, 422, "invalid-rollout", match={"colour": "red"})
    assert "no tenant matches" in detail
    detail = await refused(client, world, f, 422, "invalid-rollout", partner_id=None)
    assert "choose the fleet" in detail
    detail = await refused(client, world, f, 422, "invalid-rollout", tenant_ids=[])
    assert "tenant_ids: is empty" in detail
    detail = await refused(client, world, f, 422, "invalid-rollout", waves=["rest", 1])
    assert "waves[0]: 'rest' can only be the last wave" in detail
    detail = await refused(client, world, f, 422, "invalid-rollout", waves=[0])
    assert "at least 1 tenant" in detail
    detail = await refused(client, world, f, 422, "invalid-rollout", waves=["150%"])
    assert "at most 100%" in detail
    detail = await refused(client, world, f, 422, "invalid-rollout", waves=["ten"])
    assert "'ten' is not a wave size" in detail
    detail = await refused(client, world, f, 422, "invalid-rollout", version="1.0.0")
    assert "already runs 1.0.0" in detail
    detail = await refused(client, world, f, 422, "invalid-rollout", canary=str(other.shops[1].id))
    assert "not in the rollout's target set" in detail
    await refused(client, world, f, 400, "invalid-request", gates={"min_runs": -1})
    await refused(client, world, f, 400, "invalid-request", gates={"max_failure_rate_increase": 2})

    # A second rollout of the same template over an overlapping set.
    first = await start(client, f, tenant_ids=f.ids()[:2])
    assert first.status_code == 201, first.text
    detail = await refused(client, world, f, 409, "rollout-overlap", tenant_ids=f.ids()[1:3])
    assert first.json()["id"] in detail and f.shops[1].slug in detail
    # A disjoint set is fine.
    second = await start(client, f, tenant_ids=f.ids()[3:])
    assert second.status_code == 201, second.text


async def test_label_selector(client: httpx.AsyncClient, world: World, f: Fleet) -> None:
    res = await start(client, f, match={"timezone": "Europe/London"}, partner_id=None)
    assert res.status_code == 201, res.text
    assert [w["size"] for w in res.json()["waves"]] == [1]
    assert await versions(world, f) == ["1.0.0"] * 4 + ["1.1.0"]


async def test_the_noc_shows_open_rollouts_to_whoever_sees_them(
    client: httpx.AsyncClient, world: World, f: Fleet
) -> None:
    from control_plane.web.session import COOKIE

    made = await start(client, f)
    assert made.status_code == 201, made.text
    page = await client.get("/noc", headers={"Cookie": f"{COOKIE}={f.admin}"})
    assert page.status_code == 200, page.text
    assert f'data-rollout="{made.json()["id"]}"' in page.text
    assert "Rollouts in progress" in page.text and "1 of 3" in page.text
    other = await fleet(world)
    theirs = await client.get("/noc", headers={"Cookie": f"{COOKIE}={other.admin}"})
    assert theirs.status_code == 200 and made.json()["id"] not in theirs.text


async def test_a_label_selector_picks_the_tenants_labelled_so(
    client: httpx.AsyncClient, world: World, f: Fleet
) -> None:
    made = await start(client, f, match={"ring": "early"}, waves=[1, "rest"])
    assert made.status_code == 201, made.text
    chosen = [t["slug"] for w in made.json()["waves"] for t in w["tenants"]]
    assert sorted(chosen) == sorted(s.slug for s in f.shops[:2])
