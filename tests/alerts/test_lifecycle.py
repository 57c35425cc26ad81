"""Alert episodes: for-duration, auto-resolve, idempotent evaluation, silences,
maintenance windows, and what people do with alerts (audited, scoped)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx

from control_plane.alerts import service
from control_plane.identity.principal import Grant, Principal
from control_plane.identity.roles import Role
from tests.alerts.conftest import (
    Receiver,
    alerts_of,
    evaluate,
    heartbeat,
    make_rule,
    minutes_ago,
    new_key,
    outbox,
    whsec,
)
from tests.conftest import Tree, World, bearer


async def depth_rule(
    client: httpx.AsyncClient, tree: Tree, *, for_seconds: int = 60, threshold: int = 10
) -> str:
    key = new_key("depth")
    await make_rule(
        client,
        tree.partner_token,
        key=key,
        partner_id=str(tree.partner_id),
        metric="queue_depth",
        comparator=">",
        threshold=threshold,
        for_seconds=for_seconds,
        severity="critical",
    )
    return key


async def webhook_channel(client: httpx.AsyncClient, tree: Tree, url: str) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/notification-channels",
        json={
            "name": "noc hook",
            "kind": "webhook",
            "partner_id": str(tree.partner_id),
            "url": url,
            "secret": whsec(),
        },
        headers=bearer(tree.partner_token),
    )
    assert response.status_code == 201, response.text
    channel: dict[str, Any] = response.json()
    return channel


async def test_pending_for_the_for_duration_then_open_then_auto_resolved(
    client: httpx.AsyncClient, world: World, receiver: Receiver
) -> None:
    tree = await world.tree()
    key = await depth_rule(client, tree, for_seconds=60)
    await webhook_channel(client, tree, receiver.url)
    token = tree.partner_token
    t0 = minutes_ago(10)
    await heartbeat(client, world, tree, t0, queue_depth=50)

    await evaluate(world, t0)
    [pending] = await alerts_of(client, token, tree.tenant_id, key)
    assert pending["state"] == "pending" and pending["value"] == 50
    assert pending["reason"] == "50 steps waiting to start"
    early = await client.post(f"/api/v1/alerts/{pending['id']}/acknowledge", headers=bearer(token))
    assert early.status_code == 409
    assert early.json()["type"] == "urn:storeops:problem:illegal-transition"
    await evaluate(world, t0 + timedelta(seconds=30))
    [still] = await alerts_of(client, token, tree.tenant_id, key)
    assert still["state"] == "pending" and still["opened_at"] is None
    assert await outbox(world, still["id"]) == []

    await evaluate(world, t0 + timedelta(seconds=60))
    [opened] = await alerts_of(client, token, tree.tenant_id, key)
    assert opened["state"] == "open" and opened["id"] == pending["id"]
    assert opened["first_seen_at"] == pending["first_seen_at"]
    assert [n.event for n in await outbox(world, opened["id"])] == ["alert.opened"]

    # The same pass again changes nothing at all.
    assert await evaluate(world, t0 + timedelta(seconds=60)) == 0
    [same] = await alerts_of(client, token, tree.tenant_id, key)
    assert same == opened
    assert len(await outbox(world, opened["id"])) == 1

    await heartbeat(client, world, tree, t0 + timedelta(seconds=90), queue_depth=0)
    await evaluate(world, t0 + timedelta(seconds=95))
    [resolved] = await alerts_of(client, token, tree.tenant_id, key)
    assert resolved["state"] == "resolved" and resolved["resolution"] == "auto"
    assert resolved["resolved_by"] == "system:alerts"
    events = [n.event for n in await outbox(world, opened["id"])]
    assert events == ["alert.opened", "alert.resolved"]
    assert await evaluate(world, t0 + timedelta(seconds=95)) == 0


async def test_a_condition_that_clears_before_its_duration_leaves_no_alert(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    key = await depth_rule(client, tree, for_seconds=300)
    t0 = minutes_ago(10)
    await heartbeat(client, world, tree, t0, queue_depth=50)
    await evaluate(world, t0)
    assert len(await alerts_of(client, tree.partner_token, tree.tenant_id, key)) == 1
    await heartbeat(client, world, tree, t0 + timedelta(seconds=30), queue_depth=1)
    await evaluate(world, t0 + timedelta(seconds=40))
    assert await alerts_of(client, tree.partner_token, tree.tenant_id, key) == []


async def test_a_silence_records_the_alert_but_mutes_its_notifications(
    client: httpx.AsyncClient, world: World, receiver: Receiver
) -> None:
    tree = await world.tree()
    key = await depth_rule(client, tree, for_seconds=0)
    await webhook_channel(client, tree, receiver.url)
    noc = await world.token(Grant(Role.NOC_OPERATOR, partner_id=tree.partner_id))
    silence = await client.post(
        "/api/v1/silences",
        json={
            "tenant_id": str(tree.tenant_id),
            "rule_key": key,
            "ends_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
            "starts_at": minutes_ago(30).isoformat(),
            "reason": "ERP migration tonight",
        },
        headers=bearer(noc),
    )
    assert silence.status_code == 201, silence.text
    assert silence.json()["partner_id"] == str(tree.partner_id)
    t0 = minutes_ago(10)
    await heartbeat(client, world, tree, t0, queue_depth=50)
    await evaluate(world, t0)
    [alert] = await alerts_of(client, noc, tree.tenant_id, key)
    assert alert["state"] == "open" and alert["silenced"] is True
    assert await outbox(world, alert["id"]) == []

    # A silence of another tenant's partner is not ours to make, nor to see.
    other = await world.tree()
    foreign = await client.post(
        "/api/v1/silences",
        json={"tenant_id": str(other.tenant_id), "ends_at": "2099-01-01T00:00:00Z", "reason": "x"},
        headers=bearer(noc),
    )
    assert foreign.status_code == 404
    # Expired: the next pass announces the alert that is still open.
    expired = await client.delete(f"/api/v1/silences/{silence.json()['id']}", headers=bearer(noc))
    assert expired.status_code == 204
    await evaluate(world, datetime.now(UTC))
    [alert] = await alerts_of(client, noc, tree.tenant_id, key)
    assert alert["silenced"] is False
    assert [n.event for n in await outbox(world, alert["id"])] == ["alert.opened"]


async def test_a_maintenance_window_keeps_alerts_from_opening(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    key = await depth_rule(client, tree, for_seconds=0)
    created = await client.post(
        "/api/v1/maintenance-windows",
        json={
            "tenant_id": str(tree.tenant_id),
            "starts_at": minutes_ago(30).isoformat(),
            "ends_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
            "reason": "store systems upgrade",
        },
        headers=bearer(tree.partner_token),
    )
    assert created.status_code == 201, created.text
    t0 = minutes_ago(10)
    await heartbeat(client, world, tree, t0, queue_depth=50)
    await evaluate(world, t0)
    assert await alerts_of(client, tree.partner_token, tree.tenant_id, key) == []
    operator = await world.token(Grant(Role.PARTNER_OPERATOR, partner_id=tree.partner_id))
    refused = await client.delete(
        f"/api/v1/maintenance-windows/{created.json()['id']}", headers=bearer(operator)
    )
    assert refused.status_code == 403  # windows are alerts:write
    await client.delete(
        f"/api/v1/maintenance-windows/{created.json()['id']}", headers=bearer(tree.partner_token)
    )
    await evaluate(world, t0 + timedelta(seconds=15))
    [alert] = await alerts_of(client, tree.partner_token, tree.tenant_id, key)
    assert alert["state"] == "open"
    bad = await client.post(
        "/api/v1/maintenance-windows",
        json={
            "partner_id": str(tree.partner_id),
            "starts_at": "2030-01-02T00:00:00Z",
            "ends_at": "2030-01-01T00:00:00Z",
            "reason": "backwards",
        },
        headers=bearer(tree.partner_token),
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "ends_at"


async def _open_alert(client: httpx.AsyncClient, world: World, tree: Tree) -> dict[str, Any]:
    key = await depth_rule(client, tree, for_seconds=0)
    t0 = minutes_ago(10)
    await heartbeat(client, world, tree, t0, queue_depth=50)
    await evaluate(world, t0)
    [alert] = await alerts_of(client, tree.partner_token, tree.tenant_id, key)
    return alert


async def test_acknowledge_assign_note_resolve_are_audited(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    alert = await _open_alert(client, world, tree)
    noc = await world.token(
        Grant(Role.NOC_OPERATOR, partner_id=tree.partner_id), subject="user:noc-ann"
    )
    url = f"/api/v1/alerts/{alert['id']}"
    acked = await client.post(f"{url}/acknowledge", json={"note": "looking"}, headers=bearer(noc))
    assert acked.status_code == 200, acked.text
    assert acked.json()["state"] == "acknowledged"
    assert acked.json()["acknowledged_by"] == "user:noc-ann"
    assigned = await client.post(f"{url}/assign", json={"assignee": "bob@msp.example"},
                                 headers=bearer(noc))  # fmt: skip
    assert assigned.json()["assignee"] == "bob@msp.example"
    noted = await client.post(
        f"{url}/notes", json={"body": "ERP API returns 503"}, headers=bearer(noc)
    )
    assert noted.status_code == 201 and noted.json()["author"] == "user:noc-ann"
    resolved = await client.post(f"{url}/resolve", headers=bearer(noc))
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert body["state"] == "resolved" and body["resolution"] == "manual"
    assert [n["body"] for n in body["notes"]] == ["looking", "ERP API returns 503"]
    detail = (await client.get(url, headers=bearer(noc))).json()
    assert len(detail["notes"]) == 2 and detail["notes"][0]["author"] == "user:noc-ann"

    audit = await client.get(
        "/api/v1/audit", params={"target_id": alert["id"]}, headers=bearer(tree.partner_token)
    )
    actions = sorted(e["action"] for e in audit.json()["items"])
    assert actions == ["alert.acknowledge", "alert.assign", "alert.note", "alert.resolve"]
    assert {e["actor"] for e in audit.json()["items"]} == {"user:noc-ann"}

    # A retailer's admin reads the alert but does not act on it.
    read = await client.get(url, headers=bearer(tree.tenant_token))
    assert read.status_code == 200
    refused = await client.post(
        f"{url}/notes", json={"body": "x"}, headers=bearer(tree.tenant_token)
    )
    assert refused.status_code == 403


async def test_an_alert_outside_the_callers_subtree_is_a_404_and_unchanged(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    alert = await _open_alert(client, world, tree)
    other = await world.tree()
    other_noc = await world.token(Grant(Role.NOC_OPERATOR, partner_id=other.partner_id))
    url = f"/api/v1/alerts/{alert['id']}"
    for token in (other_noc, other.partner_token, other.tenant_token):
        for action, body in (
            ("acknowledge", {}),
            ("resolve", {}),
            ("assign", {"assignee": "x"}),
            ("notes", {"body": "x"}),
        ):
            response = await client.post(f"{url}/{action}", json=body, headers=bearer(token))
            assert response.status_code == 404, (action, response.text)
            assert response.json()["type"] == "urn:storeops:problem:not-found"
        assert (await client.get(url, headers=bearer(token))).status_code == 404
    listed = await client.get(
        "/api/v1/alerts", params={"tenant_id": str(tree.tenant_id)}, headers=bearer(other_noc)
    )
    assert listed.json()["items"] == []
    after = (await client.get(url, headers=bearer(tree.partner_token))).json()
    assert after["state"] == "open" and after["assignee"] is None and after["notes"] == []


async def test_the_nocs_service_calls(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    alert = await _open_alert(client, world, tree)
    other = await world.tree()
    noc = Principal(
        subject="user:noc-svc",
        kind="user",
        name="noc",
        grants=(Grant(Role.NOC_OPERATOR, partner_id=tree.partner_id),),
    )

    async def calls(ctx: Any) -> tuple[Any, ...]:
        counts = await service.open_alert_counts(ctx, [tree.tenant_id, other.tenant_id])
        rows, _ = await service.list_alerts(ctx, state=["open", "acknowledged"])
        acked = await service.acknowledge(ctx, UUID(alert["id"]))
        return counts, [r.id for r in rows], acked.state

    counts, ids, state = await world.run(calls, noc)
    assert counts == {tree.tenant_id: 1}
    assert [str(i) for i in ids] == [alert["id"]]
    assert state == "acknowledged"


async def test_the_alert_list_filters_and_pages(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    alert = await _open_alert(client, world, tree)
    token = tree.partner_token

    async def ids(**params: str) -> list[str]:
        response = await client.get("/api/v1/alerts", params=params, headers=bearer(token))
        assert response.status_code == 200, response.text
        return [a["id"] for a in response.json()["items"]]

    tenant = {"tenant_id": str(tree.tenant_id)}
    assert alert["id"] in await ids(state="open", severity="critical", **tenant)
    assert alert["id"] in await ids(partner_id=str(tree.partner_id))
    assert alert["id"] not in await ids(state="resolved", **tenant)
    assert alert["id"] not in await ids(severity="info", **tenant)
    first = await client.get("/api/v1/alerts", params={"limit": 1}, headers=bearer(token))
    assert len(first.json()["items"]) == 1
    bad = await client.get("/api/v1/alerts", params={"state": "sleeping"}, headers=bearer(token))
    assert bad.status_code == 400 and "state" in bad.json()["detail"]
