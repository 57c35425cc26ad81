"""The template library on a PostgreSQL runtime database, with maintenance-incident 1.2.0
(the version that triages) deployed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tenant_runtime.engine.directory import Deployment
from tenant_runtime.runtime import load_template
from tests.engine.conftest import _engine
from tests.templates.harness import TEMPLATES, Harness


@pytest.fixture(scope="module")
async def pg(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AsyncEngine]:
    async for eng in _engine("postgresql", Path(tmp_path_factory.mktemp("rt"))):
        yield eng


@pytest.fixture
async def h(pg: AsyncEngine) -> AsyncIterator[Harness]:
    async with Harness.open(pg) as harness:
        current = harness.directory.deployments["maintenance-incident"]
        harness.directory.deployments["maintenance-incident"] = Deployment(
            load_template(TEMPLATES, "maintenance-incident", "1.2.0"), current.params
        )
        yield harness
