"""Schedules fire exactly once per tick, also when several workers race for the tick."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.contracts.validate import lint
from tenant_runtime.config import RuntimeSettings
from tenant_runtime.db.schema import runs
from tenant_runtime.engine.directory import Deployment, Directory
from tenant_runtime.runtime import Runtime
from tests.engine.conftest import _engine

NIGHTLY = """
id: nightly-count
name: Nightly count
version: 1.0.0
category: inventory
owner: platform
summary: Counts something every quarter of an hour during the night.
triggers: [{kind: schedule, cron: "*/15 * * * *", timezone: Europe/Paris}]
steps:
  - id: count
    kind: set
    values: {counted: "true"}
"""


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["postgresql", "sqlite"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async for eng in _engine(request.param, tmp_path):
        yield eng


def _runtime(db: AsyncEngine, clock: Clock) -> Runtime:
    template, problems = lint(NIGHTLY, "nightly-count/1.0.0.yaml")
    assert template is not None and not problems, problems
    settings = RuntimeSettings(
        tenant_id=uuid4(), database_url=db.url.render_as_string(hide_password=False)
    )
    directory = Directory(deployments={template.id: Deployment(template)})
    return Runtime(settings, directory=directory, connectors=None, clock=clock)


async def _scheduled(db: AsyncEngine) -> list[str]:
    async with db.connect() as conn:
        rows = await conn.execute(select(runs.c.input).order_by(runs.c.created_at))
        return [r.input["scheduled_for"] for r in rows]


async def test_each_tick_fires_once_across_racing_workers(db: AsyncEngine) -> None:
    clock = Clock(datetime(2026, 11, 28, 23, 16, tzinfo=UTC))
    workers = [_runtime(db, clock) for _ in range(3)]
    try:
        for _ in range(3):  # every worker tries the same tick, several times, at once
            fired = await asyncio.gather(*(w.fire_schedules() for w in workers))
            assert sum(fired) <= 1
        assert await _scheduled(db) == ["2026-11-28T23:15:00+00:00"]
        clock.now += timedelta(minutes=15)
        await asyncio.gather(*(w.fire_schedules() for w in workers))
        assert await _scheduled(db) == ["2026-11-28T23:15:00+00:00", "2026-11-28T23:30:00+00:00"]
        # A worker that was down for hours does not fire a backlog of stale ticks: only
        # the latest, and only when it is recent.
        clock.now += timedelta(hours=5, minutes=11)
        assert sum(await asyncio.gather(*(w.fire_schedules() for w in workers))) == 0
        clock.now += timedelta(minutes=4)
        assert sum(await asyncio.gather(*(w.fire_schedules() for w in workers))) == 1
        assert (await _scheduled(db))[-1] == "2026-11-29T04:45:00+00:00"
        for w in workers:
            await w.engine.pump()
        async with db.connect() as conn:
            statuses = set((await conn.execute(select(runs.c.status))).scalars())
        assert statuses == {"succeeded"}
    finally:
        for w in workers:
            await w.close()
