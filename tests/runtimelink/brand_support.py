"""Themes published the way a partner or a retailer admin publishes them: images uploaded,
a draft saved, then published, all over the control plane's HTTP API; and a real tenant
runtime linked to this control plane to receive them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import httpx
from litestar import Litestar

from tenant_runtime.agent import Agent
from tenant_runtime.config import RuntimeSettings
from tenant_runtime.db.migrate import upgrade
from tenant_runtime.runtime import Runtime
from tests.branding import conftest as branding
from tests.conftest import bearer
from tests.deployments.support import Fleet
from tests.runtimelink.support import issue

Owner = Literal["partner", "tenant"]


def png(rgb: tuple[int, int, int], size: tuple[int, int] = (64, 32)) -> bytes:
    """A real PNG of one colour (the control plane judges images by their content)."""
    return branding.png(size, rgb)


def palette(primary: str, **more: str) -> dict[str, str]:
    """Six readable colour tokens around ``primary`` (white text on it, dark text on white)."""
    return {**branding.PALETTE, "primary": primary, **more}


def _base(owner: Owner, owner_id: UUID) -> str:
    return f"/api/v1/{owner}s/{owner_id}/brand"


async def upload(
    client: httpx.AsyncClient,
    token: str,
    owner: Owner,
    owner_id: UUID,
    data: bytes,
    role: str = "logo",
) -> str:
    res = await branding.upload(client, token, _base(owner, owner_id), data, role)
    assert res.status_code == 201, res.text
    sha: str = res.json()["sha256"]
    return sha


async def publish(
    client: httpx.AsyncClient, token: str, owner: Owner, owner_id: UUID, **theme: Any
) -> dict[str, Any]:
    """Save ``theme`` as the owner's draft and publish it."""
    return await branding.publish_theme(client, token, _base(owner, owner_id), **theme)


async def rollback(
    client: httpx.AsyncClient, token: str, owner: Owner, owner_id: UUID
) -> dict[str, Any]:
    res = await client.post(f"{_base(owner, owner_id)}/rollback", headers=bearer(token))
    assert res.status_code == 200, res.text
    version: dict[str, Any] = res.json()
    return version


@asynccontextmanager
async def linked_runtime(
    app: Litestar,
    client: httpx.AsyncClient,
    f: Fleet,
    home: Path,
    *,
    clock: Callable[[], datetime] | None = None,
    **settings: Any,
) -> AsyncIterator[Runtime]:
    """The fleet tenant's runtime (SQLite unless ``database_url`` says otherwise),
    bootstrapped with a one-time token and holding its first desired state."""
    config = RuntimeSettings(
        tenant_id=f.tenant_id, home=home, control_plane_url="http://testserver", **settings
    )
    await asyncio.to_thread(upgrade, config.database_url)  # Alembic runs its own loop
    runtime = Runtime(config, clock=clock)
    assert runtime.link is not None
    await runtime.link.http.aclose()
    runtime.link.http = httpx.AsyncClient(
        base_url="http://testserver", transport=httpx.ASGITransport(app=app)
    )
    try:
        await runtime.link.bootstrap((await issue(client, f))["token"])
        assert await Agent(runtime).poll_once(wait=0)
        yield runtime
    finally:
        await runtime.close()
