"""One tenant's corrections never change another tenant's predictions: each runtime's
examples live in its own database, and nothing is shared in the process either (both
tenants' models below are trained in this one process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tenant_runtime.triage.service import Triage
from tests.engine.conftest import _engine

#: Freezer faults this tenant's people insist on filing as building work (its own rule).
RELABELLED = [
    "The walk-in freezer is at minus 5 and the door seal is torn, ice cream going soft",
    "Freezer door seal split again on the walk-in, frost building up inside",
    "Walk-in freezer door will not close properly, seal hanging off",
    "Seal on the freezer room door is perished and the door does not shut",
]
PROBE = "Torn door seal on the walk-in freezer, the door no longer closes"


@pytest.fixture
async def two_tenants(tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    async for a in _engine("postgresql", tmp_path / "a"):
        async for b in _engine("sqlite", tmp_path):
            yield a, b


async def test_corrections_stay_with_the_tenant_that_made_them(
    two_tenants: tuple[AsyncEngine, AsyncEngine],
) -> None:
    db_a, db_b = two_tenants
    a, b = Triage(db_a), Triage(db_b)
    before_a = await a.classify("category", PROBE)
    before_b = await b.classify("category", PROBE)
    assert before_a == before_b  # the same platform examples, the same model
    assert before_a.label == "refrigeration"

    now = datetime.now(UTC)
    async with db_a.begin() as conn:
        for text in RELABELLED:
            await a.learn(
                conn,
                target="category",
                text=text,
                label="building_plumbing",
                source="review",
                actor="rm@tenant-a.example",
                now=now,
            )

    after_a = await a.classify("category", PROBE)
    after_b = await b.classify("category", PROBE)
    assert after_a.label == "building_plumbing"
    assert after_a.model_version != before_a.model_version
    # Tenant B: not a digit of its prediction moved.
    assert after_b == before_b
    # A fresh process for B (nothing cached) still predicts the same.
    assert await Triage(db_b).classify("category", PROBE) == before_b


async def test_the_latest_label_for_a_text_wins(
    two_tenants: tuple[AsyncEngine, AsyncEngine],
) -> None:
    db, _ = two_tenants
    triage = Triage(db)
    now = datetime.now(UTC)
    for label in ("pest", "hvac"):
        async with db.begin() as conn:
            await triage.learn(
                conn,
                target="category",
                text=RELABELLED[0],
                label=label,
                source="review",
                actor="rm@example.com",
                now=now,
            )
    trained = await triage.model("category")
    assert "hvac" in trained.labels
    with pytest.raises(ValueError, match="unknown triage target"):
        await triage.model("colour")


async def test_priority_is_a_target_of_its_own(
    two_tenants: tuple[AsyncEngine, AsyncEngine],
) -> None:
    _, db = two_tenants
    triage = Triage(db)
    verdict = await triage.classify("priority", "Customer slipped on spilled yoghurt in aisle 4")
    assert verdict.labels == ["high", "low", "medium"]
    assert verdict.label in verdict.labels and 0.0 < verdict.confidence <= 1.0
    category = await triage.model("category")
    assert category.labels != verdict.labels  # one model per target
