"""Reads behind the API (SQLAlchemy Core on the runtime's database), scoped to the caller.

Writes go through the engine; this module only looks. Lists are cursor pages over the
time-ordered (UUIDv7) ids, newest first.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tenant_runtime.api import schemas
from tenant_runtime.api.problems import InvalidInput, NotFound
from tenant_runtime.api.scope import Scope
from tenant_runtime.db.schema import (
    dead_letters,
    notifications,
    runs,
    steps,
    tasks,
    template_specs,
    waits,
)

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
RUN_STATUSES = ("pending", "running", "succeeded", "failed", "cancelled")
TASK_STATUSES = ("open", "done", "expired", "cancelled", "any")
TASK_KINDS = ("approval", "checklist", "review")

_RUN_COLUMNS = [
    runs.c.id,
    runs.c.template_id,
    runs.c.template_version,
    runs.c.status,
    runs.c.store,
    runs.c.input,
    runs.c.error,
    runs.c.created_at,
    runs.c.updated_at,
    runs.c.finished_at,
]


def encode_cursor(last_id: UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> UUID:
    try:
        return UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise InvalidInput(f"cursor {cursor!r} is not one this API returned") from None


def check_choice(name: str, value: str | None, allowed: Sequence[str]) -> None:
    if value is not None and value not in allowed:
        raise InvalidInput(f"{name} {value!r} is not one of: {', '.join(allowed)}")


async def fetch_page(
    conn: AsyncConnection, stmt: Select[Any], id_column: Any, limit: int, cursor: str | None
) -> tuple[Sequence[Any], str | None]:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    if cursor:
        stmt = stmt.where(id_column < decode_cursor(cursor))
    rows = (await conn.execute(stmt.order_by(id_column.desc()).limit(limit + 1))).all()
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1].id)
    return rows, None


def utc(value: Any) -> Any:
    """Stored times are UTC; SQLite hands them back without their zone."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def convert(row: Any, schema: type[Any]) -> Any:
    return msgspec.convert({str(k): utc(v) for k, v in row._mapping.items()}, schema)


# --- runs --------------------------------------------------------------------------------


async def list_runs(
    db: AsyncEngine,
    scope: Scope,
    *,
    status: str | None,
    template_id: str | None,
    stores: Collection[str] | None,
    limit: int,
    cursor: str | None,
) -> schemas.Page[schemas.Run]:
    """Runs the caller may see; ``stores``: only those about a store by any of these names."""
    check_choice("status", status, RUN_STATUSES)
    stmt = select(*_RUN_COLUMNS).where(scope.runs())
    if status:
        stmt = stmt.where(runs.c.status == status)
    if template_id:
        stmt = stmt.where(runs.c.template_id == template_id)
    if stores is not None:
        stmt = stmt.where(runs.c.store.in_(stores))
    async with db.connect() as conn:
        rows, nxt = await fetch_page(conn, stmt, runs.c.id, limit, cursor)
    return schemas.Page(items=[convert(r, schemas.Run) for r in rows], next_cursor=nxt)


async def get_run(db: AsyncEngine, scope: Scope, run_id: UUID) -> schemas.Run:
    async with db.connect() as conn:
        row = (
            await conn.execute(select(*_RUN_COLUMNS).where(runs.c.id == run_id, scope.runs()))
        ).first()
    if row is None:
        raise NotFound(f"run {run_id} does not exist")
    result: schemas.Run = convert(row, schemas.Run)
    return result


async def run_by_key_prefix(db: AsyncEngine, prefix: str) -> tuple[UUID, str] | None:
    """The run started under an idempotency key beginning with ``prefix``, and its key."""
    async with db.connect() as conn:
        row = (
            await conn.execute(
                select(runs.c.id, runs.c.idempotency_key)
                .where(runs.c.idempotency_key.like(prefix + "%"))
                .limit(1)
            )
        ).first()
    return (row.id, row.idempotency_key) if row is not None else None


def _spec_steps(spec: Any) -> Iterator[dict[str, Any]]:
    """Every step of a stored template spec, parallel sub-flows included."""
    if not isinstance(spec, dict):
        return
    for step in spec.get("steps") or []:
        if isinstance(step, dict):
            yield step
            yield from _spec_steps(step)


