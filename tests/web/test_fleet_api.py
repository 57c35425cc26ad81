"""``/api/v1/noc/fleet`` and the drill-down series: filters, paging, scoping, bad input."""

from __future__ import annotations

from collections import Counter
from uuid import uuid4

import httpx
import pytest

from control_plane.identity.principal import Grant
from control_plane.identity.roles import Role
from tests.conftest import World, bearer
from tests.web.support import SeededFleet

URL = "/api/v1/noc/fleet"


@pytest.fixture(scope="module")
async def platform_noc(world: World) -> str:
    return await world.token(Grant(Role.NOC_OPERATOR))


async def _get(client: httpx.AsyncClient, token: str, **params: str | int) -> dict:  # type: ignore[type-arg]
    response = await client.get(URL, params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _partners(fleet: SeededFleet) -> str:
    return ",".join(slug for _, slug in fleet.partners)


async def test_platform_noc_sees_every_partner_with_health_and_reasons(
    client: httpx.AsyncClient, fleet: SeededFleet, platform_noc: str
) -> None:
    body = await _get(client, platform_noc, partner=_partners(fleet), limit=200)
    assert body["total"] == len(fleet.tenants)
    by_id = {row["tenant_id"]: row for row in body["items"]}
    for tenant in fleet.tenants:
        row = by_id[str(tenant.id)]
        assert row["status"] == tenant.expected, (tenant.name, row["reasons"])
        assert row["reasons"], row
        assert row["regions"] == [tenant.region]
    assert Counter(t.expected for t in fleet.tenants) == {
        k: v for k, v in body["counts"].items() if v
    }
    healthy = next(r for r in body["items"] if r["status"] == "healthy")
    assert healthy["runs_last_hour"] > 0
    assert healthy["tasks_24h"] == 12  # two per hour over six hours
    assert 0 <= healthy["sla_pct"] <= 100
    assert healthy["dead_letters"] is not None
    assert "1 - breaches / tasks opened" in body["sla_definition"]
    # Worst first by default.
    order = [r["status"] for r in body["items"]]
    assert order.index("down") < order.index("degraded") < order.index("healthy")


async def test_filters_by_partner_region_and_status(
    client: httpx.AsyncClient, fleet: SeededFleet, platform_noc: str
) -> None:
    _, slug = fleet.partners[1]
    body = await _get(client, platform_noc, partner=slug, limit=200)
    assert {r["tenant_id"] for r in body["items"]} == {str(t.id) for t in fleet.of_partner(slug)}

    body = await _get(client, platform_noc, partner=_partners(fleet), region="north,east")
    expected = {str(t.id) for t in fleet.tenants if t.region in ("north", "east")}
    assert {r["tenant_id"] for r in body["items"]} == expected

    body = await _get(client, platform_noc, partner=_partners(fleet), status="down,degraded")
    expected = {str(t.id) for t in fleet.tenants if t.expected in ("down", "degraded")}
    assert {r["tenant_id"] for r in body["items"]} == expected
    # The counts describe the partner/region selection, before the status filter.
    assert sum(body["counts"].values()) == len(fleet.tenants)


async def test_pages_and_sorts(
    client: httpx.AsyncClient, fleet: SeededFleet, platform_noc: str
) -> None:
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        body = await _get(
            client, platform_noc, partner=_partners(fleet), sort="name", limit=10, offset=offset
        )
        assert len(body["items"]) <= 10
        seen += [r["name"] for r in body["items"]]
        offset = body["next_offset"]
    assert seen == sorted(t.name for t in fleet.tenants)

    body = await _get(client, platform_noc, partner=_partners(fleet), sort="-runs", limit=200)
    runs = [r["runs_last_hour"] for r in body["items"]]
    assert runs == sorted(runs, reverse=True)


async def test_a_partner_noc_sees_only_its_retailers(
    client: httpx.AsyncClient, fleet: SeededFleet, world: World
) -> None:
    partner_id, slug = fleet.partners[0]
    token = await world.token(Grant(Role.NOC_OPERATOR, partner_id=partner_id))
    body = await _get(client, token, limit=500)
    mine = {str(t.id) for t in fleet.of_partner(slug)}
    assert {r["tenant_id"] for r in body["items"]} == mine
    # Asking for another partner's fleet finds nothing rather than leaking it.
    _, other = fleet.partners[1]
    assert (await _get(client, token, partner=other))["total"] == 0

    own = fleet.of_partner(slug)[0]
    foreign = fleet.of_partner(other)[0]
    ok = await client.get(f"/api/v1/noc/tenants/{own.id}/series", headers=bearer(token))
    assert ok.status_code == 200, ok.text
    hidden = await client.get(f"/api/v1/noc/tenants/{foreign.id}/series", headers=bearer(token))
    assert hidden.status_code == 404, hidden.text
    assert hidden.headers["content-type"].startswith("application/problem+json")


async def test_drill_down_series(
    client: httpx.AsyncClient, fleet: SeededFleet, platform_noc: str
) -> None:
    tenant = next(t for t in fleet.tenants if t.expected == "healthy")
    response = await client.get(
        f"/api/v1/noc/tenants/{tenant.id}/series",
        params={"range": "24h"},
        headers=bearer(platform_noc),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    series = body["series"]
    assert body["granularity"] == "1h" and len(series["t"]) == 24
    assert all(len(v) == 24 for v in series.values())
    assert sum(series["runs_per_hour"]) > 0
    assert any(p is not None for p in series["p95_run_ms"])
    assert any(p is not None for p in series["sla_pct"])
    assert body["health"]["status"] == "healthy"
    assert "latest heartbeat" in body["backlog_note"]
    week = await client.get(
        f"/api/v1/noc/tenants/{tenant.id}/series",
        params={"range": "7d"},
        headers=bearer(platform_noc),
    )
    assert week.json()["granularity"] == "1h" and len(week.json()["series"]["t"]) == 168
    missing = await client.get(
        f"/api/v1/noc/tenants/{uuid4()}/series", headers=bearer(platform_noc)
    )
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "sick"}, "status 'sick' is not a health status; use one or more of healthy"),
        ({"sort": "colour"}, "sort 'colour' is not a sortable column; use one of status, name"),
        ({"limit": "0"}, "limit must be between 1 and 500, got 0"),
        ({"limit": "many"}, "limit must be a whole number, got 'many'"),
        ({"offset": "-3"}, "offset must be at least 0, got -3"),
    ],
)
async def test_bad_filters_are_precise_problems(
    client: httpx.AsyncClient, platform_noc: str, params: dict[str, str], message: str
) -> None:
    response = await client.get(URL, params=params, headers=bearer(platform_noc))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"] == "urn:storeops:problem:invalid-input"
    assert message in problem["detail"], problem["detail"]


async def test_bad_range_and_roles(
    client: httpx.AsyncClient, fleet: SeededFleet, platform_noc: str, world: World
) -> None:
    tenant = fleet.tenants[0]
    bad = await client.get(
        f"/api/v1/noc/tenants/{tenant.id}/series",
        params={"range": "1y"},
        headers=bearer(platform_noc),
    )
    assert bad.status_code == 422
    assert "range '1y' is not offered; use one of 6h, 24h, 7d, 30d" in bad.json()["detail"]
    retailer = await world.token(
        Grant(Role.RETAILER_ADMIN, partner_id=tenant.partner_id, tenant_id=tenant.id)
    )
    # A retailer's admin reads the API over its own tenant only (the console is NOC staff's).
    own = await client.get(URL, headers=bearer(retailer))
    assert own.status_code == 200, own.text
    assert [row["tenant_id"] for row in own.json()["items"]] == [str(tenant.id)]
    assert (await client.get(URL)).status_code == 401
