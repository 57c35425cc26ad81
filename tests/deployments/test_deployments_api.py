"""``/api/v1/tenants/{id}/deployments``: create, read, change, pause, delete, with every
refusal naming what was wrong and where."""

from __future__ import annotations

import hashlib
from typing import Any
from uuid import UUID

import httpx
import pytest

from control_plane.catalog import service as catalog
from control_plane.contracts.desired_state import deployment_hash
from control_plane.tenancy import schemas as ts
from control_plane.tenancy import service as tenancy
from tests.api.test_conventions import assert_problem
from tests.conftest import World, bearer
from tests.deployments.support import CHECKLIST, TRANSFER, Fleet, checklist, fleet, transfer


@pytest.fixture
async def f(world: World) -> Fleet:
    return await fleet(world)


async def create(client: httpx.AsyncClient, f: Fleet, body: dict[str, Any]) -> httpx.Response:
    return await client.post(
        f"{f.base}/deployments", json=body, headers=bearer(f.tree.partner_token)
    )


async def created(client: httpx.AsyncClient, f: Fleet, body: dict[str, Any]) -> dict[str, Any]:
    res = await create(client, f, body)
    assert res.status_code == 201, res.text
    data: dict[str, Any] = res.json()
    return data


async def test_create_read_list(client: httpx.AsyncClient, f: Fleet) -> None:
    res = await create(client, f, transfer())
    assert res.status_code == 201, res.text
    body = res.json()
    assert res.headers["etag"]
    assert body["template_id"] == TRANSFER
    assert body["version"] == "1.0.0"
    assert body["status"] == "active"
    assert body["desired_generation"] == 1
    # Every trigger the template declares is on unless switched off.
    assert body["triggers"] == {"enabled": {"api": True, "webhook": True}}
    assert body["reported"] is None
    assert body["drift"] is True
    assert body["drift_reason"].startswith("never reported")
    assert body["bindings"]["erp"]["auth"]["token"] == "secret://erp-token"

    got = await client.get(
        f"{f.base}/deployments/{body['id']}", headers=bearer(f.tree.tenant_token)
    )
    assert got.status_code == 200, got.text
    assert got.json()["content_hash"] == body["content_hash"]
    assert got.headers["etag"] == res.headers["etag"]

    await created(client, f, checklist())
    headers = bearer(f.tree.tenant_token)
    first = await client.get(f"{f.base}/deployments?limit=1", headers=headers)
    assert first.status_code == 200, first.text
    page = first.json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = await client.get(
        f"{f.base}/deployments", params={"limit": 1, "cursor": page["next_cursor"]}, headers=headers
    )
    assert {i["template_id"] for i in page["items"] + rest.json()["items"]} == {TRANSFER, CHECKLIST}
    assert rest.json()["next_cursor"] is None
    assert all(i["desired_generation"] == 2 for i in rest.json()["items"])


async def test_content_hash_covers_what_the_runtime_runs(
    client: httpx.AsyncClient, f: Fleet, world: World
) -> None:
    body = await created(client, f, transfer())
    spec = await world.run(lambda c: catalog.get_version(c, f.transfer_line, "1.0.0"))
    expected = deployment_hash(
        template_id=TRANSFER,
        version="1.0.0",
        spec=spec.spec,
        params=body["params"],
        bindings=body["bindings"],
        triggers=body["triggers"],
        status="active",
    )
    assert body["content_hash"] == expected
    assert len(expected) == len(hashlib.sha256().hexdigest())


async def test_idempotency_key_replays_the_create(client: httpx.AsyncClient, f: Fleet) -> None:
    headers = {**bearer(f.tree.partner_token), "Idempotency-Key": "deploy-transfer-1"}
    one = await client.post(f"{f.base}/deployments", json=transfer(), headers=headers)
    two = await client.post(f"{f.base}/deployments", json=transfer(), headers=headers)
    assert one.status_code == two.status_code == 201, two.text
    assert one.json()["id"] == two.json()["id"]
    listed = await client.get(f"{f.base}/deployments", headers=bearer(f.tree.partner_token))
    assert [i["desired_generation"] for i in listed.json()["items"]] == [1]
    other = await client.post(
        f"{f.base}/deployments", json=transfer(params={"auto_approve_below": 1}), headers=headers
    )
    assert_problem(other, 422, "idempotency-key-reused")


def _without(body: dict[str, Any], connector: str) -> dict[str, Any]:
    body["bindings"].pop(connector)
    return body


def _auth(connector: str, auth: dict[str, Any]) -> dict[str, Any]:
    body = transfer()
    body["bindings"][connector]["auth"] = auth
    return body


