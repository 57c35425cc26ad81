"""``storeops runtime worker``: Dramatiq threads for one tenant, plus the loop that relays
the outbox and sweeps for overdue steps. Killing it at any moment loses nothing."""

from __future__ import annotations

import asyncio
import signal
import threading
from datetime import timedelta
from typing import Any

import httpx
from dramatiq import Worker
from sqlalchemy.ext.asyncio import create_async_engine

from tenant_runtime.config import RuntimeSettings
from tenant_runtime.connectors import NoAuth, RestConnector, RetryPolicy
from tenant_runtime.connectors.bindings import BoundConnectors
from tenant_runtime.engine.dispatch import Dispatcher, tenant_broker
from tenant_runtime.engine.executor import Engine
from tenant_runtime.secrets import SecretCache, SecretUnavailable


class _NoSecrets:
    async def get(self, name: str) -> str:
        raise SecretUnavailable(f"secret {name!r}: this runtime has no secret provider yet")


def connectors(settings: RuntimeSettings) -> BoundConnectors:
    secrets = SecretCache(_NoSecrets())
    bound = {
        name: RestConnector(
            str(spec["base_url"]),
            NoAuth(),
            timeout=float(spec.get("timeout", 10.0)),
            retry=RetryPolicy(attempts=int(spec.get("attempts", 3)), initial=0.2, max=2.0),
            secrets=secrets,
            transport=httpx.AsyncHTTPTransport(retries=0),
        )
        for name, spec in settings.bindings.items()
    }
    return BoundConnectors(bound)


def make_engine(settings: RuntimeSettings, worker: str) -> Engine:
    db = create_async_engine(settings.database_url, pool_size=settings.worker_threads + 2)
    return Engine(
        db, connectors(settings), worker=worker, lease=timedelta(seconds=settings.lease_seconds)
    )


def run(settings: RuntimeSettings, *, name: str = "worker") -> None:
    if not settings.redis_url:
        raise ValueError(
            "the worker needs STOREOPS_RUNTIME_REDIS_URL; embedded mode dispatches in-process"
        )
    broker = tenant_broker(settings.redis_url, settings.tenant_id)
    dispatcher = Dispatcher(broker, lambda: make_engine(settings, name))
    worker = Worker(broker, worker_threads=settings.worker_threads, worker_timeout=200)
    stop = threading.Event()

    def shutdown(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    worker.start()
    try:
        asyncio.run(_relay_and_sweep(settings, dispatcher, stop, name))
    finally:
        worker.stop()
        broker.close()


async def _relay_and_sweep(
    settings: RuntimeSettings, dispatcher: Dispatcher, stop: threading.Event, name: str
) -> None:
    engine = make_engine(settings, f"{name}-relay")
    ring_again = timedelta(seconds=max(settings.sweep_seconds * 5, 2.0))
    try:
        while not stop.is_set():
            await dispatcher.relay(engine)
            await dispatcher.sweep(engine, ring_again_after=ring_again)
            await asyncio.sleep(settings.sweep_seconds)
    finally:
        await engine.db.dispose()
