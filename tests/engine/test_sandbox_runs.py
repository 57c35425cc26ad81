"""Engine, REST connector and sandbox together: a transfer runs end to end, and a response
lost after the ERP committed is retried under the same key without a second effect."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.contracts.validate import lint
from tenant_runtime.connectors import NoAuth, RestConnector, RetryPolicy
from tenant_runtime.connectors.bindings import BoundConnectors
from tenant_runtime.db.schema import runs
from tenant_runtime.engine.executor import Engine
from tenant_runtime.sandbox import FaultRule, SandboxConfig, create_sandbox_app
from tenant_runtime.secrets import SecretCache
from tests.engine.test_executor import Clock, drive

TRANSFER = """
id: quick-transfer
name: Quick transfer
version: 1.0.0
category: inventory
owner: platform
summary: Validate a transfer in the ERP, then create the order.
connectors:
  erp: {system: erp, operations: [validate_transfer, create_transfer_order]}
triggers: [{kind: api}]
steps:
  - id: validate
    kind: call
    connector: erp
    operation: validate_transfer
    input: {sku: input.sku, quantity: input.quantity, from_location: input.from, to_store: input.to}
    next: check
  - id: check
    kind: decide
    branches: [{when: steps.validate.output.valid == true, next: create}]
    default: fail
  - id: create
    kind: call
    connector: erp
    operation: create_transfer_order
    input: {sku: input.sku, quantity: input.quantity, from_location: input.from, to_store: input.to, reference: run.id}
    next: done
  - id: done
    kind: emit
    event: transfer.created
    payload: {order_id: steps.create.output.order_id}
"""


class NoSecrets:
    async def get(self, name: str) -> str:
        raise AssertionError(f"no secret expected, asked for {name}")


@pytest.fixture
def sandbox() -> tuple[httpx.ASGITransport, Any]:
    config = SandboxConfig(
        faults=[
            FaultRule(system="erp", operation="create_transfer_order", drop_after_commit_rate=1.0)
        ]
    )
    app = create_sandbox_app(config)
    return httpx.ASGITransport(app=app), app.state.sandbox


async def test_a_lost_answer_after_commit_is_retried_without_a_second_effect(
    fresh_engine: AsyncEngine, sandbox: tuple[httpx.ASGITransport, Any]
) -> None:
    transport, _ = sandbox
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    erp = RestConnector(
        "http://sandbox/erp",
        NoAuth(),
        timeout=5.0,
        retry=RetryPolicy(attempts=3, initial=0.5, max=2.0),
        secrets=SecretCache(NoSecrets()),
        transport=transport,
        sleep=sleep,
    )
    template, problems = lint(TRANSFER, "quick-transfer/1.0.0.yaml")
    assert template is not None and not problems, problems
    clock = Clock()
    engine = Engine(fresh_engine, BoundConnectors({"erp": erp}), clock=clock)
    run_id = await engine.start(
        template, {}, {"sku": "SKU-1001", "quantity": 2, "from": "DC-SOUTH", "to": "S-101"}
    )
    await drive(engine, clock)
    async with fresh_engine.connect() as conn:
        status = await conn.scalar(select(runs.c.status).where(runs.c.id == run_id))
    assert status == "succeeded"
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        stats = (await client.get("/_sandbox/stats")).json()
        log = (
            await client.get("/_sandbox/log", params={"operation": "create_transfer_order"})
        ).json()
    creates = log["entries"]
    # The first answer was dropped after the ERP committed; the retry carried the same key
    # and was replayed: two calls, one effect.
    assert len(creates) == 2 and len({e["key"] for e in creates}) == 1
    assert sum(e["effect_applied"] for e in creates) == 1
    assert stats["totals"]["duplicate_effects"] == 0
    assert delays, "the connector waited before retrying"