def _erp(**fields: Any) -> dict[str, Any]:
    body = transfer()
    body["bindings"]["erp"].update(fields)
    return body


#: (case, body, JSON path of the problem, words the message must hold)
BAD_INPUTS: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "unknown template",
        transfer(template_id="no-such-template"),
        "$.template_id",
        "no template 'no-such-template'",
    ),
    (
        "unknown version",
        transfer("9.9.9"),
        "$.version",
        "has no version '9.9.9'; deployable versions: 1.0.0, 1.1.0",
    ),
    ("yanked version", transfer("1.0.1"), "$.version", "1.0.1 is yanked (leaks stock)"),
    (
        "param below minimum",
        transfer(params={"auto_approve_below": -5}),
        "$.params.auto_approve_below",
        "-5 is less than the minimum of 0",
    ),
    (
        "param of the wrong type",
        transfer(params={"auto_approve_below": 1, "notify_customer": "yes"}),
        "$.params.notify_customer",
        "'yes' is not of type 'boolean'",
    ),
    (
        "required param missing",
        transfer(params={}),
        "$.params",
        "'auto_approve_below' is a required property",
    ),
    (
        "param only a newer version has",
        transfer(params={"auto_approve_below": 1, "max_quantity": 0}),
        "$.params.max_quantity",
        "unknown parameter; stock-transfer-approval 1.0.0 takes auto_approve_below, notify_customer",
    ),
    (
        "connector not bound",
        _without(transfer(), "wms"),
        "$.bindings",
        "connector 'wms' is not bound",
    ),
    (
        "unknown connector",
        transfer(
            bindings={**transfer()["bindings"], "crm": {"base_url": "https://crm.example.com"}}
        ),
        "$.bindings.crm",
        "declares no connector 'crm'; its connectors are ecommerce, erp, wms",
    ),
    (
        "base_url not http(s)",
        _erp(base_url="ftp://erp.example.com"),
        "$.bindings.erp.base_url",
        "'ftp://erp.example.com' is not an http(s) URL",
    ),
    (
        "base_url with credentials",
        _erp(base_url="https://me:pw@erp.example.com"),
        "$.bindings.erp.base_url",
        "may not carry credentials",
    ),
    (
        "bad secret reference",
        _auth("erp", {"type": "bearer", "token": "secret://Not A Name"}),
        "$.bindings.erp.auth.token",
        "'secret://Not A Name' is not a secret reference",
    ),
    (
        "literal credential",
        _auth("erp", {"type": "bearer", "token": "s3cr3t-value"}),
        "$.bindings.erp.auth.token",
        "must be a secret reference",
    ),
    (
        "bad auth type",
        _auth("erp", {"type": "kerberos"}),
        "$.bindings.erp.auth.type",
        "'kerberos' is not an auth type; use one of none, bearer, basic, api_key, oauth2",
    ),
    (
        "auth field missing",
        _auth("wms", {"type": "basic", "username": "u"}),
        "$.bindings.wms.auth",
        "auth type basic needs 'password'",
    ),
    ("unknown binding field", _erp(retries=3), "$.bindings.erp.retries", "unknown field"),
    (
        "timeout out of range",
        _erp(timeout=0),
        "$.bindings.erp.timeout",
        "not a number of seconds above 0",
    ),
    (
        "trigger the template lacks",
        transfer(triggers={"enabled": {"schedule": True}}),
        "$.triggers.enabled.schedule",
        "has no schedule trigger; it declares api, webhook",
    ),
]


@pytest.mark.parametrize(
    ("case", "body", "path", "words"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS]
)
async def test_bad_input_is_named_with_its_path(
    client: httpx.AsyncClient, f: Fleet, case: str, body: dict[str, Any], path: str, words: str
) -> None:
    res = await create(client, f, body)
    problem = assert_problem(res, 422)
    assert problem["detail"].startswith(f"{path}: "), problem["detail"]
    assert words in problem["detail"], problem["detail"]
    assert {
        "path": path,
        "message": problem["detail"].split(": ", 1)[1].split(" (and ")[0],
    } in problem["errors"]
    listed = await client.get(f"{f.base}/deployments", headers=bearer(f.tree.partner_token))
    assert listed.json()["items"] == [], "a refused deployment wrote nothing"


async def test_every_problem_is_listed(client: httpx.AsyncClient, f: Fleet) -> None:
    body = transfer(params={"auto_approve_below": -1})
    body["bindings"]["erp"]["base_url"] = "erp.example.com"
    body["bindings"].pop("wms")
    problem = assert_problem(await create(client, f, body), 422, "invalid-deployment")
    paths = {e["path"] for e in problem["errors"]}
    assert paths == {"$.params.auto_approve_below", "$.bindings", "$.bindings.erp.base_url"}
    assert "(and 2 more problem(s))" in problem["detail"]


