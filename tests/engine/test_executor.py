"""The executor runs automatic steps end to end: retries with one idempotency key per call,
fencing against zombies, failure routes, dead letters and replay without double effects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.contracts import dsl
from control_plane.contracts.validate import lint
from tenant_runtime.db.schema import dead_letters, events, runs
from tenant_runtime.engine import state
from tenant_runtime.engine.executor import CallFailed, Engine, InvalidStart

FLOW = """
id: restock-check
name: Restock check
version: 1.0.0
category: inventory
owner: platform
summary: Checks stock and orders more when it runs low.
parameters:
  type: object
  properties:
    reorder_below: {type: integer, minimum: 0, default: 10}
connectors:
  erp: {system: erp, operations: [get_stock, order_stock]}
triggers: [{kind: api}]
steps:
  - id: stock
    kind: call
    connector: erp
    operation: get_stock
    input: {sku: input.sku}
    retry: {attempts: 4, initial: 1s, max: 4s}
    next: low
  - id: low
    kind: decide
    branches:
      - when: int(steps.stock.output.on_hand) < int(params.reorder_below)
        next: size
    default: done
  - id: size
    kind: set
    values: {quantity: int(params.reorder_below) * 2 - int(steps.stock.output.on_hand)}
    next: order
  - id: order
    kind: call
    connector: erp
    operation: order_stock
    input: {sku: input.sku, quantity: vars.quantity}
    retry: {attempts: 2, initial: 1s, max: 1s}
    on_error: fail
    next: done
  - id: done
    kind: emit
    event: restock.checked
    payload: {sku: input.sku}
