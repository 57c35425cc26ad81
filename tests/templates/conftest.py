"""A migrated runtime database per module (wiped before each test) and the harness on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.engine.conftest import _engine
from tests.templates.harness import Harness


@pytest.fixture(scope="module")
async def pg(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AsyncEngine]:
    async for eng in _engine("postgresql", Path(tmp_path_factory.mktemp("rt"))):
        yield eng


@pytest.fixture(scope="module")
async def lite(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AsyncEngine]:
    async for eng in _engine("sqlite", Path(tmp_path_factory.mktemp("rt"))):
        yield eng


@pytest.fixture
async def h(pg: AsyncEngine) -> AsyncIterator[Harness]:
    """The library deployed on PostgreSQL, against a fresh sandbox."""
    async with Harness.open(pg) as harness:
        yield harness


@pytest.fixture(params=["postgresql", "sqlite"])
async def hb(
    request: pytest.FixtureRequest, pg: AsyncEngine, lite: AsyncEngine
) -> AsyncIterator[Harness]:
    """The same on each backend, for the few tests cheap enough to run twice."""
    async with Harness.open(pg if request.param == "postgresql" else lite) as harness:
        yield harness
