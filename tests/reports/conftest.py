"""Report fixtures: two tenants of one partner and one of another, each with events seeded
through the real ingest path, and the figures computed by hand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from control_plane.contracts.telemetry import Event, Kind
from tests.conftest import Tree, World, bearer
from tests.telemetry.conftest import event, post_ok, runtime_token

URL = "/api/v1/reports/sla"


def decided(
    at: datetime,
    ms: int,
    status: str,
    kind: str = "approval",
    via: str = "human",
    category: str = "inventory",
    **data: Any,
) -> Event:
    return event(
        Kind.TASK_DECIDED,
        at,
        template_id=f"{category}-flow",
        status=status,
        duration_ms=ms,
        data={"task_kind": kind, "via": via, "category": category, **data},
    )


def finished(at: datetime, ms: int, **metrics: Any) -> Event:
    data: dict[str, Any] = {"category": "x"}
    if metrics:
        data["metrics"] = metrics
    return event(
        Kind.RUN_FINISHED, at, template_id="flow", status="succeeded", duration_ms=ms, data=data
    )


def tenant_one(t: datetime) -> list[Event]:
    """Every figure, by hand in ``test_sla.py``."""
    return [
        *(event(Kind.TASK_OPENED, t, data={"task_kind": "approval"}) for _ in range(3)),
        decided(t, 1000, "approved", category="returns", within_sla=True),
        decided(t, 3000, "rejected", within_sla=False, breached=True),
        decided(t, 2000, "approved", category="returns", within_sla=True),
        decided(t, 0, "approved", via="auto"),
        decided(
            t,
            600,
            "completed",
            kind="checklist",
            category="compliance",
            within_sla=True,
            items_total=5,
            items_completed=5,
        ),
        decided(
            t,
            900,
            "exception",
            kind="checklist",
            category="compliance",
            within_sla=False,
            items_total=5,
            items_completed=3,
        ),
        decided(
            t,
            5400,
            "expired",
            kind="checklist",
            via="timeout",
            category="compliance",
            within_sla=False,
            items_total=4,
            items_completed=0,
        ),
        event(Kind.TASK_BREACHED, t),
        event(Kind.TASK_BREACHED, t),
        event(Kind.TASK_ESCALATED, t, data={"level": 1}),
        finished(
            t, 50_000, stores_targeted=10, stores_synced_before_launch=9, promotion_launched=True
        ),
        finished(
            t, 70_000, stores_targeted=4, stores_synced_before_launch=0, promotion_launched=False
        ),
        finished(t, 3_600_000, incident_resolved=True, resolved_within_sla=True),
        finished(t, 7_200_000, incident_resolved=True, resolved_within_sla=False),
        finished(t, 100, incident_resolved=False, resolved_within_sla=True),
        finished(t, 60_000, stock_case_closed=True, stock_adjusted=True, adjusted_value=12.5),
        finished(t, 120_000, stock_case_closed=True, stock_adjusted=False, adjusted_value=0.0),
        finished(t, 10),  # no figures
        event(Kind.HEARTBEAT, t, data={"queue_depth": 1}),
        event(Kind.STEP_FINISHED, t, status="succeeded", duration_ms=5),
    ]


def tenant_two(t: datetime) -> list[Event]:
    return [
        decided(t, 5000, "approved", category="maintenance", within_sla=True),
        finished(t, 30_000, stock_case_closed=True, stock_adjusted=True, adjusted_value=2.5),
    ]


def other_partner(t: datetime) -> list[Event]:
    return [
        decided(t, 99_000, "approved", category="returns", within_sla=False),
        finished(t, 1, stores_targeted=100, stores_synced_before_launch=1),
    ]


@dataclass
class Fleet:
    """Partner A (tenants one and two) and partner B (tenant other), seeded."""

    one: Tree
    two: Tree
    other: Tree
    since: datetime
    until: datetime
    seeded: dict[str, list[Event]]

    @property
    def period(self) -> dict[str, str]:
        return {"from": self.since.isoformat(), "to": self.until.isoformat()}


@pytest.fixture
async def fleet(client: httpx.AsyncClient, world: World) -> Fleet:
    one = await world.tree()
    two = await world.tree()
    other = await world.tree()
    # Tenant two joins tenant one's partner.
    two = await _move(world, one, two)
    now = datetime.now(UTC).replace(microsecond=0)
    since, until = now - timedelta(hours=3), now
    t = now - timedelta(hours=1)
    seeded = {"one": tenant_one(t), "two": tenant_two(t), "other": other_partner(t)}
    # Outside the period: neither just before it nor at its (exclusive) end counts.
    outside = [decided(since - timedelta(seconds=1), 1, "approved"), decided(until, 1, "rejected")]
    for tree, events in (
        (one, seeded["one"] + outside),
        (two, seeded["two"]),
        (other, seeded["other"]),
    ):
        await post_ok(client, await runtime_token(world, tree), tree, events)
    return Fleet(one, two, other, since, until, seeded)


async def _move(world: World, one: Tree, two: Tree) -> Tree:
    """A second tenant under ``one``'s partner (built through the real services)."""
    from control_plane.identity.principal import Grant
    from control_plane.identity.roles import Role
    from control_plane.tenancy import schemas as ts
    from control_plane.tenancy import service as tenancy

    async def build(c: Any) -> Any:
        t = await tenancy.onboard_tenant(
            c,
            one.partner_id,
            ts.TenantCreate(slug=f"two-{two.tenant_id.hex[:8]}", name="Tenant two", timezone="UTC"),
        )
        await tenancy.transition_tenant(c, t.id, "activate")
        return t.id

    tenant_id = await world.run(build)
    return Tree(
        partner_id=one.partner_id,
        tenant_id=tenant_id,
        region_id=two.region_id,
        store_id=two.store_id,
        partner_token=one.partner_token,
        tenant_token=await world.token(
            Grant(Role.RETAILER_ADMIN, partner_id=one.partner_id, tenant_id=tenant_id)
        ),
    )


async def report(
    client: httpx.AsyncClient, token: str, expect: int = 200, **params: Any
) -> httpx.Response:
    response = await client.get(URL, params=params, headers=bearer(token))
    assert response.status_code == expect, response.text
    return response
