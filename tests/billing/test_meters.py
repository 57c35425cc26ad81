"""Metering: a day's usage recomputed from the raw events gives the same rows every time,
counts each event once, prices runs by their template's category, and never wipes a day
whose raw events retention has dropped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import select

from control_plane.billing import meters
from control_plane.billing.models import UsageDaily
from control_plane.context import Ctx
from control_plane.contracts.telemetry import Kind
from control_plane.errors import InvalidInput
from tests.conftest import World
from tests.telemetry.conftest import event, post_ok, runtime_token


def test_periods() -> None:
    assert meters.period_bounds("2026-12")[1].isoformat() == "2027-01-01"
    assert meters.previous_period("2026-01") == "2025-12"
    for bad in ("2026-13", "2026-1", "26-11", "november"):
        with pytest.raises(InvalidInput, match="is not a month written YYYY-MM"):
            meters.period_bounds(bad)


def test_categories_prefer_the_partners_own_template() -> None:
    mine, other = uuid4(), uuid4()
    known = {(None, "returns"): "returns", (mine, "returns"): "customer", (other, "x"): "pricing"}
    assert meters.category(known, mine, "returns") == "customer"
    assert meters.category(known, uuid4(), "returns") == "returns"
    assert meters.category(known, mine, "x") == meters.UNCATEGORISED
    assert meters.category(known, mine, None) == meters.UNCATEGORISED


async def test_metering_a_day_twice_gives_the_same_rows(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    token = await runtime_token(world, tree)
    at = datetime.now(UTC) - timedelta(minutes=30)
    sent = [
        event(Kind.RUN_STARTED, at, template_id="t", store="S-1"),
        event(Kind.STEP_FINISHED, at, template_id="t", store="S-2"),
        event(Kind.STEP_FINISHED, at, template_id="t", store="S-1"),
        event(Kind.USAGE, at, data={"api_calls": 7}),
        event(Kind.USAGE, at, data={}),
    ]
    await post_ok(client, token, tree, sent)
    await post_ok(client, token, tree, sent[:2])  # a replay: dropped at ingest

    async def meter(c: Ctx) -> dict[tuple[str, str], int]:
        await meters.meter_day(c.session, at.date(), now=at, partner_id=tree.partner_id)
        rows = await c.session.execute(
            select(UsageDaily.meter, UsageDaily.dimension, UsageDaily.quantity).where(
                UsageDaily.tenant_id == tree.tenant_id, UsageDaily.day == at.date()
            )
        )
        return {(m, d): q for m, d, q in rows}

    first = await world.run(meter)
    assert first == {
        ("runs", meters.UNCATEGORISED): 1,
        ("steps", ""): 2,
        ("store_days", ""): 2,
        ("api_calls", ""): 7,
        ("tenant_days", ""): 1,
    }
    assert await world.run(meter) == first
