"""``storeops runtime worker``: Dramatiq threads for one tenant, plus the loop that rings
for overdue steps and fires timers, escalations and schedules. Killing it at any moment
loses nothing."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
from datetime import timedelta
from typing import Any

from dramatiq import Worker

from tenant_runtime import tracing
from tenant_runtime.agent import Agent
from tenant_runtime.config import RuntimeSettings
from tenant_runtime.engine.dispatch import Dispatcher, tenant_broker
from tenant_runtime.engine.executor import Engine
from tenant_runtime.link import LinkError
from tenant_runtime.runtime import Runtime, SharedBindings, has_credentials, load_directory

log = logging.getLogger(__name__)


def run(settings: RuntimeSettings, *, name: str = "worker") -> None:
    if not settings.redis_url:
        raise ValueError(
            "the worker needs STOREOPS_RUNTIME_REDIS_URL; embedded mode dispatches in-process"
        )
    installed = tracing.setup(
        attributes={"storeops.tenant_id": str(settings.tenant_id), "storeops.process": name}
    )
    broker = tenant_broker(settings.redis_url, settings.tenant_id)
    dispatcher: Dispatcher
    # Every engine of this process (one per event loop) shares what the agent keeps current.
    directory, bindings = load_directory(settings), SharedBindings(dict(settings.bindings))

    def runtime(role: str) -> Runtime:
        return Runtime(
            settings, ring=dispatcher.ring, worker=role, directory=directory, bindings=bindings
        )

    def engine() -> Engine:
        return runtime(name).engine

    dispatcher = Dispatcher(broker, engine)
    worker = Worker(broker, worker_threads=settings.worker_threads, worker_timeout=200)
    stop = threading.Event()

    def shutdown(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    asyncio.run(_first_desired_state(runtime(f"{name}-agent")))
    # Everything imported and built so far lives as long as the process: keep the garbage
    # collector off it, and let young garbage pile up a little longer between collections.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    worker.start()
    try:
        asyncio.run(_housekeeping(runtime(f"{name}-sweeper"), stop))
    finally:
        worker.stop()
        broker.close()
        installed.shutdown()


async def _first_desired_state(runtime: Runtime) -> None:
    """Take the desired state once before consuming steps, so the first steps find their
    deployments' bindings (a control plane that cannot be reached only delays this)."""
    try:
        if runtime.link is not None and has_credentials(runtime.settings):
            await Agent(runtime).poll_once(wait=0)
    except LinkError as exc:
        log.warning("desired state not fetched at start (%s); following it later", exc)
    finally:
        await runtime.close()


async def _housekeeping(runtime: Runtime, stop: threading.Event) -> None:
    ring_again = timedelta(seconds=max(runtime.settings.sweep_seconds * 5, 2.0))
    stopping = asyncio.Event()
    following = (
        asyncio.create_task(Agent(runtime).follow(stopping))
        if runtime.link is not None and has_credentials(runtime.settings)
        else None
    )
    try:
        while not stop.is_set():
            await runtime.maintain(ring_again_after=ring_again)
            await asyncio.sleep(runtime.settings.sweep_seconds)
    finally:
        stopping.set()
        if following is not None:
            following.cancel()
        await runtime.close()
