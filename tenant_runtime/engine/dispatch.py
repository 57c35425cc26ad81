"""Dramatiq as the doorbell: each tenant's runtime gets its own Redis namespace, a worker
rings for the steps its transaction wrote as soon as it commits, and the actor runs the
step the bell names.

The message carries only ids; the database says what to do. A lost or duplicated message
costs a delay or a no-op, never a lost or doubled step (the sweeper rings again). Its
options also carry the W3C trace context of whoever rang, so a run's trace follows it across
the queue.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any
from uuid import UUID

import dramatiq
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware.asyncio import AsyncIO
from opentelemetry.trace import SpanKind, Status, StatusCode

from tenant_runtime import tracing
from tenant_runtime.engine.executor import Engine

QUEUE = "steps"
ACTOR = "execute_step"


def tenant_broker(redis_url: str, tenant_id: UUID | str) -> RedisBroker:
    """A broker in the tenant's own namespace, so no two runtimes share a queue."""
    broker = RedisBroker(url=redis_url, namespace=f"storeops-{tenant_id}")  # type: ignore[no-untyped-call]
    broker.add_middleware(AsyncIO())
    broker.add_middleware(TraceContext())
    return broker


class TraceContext(dramatiq.Middleware):
    """Carries W3C trace context in ``message.options``: the sender's current context is
    injected on enqueue; a worker thread keeps the options of the message it handles for
    the actor (which hands them to the event loop that executes the step)."""

    _inbound = threading.local()

    def before_enqueue(self, broker: dramatiq.Broker, message: Any, delay: int) -> None:
        carrier: dict[str, str] = {}
        tracing.inject(carrier)
        if carrier:
            message.options[tracing.OPTION] = carrier

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self._inbound.message = message

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self._inbound.message = None

    after_skip_message = after_process_message

    @classmethod
    def current(cls) -> Any:
        """The message this worker thread is handling (``None`` outside an actor)."""
        return getattr(cls._inbound, "message", None)


class Dispatcher:
    """Binds engines to one broker: declares the actor and rings for steps."""

    def __init__(self, broker: dramatiq.Broker, engine_factory: Callable[[], Engine]) -> None:
        self.broker = broker
        self._engine_factory = engine_factory
        self._engines: dict[int, Engine] = {}

        def execute_step(step_row_id: str) -> None:
            # Dramatiq's own async wrapper would lose the message's trace context on the
            # way to the event loop thread: hand it over explicitly.
            loop = get_event_loop_thread()
            if loop is None:
                raise RuntimeError("the broker needs the AsyncIO middleware (tenant_broker)")
            loop.run_coroutine(self._execute(UUID(step_row_id), TraceContext.current()))

        # Retries are the engine's business (per step policy, in the database): the
        # message is a doorbell, so Dramatiq must not re-run it on its own.
        declare = dramatiq.actor(actor_name=ACTOR, queue_name=QUEUE, broker=broker, max_retries=0)
        self.actor: Any = declare(execute_step)

    def ring(self, step_row_ids: list[UUID]) -> None:
        if not tracing.active():
            for step_row_id in step_row_ids:
                self.actor.send(str(step_row_id))
            return
        for step_row_id in step_row_ids:
            with tracing.tracer.start_as_current_span(
                f"{QUEUE} publish",
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "dramatiq",
                    "messaging.operation.type": "send",
                    "messaging.destination.name": QUEUE,
                    "storeops.step_row_id": str(step_row_id),
                },
            ):
                self.actor.send(str(step_row_id))

    async def _execute(self, step_row_id: UUID, message: Any) -> None:
        carrier = message.options.get(tracing.OPTION) if message is not None else None
        tracing.step_messages.add(1)
        if carrier is None and not tracing.active():  # nothing to carry, nothing to record
            await self._engine().execute(step_row_id)
            return
        with tracing.tracer.start_as_current_span(
            f"{QUEUE} process",
            context=tracing.extract(carrier),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "dramatiq",
                "messaging.operation.type": "process",
                "messaging.destination.name": QUEUE,
                "messaging.message.id": str(getattr(message, "message_id", "")),
                "storeops.step_row_id": str(step_row_id),
            },
            # By class only: an error's message may quote data (a database error, its row).
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                await self._engine().execute(step_row_id)
            except BaseException as exc:
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise

    def _engine(self) -> Engine:
        # One engine (and connection pool) per event loop: Dramatiq's AsyncIO middleware
        # runs actors on its own loop thread.
        loop = id(asyncio.get_running_loop())
        if loop not in self._engines:
            self._engines[loop] = self._engine_factory()
        return self._engines[loop]
