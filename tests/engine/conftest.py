"""A runtime database per backend (PostgreSQL and the embedded SQLite), migrated."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tenant_runtime.db.migrate import upgrade
from tests.conftest import PG_HOST, PG_PORT, PG_SUPERUSER, _admin_exec


async def _database(kind: str, tmp: Path) -> tuple[str, str | None]:
    if kind == "postgresql":
        name = f"storeops_rt_{secrets.token_hex(4)}"
        await _admin_exec(f'CREATE DATABASE "{name}"')
        return f"postgresql+asyncpg://{PG_SUPERUSER}@{PG_HOST}:{PG_PORT}/{name}", name
    return f"sqlite+aiosqlite:///{tmp / 'runtime.db'}", None


async def _engine(kind: str, tmp: Path) -> AsyncIterator[AsyncEngine]:
    url, name = await _database(kind, tmp)
    await asyncio.to_thread(upgrade, url)
    eng = create_async_engine(url)
    yield eng
    await eng.dispose()
    if name:
        await _admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
async def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    """One database per backend for a module (tests that look only at their own rows)."""
    async for eng in _engine(request.param, Path(tmp_path_factory.mktemp("rt"))):
        yield eng


@pytest.fixture(params=["postgresql", "sqlite"])
async def fresh_engine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    """A database per test, for tests that drive every due step they find."""
    async for eng in _engine(request.param, tmp_path):
        yield eng
