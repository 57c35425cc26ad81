"""What the API's writes do: scope checks and request rules in front of the engine's calls."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from tenant_runtime.api import queries, schemas
from tenant_runtime.api.auth import Caller
from tenant_runtime.api.ports import RuntimePort
from tenant_runtime.api.problems import (
    Conflict,
    Forbidden,
    IdempotencyKeyReused,
    InvalidInput,
    NotFound,
)
from tenant_runtime.api.scope import Scope, is_store

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_EVERYTHING = Scope(everything=True)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def idempotency_prefix(subject: str, key: str) -> str:
    """Keys are per caller: two people may pick the same key without meeting."""
    if not _KEY.match(key):
        raise InvalidInput("Idempotency-Key must be 1-255 visible ASCII characters")
    return f"api:{_digest(subject, key)}:"


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def _body_digest(data: schemas.RunCreate) -> str:
    canonical = json.dumps(msgspec.to_builtins(data), sort_keys=True, separators=(",", ":"))
    return _digest(canonical)


async def start_run(
    runtime: RuntimePort,
    caller: Caller,
    scope: Scope,
    data: schemas.RunCreate,
    idempotency_key: str | None,
) -> tuple[schemas.Run, bool]:
    """Start a run; with a key, the same request again returns the same run (and False).

    The run row stores ``api:<caller and key digest>:<body digest>``, so the database
    remembers both the key and what it was first used for.
    """
    db = runtime.engine.db
    if data.template_id not in runtime.deployments:
        deployed = ", ".join(sorted(runtime.deployments)) or "none"
        raise NotFound(
            f"template {data.template_id!r} is not deployed to this tenant (deployed: {deployed})"
        )
    store = data.store or _text(data.input.get("store_id"))
    if store is not None and runtime.stores and not is_store(runtime.stores, store):
        known = ", ".join(sorted(s.code or s.id for s in runtime.stores.values()))
        raise InvalidInput(f"store {store!r} is not one of this retailer's stores ({known})")
    if not scope.everything:
        if store is None:
            raise Forbidden("name the store the run is about: you may start runs for your stores")
        if not scope.covers_store(store):
            raise Forbidden(f"store {store!r} is not one of your stores")
    if idempotency_key is None:
        run_id = await runtime.start(
            data.template_id, data.input, idempotency_key=None, store=data.store
        )
        return await queries.get_run(db, _EVERYTHING, run_id), True
    prefix = idempotency_prefix(caller.subject, idempotency_key)
    key = prefix + _body_digest(data)
    if (found := await _started(db, prefix, key, idempotency_key)) is not None:
        return found, False
    try:
        run_id = await runtime.start(
            data.template_id, data.input, idempotency_key=key, store=data.store
        )
    except IntegrityError:  # the same request, concurrently: it won the insert
        if (found := await _started(db, prefix, key, idempotency_key)) is not None:
            return found, False
        raise
    return await queries.get_run(db, _EVERYTHING, run_id), True


async def _started(db: AsyncEngine, prefix: str, key: str, given: str) -> schemas.Run | None:
    """The run this caller's key already started, if any; 422 if for another body."""
    found = await queries.run_by_key_prefix(db, prefix)
    if found is None:
        return None
    run_id, stored = found
    if not hmac.compare_digest(stored, key):
        raise IdempotencyKeyReused(
            f"Idempotency-Key {given!r} was used with a different body; "
            "send the same body to get the same run, or use a new key"
        )
    return await queries.get_run(db, _EVERYTHING, run_id)


async def cancel_run(
    runtime: RuntimePort, caller: Caller, scope: Scope, run_id: UUID
) -> schemas.Cancelled:
    run = await queries.get_run(runtime.engine.db, scope, run_id)
    if not await runtime.engine.cancel(run_id, actor=caller.subject):
        current = await queries.get_run(runtime.engine.db, _EVERYTHING, run_id)
        raise Conflict(f"run {run_id} is {current.status}; only a running run can be cancelled")
    return schemas.Cancelled(run_id=run.id, status="cancelled")


async def decide(
    runtime: RuntimePort,
    caller: Caller,
    scope: Scope,
    task_id: UUID,
    data: schemas.DecisionCreate,
) -> schemas.Task:
    """Decide a task the caller may see (any other is a 404). The engine checks, under a
    row lock, that it is still open (else 409) and that the decision fits the task (422)."""
    db = runtime.engine.db
    await queries.get_task(db, scope, task_id)
    await runtime.engine.decide(
        task_id,
        decision=data.decision,
        actor=caller.subject,
        comment=data.comment,
        answers=data.answers,
    )
    return await queries.get_task(db, _EVERYTHING, task_id)


async def replay(runtime: RuntimePort, dead_letter_id: UUID) -> schemas.Replayed:
    letter = await queries.get_dead_letter(runtime.engine.db, dead_letter_id)
    if letter.replayed_at is not None:
        raise Conflict(f"dead letter {dead_letter_id} was already replayed at {letter.replayed_at}")
    step_row_id = await runtime.engine.replay_dead_letter(dead_letter_id)
    if step_row_id is None:
        raise Conflict(
            f"dead letter {dead_letter_id} cannot be replayed: it was replayed meanwhile, or "
            "the parallel step it belongs to has already joined"
        )
    return schemas.Replayed(dead_letter_id=dead_letter_id, step_row_id=step_row_id)
