"""Executing steps: claim (committed before any side effect), act, then complete under the
fence, enqueueing what comes next in the same transaction.

This slice runs the automatic step kinds (call, set, decide, emit); human tasks, waits,
parallel fan-out and compensation arrive with the task inbox and the event bus.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import jsonschema
import msgspec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.contracts import dsl, expressions
from tenant_runtime.db.schema import outbox, runs, steps
from tenant_runtime.engine import state


class CallFailed(Exception):
    """A connector call failed; ``kind`` is what a step's ``retry_on`` matches:
    timeout, connection, 5xx, 429, 409 or 4xx."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Connectors(Protocol):
    async def call(
        self, connector: str, operation: str, payload: dict[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]: ...


class InvalidStart(ValueError):
    """The parameters or the template cannot start a run."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Outcome:
    output: dict[str, Any] | None
    next: str | None
    vars: dict[str, Any] | None = None
    event: dict[str, Any] | None = None


class Engine:
    def __init__(
        self,
        db: AsyncEngine,
        connectors: Connectors,
        *,
        worker: str = "worker-1",
        lease: timedelta = timedelta(seconds=60),
        clock: Callable[[], datetime] = _utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.connectors = connectors
        self.worker = worker
        self.lease = lease
        self.clock = clock
        self.rng = rng or random.Random()

    async def start(
        self,
        template: dsl.Template,
        params: dict[str, Any],
        payload: dict[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> UUID:
        """Start a run (or return the one this key already started)."""
        merged = _with_defaults(template.parameters, params)
        try:
            jsonschema.validate(merged, template.parameters)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "parameters"
            raise InvalidStart(f"{where}: {exc.message}") from None
        async with self.db.begin() as conn:
            if idempotency_key and (found := await state.run_by_key(conn, idempotency_key)):
                return found
            return await state.start_run(
                conn,
                template_id=template.id,
                template_version=template.version,
                spec=msgspec.to_builtins(template),
                first_step=template.start or template.steps[0].id,
                params=merged,
                payload=payload,
                now=self.clock(),
                idempotency_key=idempotency_key,
            )

    async def execute(self, step_row_id: UUID) -> bool:
        """Run one step if it is ours to run; True when it did something."""
        async with self.db.begin() as conn:
            claim = await state.claim(
                conn, step_row_id, worker=self.worker, lease=self.lease, now=self.clock()
            )
            if claim is None:
                return False
            run = (await conn.execute(select(runs).where(runs.c.id == claim.run_id))).one()
            outputs = await _outputs(conn, claim.run_id)
        template = msgspec.convert(run.spec, dsl.Template)
        step = next(s for s in template.steps if s.id == claim.step_id)
        data = {
            "input": run.input,
            "params": run.params,
            "vars": run.vars,
            "steps": outputs,
            "event": {},
            "run": {"id": str(run.id), "store": str(run.store_id or "")},
            "now": self.clock(),
        }
        try:
            outcome = await self._act(step, data, claim)
        except CallFailed as failure:
            await self._failed(step, claim, failure)
            return True
        async with self.db.begin() as conn:
            now = self.clock()
            if not await state.complete(conn, claim, output=outcome.output, now=now):
                return False  # a newer attempt owns the step now
            if outcome.vars:
                await conn.execute(
                    update(runs)
                    .where(runs.c.id == claim.run_id)
                    .values(vars={**run.vars, **outcome.vars}, updated_at=now)
                )
            if outcome.event:
                await conn.execute(
                    outbox.insert().values(topic="event", payload=outcome.event, created_at=now)
                )
            await self._follow(conn, claim.run_id, outcome.next, now)
        return True

    async def _act(self, step: dsl.Step, data: dict[str, Any], claim: state.Claim) -> Outcome:
        if isinstance(step, dsl.SetStep):
            values = {k: _eval(v, data) for k, v in step.values.items()}
            return Outcome(output=values, next=step.next, vars=values)
        if isinstance(step, dsl.DecideStep):
            for branch in step.branches:
                if _eval(branch.when, data) is True:
                    return Outcome(output={"chose": branch.next}, next=branch.next)
            return Outcome(output={"chose": step.default}, next=step.default)
        if isinstance(step, dsl.EmitStep):
            payload = {k: _eval(v, data) for k, v in step.payload.items()}
            event = {"type": step.event, "run_id": str(claim.run_id), "payload": payload}
            return Outcome(output={"emitted": step.event}, next=step.next, event=event)
        if isinstance(step, dsl.CallStep):
            payload = {k: _eval(v, data) for k, v in step.input.items()}
            key = f"{claim.run_id}:{step.id}:{claim.visit}"  # (run, step, call)
            result = await self.connectors.call(
                step.connector, step.operation, payload, idempotency_key=key
            )
            return Outcome(output=result, next=step.next)
        kind = type(step).__struct_config__.tag
        raise CallFailed("unsupported", f"step kind {kind} is not executable by this engine yet")

    async def _failed(self, step: dsl.Step, claim: state.Claim, failure: CallFailed) -> None:
        policy = step.retry or dsl.Retry(attempts=1)
        retryable = failure.kind in {str(k) for k in policy.retry_on}
        async with self.db.begin() as conn:
            now = self.clock()
            if retryable and claim.attempt < policy.attempts:
                delay = state.backoff(policy, claim.attempt, self.rng)
                await state.retry_later(conn, claim, error=str(failure), delay=delay, now=now)
            elif step.on_error != dsl.FAIL:
                if await state.complete(conn, claim, output={"error": str(failure)}, now=now):
                    await self._follow(conn, claim.run_id, step.on_error, now)
            else:
                await state.bury(conn, claim, reason=f"{step.id}: {failure}", now=now)

    async def _follow(
        self, conn: AsyncConnection, run_id: UUID, target: str | None, now: datetime
    ) -> None:
        if target is None or target == dsl.END:
            await state.finish_run(conn, run_id, status="succeeded", now=now)
        elif target == dsl.FAIL:
            await state.finish_run(conn, run_id, status="failed", now=now, error="failed by design")
        else:
            await state.enqueue(conn, run_id, target, now=now)

    async def pump(self, *, limit: int = 10_000) -> int:
        """In-process dispatch (embedded mode): ring every doorbell until none is left."""
        done = 0
        while done < limit:
            async with self.db.begin() as conn:
                batch = await state.take_outbox(conn, now=self.clock())
            bells = [UUID(p["step_row_id"]) for topic, p in batch if topic == "dispatch"]
            if not batch:
                return done
            for step_row_id in bells:
                done += await self.execute(step_row_id)
        return done


def _eval(expression: str, data: dict[str, Any]) -> Any:
    return expressions.compile_expression(expression).eval(data=data).plain_value()


async def _outputs(conn: AsyncConnection, run_id: UUID) -> dict[str, Any]:
    rows = (
        await conn.execute(
            select(steps.c.step_id, steps.c.output)
            .where(steps.c.run_id == run_id, steps.c.status == "succeeded")
            .order_by(steps.c.visit)
        )
    ).all()
    return {r.step_id: {"output": r.output or {}} for r in rows}


def _with_defaults(schema: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    props = schema.get("properties") or {}
    defaults = {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}
    return {**defaults, **params}
