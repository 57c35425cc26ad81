"""Telemetry fixtures: runtime tokens, event and batch builders, reads past RLS."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from control_plane.config import Settings
from control_plane.contracts import telemetry, uuid7
from control_plane.contracts.telemetry import Batch, Event, Kind
from control_plane.identity.principal import Grant, Principal
from control_plane.identity.roles import Role
from tests.conftest import Tree, World, bearer

URL = "/runtime/v1/telemetry"
HEADERS = {"Content-Type": telemetry.MEDIA_TYPE, "Content-Encoding": "gzip"}
TEMPLATES = ("stock-transfer-approval", "price-sync", "store-opening-checklist")


async def runtime_token(world: World, tree: Tree) -> str:
    """A tenant runtime's client token, as ``/oauth/token`` would mint it."""
    principal = Principal(
        subject=f"client:runtime-{secrets.token_hex(4)}",
        kind="client",
        name="runtime",
        grants=(Grant(Role.TENANT_RUNTIME, partner_id=tree.partner_id, tenant_id=tree.tenant_id),),
        home_partner_id=tree.partner_id,
        home_tenant_id=tree.tenant_id,
    )
    token, _ = await world.app.state.tokens.issue(principal)
    return str(token)


def event(kind: Kind, at: datetime | None = None, **fields: Any) -> Event:
    return Event(id=uuid7(), at=at or datetime.now(UTC), kind=kind, **fields)


def mixed_events(n: int, start: datetime | None = None, seed: int = 0) -> list[Event]:
    """``n`` events of every kind over three templates, spread over the 90 minutes from
    ``start`` (default: two hours ago)."""
    start = start or datetime.now(UTC) - timedelta(hours=2)
    step = 5400 / max(n, 1)
    made: list[Event] = []
    for i in range(n):
        at = start + timedelta(seconds=step * i + seed)
        template = TEMPLATES[i % len(TEMPLATES)]
        match i % 10:
            case 0 | 1:
                made.append(event(Kind.RUN_STARTED, at, template_id=template, run_id=uuid7()))
            case 2:
                made.append(
                    event(
                        Kind.RUN_FINISHED,
                        at,
                        template_id=template,
                        status=("succeeded", "failed", "cancelled")[i % 3],
                        duration_ms=(i * 37) % 90_000,
                    )
                )
            case 3 | 4:
                made.append(
                    event(
                        Kind.STEP_FINISHED,
                        at,
                        template_id=template,
                        status=("succeeded", "failed", "dead")[i % 3],
                        duration_ms=i,
                        data={"step_id": "check", "step_kind": "condition"},
                    )
                )
            case 5:
                made.append(event(Kind.TASK_OPENED, at, template_id=template))
            case 6:
                made.append(event(Kind.TASK_DECIDED, at, template_id=template, status="approved"))
            case 7:
                made.append(event(Kind.TASK_BREACHED, at, template_id=template))
            case 8:
                made.append(event(Kind.USAGE, at, data={"api_calls": 3, "connector_calls": 1.5}))
            case _:
                made.append(event(Kind.HEARTBEAT, at, data={"version": "1.2.3", "workers": 2}))
    return made


def batch(tree: Tree, events: Sequence[Event], runtime: str = "runtime-1") -> bytes:
    return telemetry.encode(
        Batch(
            tenant_id=tree.tenant_id,
            runtime=runtime,
            sent_at=datetime.now(UTC),
            events=list(events),
        )
    )


async def post(client: httpx.AsyncClient, token: str, body: bytes) -> httpx.Response:
    return await client.post(URL, content=body, headers={**HEADERS, **bearer(token)})


async def post_ok(
    client: httpx.AsyncClient, token: str, tree: Tree, events: Sequence[Event]
) -> dict[str, int]:
    response = await post(client, token, batch(tree, events))
    assert response.status_code == 200, response.text
    result: dict[str, int] = response.json()
    return result


async def rollups(
    client: httpx.AsyncClient, token: str, tree: Tree, **params: str
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/api/v1/tenants/{tree.tenant_id}/telemetry/rollups",
        params=params,
        headers=bearer(token),
    )
    assert response.status_code == 200, response.text
    buckets: list[dict[str, Any]] = response.json()["buckets"]
    return buckets


def totals(buckets: Iterable[dict[str, Any]], *fields: str) -> dict[str, int]:
    return {f: sum(b[f] for b in buckets) for f in fields}


async def superuser(settings: Settings) -> asyncpg.Connection:
    return await asyncpg.connect(settings.admin_database_url.replace("+asyncpg", ""))


async def stored_ids(settings: Settings, tenant_id: UUID) -> list[UUID]:
    """Every raw event id stored for ``tenant_id``, read as the owner past RLS."""
    conn = await superuser(settings)
    try:
        rows = await conn.fetch("SELECT id FROM telemetry_events WHERE tenant_id = $1", tenant_id)
    finally:
        await conn.close()
    return [UUID(str(r["id"])) for r in rows]


@pytest.fixture
async def tree(world: World) -> Tree:
    return await world.tree()


@pytest.fixture
async def token(world: World, tree: Tree) -> str:
    return await runtime_token(world, tree)
