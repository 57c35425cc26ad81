"""Fixtures of the end-to-end tests: real processes, and the databases they made."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import _admin_exec
from tests.e2e.test_fleet_link import Procs


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    """Processes started by the test, stopped after it whatever happened."""
    found = Procs(tmp_path)
    yield found
    found.stop_all()


@pytest.fixture
async def databases() -> AsyncIterator[list[str]]:
    """Names of databases the test created, dropped after it."""
    made: list[str] = []
    yield made
    for name in made:
        await _admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
