"""Dramatiq as the doorbell: each tenant's runtime gets its own Redis namespace, a worker
rings for the steps its transaction wrote as soon as it commits, and the actor runs the
step the bell names.

The message carries only ids; the database says what to do. A lost or duplicated message
costs a delay or a no-op, never a lost or doubled step (the sweeper rings again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from uuid import UUID

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware.asyncio import AsyncIO

from tenant_runtime.engine.executor import Engine

QUEUE = "steps"
ACTOR = "execute_step"


def tenant_broker(redis_url: str, tenant_id: UUID | str) -> RedisBroker:
    """A broker in the tenant's own namespace, so no two runtimes share a queue."""
    broker = RedisBroker(url=redis_url, namespace=f"storeops-{tenant_id}")  # type: ignore[no-untyped-call]
    broker.add_middleware(AsyncIO())
    return broker


class Dispatcher:
    """Binds engines to one broker: declares the actor and rings for steps."""

    def __init__(self, broker: dramatiq.Broker, engine_factory: Callable[[], Engine]) -> None:
        self.broker = broker
        self._engine_factory = engine_factory
        self._engines: dict[int, Engine] = {}

        async def execute_step(step_row_id: str) -> None:
            await self._engine().execute(UUID(step_row_id))

        # Retries are the engine's business (per step policy, in the database): the
        # message is a doorbell, so Dramatiq must not re-run it on its own.
        declare = dramatiq.actor(actor_name=ACTOR, queue_name=QUEUE, broker=broker, max_retries=0)
        self.actor: Any = declare(execute_step)

    def ring(self, step_row_ids: list[UUID]) -> None:
        for step_row_id in step_row_ids:
            self.actor.send(str(step_row_id))

    def _engine(self) -> Engine:
        # One engine (and connection pool) per event loop: Dramatiq's AsyncIO middleware
        # runs actors on its own loop thread.
        loop = id(asyncio.get_running_loop())
        if loop not in self._engines:
            self._engines[loop] = self._engine_factory()
        return self._engines[loop]
