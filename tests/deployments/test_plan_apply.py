"""Plan and apply a complete desired list: what would change per template, then all of it
(or none) as one generation; and the same through ``storeops deploy``."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner, Result

from control_plane.cli import main
from control_plane.config import Settings, get_settings
from tests.api.test_conventions import assert_problem
from tests.conftest import World, bearer
from tests.deployments.support import CHECKLIST, TRANSFER, Fleet, checklist, fleet, transfer


@pytest.fixture
async def f(world: World) -> Fleet:
    return await fleet(world)


async def plan(client: httpx.AsyncClient, f: Fleet, items: list[dict[str, Any]]) -> httpx.Response:
    return await client.post(
        f"{f.base}/deployments/plan",
        json={"deployments": items},
        headers=bearer(f.tree.partner_token),
    )


async def apply(
    client: httpx.AsyncClient, f: Fleet, items: list[dict[str, Any]], if_match: str | None
) -> httpx.Response:
    headers = bearer(f.tree.partner_token)
    if if_match is not None:
        headers["If-Match"] = if_match
    return await client.post(
        f"{f.base}/deployments/apply", json={"deployments": items}, headers=headers
    )


def actions(body: dict[str, Any]) -> dict[str, str]:
    return {c["template_id"]: c["action"] for c in body["changes"]}


async def listed(client: httpx.AsyncClient, f: Fleet) -> dict[str, dict[str, Any]]:
    res = await client.get(f"{f.base}/deployments", headers=bearer(f.tree.partner_token))
    return {d["template_id"]: d for d in res.json()["items"]}


async def test_plan_then_apply(client: httpx.AsyncClient, f: Fleet) -> None:
    desired = [transfer(), checklist()]
    planned = await plan(client, f, desired)
    assert planned.status_code == 200, planned.text
    body = planned.json()
    assert body["generation"] == 0
    assert body["etag"] == planned.headers["etag"] == '"g0"'
    assert actions(body) == {TRANSFER: "create", CHECKLIST: "create"}
    assert body["summary"] == {"create": 2, "update": 0, "delete": 0, "unchanged": 0}
    assert await listed(client, f) == {}, "a plan writes nothing"

    applied = await apply(client, f, desired, body["etag"])
    assert applied.status_code == 200, applied.text
    assert applied.json()["generation"] == 1
    assert applied.headers["etag"] == '"g1"'
    rows = await listed(client, f)
    assert set(rows) == {TRANSFER, CHECKLIST}
    assert rows[CHECKLIST]["triggers"] == {"enabled": {"api": True, "webhook": False}}
    ids = {c["template_id"]: c["deployment_id"] for c in applied.json()["changes"]}
    assert ids == {k: v["id"] for k, v in rows.items()}

    again = (await plan(client, f, desired)).json()
    assert actions(again) == {TRANSFER: "unchanged", CHECKLIST: "unchanged"}
    assert again["generation"] == 1
    same = await apply(client, f, desired, again["etag"])
    assert same.json()["generation"] == 1, "applying what is already there is no generation"


async def test_update_delete_and_fields(client: httpx.AsyncClient, f: Fleet) -> None:
    first = await apply(client, f, [transfer(), checklist()], None)
    assert first.status_code == 200, first.text
    before = await listed(client, f)
    desired = [
        transfer("1.1.0", params={"auto_approve_below": 99, "max_quantity": 10}, status="paused")
    ]
    planned = (await plan(client, f, desired)).json()
    changes = {c["template_id"]: c for c in planned["changes"]}
    assert changes[TRANSFER] == {
        "template_id": TRANSFER,
        "action": "update",
        "deployment_id": before[TRANSFER]["id"],
        "fields": ["version", "params", "status"],
        "from_version": "1.0.0",
        "to_version": "1.1.0",
    }
    assert changes[CHECKLIST]["action"] == "delete"
    assert changes[CHECKLIST]["deployment_id"] == before[CHECKLIST]["id"]
    assert planned["summary"] == {"create": 0, "update": 1, "delete": 1, "unchanged": 0}

    applied = await apply(client, f, desired, planned["etag"])
    assert applied.json()["generation"] == 2
    after = await listed(client, f)
    assert set(after) == {TRANSFER}
    assert after[TRANSFER]["id"] == before[TRANSFER]["id"], "an update keeps the deployment"
    assert after[TRANSFER]["version"] == "1.1.0"
    assert after[TRANSFER]["status"] == "paused"

    res = await client.get(
        "/api/v1/audit",
        params={"tenant_id": str(f.tenant_id), "action": "deployment.*"},
        headers=bearer(f.tree.partner_token),
    )
    assert [e["action"] for e in res.json()["items"]][:2] == [
        "deployment.delete",
        "deployment.update",
    ]


async def test_stale_if_match_is_412(client: httpx.AsyncClient, f: Fleet) -> None:
    planned = (await plan(client, f, [transfer()])).json()
    # Someone else changes the tenant's deployments after the plan was made.
    await client.post(
        f"{f.base}/deployments", json=checklist(), headers=bearer(f.tree.partner_token)
    )
    stale = await apply(client, f, [transfer()], planned["etag"])
    problem = assert_problem(stale, 412, "precondition-failed")
    assert '"g1"' in problem["detail"]
    assert set(await listed(client, f)) == {CHECKLIST}
    fresh = (await plan(client, f, [transfer()])).json()
    assert actions(fresh) == {TRANSFER: "create", CHECKLIST: "delete"}
    assert (await apply(client, f, [transfer()], fresh["etag"])).json()["generation"] == 2


async def test_invalid_list_applies_nothing(client: httpx.AsyncClient, f: Fleet) -> None:
    await apply(client, f, [checklist()], None)
    bad = transfer(params={"auto_approve_below": "cheap"})
    broken = checklist(bindings={**checklist()["bindings"], "itsm": {"base_url": "gopher://x"}})
    res = await apply(client, f, [bad, broken, transfer(template_id="nope")], '"g1"')
    problem = assert_problem(res, 422, "invalid-deployment")
    assert {e["path"] for e in problem["errors"]} == {
        "$.deployments[0].params.auto_approve_below",
        "$.deployments[1].bindings.itsm.base_url",
        "$.deployments[2].template_id",
    }
    assert (await listed(client, f))[CHECKLIST]["bindings"] == checklist()["bindings"]
    view = await client.get(f"{f.base}/desired-vs-reported", headers=bearer(f.tree.partner_token))
    assert view.json()["generation"] == 1

    twice = await plan(client, f, [transfer(), checklist(), transfer("1.1.0")])
    problem = assert_problem(twice, 422)
    assert problem["detail"].startswith(
        "$.deployments[2].template_id: stock-transfer-approval is listed twice (also at deployments[0])"
    )


async def test_plan_of_another_tenant_is_404(
    client: httpx.AsyncClient, f: Fleet, world: World
) -> None:
    other = await fleet(world)
    res = await client.post(
        f"{other.base}/deployments/plan",
        json={"deployments": [transfer()]},
        headers=bearer(f.tree.partner_token),
    )
    assert_problem(res, 404, "not-found")


# --- the command line --------------------------------------------------------------------


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """``storeops`` against the test database (as the application role)."""
    monkeypatch.setenv("STOREOPS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("STOREOPS_HOME", str(settings.home))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def run(cli: CliRunner, command: str) -> Result:
    return cli.invoke(main, shlex.split(command))


def write(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"deployments": items}, sort_keys=False))
    return path


def test_cli_plan_apply_list(f: Fleet, cli: CliRunner, tmp_path: Path) -> None:
    tenant = str(f.tenant_id)
    file = write(tmp_path / "desired.yaml", [transfer(), checklist()])
    planned = run(cli, f"deploy plan {tenant} {file}")
    assert planned.exit_code == 0, planned.output
    assert "generation 0; 2 create, 0 update, 0 delete, 0 unchanged" in planned.output
    assert "create" in planned.output and TRANSFER in planned.output

    applied = run(cli, f"deploy apply {tenant} {file}")
    assert applied.exit_code == 0, applied.output
    assert "applied (2 create, 0 update, 0 delete, 0 unchanged); generation 1" in applied.output

    again = run(cli, f"deploy apply {tenant} {file}")
    assert "nothing to change; generation stays 1" in again.output

    listing = run(cli, f"deploy list {tenant}")
    assert listing.exit_code == 0, listing.output
    assert "generation 1" in listing.output
    assert TRANSFER in listing.output and CHECKLIST in listing.output
    assert "never reported" in listing.output

    upgrade = write(tmp_path / "upgrade.yaml", [transfer("1.1.0")])
    applied = run(cli, f"deploy apply {tenant} {upgrade}")
    assert "1.0.0 -> 1.1.0" in applied.output
    assert "generation 2" in applied.output


def test_cli_refusals_name_every_problem(f: Fleet, cli: CliRunner, tmp_path: Path) -> None:
    tenant = str(f.tenant_id)
    bad = write(
        tmp_path / "bad.yaml",
        [transfer(params={"auto_approve_below": -1}), checklist(version="7.0.0")],
    )
    result = run(cli, f"deploy apply {tenant} {bad}")
    assert result.exit_code == 1
    assert "$.deployments[0].params.auto_approve_below: -1 is less than the minimum of 0" in (
        result.output
    )
    assert "$.deployments[1].version" in result.output
    not_yaml = tmp_path / "x.yaml"
    not_yaml.write_text("deployments: [unclosed")
    result = run(cli, f"deploy plan {tenant} {not_yaml}")
    assert result.exit_code == 1 and "not valid YAML" in result.output
    wrong = tmp_path / "y.yaml"
    wrong.write_text("- template_id: x\n")
    result = run(cli, f"deploy plan {tenant} {wrong}")
    assert result.exit_code == 1 and "'deployments' list" in result.output
    assert "no tenant" in run(cli, f"deploy list no-such-tenant-{tenant[:4]}").output
