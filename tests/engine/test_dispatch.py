"""Dramatiq on real Redis as the doorbell: runs finish through a worker, and still finish
after Redis is flushed mid-flight (the sweeper rings again)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest
import redis
from dramatiq import Worker
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tenant_runtime.db.schema import runs
from tenant_runtime.engine.dispatch import Dispatcher, tenant_broker
from tenant_runtime.engine.executor import Engine
from tests.conftest import REDIS_URL
from tests.engine.conftest import _engine
from tests.engine.test_executor import FakeErp, template


@pytest.fixture
async def pg(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async for db in _engine("postgresql", tmp_path):
        yield db


async def unfinished(db: AsyncEngine, run_ids: list[UUID]) -> int:
    async with db.connect() as conn:
        count = await conn.scalar(
            select(func.count())
            .select_from(runs)
            .where(runs.c.id.in_(run_ids), runs.c.status == "running")
        )
    return int(count or 0)


async def test_runs_finish_through_dramatiq_even_after_redis_is_flushed(pg: AsyncEngine) -> None:
    url = pg.url.render_as_string(hide_password=False)
    erp = FakeErp(fail_first={"get_stock": 3})
    broker = tenant_broker(REDIS_URL, uuid4())

    def worker_engine() -> Engine:
        return Engine(create_async_engine(url), erp, worker="dramatiq", ring=dispatcher.ring)

    dispatcher = Dispatcher(broker, worker_engine)
    worker = Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    main = Engine(pg, erp, worker="api", ring=dispatcher.ring)
    try:
        run_ids = [await main.start(template(), {}, {"sku": f"SKU-{i}"}) for i in range(20)]
        # Every queued doorbell is gone: only the database knows what is left to do.
        redis.Redis.from_url(REDIS_URL).flushdb()
        deadline = time.monotonic() + 60
        while await unfinished(pg, run_ids) and time.monotonic() < deadline:
            await main.sweep(ring_again_after=timedelta(seconds=1))
            await asyncio.sleep(0.3)
        assert await unfinished(pg, run_ids) == 0
        async with pg.connect() as conn:
            statuses = set((await conn.execute(select(runs.c.status))).scalars())
        assert statuses == {"succeeded"}
        # Each call took effect once, whatever the doorbells did.
        orders = {k for op, k in erp.calls if op == "order_stock"}
        assert len(erp.applied) == 2 * len(run_ids) and len(orders) == len(run_ids)
    finally:
        worker.stop()
        broker.close()
