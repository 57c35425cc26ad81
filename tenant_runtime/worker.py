"""``storeops runtime worker``: Dramatiq threads for one tenant, plus the loop that rings
for overdue steps and fires timers, escalations and schedules. Killing it at any moment
loses nothing."""

from __future__ import annotations

import asyncio
import signal
import threading
from datetime import timedelta
from typing import Any

from dramatiq import Worker

from tenant_runtime.config import RuntimeSettings
from tenant_runtime.engine.dispatch import Dispatcher, tenant_broker
from tenant_runtime.engine.executor import Engine
from tenant_runtime.runtime import Runtime


def run(settings: RuntimeSettings, *, name: str = "worker") -> None:
    if not settings.redis_url:
        raise ValueError(
            "the worker needs STOREOPS_RUNTIME_REDIS_URL; embedded mode dispatches in-process"
        )
    broker = tenant_broker(settings.redis_url, settings.tenant_id)
    dispatcher: Dispatcher

    def engine() -> Engine:
        return Runtime(settings, ring=dispatcher.ring, worker=name).engine

    dispatcher = Dispatcher(broker, engine)
    worker = Worker(broker, worker_threads=settings.worker_threads, worker_timeout=200)
    stop = threading.Event()

    def shutdown(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    worker.start()
    try:
        asyncio.run(
            _housekeeping(Runtime(settings, ring=dispatcher.ring, worker=f"{name}-sweeper"), stop)
        )
    finally:
        worker.stop()
        broker.close()


async def _housekeeping(runtime: Runtime, stop: threading.Event) -> None:
    ring_again = timedelta(seconds=max(runtime.settings.sweep_seconds * 5, 2.0))
    try:
        while not stop.is_set():
            await runtime.maintain(ring_again_after=ring_again)
            await asyncio.sleep(runtime.settings.sweep_seconds)
    finally:
        await runtime.close()
