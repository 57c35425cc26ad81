"""``GET /api/v1/reports/sla``: each figure against hand-computed values, per tenant and
rolled up per partner; CSV; who may read which report; periods that make no sense."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from control_plane.identity.principal import Grant
from control_plane.identity.roles import Role
from control_plane.reports.figures import Fold, figures, percentiles
from tests.conftest import World, bearer
from tests.reports.conftest import URL, Fleet, report


def ratio(count: int, of: int, pct: float | None) -> dict[str, Any]:
    return {"count": count, "of": of, "pct": pct}


def durations(count: int, p50: float | None, p95: float | None) -> dict[str, Any]:
    return {"count": count, "p50_ms": p50, "p95_ms": p95}


#: Tenant one, by hand (tests/reports/conftest.py: tenant_one).
ONE = {
    "sla": {
        "tasks_opened": 3,
        # 3 human approvals, 1 automatic, 3 checklists.
        "tasks_decided": 7,
        # With a deadline: approvals T, F, T and checklists T, F, F.
        "decided_within_sla": ratio(3, 6, 50.0),
        "breaches": 2,
        "escalations": 1,
    },
    "approval_turnaround": {
        # [1000, 2000, 3000]: p95 at rank 1.9 = 2000 + 0.9 * 1000.
        "turnaround": durations(3, 2000.0, 2900.0),
        "approved": 2,
        "rejected": 1,
        "auto_decided": 1,
        "expired": 0,
    },
    "incidents": {
        "resolved_within_sla": ratio(1, 2, 50.0),
        # [3.6e6, 7.2e6]: the median between, p95 at 3.6e6 + 0.95 * 3.6e6.
        "resolution_time": durations(2, 5_400_000.0, 7_020_000.0),
    },
    "promotion_deployment": {"runs": 2, "launched": 1, "accuracy": ratio(9, 14, 64.29)},
    "checklists": {
        "closed": 3,
        "completed": ratio(1, 3, 33.33),
        "with_exceptions": 1,
        "expired": 1,
        "items_completed": ratio(8, 14, 57.14),
    },
    "stock_adjustment": {
        # [60000, 120000]
        "cycle_time": durations(2, 90_000.0, 117_000.0),
        "adjusted": 1,
        "adjusted_value": 12.5,
    },
    # [1000, 2000]
    "return_approvals": {
        "turnaround": durations(2, 1500.0, 1950.0),
        "approved": 2,
        "rejected": 0,
    },
}

TWO = {
    "sla": {
        "tasks_opened": 0,
        "tasks_decided": 1,
        "decided_within_sla": ratio(1, 1, 100.0),
        "breaches": 0,
        "escalations": 0,
    },
    "approval_turnaround": {
        "turnaround": durations(1, 5000.0, 5000.0),
        "approved": 1,
        "rejected": 0,
        "auto_decided": 0,
        "expired": 0,
    },
    "incidents": {
        "resolved_within_sla": ratio(0, 0, None),
        "resolution_time": durations(0, None, None),
    },
    "promotion_deployment": {"runs": 0, "launched": 0, "accuracy": ratio(0, 0, None)},
    "checklists": {
        "closed": 0,
        "completed": ratio(0, 0, None),
        "with_exceptions": 0,
        "expired": 0,
        "items_completed": ratio(0, 0, None),
    },
    "stock_adjustment": {
        "cycle_time": durations(1, 30_000.0, 30_000.0),
        "adjusted": 1,
        "adjusted_value": 2.5,
    },
    "return_approvals": {"turnaround": durations(0, None, None), "approved": 0, "rejected": 0},
}

#: The partner: both tenants' events together (percentiles over all, not averaged).
PARTNER = {
    **ONE,
    "sla": {
        "tasks_opened": 3,
        "tasks_decided": 8,
        "decided_within_sla": ratio(4, 7, 57.14),
        "breaches": 2,
        "escalations": 1,
    },
    "approval_turnaround": {
        # [1000, 2000, 3000, 5000]: p50 at rank 1.5, p95 at 2.85 = 3000 + 0.85 * 2000.
        "turnaround": durations(4, 2500.0, 4700.0),
        "approved": 3,
        "rejected": 1,
        "auto_decided": 1,
        "expired": 0,
    },
    "stock_adjustment": {
        # [30000, 60000, 120000]: p95 at rank 1.9 = 60000 + 0.9 * 60000.
        "cycle_time": durations(3, 60_000.0, 114_000.0),
        "adjusted": 2,
        "adjusted_value": 15.0,
    },
}


async def test_a_tenant_report_computes_every_figure(
    client: httpx.AsyncClient, fleet: Fleet
) -> None:
    body = (
        await report(client, fleet.one.tenant_token, tenant_id=fleet.one.tenant_id, **fleet.period)
    ).json()
    assert (body["scope"], body["tenant_id"], body["partner_id"]) == (
        "tenant",
        str(fleet.one.tenant_id),
        str(fleet.one.partner_id),
    )
    assert datetime.fromisoformat(body["from"]) == fleet.since
    assert datetime.fromisoformat(body["to"]) == fleet.until
    assert body["total"] == ONE
    [tenant] = body["tenants"]
    assert tenant["tenant_id"] == str(fleet.one.tenant_id) and tenant["figures"] == ONE


async def test_a_partner_report_rolls_up_its_own_tenants_only(
    client: httpx.AsyncClient, fleet: Fleet
) -> None:
    body = (
        await report(
            client, fleet.one.partner_token, partner_id=fleet.one.partner_id, **fleet.period
        )
    ).json()
    assert body["scope"] == "partner" and body["tenant_id"] is None
    by_tenant = {t["tenant_id"]: t for t in body["tenants"]}
    assert set(by_tenant) == {str(fleet.one.tenant_id), str(fleet.two.tenant_id)}
    assert by_tenant[str(fleet.one.tenant_id)]["figures"] == ONE
    assert by_tenant[str(fleet.two.tenant_id)]["figures"] == TWO
    assert by_tenant[str(fleet.two.tenant_id)]["name"] == "Tenant two"
    # Partner B's 99 s return approval and 100-store promotion are nowhere in it.
    assert body["total"] == PARTNER


async def test_the_embedded_fold_agrees_with_postgresql(
    client: httpx.AsyncClient, fleet: Fleet
) -> None:
    """The SQLite path folds events in Python: the same figures from the same events."""
    one, two = Fold(), Fold()
    for fold, events in ((one, fleet.seeded["one"]), (two, fleet.seeded["two"])):
        for e in events:
            fold.add(e.kind.value, e.status, e.duration_ms, e.data)
    assert msgspec_builtins(figures(one.raw())) == ONE
    one.merge(two)
    assert msgspec_builtins(figures(one.raw())) == PARTNER


def msgspec_builtins(value: Any) -> Any:
    import msgspec

    return msgspec.json.decode(msgspec.json.encode(value))


def test_percentiles_interpolate_like_percentile_cont() -> None:
    assert percentiles([]) == []
    assert percentiles([7]) == [7, 7]
    assert percentiles([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) == pytest.approx([5.5, 9.55])


async def test_csv_has_a_row_per_tenant_and_the_partner_total(
    client: httpx.AsyncClient, fleet: Fleet
) -> None:
    by_param = await report(
        client,
        fleet.one.partner_token,
        partner_id=fleet.one.partner_id,
        format="csv",
        **fleet.period,
    )
    by_accept = await client.get(
        URL,
        params={"partner_id": str(fleet.one.partner_id), **fleet.period},
        headers={**bearer(fleet.one.partner_token), "Accept": "text/csv"},
    )
    for response in (by_param, by_accept):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        assert response.headers["content-disposition"].startswith("attachment; filename=")
    assert by_accept.text == by_param.text
    rows = list(csv.DictReader(io.StringIO(by_param.text)))
    assert [r["scope"] for r in rows] == ["tenant", "tenant", "partner"]
    header = by_param.text.splitlines()[0].split(",")
    assert header[:7] == [
        "scope",
        "partner_id",
        "tenant_id",
        "tenant_slug",
        "tenant_name",
        "from",
        "to",
    ]
    assert "approval_turnaround.turnaround.p95_ms" in header
    assert "promotion_deployment.accuracy.of" in header
    by_tenant = {r["tenant_id"]: r for r in rows}
    one, total = by_tenant[str(fleet.one.tenant_id)], rows[-1]
    assert total["tenant_id"] == "" and total["partner_id"] == str(fleet.one.partner_id)
    assert (
        one["promotion_deployment.accuracy.count"],
        one["promotion_deployment.accuracy.of"],
        one["promotion_deployment.accuracy.pct"],
    ) == ("9", "14", "64.29")
    assert total["approval_turnaround.turnaround.p95_ms"] == "4700.0"
    assert total["sla.decided_within_sla.pct"] == "57.14"
    two = by_tenant[str(fleet.two.tenant_id)]
    assert two["incidents.resolved_within_sla.pct"] == ""  # none: empty, not 0
    # A tenant report is one row.
    single = await report(
        client,
        fleet.one.tenant_token,
        tenant_id=fleet.one.tenant_id,
        format="csv",
        **fleet.period,
    )
    assert [r["scope"] for r in csv.DictReader(io.StringIO(single.text))] == ["tenant"]


async def test_who_reads_which_report(
    client: httpx.AsyncClient, world: World, fleet: Fleet
) -> None:
    one, other = fleet.one, fleet.other
    tenant = {"tenant_id": str(one.tenant_id), **fleet.period}
    partner = {"partner_id": str(one.partner_id), **fleet.period}
    readers = {
        "retailer admin": one.tenant_token,
        "partner admin": one.partner_token,
        "partner operator": await world.token(
            Grant(Role.PARTNER_OPERATOR, partner_id=one.partner_id)
        ),
        "partner NOC": await world.token(Grant(Role.NOC_OPERATOR, partner_id=one.partner_id)),
        "platform NOC": await world.token(Grant(Role.NOC_OPERATOR)),
    }
    for name, token in readers.items():
        response = await client.get(URL, params=tenant, headers=bearer(token))
        assert response.status_code == 200, (name, response.text)
        assert response.json()["total"] == ONE
    # Another partner's people: the tenant and the partner do not exist for them.
    strangers = {
        "other partner admin": other.partner_token,
        "other retailer admin": other.tenant_token,
        "other partner NOC": await world.token(
            Grant(Role.NOC_OPERATOR, partner_id=other.partner_id)
        ),
        "sibling tenant's admin": fleet.two.tenant_token,
    }
    for name, token in strangers.items():
        response = await client.get(URL, params=tenant, headers=bearer(token))
        assert response.status_code == 404, (name, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["detail"] == f"tenant {one.tenant_id} does not exist"
    for token in (other.partner_token, other.tenant_token):
        response = await client.get(URL, params=partner, headers=bearer(token))
        assert response.status_code == 404, response.text
    # A tenant of partner A named under partner B: not there.
    mixed = {**tenant, "partner_id": str(other.partner_id)}
    assert (
        await client.get(URL, params=mixed, headers=bearer(one.partner_token))
    ).status_code == 404
    # Roles without reports: refused before anything is read.
    manager = await world.token(
        Grant(
            Role.REGIONAL_MANAGER,
            partner_id=one.partner_id,
            tenant_id=one.tenant_id,
            region_id=one.region_id,
        )
    )
    assert (await client.get(URL, params=tenant, headers=bearer(manager))).status_code == 403
    assert (await client.get(URL, params=tenant)).status_code == 401


async def test_without_a_scope_the_callers_own_is_reported(
    client: httpx.AsyncClient, world: World, fleet: Fleet
) -> None:
    mine = (await report(client, fleet.one.tenant_token, **fleet.period)).json()
    assert (mine["scope"], mine["tenant_id"], mine["total"]) == (
        "tenant",
        str(fleet.one.tenant_id),
        ONE,
    )
    ours = (await report(client, fleet.one.partner_token, **fleet.period)).json()
    assert (ours["scope"], ours["total"]) == ("partner", PARTNER)
    everyone = await world.token(Grant(Role.NOC_OPERATOR))
    response = await report(client, everyone, 422, **fleet.period)
    assert "name the report's scope" in response.json()["detail"]


BAD = [
    (
        {"period": "2026-13"},
        "period must be a month as YYYY-MM (for example 2026-11), not '2026-13'",
    ),
    ({"period": "november"}, "period must be a month as YYYY-MM"),
    ({"period": "2026-11", "from": "2026-11-01"}, "give either 'period' or 'from'/'to', not both"),
    ({"to": "2026-11-30"}, "'to' needs a 'from'"),
    ({"from": "yesterday"}, "'from' must be an ISO 8601 date (2026-11-01) or date-time"),
    ({"from": "2026-11-10", "to": "2026-11-01"}, "must be before 'to'"),
    ({"from": "2026-11-01", "to": "2026-11-01"}, "must be before 'to'"),
    (
        {"from": "2026-01-01", "to": "2026-11-01"},
        "a report covers at most 93 days, this asks for 304",
    ),
    ({"format": "xml"}, "format must be json or csv, not 'xml'"),
]


@pytest.mark.parametrize(("params", "detail"), BAD, ids=[str(p) for p, _ in BAD])
async def test_a_bad_period_is_a_precise_problem(
    client: httpx.AsyncClient, fleet: Fleet, params: dict[str, str], detail: str
) -> None:
    response = await client.get(
        URL,
        params={"tenant_id": str(fleet.one.tenant_id), **params},
        headers=bearer(fleet.one.tenant_token),
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"] == "urn:storeops:problem:invalid-input"
    assert detail in problem["detail"]


async def test_a_month_is_its_calendar_month_in_utc(
    client: httpx.AsyncClient, fleet: Fleet
) -> None:
    body = (
        await report(
            client, fleet.one.tenant_token, tenant_id=fleet.one.tenant_id, period="2026-12"
        )
    ).json()
    assert (body["from"], body["to"]) == ("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z")
    assert body["total"]["sla"]["tasks_decided"] == 0
    month = datetime.now(UTC).strftime("%Y-%m")
    body = (
        await report(client, fleet.one.tenant_token, tenant_id=fleet.one.tenant_id, period=month)
    ).json()
    # Seeded an hour ago: in this month (unless the test runs in the first hour of one).
    if datetime.now(UTC).day > 1 or datetime.now(UTC).hour > 3:
        assert body["total"]["sla"]["tasks_decided"] == 7 + 2  # and the two just outside
