"""``storeops runtime serve``: one tenant's API, webhooks and portal under uvicorn.

Embedded mode (no Redis URL) executes steps in this process too; otherwise this process
only rings Dramatiq and ``storeops runtime worker`` executes. An embedded SQLite database
is migrated on start, so one command brings a laptop runtime up; PostgreSQL is migrated
explicitly (``storeops runtime db-upgrade``).
"""

from __future__ import annotations

import asyncio
import gc

import uvicorn

from tenant_runtime import tracing
from tenant_runtime.api import create_runtime_app
from tenant_runtime.config import RuntimeSettings
from tenant_runtime.runtime import Runtime

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8100


def build_runtime(settings: RuntimeSettings) -> Runtime:
    """The runtime this process serves: ringing Dramatiq, or pumping in-process."""
    if not settings.redis_url:
        return Runtime(settings, worker="api")
    from tenant_runtime.engine.dispatch import Dispatcher, tenant_broker

    broker = tenant_broker(settings.redis_url, settings.tenant_id)
    runtime: Runtime
    dispatcher = Dispatcher(broker, lambda: runtime.engine)
    runtime = Runtime(settings, ring=dispatcher.ring, worker="api")
    return runtime


async def _serve(settings: RuntimeSettings, host: str, port: int) -> None:
    runtime = build_runtime(settings)
    try:
        app = create_runtime_app(
            runtime,
            issuer=settings.token_issuer or None,
            audience=settings.token_audience,
        )
        config = uvicorn.Config(app, host=host, port=port, lifespan="on", proxy_headers=True)
        # The app and everything imported live as long as the process: keep the garbage
        # collector off them, and collect young garbage a little less often.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        await uvicorn.Server(config).serve()
    finally:
        await runtime.close()


def run(settings: RuntimeSettings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve until interrupted (SIGINT or SIGTERM); the database is closed on the way out."""
    if not settings.control_plane_url:
        raise ValueError(
            "the runtime API needs STOREOPS_RUNTIME_CONTROL_PLANE_URL: callers' tokens are "
            "checked against the control plane's published keys"
        )
    if settings.database_url.startswith("sqlite"):
        from tenant_runtime.db.migrate import upgrade

        settings.home.mkdir(parents=True, exist_ok=True)
        upgrade(settings.database_url)
    # Before the app is built: it adds server spans only when spans are recorded.
    installed = tracing.setup(
        attributes={"storeops.tenant_id": str(settings.tenant_id), "storeops.process": "api"}
    )
    try:
        asyncio.run(_serve(settings, host, port))
    finally:
        installed.shutdown()
