"""Fixtures of the NOC tests: one seeded fleet of 24 tenants over 3 partners."""

from __future__ import annotations

import pytest
from litestar import Litestar

from control_plane.config import Settings
from control_plane.health import recent
from tests.web.support import SeededFleet, seed_fleet


@pytest.fixture(scope="session")
async def fleet(app: Litestar, settings: Settings) -> SeededFleet:
    return await seed_fleet(settings, app.state.db, tenants=24, partners=3)


@pytest.fixture(autouse=True)
def fresh_totals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sum the hour's runs and the day's SLA on every read, so a test sees what it sent."""
    monkeypatch.setattr(recent, "SNAPSHOT_SECONDS", 0.0)
    monkeypatch.setattr(recent, "TOTALS_SECONDS", 0.0)
