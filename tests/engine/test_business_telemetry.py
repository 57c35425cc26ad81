"""The business telemetry the SLA reports read: what a decided task says (its kind,
category, SLA outcome, a checklist's item counts) and the figures a template declares
under ``metrics:``, sent once in ``run.finished``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import msgspec
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.contracts import dsl, telemetry
from control_plane.contracts.validate import lint
from tenant_runtime.db.schema import outbox
from tenant_runtime.engine.directory import Deployment
from tenant_runtime.runtime import load_template
from tests.engine.conftest import _engine
from tests.templates.harness import TEMPLATES, Harness

#: The library versions that declare business figures.
WITH_METRICS = ("price-promotion-sync", "inventory-discrepancy", "maintenance-incident")


@pytest.fixture(scope="module")
async def pg(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AsyncEngine]:
    async for eng in _engine("postgresql", Path(tmp_path_factory.mktemp("rt"))):
        yield eng


@pytest.fixture
async def h(pg: AsyncEngine) -> AsyncIterator[Harness]:
    """The library on PostgreSQL, with the 1.1.0 versions of the templates with metrics."""
    async with Harness.open(pg) as harness:
        for template_id in WITH_METRICS:
            current = harness.directory.deployments[template_id]
            harness.directory.deployments[template_id] = Deployment(
                load_template(TEMPLATES, template_id, "1.1.0"), current.params
            )
        yield harness


async def events_of(h: Harness, run_id: UUID, kind: str | None = None) -> list[telemetry.Event]:
    async with h.db.connect() as conn:
        rows = await conn.execute(
            select(outbox.c.payload).where(outbox.c.topic == "telemetry").order_by(outbox.c.id)
        )
        found = [msgspec.convert(e, telemetry.Event) for r in rows for e in r.payload]
    return [e for e in found if e.run_id == run_id and (kind is None or e.kind == kind)]


async def finished(h: Harness, run_id: UUID) -> telemetry.Event:
    [event] = await events_of(h, run_id, "run.finished")
    return event


def required_items(template_id: str, step_id: str) -> int:
    template = load_template(TEMPLATES, template_id, "1.0.0")
    [step] = [s for s in template.steps if s.id == step_id]
    assert isinstance(step, dsl.ChecklistStep)
    return sum(1 for item in step.items if item.required)


async def test_a_promotion_reports_its_deployment_accuracy(h: Harness) -> None:
    run = await h.start("price-promotion-sync", {"change_id": "PC-9001"})

    event = await finished(h, run)
    assert event.status == "succeeded" and event.template_version == "1.1.0"
    assert event.data == {
        "category": "pricing",
        "metrics": {
            "stores_targeted": 11,
            "stores_synced_before_launch": 11,
            "promotion_launched": True,
        },
    }


async def test_a_launch_without_a_failed_store_counts_it_out(h: Harness) -> None:
    h.withhold("pos.price_batch.applied", store_id="S-103")
    run = await h.start("price-promotion-sync", {"change_id": "PC-9001"})
    for _ in range(3):
        await h.advance(timedelta(minutes=46))
    await h.decide(run, actor="head.of.pricing@example.com")

    metrics = (await finished(h, run)).data["metrics"]
    assert (metrics["stores_targeted"], metrics["stores_synced_before_launch"]) == (11, 10)
    [decided] = await events_of(h, run, "task.decided")
    # Opened after the third round, decided at once: well within its 2 h SLA.
    assert decided.status == "approved" and decided.duration_ms == 0
    assert decided.data["task_kind"] == "approval" and decided.data["category"] == "pricing"
    assert decided.data["within_sla"] is True and decided.data["via"] == "human"


async def test_a_rolled_back_change_synced_no_store(h: Harness) -> None:
    h.withhold("pos.price_batch.applied", store_id="S-103")
    h.withhold("pos.price_batch.applied", store_id="S-109")
    run = await h.start("price-promotion-sync", {"change_id": "PC-9001"})
    for _ in range(3):
        await h.advance(timedelta(minutes=46))

    metrics = (await finished(h, run)).data["metrics"]
    assert metrics == {
        "stores_targeted": 11,
        "stores_synced_before_launch": 0,
        "promotion_launched": False,
    }


async def test_a_closed_stock_count_is_a_stock_adjustment_case(h: Harness) -> None:
    run = await h.start("inventory-discrepancy", {"count_id": "CC-7004"})
    await h.advance(timedelta(hours=1))
    await h.decide(run, root_cause="RECEIVING_ERROR", comment="delivery booked to S-110")

    event = await finished(h, run)
    assert event.data["category"] == "inventory"
    assert event.duration_ms == 3_600_000  # the cycle time: detected to closed
    metrics = event.data["metrics"]
    assert metrics["stock_case_closed"] is True and metrics["stock_adjusted"] is True
    assert isinstance(metrics["adjusted_value"], float) and metrics["adjusted_value"] > 0
    [decided] = await events_of(h, run, "task.decided")
    assert decided.data["within_sla"] is True  # 1 h of an 8 h business-hours SLA


async def test_an_incident_reports_its_resolution_sla_and_the_sign_off_its_items(
    h: Harness,
) -> None:
    run = await h.start(
        "maintenance-incident",
        {"category": "refrigeration", "asset_id": "AST-10001", "description": "warm"},
    )
    await h.submit(run, fault_fixed=False)  # refused once: one item failed
    await h.submit(run)

    metrics = (await finished(h, run)).data["metrics"]
    assert metrics == {"incident_resolved": True, "resolved_within_sla": True}
    # The harness answers the required items (optional ones are not due unless answered).
    total = required_items("maintenance-incident", "sign_off")
    sign_offs = await events_of(h, run, "task.decided")
    assert [(e.status, e.data["items_total"], e.data["items_completed"]) for e in sign_offs] == [
        ("exception", total, total - 1),
        ("completed", total, total),
    ]
    assert {e.data["task_kind"] for e in sign_offs} == {"checklist"}
    assert {e.data["category"] for e in sign_offs} == {"maintenance"}


async def test_an_incident_past_its_resolution_sla_says_so(h: Harness) -> None:
    h.withhold("itsm.work_order.completed", times=1)
    run = await h.start(
        "maintenance-incident",
        {"category": "refrigeration", "asset_id": "AST-10001", "description": "warm"},
    )
    await h.advance(timedelta(days=2, minutes=1))  # the 2-day resolution SLA passes
    sandbox = (await h.api.get("/_sandbox/events", params={"after": 0})).json()["events"]
    [done] = [e for e in sandbox if e["type"] == "itsm.work_order.completed"]
    await h.engine.ingest(  # the vendor finishes late
        done["source"],
        external_id="late-completion",
        type=done["type"],
        correlation=done["correlation"],
        payload=done["payload"],
    )
    await h.settle()
    await h.submit(run)

    metrics = (await finished(h, run)).data["metrics"]
    assert metrics == {"incident_resolved": True, "resolved_within_sla": False}


async def test_an_expired_checklist_counts_no_item_done(h: Harness) -> None:
    run = await h.start("store-opening-closing-checklist", {"checklist": "opening"})
    await h.advance(timedelta(days=1))  # nobody opens the store's checklist

    decided = await events_of(h, run, "task.decided")
    assert decided, "the opening checklist expired"
    first = decided[0]
    assert first.status == "expired" and first.data["via"] == "timeout"
    assert first.data["task_kind"] == "checklist" and first.data["category"] == "compliance"
    total = required_items("store-opening-closing-checklist", "opening_checks")
    assert (first.data["items_total"], first.data["items_completed"]) == (total, 0)
    assert first.data["within_sla"] is False and first.store == "S-101"
    assert first.duration_ms is not None and first.duration_ms > 0


async def test_a_template_without_metrics_sends_only_its_category(h: Harness) -> None:
    run = await h.start(
        "stock-transfer-approval",
        {"sku": "SKU-20001", "quantity": 5, "from_location": "DC-SOUTH", "to_store": "S-101"},
    )
    event = await finished(h, run)
    assert event.data == {"category": "inventory"}
    # An automatic approval is decided at once, by policy.
    for decided in await events_of(h, run, "task.decided"):
        assert decided.data["via"] == "auto" and decided.data["task_kind"] == "approval"


def test_a_metric_expression_is_checked_where_it_is_written() -> None:
    text = (TEMPLATES / "maintenance-incident" / "1.1.0.yaml").read_text()
    broken = text.replace(
        "incident_resolved: \"'resolved' in steps\"", "incident_resolved: vars.nope"
    )
    _, problems = lint(broken, "maintenance-incident/1.1.0.yaml")
    assert [(p.field, "no such variable" in p.message) for p in problems] == [
        ("metrics.incident_resolved", True)
    ]
    assert problems[0].line == broken.splitlines().index("  incident_resolved: vars.nope") + 1
