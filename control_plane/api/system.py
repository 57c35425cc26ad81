"""Liveness, readiness and metrics endpoints."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get

from control_plane.db import Database


@get("/healthz", operation_id="healthz", tags=["system"], include_in_schema=True)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", operation_id="readyz", tags=["system"])
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Ready when the database answers and, outside embedded mode, Redis does too."""
    db: Database = request.app.state.db
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(db.ping(), timeout=2)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"failed: {type(exc).__name__}"
    redis = request.app.state.redis
    if redis is None:
        checks["redis"] = "embedded (in-process dispatch)"
    else:
        try:
            await asyncio.wait_for(redis.ping(), timeout=2)
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"failed: {type(exc).__name__}"
    ready = all(v == "ok" or v.startswith("embedded") for v in checks.values())
    return Response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )
