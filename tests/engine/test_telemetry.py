"""Telemetry leaves through the outbox: events are written in the same transaction as the
change they describe, and the sender marks them sent only once acknowledged."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import msgspec
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.contracts import telemetry
from tenant_runtime.config import RuntimeSettings
from tenant_runtime.db.schema import outbox
from tenant_runtime.engine.executor import Engine
from tenant_runtime.link import LinkError, TelemetrySender
from tests.engine.test_executor import Clock, FakeErp, drive, template


async def _events(db: AsyncEngine) -> list[telemetry.Event]:
    async with db.connect() as conn:
        rows = await conn.execute(select(outbox.c.payload).where(outbox.c.topic == "telemetry"))
        return [msgspec.convert(e, telemetry.Event) for r in rows for e in r.payload]


async def test_a_run_reports_its_lifecycle_in_its_own_transactions(
    fresh_engine: AsyncEngine,
) -> None:
    clock = Clock()
    eng = Engine(fresh_engine, FakeErp(fail_first={"get_stock": 1}), clock=clock)
    run_id = await eng.start(template(), {}, {"sku": "SKU-1"}, store="S-1")
    started = await _events(fresh_engine)
    # Committed with the run itself, before any step ran.
    assert [(e.kind, e.run_id, e.store) for e in started] == [("run.started", run_id, "S-1")]
    await drive(eng, clock)
    events = await _events(fresh_engine)
    kinds = [e.kind for e in events]
    assert kinds[0] == "run.started" and kinds[-1] == "run.finished"
    steps = [(e.data["step_id"], e.status) for e in events if e.kind == "step.finished"]
    assert steps == [
        ("stock", "succeeded"),
        ("low", "succeeded"),
        ("size", "succeeded"),
        ("order", "succeeded"),
        ("done", "succeeded"),
    ]
    finished = events[-1]
    assert finished.status == "succeeded" and finished.template_id == "restock-check"
    assert finished.duration_ms is not None and finished.duration_ms >= 10_000  # a retry waited
    assert len({e.id for e in events}) == len(events)


class FlakyHome:
    """A control plane that is down for a while, then loses one acknowledgement."""

    def __init__(self, down_for: int) -> None:
        self.down_for = down_for
        self.received: list[telemetry.Event] = []
        self.lose_next_ack = True

    async def post(self, body: bytes) -> dict[str, Any]:
        if self.down_for > 0:
            self.down_for -= 1
            raise LinkError("connection refused")
        batch = telemetry.decode(body)
        self.received.extend(batch.events)
        if self.lose_next_ack:
            self.lose_next_ack = False
            raise LinkError("read timeout")  # stored there, but the runtime never heard back
        return {"accepted": len(batch.events)}


async def test_an_outage_loses_nothing_and_a_lost_ack_resends_the_same_ids(
    fresh_engine: AsyncEngine,
) -> None:
    clock = Clock()
    eng = Engine(fresh_engine, FakeErp(), clock=clock)
    for i in range(30):
        await eng.start(template(), {}, {"sku": f"SKU-{i}"})
    await drive(eng, clock)
    written = await _events(fresh_engine)
    home = FlakyHome(down_for=3)
    settings = RuntimeSettings(tenant_id=uuid4())
    sender = TelemetrySender(fresh_engine, settings, home.post, max_events=40)
    attempts = 0
    while True:
        attempts += 1
        try:
            await sender.drain()
            break
        except LinkError:
            sender.failures += 1
            assert 0 < sender.backoff() <= 60
    assert attempts == 5  # three refused, one acknowledgement lost, then through
    assert {e.id for e in home.received} == {e.id for e in written}
    assert len(home.received) > len(written)  # the batch whose ack was lost came again
    async with fresh_engine.connect() as conn:
        unsent = await conn.scalar(
            select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        )
    assert unsent == 0
    assert await sender.send_once() == 0


@pytest.mark.parametrize("limit", [1, 7, 5000])
def test_batches_respect_the_contract_limits(limit: int) -> None:
    sender = TelemetrySender(
        None, RuntimeSettings(tenant_id=uuid4()), lambda b: None, max_events=limit
    )  # type: ignore[arg-type]
    assert 1 <= sender.max_events <= telemetry.MAX_EVENTS


def test_a_batch_of_an_unknown_contract_version_is_refused() -> None:
    from datetime import UTC, datetime

    from control_plane.contracts import uuid7

    made = telemetry.Batch(
        tenant_id=uuid4(),
        runtime="r",
        sent_at=datetime.now(UTC),
        events=[telemetry.Event(id=uuid7(), at=datetime.now(UTC), kind=telemetry.Kind.HEARTBEAT)],
        contract_version=2,
    )
    with pytest.raises(telemetry.InvalidBatch, match="contract version 2 is not supported"):
        telemetry.decode(telemetry.encode(made))
    assert telemetry.decode(telemetry.encode(msgspec.structs.replace(made, contract_version=1)))
