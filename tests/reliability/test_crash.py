"""Crash test: a real worker process is killed with SIGKILL at random moments while 500 runs
go through the sandbox ERP. Every run finishes; no effect is applied twice."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.contracts.validate import lint
from tenant_runtime.db.schema import runs
from tenant_runtime.engine.executor import Engine
from tests.conftest import REDIS_URL
from tests.engine.conftest import _engine

RUNS = 500
FLOW = """
id: crash-transfer
name: Crash transfer
version: 1.0.0
category: inventory
owner: platform
summary: Validate a transfer, create the order, announce it.
connectors:
  erp: {system: erp, operations: [validate_transfer, create_transfer_order]}
triggers: [{kind: api}]
steps:
  - id: validate
    kind: call
    connector: erp
    operation: validate_transfer
    input: {sku: input.sku, quantity: "1", from_location: "'DC-SOUTH'", to_store: input.store}
    retry: {attempts: 10, initial: 1s, max: 2s}
    next: create
  - id: create
    kind: call
    connector: erp
    operation: create_transfer_order
    input: {sku: input.sku, quantity: "1", to_store: input.store, reference: run.id}
    retry: {attempts: 10, initial: 1s, max: 2s}
    next: done
  - id: done
    kind: emit
    event: transfer.created
    payload: {order_id: steps.create.output.order_id}
"""


class NoCalls:
    """The test process only starts runs; the worker process makes every call."""

    async def call(self, *args: object, **kwargs: object) -> dict[str, object]:
        raise AssertionError("the test process made a connector call")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def storeops(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "control_plane.cli", *args]
        if False
        else [str(Path(sys.executable).parent / "storeops"), *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


@pytest.fixture
def sandbox_url() -> Iterator[str]:
    port = free_port()
    proc = storeops("sandbox", "--port", str(port))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/_sandbox/stats", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the sandbox did not start")
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
async def pg(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async for db in _engine("postgresql", tmp_path):
        yield db


async def unfinished(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        count = await conn.scalar(
            select(func.count()).select_from(runs).where(runs.c.status == "running")
        )
    return int(count or 0)


async def test_sigkill_loses_nothing_and_applies_nothing_twice(
    pg: AsyncEngine, sandbox_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    template, problems = lint(FLOW, "crash-transfer/1.0.0.yaml")
    assert template is not None and not problems, problems
    env = {
        "STOREOPS_RUNTIME_TENANT_ID": str(uuid4()),
        "STOREOPS_RUNTIME_DATABASE_URL": pg.url.render_as_string(hide_password=False),
        "STOREOPS_RUNTIME_REDIS_URL": REDIS_URL,
        "STOREOPS_RUNTIME_LEASE_SECONDS": "3",
        "STOREOPS_RUNTIME_SWEEP_SECONDS": "0.5",
        "STOREOPS_RUNTIME_BINDINGS": json.dumps({"erp": {"base_url": f"{sandbox_url}/erp"}}),
    }
    starter = Engine(pg, NoCalls(), worker="api")
    for i in range(RUNS):
        await starter.start(
            template, {}, {"sku": f"SKU-10{i % 10:02d}", "store": f"S-1{i % 12 + 1:02d}"}
        )
    rng = random.Random(2026)
    kills = 0
    started = time.monotonic()
    worker = storeops("runtime", "worker", env=env)
    last_kill = started
    try:
        while await unfinished(pg) and time.monotonic() - started < 300:
            await asyncio.sleep(rng.uniform(0.3, 1.5))
            if kills < 25 and await unfinished(pg):
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
                kills += 1
                last_kill = time.monotonic()
                worker = storeops("runtime", "worker", env=env)
        finished_at = time.monotonic()
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(20)
    assert await unfinished(pg) == 0, "runs were lost"
    async with pg.connect() as conn:
        statuses = dict(
            (await conn.execute(select(runs.c.status, func.count()).group_by(runs.c.status))).all()
        )
    assert statuses == {"succeeded": RUNS}
    async with httpx.AsyncClient(timeout=5) as client:
        stats = (await client.get(f"{sandbox_url}/_sandbox/stats")).json()
    totals = stats["totals"]
    assert totals["duplicate_effects"] == 0
    assert totals["effects_applied"] == RUNS
    with capsys.disabled():
        print(
            f"\n[crash] {RUNS} runs, {kills} SIGKILLs, all succeeded in "
            f"{finished_at - started:.1f}s ({finished_at - last_kill:.1f}s after the last kill); "
            f"calls repeated: {totals['repeated_calls']}, replays: {totals['replays']}, "
            f"effects applied: {totals['effects_applied']}, applied twice: {totals['duplicate_effects']}"
        )
