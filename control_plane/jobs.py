"""The control plane's periodic jobs: alert evaluation, notification delivery, rollouts.

Each job is ``async def job(ctx, now, settings) -> int`` (the work it did) and runs in its
own transaction as a system principal, with the settings of the database it runs on. On PostgreSQL a transaction-scoped advisory lock per
job makes one process run it at a time, however many workers run the loop; SQLite is
one process. ``storeops worker`` runs the loop; in embedded mode the API process runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text

from control_plane.config import Settings
from control_plane.context import Ctx
from control_plane.db import Database
from control_plane.identity.principal import Principal

log = logging.getLogger(__name__)

JobFn = Callable[[Ctx, datetime, Settings], Awaitable[int]]


@dataclass(frozen=True)
class Job:
    name: str
    every_seconds: float
    fn: JobFn


_JOBS: dict[str, Job] = {}


def job(name: str, every_seconds: float) -> Callable[[JobFn], JobFn]:
    """Register ``fn`` to run every ``every_seconds``."""

    def register(fn: JobFn) -> JobFn:
        _JOBS[name] = Job(name, every_seconds, fn)
        return fn

    return register


def registered() -> dict[str, Job]:
    import control_plane.jobs_registry  # noqa: F401  (registers every feature's jobs)

    return dict(_JOBS)


async def run_job(db: Database, j: Job, now: datetime | None = None) -> int:
    """Run one job once, unless another process holds its lock (then 0)."""
    principal = Principal.system(f"job:{j.name}")
    async with db.transaction(principal.scope()) as session:
        if db.engine.dialect.name == "postgresql":
            key = zlib.crc32(f"storeops-job:{j.name}".encode())
            got = await session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key})
            if not got:
                return 0
        ctx = Ctx(principal, session=session)
        return await j.fn(ctx, now or datetime.now(UTC), db.settings)


async def loop(db: Database, stop: asyncio.Event, *, tick_seconds: float = 1.0) -> None:
    """Run every registered job on its interval until ``stop`` is set; a failing job is
    logged and tried again at its next interval."""
    jobs = registered()
    due = dict.fromkeys(jobs, 0.0)
    clock = asyncio.get_running_loop().time
    while not stop.is_set():
        for name, j in jobs.items():
            if clock() < due[name]:
                continue
            due[name] = clock() + j.every_seconds
            try:
                await run_job(db, j)
            except Exception:
                log.exception("job %s failed", name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), tick_seconds)