"""


def template(text: str = FLOW) -> dsl.Template:
    parsed, problems = lint(text, "restock-check/1.0.0.yaml")
    assert parsed is not None and not problems, problems
    return parsed


class FakeErp:
    """Counts calls per idempotency key and applies each key's effect once, like an ERP."""

    def __init__(self, fail_first: dict[str, int] | None = None, kind: str = "5xx") -> None:
        self.fail_first = dict(fail_first or {})
        self.kind = kind
        self.calls: list[tuple[str, str]] = []
        self.applied: dict[str, dict[str, Any]] = {}

    async def call(
        self, connector: str, operation: str, payload: dict[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        self.calls.append((operation, idempotency_key))
        if self.fail_first.get(operation, 0) > 0:
            self.fail_first[operation] -= 1
            raise CallFailed(self.kind, f"{operation}: 503 Service Unavailable")
        if idempotency_key not in self.applied:
            result = (
                {"on_hand": 3}
                if operation == "get_stock"
                else {"order_id": f"PO-{len(self.applied)}"}
            )
            self.applied[idempotency_key] = result
        return self.applied[idempotency_key]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def drive(eng: Engine, clock: Clock, rounds: int = 20) -> None:
    """Execute what is rung; let backoffs pass; let the sweeper ring for waiting retries."""
    for _ in range(rounds):
        await eng.pump()
        clock.now += timedelta(seconds=10)
        async with eng.db.begin() as conn:
            due = await state.overdue(conn, now=clock.now, ring_again_after=timedelta(seconds=5))
        for step_row, _ in due:
            await eng.execute(step_row)


async def status(db: AsyncEngine, run_id: object) -> str:
    async with db.connect() as conn:
        value = await conn.scalar(select(runs.c.status).where(runs.c.id == run_id))
    return str(value)


async def test_a_run_retries_through_errors_with_one_key_per_call(
    fresh_engine: AsyncEngine,
) -> None:
    engine = fresh_engine
    clock, erp = Clock(), FakeErp(fail_first={"get_stock": 2})
    eng = Engine(engine, erp, clock=clock)
    run_id = await eng.start(template(), {}, {"sku": "SKU-1"})
    await drive(eng, clock)
    assert await status(engine, run_id) == "succeeded"
    stock_keys = {k for op, k in erp.calls if op == "get_stock"}
    assert len([1 for op, _ in erp.calls if op == "get_stock"]) == 3 and len(stock_keys) == 1
    order = [k for op, k in erp.calls if op == "order_stock"]
    assert len(order) == 1
    async with engine.connect() as conn:
        run = (await conn.execute(select(runs).where(runs.c.id == run_id))).one()
        emitted = [
            (r.source, r.type, r.payload)
            for r in (await conn.execute(select(events).where(events.c.type == "restock.checked")))
        ]
    assert run.vars == {"quantity": 17}
    assert emitted == [("internal", "restock.checked", {"sku": "SKU-1", "run_id": str(run_id)})]


async def test_idempotent_start_and_parameter_validation(fresh_engine: AsyncEngine) -> None:
    engine = fresh_engine
    eng = Engine(engine, FakeErp(), clock=Clock())
    first = await eng.start(template(), {}, {"sku": "A"}, idempotency_key="start-1")
    assert await eng.start(template(), {}, {"sku": "A"}, idempotency_key="start-1") == first
    with pytest.raises(InvalidStart, match="reorder_below"):
        await eng.start(template(), {"reorder_below": -1}, {"sku": "A"})


async def test_exhausted_retries_dead_letter_and_replay_applies_once(
    fresh_engine: AsyncEngine,
) -> None:
    engine = fresh_engine
    clock, erp = Clock(), FakeErp(fail_first={"get_stock": 10})
    eng = Engine(engine, erp, clock=clock)
    run_id = await eng.start(template(), {}, {"sku": "SKU-2"})
    await drive(eng, clock)
    assert await status(engine, run_id) == "failed"
    assert len([1 for op, _ in erp.calls if op == "get_stock"]) == 4  # attempts: 4
    async with engine.begin() as conn:
        letter = await conn.scalar(select(dead_letters.c.id).where(dead_letters.c.run_id == run_id))
        assert letter is not None
        await state.replay(conn, letter, now=clock.now)
    erp.fail_first = {}
    await drive(eng, clock)
    assert await status(engine, run_id) == "succeeded"
    # Every call of this run kept its key across the failure and the replay.
    stock_keys = {k for op, k in erp.calls if op == "get_stock" and k.startswith(str(run_id))}
    assert len(stock_keys) == 1


async def test_a_zombie_worker_cannot_complete_a_taken_over_step(fresh_engine: AsyncEngine) -> None:
    engine = fresh_engine
    clock, erp = Clock(), FakeErp()
    zombie = Engine(engine, erp, worker="zombie", clock=clock, lease=timedelta(seconds=30))
    fresh = Engine(engine, erp, worker="fresh", clock=clock, lease=timedelta(seconds=30))
    run_id = await zombie.start(template(), {}, {"sku": "SKU-3"})
    step_row = zombie.bells.popleft()
    async with engine.begin() as conn:
        claim = await state.claim(
            conn, step_row, worker="zombie", lease=zombie.lease, now=clock.now
        )
    assert claim is not None
    clock.now += timedelta(seconds=31)  # the zombie stalls past its lease
    assert await fresh.execute(step_row)
    async with engine.begin() as conn:
        assert not await state.complete(conn, claim, output={"late": True}, now=clock.now)
    await drive(fresh, clock)
    assert await status(engine, run_id) == "succeeded"


async def test_a_non_retryable_error_takes_the_error_route(fresh_engine: AsyncEngine) -> None:
    engine = fresh_engine
    clock, erp = Clock(), FakeErp(fail_first={"order_stock": 1}, kind="4xx")
    eng = Engine(engine, erp, clock=clock)
    run_id = await eng.start(template(), {}, {"sku": "SKU-4"})
    await drive(eng, clock)
    # order_stock's on_error is `fail`: no retry for a 4xx, a dead letter, a failed run.
    assert await status(engine, run_id) == "failed"
    assert len([1 for op, _ in erp.calls if op == "order_stock"]) == 1
