"""Durable run and step state: the database is the truth, the queue is a doorbell.

Every function takes an open ``AsyncConnection`` inside the caller's transaction. A new
step row is marked rung (``dispatched_at``) when it is written, and the caller rings for it
after commit; if the ring is lost (crash between commit and send, Redis flushed), the
sweeper (:func:`overdue`) rings again. A worker takes a step with :func:`claim` (attempt + 1,
lease: the attempt is the fencing token) and finishes it with :func:`complete`,
:func:`retry_later`, :func:`park` or :func:`bury` only while that attempt is still current.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from control_plane.contracts import uuid7
from control_plane.contracts.dsl import Retry
from control_plane.contracts.validate import seconds
from tenant_runtime.db.schema import dead_letters, outbox, runs, steps


@dataclass(frozen=True)
class Claim:
    step_row_id: UUID
    run_id: UUID
    step_id: str
    visit: int
    #: The fencing token: completing needs it to still be the step's current attempt.
    attempt: int
    #: '' in the main flow; the branch id inside a parallel step's sub-flow.
    branch: str = ""
    #: False for a planned visit not in the database yet (see :func:`planned`).
    written: bool = True


# The hot path's statements, built once: SQLAlchemy then reuses their cache keys and
# compiled forms instead of rebuilding them on every step.
_P = bindparam
_INSERT_RUN = insert(runs)
_INSERT_STEP = insert(steps)
_INSERT_OUTBOX = insert(outbox)
_CLAIM = (
    update(steps)
    .where(
        steps.c.id == _P("step_row_id"),
        or_(
            and_(steps.c.status == "ready", steps.c.due_at <= _P("now")),
            and_(steps.c.status == "running", steps.c.lease_expires_at < _P("now")),
        ),
    )
    .values(
        status="running",
        attempt=steps.c.attempt + 1,
        lease_owner=_P("holder"),
        lease_expires_at=_P("until"),
    )
    .returning(steps.c.run_id, steps.c.step_id, steps.c.visit, steps.c.attempt, steps.c.branch)
)
#: What a worker needs of the run whose step it claimed.
_RUN_COLUMNS = (
    runs.c.template_hash,
    runs.c.params,
    runs.c.input,
    runs.c.vars,
    runs.c.status,
    runs.c.store,
    runs.c.last_event,
)
RUN_ROW = select(*_RUN_COLUMNS).where(runs.c.id == _P("run_id"))
# On PostgreSQL the claim and the run's row come back in one round trip.
_CLAIMED = _CLAIM.cte("claimed")
_CLAIM_WITH_RUN = select(
    _CLAIMED.c.run_id,
    _CLAIMED.c.step_id,
    _CLAIMED.c.visit,
    _CLAIMED.c.attempt,
    _CLAIMED.c.branch,
    *_RUN_COLUMNS,
).join(runs, runs.c.id == _CLAIMED.c.run_id)
_COMPLETE = (
    update(steps)
    .where(
        steps.c.id == _P("step_row_id"),
        steps.c.attempt == _P("fence"),
        steps.c.status == "running",
    )
    .values(
        status=_P("to_status"),
        output=_P("result", type_=steps.c.output.type),
        finished_at=_P("now"),
        lease_expires_at=None,
    )
)
_FINISH_RUN = (
    update(runs)
    .where(runs.c.id == _P("run_id"), runs.c.status == "running")
    .values(status=_P("to_status"), error=_P("reason"), finished_at=_P("now"), updated_at=_P("now"))
    .returning(runs.c.template_id, runs.c.template_version, runs.c.store, runs.c.created_at)
)


def locked(conn: AsyncConnection, stmt: Any, *, skip: bool = False, of: Any = None) -> Any:
    """``FOR UPDATE`` (``SKIP LOCKED`` with ``skip``) on PostgreSQL; SQLite serialises
    writers anyway."""
    if conn.dialect.name == "postgresql":
        return stmt.with_for_update(skip_locked=skip, of=of)
    return stmt


def _step_row(
    run_id: UUID, step_id: str, branch: str, visit: int, now: datetime, **extra: Any
) -> dict[str, Any]:
    row = {
        "id": uuid7(),
        "run_id": run_id,
        "step_id": step_id,
        "branch": branch,
        "visit": visit,
        "status": "ready",
        "attempt": 0,
        "lease_owner": None,
        "lease_expires_at": None,
        "due_at": now,
        "dispatched_at": now,
        "created_at": now,
        "output": None,
        "finished_at": None,
    }
    row.update(extra)
    return row


# On PostgreSQL a run starts in one statement: the run, its first step and its telemetry.
_NEW_RUN = (
    insert(runs)
    .values(
        id=_P("r_id"),
        template_id=_P("r_template_id"),
        template_version=_P("r_template_version"),
        template_hash=_P("r_template_hash"),
        params=_P("r_params", type_=runs.c.params.type),
        input=_P("r_input", type_=runs.c.input.type),
        vars=_P("r_vars", type_=runs.c.vars.type),
        status="running",
        store=_P("r_store", type_=runs.c.store.type),
        idempotency_key=_P("r_key", type_=runs.c.idempotency_key.type),
        created_at=_P("r_now", type_=runs.c.created_at.type),
        updated_at=_P("r_now", type_=runs.c.created_at.type),
    )
    .cte("new_run")
)
_FIRST_STEP = (
    insert(steps)
    .values(
        id=_P("s_id"),
        run_id=_P("r_id"),
        step_id=_P("s_step_id"),
        branch="",
        visit=1,
        status="ready",
        attempt=0,
        due_at=_P("r_now", type_=runs.c.created_at.type),
        dispatched_at=_P("r_now", type_=runs.c.created_at.type),
        created_at=_P("r_now", type_=runs.c.created_at.type),
    )
    .cte("first_step")
)
_START = (
    insert(outbox)
    .values(
        topic="telemetry",
        payload=_P("o_events", type_=outbox.c.payload.type),
        created_at=_P("r_now", type_=runs.c.created_at.type),
    )
    .add_cte(_NEW_RUN)
    .add_cte(_FIRST_STEP)
)


async def start_run(
    conn: AsyncConnection,
    *,
    template_id: str,
    template_version: str,
    template_hash: str,
    first_step: str,
    params: dict[str, Any],
    payload: dict[str, Any],
    now: datetime,
    idempotency_key: str | None = None,
    store: str | None = None,
    run_id: UUID | None = None,
    events: list[dict[str, Any]] | None = None,
) -> tuple[UUID, UUID]:
    """The run and its first step, in the caller's transaction, with telemetry ``events``
    about it in the outbox: (run id, step row id). The caller rings for the step after
    commit (the sweeper rings if it never does)."""
    run_id = run_id or uuid7()
    if events and conn.dialect.name == "postgresql":
        step_row_id = uuid7()
        await conn.execute(
            _START,
            {
                "r_id": run_id,
                "r_template_id": template_id,
                "r_template_version": template_version,
                "r_template_hash": template_hash,
                "r_params": params,
                "r_input": payload,
                "r_vars": {},
                "r_store": store,
                "r_key": idempotency_key,
                "r_now": now,
                "s_id": step_row_id,
                "s_step_id": first_step,
                "o_events": events,
            },
        )
        return run_id, step_row_id
    await conn.execute(
        _INSERT_RUN,
        {
            "id": run_id,
            "template_id": template_id,
            "template_version": template_version,
            "template_hash": template_hash,
            "params": params,
            "input": payload,
            "vars": {},
            "status": "running",
            "store": store,
            "idempotency_key": idempotency_key,
            "created_at": now,
            "updated_at": now,
        },
    )
    row = _step_row(run_id, first_step, "", 1, now)
    await conn.execute(_INSERT_STEP, row)
    if events:
        await conn.execute(
            _INSERT_OUTBOX, {"topic": "telemetry", "payload": events, "created_at": now}
        )
    first: UUID = row["id"]
    return run_id, first


async def run_by_key(conn: AsyncConnection, key: str) -> UUID | None:
    found = await conn.scalar(select(runs.c.id).where(runs.c.idempotency_key == key))
    return found if isinstance(found, UUID) else None


async def enqueue(
    conn: AsyncConnection,
    run_id: UUID,
    step_id: str,
    *,
    now: datetime,
    branch: str = "",
) -> UUID:
    """A new visit of ``step_id`` in ``run_id`` (in ``branch``), ready now, marked rung:
    the caller rings after commit."""
    visit = await conn.scalar(
        select(func.coalesce(func.max(steps.c.visit), 0) + 1).where(
            steps.c.run_id == run_id, steps.c.branch == branch, steps.c.step_id == step_id
        )
    )
    row = _step_row(run_id, step_id, branch, int(visit or 1), now)
    await conn.execute(_INSERT_STEP, row)
    step_row_id: UUID = row["id"]
    return step_row_id


def planned(run_id: UUID, step_id: str, *, visit: int, branch: str) -> Claim:
    """The next visit of a step that a worker going on in a straight line will take
    itself: not written yet (it is written held, done or waiting, whichever comes)."""
    return Claim(uuid7(), run_id, step_id, visit, 1, branch, written=False)


async def hold(
    conn: AsyncConnection, c: Claim, *, worker: str, lease: timedelta, now: datetime
) -> Claim:
    """Write a planned visit already claimed by ``worker`` (attempt 1, leased): no doorbell
    in between. If the worker dies, the lease runs out and the sweeper rings for it."""
    row = _step_row(
        c.run_id,
        c.step_id,
        c.branch,
        c.visit,
        now,
        id=c.step_row_id,
        status="running",
        attempt=1,
        lease_owner=worker,
        lease_expires_at=now + lease,
    )
    await conn.execute(_INSERT_STEP, row)
    return replace(c, written=True)


def done_row(c: Claim, *, output: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    """The row of a planned visit that ran inside the caller's transaction (a database-only
    step), written already succeeded: the caller inserts such rows together
    (:func:`insert_steps`) before its transaction commits."""
    return _step_row(
        c.run_id,
        c.step_id,
        c.branch,
        c.visit,
        now,
        id=c.step_row_id,
        status="succeeded",
        attempt=1,
        output=output,
        finished_at=now,
    )


async def insert_steps(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    await conn.execute(_INSERT_STEP, rows)


async def claim(
    conn: AsyncConnection, step_row_id: UUID, *, worker: str, lease: timedelta, now: datetime
) -> Claim | None:
    """Take a step that is due, or whose previous holder's lease ran out; None otherwise
    (already done, taken by a live worker, not yet due: a duplicate doorbell is harmless)."""
    params = {"step_row_id": step_row_id, "now": now, "holder": worker, "until": now + lease}
    row = (await conn.execute(_CLAIM, params)).first()
    if row is None:
        return None
    return Claim(step_row_id, row.run_id, row.step_id, row.visit, row.attempt, row.branch)


async def claim_with_run(
    conn: AsyncConnection, step_row_id: UUID, *, worker: str, lease: timedelta, now: datetime
) -> tuple[Claim, Any] | None:
    """:func:`claim`, and the run's row (``RUN_ROW``'s columns) with it."""
    if conn.dialect.name != "postgresql":
        found = await claim(conn, step_row_id, worker=worker, lease=lease, now=now)
        if found is None:
            return None
        return found, (await conn.execute(RUN_ROW, {"run_id": found.run_id})).one()
    params = {"step_row_id": step_row_id, "now": now, "holder": worker, "until": now + lease}
    row = (await conn.execute(_CLAIM_WITH_RUN, params)).first()
    if row is None:
        return None
    return Claim(step_row_id, row.run_id, row.step_id, row.visit, row.attempt, row.branch), row


def _current(c: Claim) -> Any:
    return and_(
        steps.c.id == c.step_row_id, steps.c.attempt == c.attempt, steps.c.status == "running"
    )


async def complete(
    conn: AsyncConnection,
    c: Claim,
    *,
    output: dict[str, Any] | None,
    now: datetime,
    status: str = "succeeded",
) -> bool:
    """Finish the step if ``c`` still holds it; False when a newer attempt took over."""
    params = {
        "step_row_id": c.step_row_id,
        "fence": c.attempt,
        "to_status": status,
        "result": output,
        "now": now,
    }
    done = await conn.execute(_COMPLETE, params)
    return done.rowcount == 1


async def park(conn: AsyncConnection, c: Claim) -> bool:
    """The step waits for a person, an event or its branches; no lease runs out on it."""
    done = await conn.execute(
        update(steps).where(_current(c)).values(status="waiting", lease_expires_at=None)
    )
    return done.rowcount == 1


async def resume(
    conn: AsyncConnection,
    step_row_id: UUID,
    *,
    output: dict[str, Any] | None,
    now: datetime,
    status: str = "succeeded",
) -> bool:
    """Finish a waiting step (decided, fired, timed out, joined); False if it no longer waits."""
    done = await conn.execute(
        update(steps)
        .where(steps.c.id == step_row_id, steps.c.status == "waiting")
        .values(status=status, output=output, finished_at=now)
    )
    return done.rowcount == 1


def backoff(policy: Retry, attempt: int, rng: random.Random | None = None) -> float:
    """Seconds before retry number ``attempt`` (1-based): exponential or fixed, capped at
    ``max``, with jitter over the upper half so retries of many runs spread out."""
    initial, cap = seconds(policy.initial), seconds(policy.max)
    delay = float(initial if policy.backoff == "fixed" else initial * 2 ** (attempt - 1))
    delay = min(delay, float(cap))
    return delay / 2 + (rng or random).uniform(0, delay / 2)


async def retry_later(
    conn: AsyncConnection, c: Claim, *, error: str, delay: float, now: datetime
) -> bool:
    """Put the step back, due after ``delay`` seconds; False when fenced out."""
    done = await conn.execute(
        update(steps)
        .where(_current(c))
        .values(
            status="ready",
            error=error,
            due_at=now + timedelta(seconds=delay),
            lease_owner=None,
            lease_expires_at=None,
        )
    )
    return done.rowcount == 1


async def bury(conn: AsyncConnection, c: Claim, *, reason: str, now: datetime) -> bool:
    """Out of attempts: the step is dead and a dead letter records it (the caller fails
    the run or the branch). False when fenced out."""
    done = await conn.execute(
        update(steps)
        .where(_current(c))
        .values(status="dead", error=reason, finished_at=now, lease_expires_at=None)
    )
    if done.rowcount != 1:
        return False
    await conn.execute(
        insert(dead_letters).values(
            id=uuid7(), run_id=c.run_id, step_row_id=c.step_row_id, reason=reason, created_at=now
        )
    )
    return True


async def replay(conn: AsyncConnection, dead_letter_id: UUID, *, now: datetime) -> UUID | None:
    """Put a dead step back in line and reopen its run; the dead letter is marked.

    The step keeps its row and visit, so its calls keep their idempotency keys: a replay
    of a call that took effect before dying replays at the system of record, not twice.
    """
    row = (
        await conn.execute(
            select(dead_letters.c.run_id, dead_letters.c.step_row_id).where(
                dead_letters.c.id == dead_letter_id, dead_letters.c.replayed_at.is_(None)
            )
        )
    ).first()
    if row is None:
        return None
    await conn.execute(
        update(dead_letters).where(dead_letters.c.id == dead_letter_id).values(replayed_at=now)
    )
    await conn.execute(
        update(runs)
        .where(runs.c.id == row.run_id)
        .values(status="running", error=None, finished_at=None, updated_at=now)
    )
    await conn.execute(
        update(steps)
        .where(steps.c.id == row.step_row_id)
        .values(status="ready", due_at=now, dispatched_at=now, finished_at=None)
    )
    step_row_id: UUID = row.step_row_id
    return step_row_id


async def finish_run(
    conn: AsyncConnection, run_id: UUID, *, status: str, now: datetime, error: str | None = None
) -> Any:
    """End a running run; the run's (template_id, template_version, store, created_at), or
    None when it was not running."""
    params = {"run_id": run_id, "to_status": status, "reason": error, "now": now}
    return (await conn.execute(_FINISH_RUN, params)).first()


async def overdue(
    conn: AsyncConnection, *, now: datetime, ring_again_after: timedelta, limit: int = 500
) -> list[tuple[UUID, UUID]]:
    """Steps that should be running but nothing says they are: due with no recent doorbell,
    or held by a worker whose lease ran out. Marks them rung; returns (step, run) ids."""
    stmt = (
        select(steps.c.id, steps.c.run_id)
        .where(
            or_(
                and_(
                    steps.c.status == "ready",
                    steps.c.due_at <= now,
                    or_(
                        steps.c.dispatched_at.is_(None),
                        steps.c.dispatched_at < now - ring_again_after,
                    ),
                ),
                and_(steps.c.status == "running", steps.c.lease_expires_at < now),
            )
        )
        .order_by(steps.c.due_at)
        .limit(limit)
    )
    found = [(r.id, r.run_id) for r in (await conn.execute(locked(conn, stmt, skip=True))).all()]
    if found:
        await conn.execute(
            update(steps).where(steps.c.id.in_([s for s, _ in found])).values(dispatched_at=now)
        )
    return found
