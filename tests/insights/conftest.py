"""Insight fixtures: insights sent home the way a tenant runtime sends them (``insight``
telemetry events through ``POST /runtime/v1/telemetry``), and reads of the API."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
import msgspec

from control_plane.contracts.telemetry import Event, Kind
from control_plane.contracts.triage import Evidence, Insight
from tests.conftest import Tree, World, bearer
from tests.telemetry.conftest import event, post_ok, runtime_token

URL = "/api/v1/insights"


def insight(
    tree: Tree,
    *,
    scope: Literal["store", "region"] = "store",
    subject: str | None = None,
    label: str = "refrigeration",
    count: int = 3,
    key: str | None = None,
    days_ago: float = 2,
    notified: str | None = None,
) -> Insight:
    """An insight about ``tree``'s store (or region) with ``count`` incidents as evidence,
    the last ``days_ago`` days ago."""
    if subject is None:
        subject = str(tree.store_id if scope == "store" else tree.region_id)
    last = datetime.now(UTC).replace(microsecond=0) - timedelta(days=days_ago)
    evidence = [
        Evidence(
            run_id=f"run-{n}",
            store=str(tree.store_id),
            at=(last - timedelta(hours=n)).isoformat(),
            text=f"Freezer {n} in aisle 4 is warm again, ice on the floor " + "x" * 300,
            routed="auto" if n % 2 else "review",
        )
        for n in range(count)
    ]
    return Insight(
        id=key or f"{scope}:{subject}:{label}:{secrets.token_hex(4)}",
        scope=scope,
        subject=subject,
        label=label,
        count=count,
        threshold=3,
        window_days=30,
        first_at=(last - timedelta(hours=count)).isoformat(),
        last_at=last.isoformat(),
        evidence=evidence,
        notified=notified,
    )


def insight_event(found: Insight, at: datetime | None = None) -> Event:
    """The telemetry event a runtime writes for ``found`` (its store set for a store)."""
    store = found.subject if found.scope == "store" else None
    return event(Kind.INSIGHT, at, store=store, data=msgspec.to_builtins(found))


async def report(
    client: httpx.AsyncClient, world: World, tree: Tree, *events: Event
) -> dict[str, int]:
    """Send ``events`` as one batch from ``tree``'s runtime."""
    return await post_ok(client, await runtime_token(world, tree), tree, list(events))


async def listed(client: httpx.AsyncClient, token: str, **params: str) -> list[dict[str, Any]]:
    response = await client.get(URL, params={"limit": "200", **params}, headers=bearer(token))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def keys(items: list[dict[str, Any]]) -> set[str]:
    return {i["key"] for i in items}