async def test_template_not_allowed_by_policy(
    client: httpx.AsyncClient, f: Fleet, world: World
) -> None:
    await world.run(
        lambda c: tenancy.update_tenant(
            c,
            f.tenant_id,
            ts.TenantUpdate(settings=ts.PolicySettings(allowed_templates=[CHECKLIST])),
            None,
        )
    )
    problem = assert_problem(await create(client, f, transfer()), 422)
    assert problem["detail"].startswith(
        "$.template_id: template 'stock-transfer-approval' is not allowed"
    )
    assert CHECKLIST in problem["detail"]
    await created(client, f, checklist())


async def test_duplicate_template_is_409(client: httpx.AsyncClient, f: Fleet) -> None:
    first = await created(client, f, transfer())
    problem = assert_problem(await create(client, f, transfer("1.1.0")), 409, "duplicate")
    assert first["id"] in problem["detail"]
    assert "PATCH" in problem["detail"]


async def test_malformed_body_is_a_400(client: httpx.AsyncClient, f: Fleet) -> None:
    problem = assert_problem(await create(client, f, transfer(template_id="Not_An_Id")), 400)
    assert "template_id" in problem["detail"]
    problem = assert_problem(await create(client, f, transfer(colour="red")), 400)
    assert "colour" in problem["detail"]
    problem = assert_problem(await create(client, f, transfer(status="sleeping")), 400)
    assert "status" in problem["detail"]


async def test_patch_with_if_match(client: httpx.AsyncClient, f: Fleet) -> None:
    body = await created(client, f, transfer())
    url = f"{f.base}/deployments/{body['id']}"
    headers = bearer(f.tree.partner_token)
    etag = (await client.get(url, headers=headers)).headers["etag"]

    res = await client.patch(
        url,
        json={"version": "1.1.0", "params": {"auto_approve_below": 100, "max_quantity": 40}},
        headers={**headers, "If-Match": etag},
    )
    assert res.status_code == 200, res.text
    assert res.json()["version"] == "1.1.0"
    assert res.json()["desired_generation"] == 2
    assert res.json()["content_hash"] != body["content_hash"]
    assert res.headers["etag"] != etag

    stale = await client.patch(
        url, json={"status": "paused"}, headers={**headers, "If-Match": etag}
    )
    problem = assert_problem(stale, 412, "precondition-failed")
    assert etag in problem["detail"]

    # The new version's schema applies to the merged result.
    bad = await client.patch(
        url, json={"params": {"auto_approve_below": 1, "max_quantity": 0}}, headers=headers
    )
    assert assert_problem(bad, 422)["detail"].startswith("$.params.max_quantity: 0 is less than")

    same = await client.patch(url, json={"version": "1.1.0"}, headers=headers)
    assert same.status_code == 200
    assert same.json()["desired_generation"] == 2, "a change to nothing is no new generation"

    # Moving to a yanked version is refused; staying on one is not a new deployment.
    yanked = await client.patch(url, json={"version": "1.0.1"}, headers=headers)
    assert "is yanked" in assert_problem(yanked, 422)["detail"]


async def test_pause_resume_delete(client: httpx.AsyncClient, f: Fleet) -> None:
    body = await created(client, f, transfer())
    url = f"{f.base}/deployments/{body['id']}"
    headers = bearer(f.tree.partner_token)
    paused = await client.post(f"{url}/pause", headers=headers)
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    assert paused.json()["desired_generation"] == 2
    assert paused.json()["content_hash"] != body["content_hash"]
    again = await client.post(f"{url}/pause", headers=headers)
    assert "already paused" in assert_problem(again, 409, "illegal-transition")["detail"]
    resumed = await client.post(f"{url}/resume", headers=headers)
    assert resumed.json()["status"] == "active"
    assert resumed.json()["content_hash"] == body["content_hash"]
    stale = await client.delete(url, headers={**headers, "If-Match": paused.headers["etag"]})
    assert_problem(stale, 412)
    gone = await client.delete(url, headers={**headers, "If-Match": resumed.headers["etag"]})
    assert gone.status_code == 204, gone.text
    assert_problem(await client.get(url, headers=headers), 404, "not-found")
    view = await client.get(f"{f.base}/desired-vs-reported", headers=headers)
    assert view.json()["generation"] == 4
    assert view.json()["deployments"] == []