async def run_detail(db: AsyncEngine, scope: Scope, run_id: UUID) -> schemas.RunDetail:
    """The run and its timeline: step visits, tasks, waits, notifications, dead letters."""
    async with db.connect() as conn:
        row = (
            await conn.execute(
                select(
                    *_RUN_COLUMNS,
                    runs.c.params,
                    runs.c.vars,
                    runs.c.spec,
                    template_specs.c.spec.label("stored_spec"),
                )
                .outerjoin(template_specs, template_specs.c.hash == runs.c.template_hash)
                .where(runs.c.id == run_id, scope.runs())
            )
        ).first()
        if row is None:
            raise NotFound(f"run {run_id} does not exist")
        step_rows = (
            await conn.execute(
                select(steps)
                .where(steps.c.run_id == run_id)
                .order_by(steps.c.created_at, steps.c.id)
            )
        ).all()
        task_rows = (
            await conn.execute(select(tasks).where(tasks.c.run_id == run_id).order_by(tasks.c.id))
        ).all()
        wait_rows = (
            await conn.execute(select(waits).where(waits.c.run_id == run_id).order_by(waits.c.id))
        ).all()
        notes = (
            await conn.execute(
                select(notifications)
                .where(notifications.c.run_id == run_id)
                .order_by(notifications.c.created_at, notifications.c.id)
            )
        ).all()
        dead = (await conn.execute(_dead_letters().where(dead_letters.c.run_id == run_id))).all()
    described = {s.get("id"): s for s in _spec_steps(row.stored_spec or row.spec)}
    timeline = [
        schemas.Step(
            id=s.id,
            step_id=s.step_id,
            name=described.get(s.step_id, {}).get("name"),
            kind=described.get(s.step_id, {}).get("kind"),
            branch=s.branch or "",
            visit=s.visit,
            status=s.status,
            attempt=s.attempt,
            created_at=utc(s.created_at),
            due_at=utc(s.due_at),
            finished_at=utc(s.finished_at),
            error=s.error,
            output=s.output,
        )
        for s in step_rows
    ]
    base = convert(row, schemas.Run)
    return schemas.RunDetail(
        **{f: getattr(base, f) for f in schemas.Run.__struct_fields__},
        params=row.params or {},
        vars=row.vars or {},
        steps=timeline,
        tasks=[convert(t, schemas.Task) for t in task_rows],
        waits=[convert(w, schemas.Wait) for w in wait_rows],
        notifications=[convert(n, schemas.Notification) for n in notes],
        dead_letters=[convert(d, schemas.DeadLetter) for d in dead],
    )


# --- tasks -------------------------------------------------------------------------------


async def list_tasks(
    db: AsyncEngine,
    scope: Scope,
    *,
    status: str,
    kind: str | None,
    limit: int,
    cursor: str | None,
) -> schemas.Page[schemas.Task]:
    check_choice("status", status, TASK_STATUSES)
    check_choice("kind", kind, TASK_KINDS)
    stmt = select(tasks).where(scope.tasks())
    if status != "any":
        stmt = stmt.where(tasks.c.status == status)
    if kind:
        stmt = stmt.where(tasks.c.kind == kind)
    async with db.connect() as conn:
        rows, nxt = await fetch_page(conn, stmt, tasks.c.id, limit, cursor)
    return schemas.Page(items=[convert(r, schemas.Task) for r in rows], next_cursor=nxt)


async def get_task(db: AsyncEngine, scope: Scope, task_id: UUID) -> schemas.Task:
    """A task the caller may see; any other is a 404, so its existence does not leak."""
    async with db.connect() as conn:
        row = (
            await conn.execute(select(tasks).where(tasks.c.id == task_id, scope.tasks()))
        ).first()
    if row is None:
        raise NotFound(f"task {task_id} does not exist")
    result: schemas.Task = convert(row, schemas.Task)
    return result


# --- dead letters ------------------------------------------------------------------------


def _dead_letters() -> Select[Any]:
    return (
        select(
            dead_letters.c.id,
            dead_letters.c.run_id,
            dead_letters.c.step_row_id,
            steps.c.step_id,
            runs.c.template_id,
            dead_letters.c.reason,
            dead_letters.c.created_at,
            dead_letters.c.replayed_at,
        )
        .join(steps, steps.c.id == dead_letters.c.step_row_id)
        .join(runs, runs.c.id == dead_letters.c.run_id)
    )


async def list_dead_letters(
    db: AsyncEngine, *, replayed: bool | None, limit: int, cursor: str | None
) -> schemas.Page[schemas.DeadLetter]:
    stmt = _dead_letters()
    if replayed is not None:
        condition: ColumnElement[bool] = (
            dead_letters.c.replayed_at.is_not(None)
            if replayed
            else dead_letters.c.replayed_at.is_(None)
        )
        stmt = stmt.where(condition)
    async with db.connect() as conn:
        rows, nxt = await fetch_page(conn, stmt, dead_letters.c.id, limit, cursor)
    return schemas.Page(items=[convert(r, schemas.DeadLetter) for r in rows], next_cursor=nxt)


async def get_dead_letter(db: AsyncEngine, dead_letter_id: UUID) -> schemas.DeadLetter:
    async with db.connect() as conn:
        row = (
            await conn.execute(_dead_letters().where(dead_letters.c.id == dead_letter_id))
        ).first()
    if row is None:
        raise NotFound(f"dead letter {dead_letter_id} does not exist")
    result: schemas.DeadLetter = convert(row, schemas.DeadLetter)
    return result
