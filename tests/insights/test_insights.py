"""Insights reported in telemetry: stored once per pattern and kept at their highest count,
listed and read by whoever reads the tenant's telemetry (never across partners), shown on
the NOC's tenant page and raised to the NOC as an info alert."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import httpx
import msgspec
from litestar import Litestar

from control_plane.alerts.metrics import recurring_incidents
from control_plane.config import Settings
from control_plane.contracts.telemetry import Kind
from control_plane.identity import schemas as ids
from control_plane.identity.principal import Grant
from control_plane.identity.roles import Role
from control_plane.insights.service import recent_by_tenant
from tests.alerts.conftest import alerts_of, evaluate
from tests.conftest import Tree, World, bearer
from tests.insights.conftest import URL, insight, insight_event, keys, listed, report
from tests.telemetry.conftest import event, mixed_events, stored_ids
from tests.web.support import PASSWORD, create_user


async def test_an_insight_is_stored_once_and_kept_at_its_highest_count(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    tree = await world.tree()
    first = insight(tree, count=3, notified=f"regional_manager@region:{tree.region_id}")
    sent = insight_event(first)
    assert await report(client, world, tree, sent, *mixed_events(5)) == {
        "accepted": 6,
        "duplicates": 0,
    }
    [stored] = await listed(client, tree.tenant_token, tenant_id=str(tree.tenant_id))
    assert stored["key"] == first.id
    assert (stored["tenant_id"], stored["partner_id"]) == (
        str(tree.tenant_id),
        str(tree.partner_id),
    )
    assert (stored["scope"], stored["subject"], stored["label"]) == (
        "store",
        str(tree.store_id),
        "refrigeration",
    )
    code = await store_code(client, tree)
    assert (stored["subject_code"], stored["subject_name"]) == (code, "Store")
    assert (stored["count"], stored["threshold"], stored["window_days"]) == (3, 3, 30)
    assert datetime.fromisoformat(stored["last_at"]) == datetime.fromisoformat(first.last_at)
    assert stored["notified"] == first.notified
    assert len(stored["evidence"]) == 3
    assert {len(e["text"]) for e in stored["evidence"]} == {200}, "excerpts are cut at 200"
    assert sent.id in await stored_ids(settings, tree.tenant_id), "the raw event is kept too"

    # The same event again (a retried batch), and the same insight in a new event: no change.
    assert (await report(client, world, tree, sent))["duplicates"] == 1
    await report(client, world, tree, insight_event(first))
    [same] = await listed(client, tree.tenant_token, tenant_id=str(tree.tenant_id))
    assert same == stored

    # The pattern grew: the same row, at the new count, with the new evidence.
    grown = msgspec.structs.replace(first, count=5, last_at=datetime.now(UTC).isoformat())
    grown.evidence = insight(tree, count=5).evidence
    await report(client, world, tree, insight_event(grown))
    [updated] = await listed(client, tree.tenant_token, tenant_id=str(tree.tenant_id))
    assert (updated["id"], updated["created_at"]) == (stored["id"], stored["created_at"])
    assert updated["count"] == 5 and len(updated["evidence"]) == 5
    assert datetime.fromisoformat(updated["last_at"]) == datetime.fromisoformat(grown.last_at)
    assert updated["version"] == stored["version"] + 1
    assert updated["notified"] == first.notified, "kept when a later report leaves it out"

    # An older report arriving late (a smaller count) changes nothing.
    await report(client, world, tree, insight_event(msgspec.structs.replace(first, count=4)))
    [kept] = await listed(client, tree.tenant_token, tenant_id=str(tree.tenant_id))
    assert kept == updated

    one = await client.get(f"{URL}/{stored['id']}", headers=bearer(tree.tenant_token))
    assert one.status_code == 200, one.text
    assert one.json() == updated
    assert one.headers["etag"]


async def test_one_batch_with_several_reports_of_an_insight_keeps_the_highest(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    base = insight(tree, count=3)
    reports = [insight_event(msgspec.structs.replace(base, count=n)) for n in (4, 6, 5)]
    await report(client, world, tree, *reports)
    [stored] = await listed(client, tree.tenant_token, tenant_id=str(tree.tenant_id))
    assert stored["count"] == 6


async def test_a_malformed_insight_is_skipped_and_its_batch_still_accepted(
    client: httpx.AsyncClient, world: World
) -> None:
    """A refused batch would block the runtime's outbox: the raw events are stored, the
    insights that fit the contract too, the others are left out (and logged)."""
    tree = await world.tree()
    good = insight(tree, label="pos-outage")
    broken = msgspec.to_builtins(insight(tree))
    del broken["label"]
    bad_time = msgspec.to_builtins(insight(tree, label="spills"))
    bad_time["last_at"] = "yesterday"
    huge = msgspec.to_builtins(insight(tree, label="leaks"))
    huge["count"] = 2**40  # beyond the column: skipped, not a failed transaction
    result = await report(
        client,
        world,
        tree,
        insight_event(good),
        event(Kind.INSIGHT, data=broken),
        event(Kind.INSIGHT, data=bad_time),
        event(Kind.INSIGHT, data=huge),
    )
    assert result == {"accepted": 4, "duplicates": 0}
    items = await listed(client, tree.tenant_token, tenant_id=str(tree.tenant_id))
    assert keys(items) == {good.id}


async def test_filters_and_pages(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    store_old = insight(tree, label="refrigeration", days_ago=20)
    store_new = insight(tree, label="pos-outage", days_ago=1)
    region = insight(tree, scope="region", label="refrigeration", count=7, days_ago=3)
    for reported in (store_old, store_new, region):  # three batches: three moments
        await report(client, world, tree, insight_event(reported))
    token, tenant = tree.partner_token, str(tree.tenant_id)

    everything = await listed(client, token, tenant_id=tenant)
    assert [i["key"] for i in everything] == [store_old.id, store_new.id, region.id]
    [by_region] = await listed(client, token, tenant_id=tenant, scope="region")
    assert by_region["key"] == region.id and by_region["subject"] == str(tree.region_id)
    assert (by_region["subject_code"], by_region["subject_name"]) == ("north", "North")
    assert keys(await listed(client, token, tenant_id=tenant, label="refrigeration")) == {
        store_old.id,
        region.id,
    }
    since = (datetime.now(UTC) - timedelta(days=5)).isoformat()
    assert keys(await listed(client, token, tenant_id=tenant, since=since)) == {
        store_new.id,
        region.id,
    }

    seen: list[str] = []
    params = {"tenant_id": tenant, "limit": "2"}
    while True:
        page = await client.get(URL, params=params, headers=bearer(token))
        assert page.status_code == 200, page.text
        seen += [i["key"] for i in page.json()["items"]]
        if page.json()["next_cursor"] is None:
            break
        params["cursor"] = page.json()["next_cursor"]
    assert seen == [store_old.id, store_new.id, region.id]

    bad = await client.get(URL, params={"scope": "city"}, headers=bearer(token))
    assert bad.status_code == 400 and "scope" in bad.json()["detail"]


async def test_readers_see_only_the_tenants_they_read(
    client: httpx.AsyncClient, world: World
) -> None:
    mine, theirs = await world.tree(), await world.tree()
    sibling = await world.tree()  # another partner again, for a platform-wide read
    ours = insight(mine)
    their = insight(theirs)
    await report(client, world, mine, insight_event(ours))
    await report(client, world, theirs, insight_event(their))
    await report(client, world, sibling, insight_event(insight(sibling)))
    [their_row] = await listed(client, theirs.tenant_token)
    their_id = their_row["id"]

    for token in (mine.partner_token, mine.tenant_token):
        visible = await listed(client, token)
        assert ours.id in keys(visible) and their.id not in keys(visible)
        assert str(theirs.tenant_id) not in str(visible)
        # Another partner's tenant, named in a filter or by its insight's id: not found.
        foreign = await client.get(
            URL, params={"tenant_id": str(theirs.tenant_id)}, headers=bearer(token)
        )
        assert foreign.status_code == 404, foreign.text
        assert foreign.json()["type"] == "urn:storeops:problem:not-found"
        one = await client.get(f"{URL}/{their_id}", headers=bearer(token))
        assert one.status_code == 404, one.text
        assert one.headers["content-type"].startswith("application/problem+json")

    # Store and regional managers read no telemetry, so no insights either.
    manager = await world.token(
        Grant(
            Role.REGIONAL_MANAGER,
            partner_id=mine.partner_id,
            tenant_id=mine.tenant_id,
            region_id=mine.region_id,
        )
    )
    refused = await client.get(URL, headers=bearer(manager))
    assert refused.status_code == 403, refused.text
    own = await client.get(URL, params={"tenant_id": str(mine.tenant_id)}, headers=bearer(manager))
    assert own.status_code == 403, own.text
    [ours_row] = await listed(client, mine.tenant_token)
    hidden = await client.get(f"{URL}/{ours_row['id']}", headers=bearer(manager))
    assert hidden.status_code == 404, hidden.text

    # A partner's NOC operator sees its partner's tenants; a platform one, everyone's.
    partner_noc = await world.token(Grant(Role.NOC_OPERATOR, partner_id=mine.partner_id))
    assert keys(await listed(client, partner_noc)) == {ours.id}
    platform_noc = await world.token(Grant(Role.NOC_OPERATOR))
    assert {ours.id, their.id} <= keys(await listed(client, platform_noc))
    read = await client.get(f"{URL}/{their_id}", headers=bearer(platform_noc))
    assert read.status_code == 200 and read.json()["key"] == their.id


async def test_the_noc_tenant_page_shows_recent_insights(
    client: httpx.AsyncClient, world: World, app: Litestar, settings: Settings
) -> None:
    tree = await world.tree()
    found = insight(tree, label="freezer-failure", count=4)
    await report(client, world, tree, insight_event(found))
    email = f"noc-{secrets.token_hex(3)}@example.com"
    await create_user(
        settings,
        app.state.db,
        email,
        ids.GrantSpec(role=Role.PARTNER_ADMIN, partner_id=tree.partner_id),
    )
    # A browser of its own: the shared client must not keep the session cookie.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as browser:
        login = await browser.post("/login", data={"email": email, "password": PASSWORD})
        assert login.status_code == 303, login.text
        page = await browser.get(f"/noc/tenants/{tree.tenant_id}")
    assert page.status_code == 200, page.text
    section = page.text[page.text.index('id="insights"') :]
    assert "freezer-failure" in section
    assert f"store {await store_code(client, tree)}" in section and "4 in 30 d" in section
    assert "Freezer 0 in aisle 4 is warm again" in section
    assert "and 1 more" in section


async def test_an_insight_raises_an_info_alert_for_the_noc(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    found = insight(tree, label="door-sensor", count=5)
    await report(client, world, tree, insight_event(found))
    await evaluate(world, datetime.now(UTC))
    [alert] = await alerts_of(client, tree.partner_token, tree.tenant_id, "recurring-incidents")
    assert (alert["state"], alert["severity"]) == ("open", "info")
    assert alert["metric"] == "recurring_incidents" and alert["value"] == 1
    assert "'door-sensor' at store" in alert["reason"] and "(5 in 30 days)" in alert["reason"]

    # A second pattern updates the same alert's reading.
    await report(client, world, tree, insight_event(insight(tree, scope="region")))
    await evaluate(world, datetime.now(UTC))
    [alert] = await alerts_of(client, tree.partner_token, tree.tenant_id, "recurring-incidents")
    assert alert["value"] == 2 and alert["reason"].startswith("2 recurring incident patterns")
    assert "in region north" in alert["reason"]

    # The signal covers what was reported in the last 24 h: a day on, nothing (and the
    # evaluator resolves an alert whose reading stopped firing, as for every rule).
    later = datetime.now(UTC) + timedelta(hours=25)
    assert await world.run(lambda c: recent_by_tenant(c, later, [tree.tenant_id])) == {}
    assert recurring_incidents([]).value == 0


async def store_code(client: httpx.AsyncClient, tree: Tree) -> str:
    response = await client.get(
        f"/api/v1/tenants/{tree.tenant_id}/stores/{tree.store_id}",
        headers=bearer(tree.tenant_token),
    )
    assert response.status_code == 200, response.text
    code: str = response.json()["code"]
    return code
