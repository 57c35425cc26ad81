"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get
from sqlalchemy import text

from tenant_runtime.api.deps import runtime_of


@get("/healthz", operation_id="healthz", tags=["system"], security=[])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", operation_id="readyz", tags=["system"], security=[])
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Ready when the runtime's database answers within two seconds."""
    db = runtime_of(request).engine.db

    async def ping() -> None:
        async with db.connect() as conn:
            await conn.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(ping(), timeout=2)
        database = "ok"
    except Exception as exc:
        database = f"failed: {type(exc).__name__}"
    ready = database == "ok"
    return Response(
        {"status": "ready" if ready else "not ready", "checks": {"database": database}},
        status_code=200 if ready else 503,
    )
