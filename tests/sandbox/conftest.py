"""A fresh sandbox app per test, called in process through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar

from tenant_runtime.sandbox import Sandbox, SandboxConfig, create_sandbox_app

SEED = 7


@pytest.fixture
def sandbox_app() -> Litestar:
    return create_sandbox_app(SandboxConfig(seed=SEED))


@pytest.fixture
def sandbox(sandbox_app: Litestar) -> Sandbox:
    """The simulated estate itself, to look at state the HTTP answers do not show."""
    found: Sandbox = sandbox_app.state.sandbox
    return found


@pytest.fixture
async def api(sandbox_app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sandbox_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as c:
        yield c