async def test_another_tenants_deployment_is_404(
    client: httpx.AsyncClient, f: Fleet, world: World
) -> None:
    other = await fleet(world)
    theirs = await created(client, other, transfer())
    mine_url = f"{f.base}/deployments/{theirs['id']}"
    for token in (f.tree.partner_token, f.tree.tenant_token):
        for method, path in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/pause")):
            res = await client.request(
                method,
                mine_url + path,
                json={"status": "paused"} if method == "PATCH" else None,
                headers=bearer(token),
            )
            assert_problem(res, 404, "not-found")
    res = await client.get(f"{other.base}/deployments", headers=bearer(f.tree.partner_token))
    assert_problem(res, 404)
    res = await client.post(
        f"{other.base}/deployments", json=transfer(), headers=bearer(f.tree.partner_token)
    )
    assert_problem(res, 404)


async def test_retailers_read_but_do_not_deploy(client: httpx.AsyncClient, f: Fleet) -> None:
    await created(client, f, transfer())
    headers = bearer(f.tree.tenant_token)
    listed = await client.get(f"{f.base}/deployments", headers=headers)
    assert listed.status_code == 200 and len(listed.json()["items"]) == 1
    refused = await client.post(f"{f.base}/deployments", json=checklist(), headers=headers)
    assert "tenants:lifecycle" in assert_problem(refused, 403, "forbidden")["detail"]


async def test_changes_are_audited(client: httpx.AsyncClient, f: Fleet) -> None:
    body = await created(client, f, transfer())
    headers = bearer(f.tree.partner_token)
    await client.post(f"{f.base}/deployments/{body['id']}/pause", headers=headers)
    await client.delete(f"{f.base}/deployments/{body['id']}", headers=headers)
    res = await client.get(
        "/api/v1/audit",
        params={"tenant_id": str(f.tenant_id), "action": "deployment.*"},
        headers=headers,
    )
    assert res.status_code == 200, res.text
    actions = [e["action"] for e in res.json()["items"]]
    assert actions == ["deployment.delete", "deployment.pause", "deployment.create"]
    assert all(e["target_id"] == body["id"] for e in res.json()["items"])


async def test_offboarded_tenant_is_frozen(client: httpx.AsyncClient, world: World) -> None:
    f = await fleet(world)
    await world.run(lambda c: tenancy.transition_tenant(c, f.tenant_id, "suspend"))
    await world.run(lambda c: tenancy.transition_tenant(c, f.tenant_id, "offboard"))
    problem = assert_problem(await create(client, f, transfer()), 409, "illegal-transition")
    assert "offboarded" in problem["detail"]


async def test_unknown_ids_are_404(client: httpx.AsyncClient, f: Fleet) -> None:
    missing = UUID(int=7)
    res = await client.get(f"{f.base}/deployments/{missing}", headers=bearer(f.tree.partner_token))
    assert f"deployment {missing} does not exist" in assert_problem(res, 404)["detail"]


async def test_a_connector_is_bound_once_per_tenant(client: httpx.AsyncClient, f: Fleet) -> None:
    transfer_id = (await created(client, f, transfer()))["id"]
    other_erp = {
        "base_url": "https://erp2.example.com",
        "auth": {"type": "api_key", "key": "secret://k"},
    }
    body = checklist()
    body["bindings"]["erp"] = other_erp
    problem = assert_problem(await create(client, f, body), 422)
    assert problem["detail"].startswith(
        f"$.bindings.erp: binds connector 'erp' differently from the {TRANSFER} deployment "
        f"({transfer_id}); a tenant's runtime binds each connector once"
    )
    checklist_id = (await created(client, f, checklist()))["id"]
    # Moving the ERP is done for every deployment at once.
    patch = await client.patch(
        f"{f.base}/deployments/{transfer_id}",
        json={"bindings": {**transfer()["bindings"], "erp": other_erp}},
        headers=bearer(f.tree.partner_token),
    )
    assert checklist_id in assert_problem(patch, 422)["detail"]
    moved_transfer, moved_checklist = transfer(), checklist()
    moved_transfer["bindings"]["erp"] = moved_checklist["bindings"]["erp"] = other_erp
    res = await client.post(
        f"{f.base}/deployments/apply",
        json={"deployments": [moved_transfer, moved_checklist]},
        headers=bearer(f.tree.partner_token),
    )
    assert res.status_code == 200, res.text
    assert {c["action"] for c in res.json()["changes"]} == {"update"}
    clash = await client.post(
        f"{f.base}/deployments/plan",
        json={"deployments": [moved_transfer, checklist()]},
        headers=bearer(f.tree.partner_token),
    )
    assert assert_problem(clash, 422)["errors"] == [
        {
            "path": "$.deployments[1].bindings.erp",
            "message": f"binds connector 'erp' differently from deployments[0] ({TRANSFER}); "
            "a tenant's runtime binds each connector once, so bind it the same way everywhere "
            "(change them together with apply)",
        }
    ]
