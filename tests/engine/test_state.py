"""Run and step state on PostgreSQL (and the embedded SQLite): leases, fencing, retries,
dead letters and the sweeper."""

from __future__ import annotations

import asyncio
import random
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.contracts.dsl import Retry
from tenant_runtime.db.schema import dead_letters, runs, steps
from tenant_runtime.engine import state

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


async def _start(eng: AsyncEngine, now: datetime = T0) -> tuple[object, object]:
    async with eng.begin() as conn:
        run_id, step_row = await state.start_run(
            conn,
            template_id="noop",
            template_version="1.0.0",
            template_hash="0" * 64,
            first_step="a",
            params={},
            payload={"x": 1},
            now=now,
        )
    return run_id, step_row


async def test_a_run_starts_with_its_first_step_marked_rung(engine: AsyncEngine) -> None:
    run_id, step_row = await _start(engine)
    async with engine.connect() as conn:
        row = (await conn.execute(select(steps).where(steps.c.run_id == run_id))).one()
    assert row.id == step_row and row.status == "ready" and row.attempt == 0
    # Rung when written: the sweeper leaves it alone until the ring-again window passes.
    assert row.dispatched_at == row.due_at


async def test_leases_and_fencing(engine: AsyncEngine) -> None:
    _, step_row = await _start(engine)
    async with engine.begin() as conn:
        first = await state.claim(conn, step_row, worker="w1", lease=LEASE, now=T0)
        assert first is not None and first.attempt == 1
        # A duplicate doorbell while w1 holds a live lease: nothing to do.
        assert await state.claim(conn, step_row, worker="w2", lease=LEASE, now=T0) is None
    later = T0 + LEASE + timedelta(seconds=1)
    async with engine.begin() as conn:
        # w1 looks dead: its lease ran out, so w2 takes over with a newer attempt.
        second = await state.claim(conn, step_row, worker="w2", lease=LEASE, now=later)
        assert second is not None and second.attempt == 2
        # The zombie w1 cannot complete what attempt 2 now owns.
        assert not await state.complete(conn, first, output={"by": "w1"}, now=later)
        assert await state.complete(conn, second, output={"by": "w2"}, now=later)
        # Redelivery of a finished step is a no-op.
        assert await state.claim(conn, step_row, worker="w3", lease=LEASE, now=later) is None
        output = await conn.scalar(select(steps.c.output).where(steps.c.id == step_row))
    assert output == {"by": "w2"}


async def test_concurrent_claims_have_one_winner(engine: AsyncEngine) -> None:
    async def take(step_row: object, worker: str) -> object:
        async with engine.begin() as conn:
            return await state.claim(conn, step_row, worker=worker, lease=LEASE, now=T0)  # type: ignore[arg-type]

    for _ in range(10):
        _, step_row = await _start(engine)
        got = await asyncio.gather(*(take(step_row, f"w{i}") for i in range(4)))
        assert sum(c is not None for c in got) == 1


async def test_retry_waits_for_its_backoff(engine: AsyncEngine) -> None:
    _, step_row = await _start(engine)
    async with engine.begin() as conn:
        c = await state.claim(conn, step_row, worker="w", lease=LEASE, now=T0)
        assert c is not None
        assert await state.retry_later(conn, c, error="503 from ERP", delay=10, now=T0)
        assert (
            await state.claim(
                conn, step_row, worker="w", lease=LEASE, now=T0 + timedelta(seconds=5)
            )
            is None
        )
        again = await state.claim(
            conn, step_row, worker="w", lease=LEASE, now=T0 + timedelta(seconds=10)
        )
        assert again is not None and again.attempt == 2


def test_backoff_schedule() -> None:
    policy = Retry(attempts=6, backoff="exponential", initial="2s", max="20s")
    rng = random.Random(7)
    for attempt, full in ((1, 2), (2, 4), (3, 8), (4, 16), (5, 20), (6, 20)):
        delays = [state.backoff(policy, attempt, rng) for _ in range(200)]
        assert min(delays) >= full / 2 and max(delays) <= full
        assert max(delays) - min(delays) > full / 10  # jittered, not constant
    fixed = Retry(backoff="fixed", initial="5s", max="1m")
    assert all(2.5 <= state.backoff(fixed, n) <= 5 for n in range(1, 6))


async def test_dead_letters_and_replay(engine: AsyncEngine) -> None:
    run_id, step_row = await _start(engine)
    async with engine.begin() as conn:
        c = await state.claim(conn, step_row, worker="w", lease=LEASE, now=T0)
        assert c is not None
        assert await state.bury(conn, c, reason="attempts exhausted: 500 from POS", now=T0)
        await state.finish_run(conn, run_id, status="failed", now=T0, error="dead")
        status = await conn.scalar(select(runs.c.status).where(runs.c.id == run_id))
        letter = await conn.scalar(select(dead_letters.c.id).where(dead_letters.c.run_id == run_id))
        step_status = await conn.scalar(select(steps.c.status).where(steps.c.id == step_row))
    assert status == "failed" and letter is not None and step_status == "dead"
    async with engine.begin() as conn:
        again = await state.replay(conn, letter, now=T0)
        # The same step row and visit: its calls keep their idempotency keys.
        assert again == step_row
        assert await state.replay(conn, letter, now=T0) is None  # a dead letter replays once
        c = await state.claim(conn, step_row, worker="w", lease=LEASE, now=T0)
        status = await conn.scalar(select(runs.c.status).where(runs.c.id == run_id))
    assert c is not None and c.visit == 1 and c.attempt == 2 and status == "running"


async def test_the_sweeper_rings_again_for_lost_doorbells_and_dead_workers(
    engine: AsyncEngine,
) -> None:
    _, lost = await _start(engine)
    _, abandoned = await _start(engine)
    async with engine.begin() as conn:
        assert await state.claim(conn, abandoned, worker="w", lease=LEASE, now=T0) is not None
        # Nothing is overdue yet: the doorbell was just rung and the lease is live.
        early = await state.overdue(
            conn, now=T0 + timedelta(seconds=1), ring_again_after=timedelta(seconds=5)
        )
        assert lost not in {s for s, _ in early} and abandoned not in {s for s, _ in early}
    later = T0 + timedelta(seconds=31)
    async with engine.begin() as conn:
        found = {
            s
            for s, _ in await state.overdue(conn, now=later, ring_again_after=timedelta(seconds=5))
        }
        assert {lost, abandoned} <= found
        # Rung just now: not again until the window passes.
        again = {
            s
            for s, _ in await state.overdue(conn, now=later, ring_again_after=timedelta(seconds=5))
        }
        assert lost not in again


async def test_run_ids_by_idempotency_key(engine: AsyncEngine) -> None:
    key = secrets.token_hex(8)
    async with engine.begin() as conn:
        run_id, _ = await state.start_run(
            conn,
            template_id="noop",
            template_version="1.0.0",
            template_hash="0" * 64,
            first_step="a",
            params={},
            payload={},
            now=T0,
            idempotency_key=key,
        )
        assert await state.run_by_key(conn, key) == run_id
        assert await state.run_by_key(conn, "other") is None
        count = await conn.scalar(
            select(func.count()).select_from(runs).where(runs.c.idempotency_key == key)
        )
    assert count == 1
